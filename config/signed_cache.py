"""Cache values that cannot be forged: nothing read from the shared cache runs code or is trusted unverified.

Whoever can write to Redis must not be able to run code in a web worker, or make us serve what we never wrote
(a scope never granted, a public key that is not ours). Two layers:

- `PlainSerializer`, the Redis cache's serializer (`CACHES["default"]["OPTIONS"]["serializer"]`), never unpickles:
  an int is stored as Redis's own integer (so INCR, the rate-limit counters and the scripts keep working), bytes
  as they are behind a one-byte tag, anything else as JSON (orjson). A stored value that is none of these (a
  planted pickle) is refused (`UnreadableCacheValue`), which `config.cache` reads as a miss, logged and counted.
- `signed_value_seal` / `signed_value_open` (and `signed_cache_set` / `signed_cache_get` around them): plain data
  (orjson) with an HMAC-SHA256 that binds the cache key, a generation and an expiry, verified before anything is
  decoded. A value that fails (forged, moved to another key, of another generation, expired, or signed with a key
  no longer in the list) is a miss, logged and counted (`issuer_cache_values_rejected_total{reason}`), never an
  error: the caller rebuilds it from the database.

The HMAC keys are derived (HKDF-SHA256) from `SECRET_KEY` (the one that signs) and `SECRET_KEY_FALLBACKS` (which
also verify), Django's own rotation list. Rotating turns entries signed with a dropped key into plain misses
(`unknown_key`, logged at debug level), not alarms: only a bad HMAC under a key we hold (`forged`) or a value no
serializer of ours wrote (`unreadable`) is logged as a warning.

What a Redis writer can still do is in README's security model: replay a value we signed for that same key and
generation within its lifetime, reset or inflate counters (the rate limits, a generation), and deny service
(delete, fill or garble values: every one of them is then a miss and read from the database).
"""

import functools
import hashlib
import hmac
import logging
import struct
import time

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.cache import cache as default_cache
from prometheus_client import Counter

logger = logging.getLogger(__name__)

rejected = Counter(
    "issuer_cache_values_rejected_total",
    "Cache values refused and read as misses (unreadable, forged, unknown_key, stale, expired)",
    ["reason"],
)
# A warning at most this often per reason: whoever writes to Redis must not flood the logs either.
WARNING_INTERVAL = 10.0
_last_warning: dict[str, float] = {}
WARNED_REASONS = frozenset({"unreadable", "forged"})


def cache_value_rejected(reason: str, cache_key: str) -> None:
    """Counts (and, for what only tampering explains, logs) a value read as a miss."""
    rejected.labels(reason=reason).inc()
    if reason not in WARNED_REASONS:
        logger.debug("cache value refused, read as a miss", extra={"reason": reason, "cache_key": cache_key})
        return
    now = time.monotonic()
    if now - _last_warning.get(reason, -WARNING_INTERVAL) >= WARNING_INTERVAL:
        _last_warning[reason] = now
        logger.warning(
            "cache value refused, read as a miss (was it written by someone else?)",
            extra={"reason": reason, "cache_key": cache_key},
        )


class UnreadableCacheValue(ValueError):
    """A stored value that `PlainSerializer` did not write (a pickle, garbage): the cache reads it as a miss."""


class PlainSerializer:
    """Django's `RedisSerializer` without pickle: int as Redis integers, bytes tagged, the rest as JSON."""

    BYTES_TAG = b"\x00"  # neither JSON nor an integer starts with a NUL byte

    def dumps(self, obj):
        if type(obj) is int:  # as Django's: a Redis integer, for INCR/DECR (never a bool)
            return obj
        if type(obj) is bytes:
            return self.BYTES_TAG + obj
        return orjson.dumps(obj)  # anything that is not plain data raises (TypeError): a bug, not a cache miss

    def loads(self, data):
        if data[:1] == self.BYTES_TAG:
            return bytes(data[1:])
        try:
            return int(data)
        except ValueError:
            pass
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UnreadableCacheValue("not a value this cache wrote") from None


# --- signed values -------------------------------------------------------------------------------------------

MAGIC = b"sc1"
# magic, key id (which of our keys signed), HMAC-SHA256, expiry (epoch seconds), generation; then the payload.
_HEADER = struct.Struct(">3s8s32sQq")
HEADER_SIZE = _HEADER.size
_SIGNED = struct.Struct(">QqH")  # what the HMAC covers before the key and the payload: expiry, generation, len(key)
_INFO = b"issuer signed cache values v1"


