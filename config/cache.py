"""Django's Redis cache, made cheaper and outage-tolerant.

- One client object per connection pool: Django builds a new `redis.Redis` client for every cache operation, and
  each builds its table of response callbacks (about 0.1 ms); on the sync hot path that was a tenth of the
  request. Clients are thread-safe and the pools are Django's own, so one client per pool is equivalent.
- A Redis outage degrades instead of failing: reads miss, writes are dropped (logged at most every 10 s), so
  JWKS, discovery and token syncs keep answering from the database. What is lost meanwhile: throttling (fails
  open). Invalidations are the exception: they are written strictly (`cache_strict`), so a write that must drop a
  cached sync state fails and rolls back rather than leave a stale state behind. /readyz reports the cache as down
  throughout.
- Nothing is unpickled: the serializer is `config.signed_cache.PlainSerializer` (ints, tagged bytes, JSON), and a
  stored value it did not write (a planted pickle) is read as a miss, logged and counted, never an error.
"""

import contextlib
import contextvars
import functools
import logging
import threading
import time

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from redis.exceptions import RedisError

from config.signed_cache import PlainSerializer, UnreadableCacheValue, cache_value_rejected

logger = logging.getLogger(__name__)
_last_warning = [0.0]
_strict = contextvars.ContextVar("cache_strict", default=False)
_counted = threading.local()  # (key, count) of a rate-limit counter `add` just counted


class CacheUnavailable(Exception):
    """A cache write that must not be lost could not be made (see `cache_strict`)."""


@contextlib.contextmanager
def cache_strict():
    """Within: a Redis error raises CacheUnavailable instead of degrading. For writes whose loss would keep serving
    something revoked (sync-state invalidation): the caller's transaction then rolls back instead."""
    token = _strict.set(True)
    try:
        yield
    finally:
        _strict.reset(token)


def _warn(error: RedisError) -> None:
    now = time.monotonic()
    if now - _last_warning[0] > 10:
        _last_warning[0] = now
        logger.warning("Redis unavailable, the cache degrades to misses", extra={"error": repr(error)})


def _degrade(fallback):
    """On a Redis error: warn and return `fallback()` (or raise it, for an exception class)."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except RedisError as error:
                if _strict.get():
                    raise CacheUnavailable(f"Redis is unavailable: {error}") from error
                _warn(error)
                if isinstance(fallback, type) and issubclass(fallback, Exception):
                    raise fallback("cache unavailable") from None
                return fallback()

        return wrapper

    return decorate


_INCR_EXISTING = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end"
# A rate-limit counter counted in one round trip: INCRBY, and the window's expiry set when the key was created.
_COUNT = (
    "local count = redis.call('INCRBY', KEYS[1], ARGV[1]) "
    "if count == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end return count"
)
# Counters counted in order, stopping at the first over its limit, then the keys to start set where missing, then
# the other keys read: KEYS are the n counters and then the keys to read; ARGV is n, each counter's limit and
# lifetime, then m and, for each key to start, its position among the keys to read, its value and its lifetime.
# Returns {counts} or {counts, values}.
_COUNT_AND_GET = """
local n = tonumber(ARGV[1])
local counts = {}
for i = 1, n do
  local count = redis.call('INCR', KEYS[i])
  if count == 1 then redis.call('EXPIRE', KEYS[i], ARGV[2 * i + 1]) end
  counts[i] = count
  if count > tonumber(ARGV[2 * i]) then return {counts} end
end
local started = 2 * n + 2
for j = 1, tonumber(ARGV[started]) do
  local at = started + 3 * j - 2
  redis.call('SET', KEYS[n + tonumber(ARGV[at])], ARGV[at + 1], 'NX', 'EX', ARGV[at + 2])