class HmacKey:
    """An HMAC-SHA256 key with its inner and outer hash states computed once (RFC 2104): a MAC is then two copies
    and three updates, with no HMAC context set up per value, and no copy of the payload to prepend the header."""

    __slots__ = ("key_id", "_inner", "_outer")

    def __init__(self, key: bytes):
        self.key_id = hmac.digest(key, b"key id", "sha256")[:8]
        padded = key.ljust(64, b"\0")  # (HKDF gives 32 bytes: never more than SHA-256's block)
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in padded))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in padded))

    def mac(self, cache_key: bytes, expires: int, generation: int, payload: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(_SIGNED.pack(expires, generation, len(cache_key)))
        inner.update(cache_key)
        inner.update(payload)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


@functools.lru_cache(maxsize=4)
def _derived_keys(secrets: tuple[str, ...]) -> tuple[HmacKey, ...]:
    """The HMAC key of each secret, the signing one first."""
    return tuple(
        HmacKey(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode()))
        for secret in secrets
    )


def signed_cache_keys() -> tuple[HmacKey, ...]:
    """The HMAC keys: from SECRET_KEY (signs) and SECRET_KEY_FALLBACKS (verify too), each through HKDF."""
    return _derived_keys((settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS))


_verifying: list = [None, None, {}]  # the SECRET_KEY and SECRET_KEY_FALLBACKS objects, and {key id: key} of them


def _verifying_keys() -> dict[bytes, HmacKey]:
    """{key id: key}, rebuilt only when the settings' objects change (a sync reads it: no tuple, no hashing)."""
    secret, fallbacks = settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS
    if _verifying[0] is not secret or _verifying[1] is not fallbacks:
        _verifying[:] = [secret, fallbacks, {key.key_id: key for key in signed_cache_keys()}]
    return _verifying[2]


def signed_value_seal(cache_key: str, value, *, timeout: int, generation: int = 0, now: float | None = None) -> bytes:
    """`value` (plain data: what orjson writes, never None) as bytes that only `signed_value_open` with the same
    cache key and generation reads back, for `timeout` seconds."""
    if value is None:
        raise ValueError("None cannot be told from a miss: not cached")
    if not timeout or timeout < 0:
        raise ValueError("a signed value needs a positive lifetime")
    key = signed_cache_keys()[0]
    expires = int((time.time() if now is None else now) + timeout)
    payload = orjson.dumps(value)
    mac = key.mac(cache_key.encode(), expires, generation, payload)
    return _HEADER.pack(MAGIC, key.key_id, mac, expires, generation) + payload


def signed_value_open(cache_key: str, blob, *, generation: int = 0, now: float | None = None):
    """The plain data sealed under `cache_key` and `generation`, or None (a miss, counted): nothing is decoded
    before its HMAC is verified."""
    if blob is None:
        return None
    if type(blob) is not bytes or len(blob) < HEADER_SIZE or blob[:3] != MAGIC:
        cache_value_rejected("forged", cache_key)
        return None
    _, key_id, mac, expires, sealed_generation = _HEADER.unpack_from(blob)
    key = _verifying_keys().get(key_id)
    if key is None:
        cache_value_rejected("unknown_key", cache_key)  # signed with a key rotated out since: a plain miss
        return None
    payload = blob[HEADER_SIZE:]
    if not hmac.compare_digest(mac, key.mac(cache_key.encode(), expires, sealed_generation, payload)):
        cache_value_rejected("forged", cache_key)
        return None
    if sealed_generation != generation:
        cache_value_rejected("stale", cache_key)
        return None
    if expires <= (time.time() if now is None else now):
        cache_value_rejected("expired", cache_key)
        return None
    return orjson.loads(payload)


def signed_cache_set(cache_key: str, value, timeout: int, *, generation: int = 0, cache=None) -> None:
    """Stores `value` sealed (see `signed_value_seal`), for `timeout` seconds in the cache as in its seal."""
    cache = cache or default_cache
    cache.set(cache_key, signed_value_seal(cache_key, value, timeout=timeout, generation=generation), timeout)


def signed_cache_get(cache_key: str, *, generation: int = 0, cache=None):
    """The value `signed_cache_set` stored under `cache_key` and `generation`, or None for a miss of any kind."""
    cache = cache or default_cache
    return signed_value_open(cache_key, cache.get(cache_key), generation=generation)