end
if #KEYS == n then return {counts, {}} end
return {counts, redis.call('MGET', unpack(KEYS, n + 1))}
"""
# django-ratelimit's counters (RATELIMIT_CACHE_PREFIX), as they appear in a made cache key.
RATE_LIMIT_KEY_MARK = ":rl:"


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}
        self._scripts = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client

    @_degrade(ValueError)
    def incr(self, key, delta):
        """One round trip, where Django's client makes two (EXISTS, then INCRBY): the rate limits count every
        instance-facing request, so this is on the hot path. Same contract: ValueError for a missing key."""
        counted = getattr(_counted, "value", None)
        if counted is not None and counted[0] == key:  # counted by the `add` just before (see `add`)
            _counted.value = None
            return counted[1]
        client = self.get_client(key, write=True)
        value = self._script(client, _INCR_EXISTING)(keys=[key], args=[delta])
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value

    @_degrade(bool)
    def add(self, key, value, timeout):
        """For django-ratelimit's counters, count at once: its `add(key, 1)` then `incr(key)` is two round trips per
        limit, on every instance-facing request. Here `add` increments (creating the key with its expiry), answers
        True when it created the key, and leaves the count for the `incr` that follows in this thread. Any other
        key: Django's add."""
        if RATE_LIMIT_KEY_MARK not in key or type(value) is not int or value < 1:
            return RedisCacheClient.add(self, key, value, timeout)
        client = self.get_client(key, write=True)
        count = self._script(client, _COUNT)(keys=[key], args=[value, max(int(timeout or 0), 1)])
        if count == value:
            return True
        _counted.value = (key, count)
        return False

    def count_and_get_many(self, counters, keys, started=()):
        """Rate-limit counters counted in order (each as `add` counts it), each of `started` (key, value, lifetime:
        a key among `keys`) set where it is missing (as `add` sets it), and `keys` read, in one round trip: one
        script, which stops at the first counter over its limit and then sets and reads nothing. ([count or None,
        …], {key: value}): the counts made (None for those not reached), and the values found and readable (a
        started key's own value when it was missing). With Redis away: all None, nothing found (the limits fail
        open, the reads miss)."""
        try:
            client = self.get_client(counters[0][0] if counters else None, write=True)
            arguments = [len(counters)]
            for _key, limit, timeout in counters:
                arguments += [limit, max(int(timeout or 0), 1)]
            arguments.append(len(started))
            for key, value, timeout in started:
                arguments += [keys.index(key) + 1, self._serializer.dumps(value), max(int(timeout or 0), 1)]
            reply = self._script(client, _COUNT_AND_GET)(keys=[key for key, _, _ in counters] + keys, args=arguments)
        except RedisError as error:
            if _strict.get():
                raise CacheUnavailable(f"Redis is unavailable: {error}") from error
            _warn(error)
            return [None] * len(counters), {}
        counts, values = reply[0], reply[1] if len(reply) > 1 else []
        counts = [*counts, *[None] * (len(counters) - len(counts))]
        return counts, self._readable(zip(keys, values, strict=False))

    def _readable(self, pairs) -> dict:
        """{key: value} of the values found and readable: one this cache did not write is a miss (counted)."""
        found = {}
        for key, value in pairs:
            if value is None:
                continue
            try:
                found[key] = self._serializer.loads(value)
            except UnreadableCacheValue:
                cache_value_rejected("unreadable", key)
        return found

    def _script(self, client, source):
        script = self._scripts.get((id(client), source))
        if script is None:
            script = self._scripts[(id(client), source)] = client.register_script(source)
        return script

    set = _degrade(bool)(RedisCacheClient.set)
    touch = _degrade(bool)(RedisCacheClient.touch)
    delete = _degrade(bool)(RedisCacheClient.delete)
    has_key = _degrade(bool)(RedisCacheClient.has_key)

    @_degrade(dict)
    def get_many(self, keys):
        client = self.get_client(None)
        return self._readable(zip(keys, client.mget(keys), strict=True))

    set_many = _degrade(list)(RedisCacheClient.set_many)
    delete_many = _degrade(type(None))(RedisCacheClient.delete_many)

    def get(self, key, default):
        try:
            return super().get(key, default)
        except RedisError as error:
            _warn(error)
            return default
        except UnreadableCacheValue:
            cache_value_rejected("unreadable", key)
            return default


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        # Never pickle: the settings name the serializer, and a cache built without them gets it too.
        params = {**params, "OPTIONS": {"serializer": PlainSerializer, **params.get("OPTIONS", {})}}
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient

    def count_and_get_many(
        self, counters: list[tuple[str, int, int]], keys: list[str], started: list[tuple[str, object, int]] = ()
    ):
        """([count, …], {key: value}): each (counter key, limit, lifetime) counted in order as `add` then `incr`
        count it, stopping at the first over its limit, then each of `started` (key, value, lifetime; a key among
        `keys`) set as `add` sets it, and `keys` read as `get_many` reads them (only when every count is within its
        limit), in one round trip (the token sync's address and license-key limits, its cached state and the
        state's generation, started where there is none)."""
        made = {self.make_key(key): key for key in keys}  # not validated: memcached's limits (Django's only check)
        counted = [(self.make_key(key), limit, timeout) for key, limit, timeout in counters]  # do not apply to Redis
        start = [(self.make_key(key), value, timeout) for key, value, timeout in started]
        counts, found = self._cache.count_and_get_many(counted, list(made), start)
        return counts, {made[key]: value for key, value in found.items()}
