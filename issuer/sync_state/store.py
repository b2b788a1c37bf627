"""What a token sync reads, cached per license key in the shared cache so a warm sync needs no query.

A `SyncState` holds the *inputs* (the instance, its subscription and add-on purchases, its newest stored token),
never a decision: entitlements and freshness are computed at each request, so dates and key rotations need no
invalidation. Every write to an input bumps a per-license-key generation counter (model signals in
`issuer.sync_state.receivers`, and the token services); a state is used only while its generation is current. A
reader that raced a writer therefore stores a state tagged with an old generation, which nobody uses.

Only with a shared cache (Redis): with per-process caches another process could not invalidate ours, so every
sync reads the database instead.

A cached state is plain data (`issuer.sync_state.plain`) sealed with an HMAC that binds its cache key, its
generation and its expiry (`config.signed_cache`): one that anybody else wrote, or that was written for another
license key or generation, is a miss, never trusted and never unpickled. The generation and writer counts are
Redis integers; a count that is not one is read as "a writer is at work" (the database answers, nothing is cached).
"""

import contextlib
import datetime as dt
import functools
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from config.cache import cache_strict
from config.limits import RateCount
from config.postgres import prepared_cursor
from config.signed_cache import signed_value_open, signed_value_seal
from issuer.conf import issuer_settings
from issuer.models import IssuedToken
from issuer.sync_state.plain import (
    INSTANCE_FIELDS,
    LAST_SYNC_FIELDS,
    PURCHASE_FIELDS,
    SCHEMA,
    SUBSCRIPTION_FIELDS,
    last_sync_attached,
    last_sync_values,
    model_rebuilt,
    model_values,
    purchases_attached,
)
from subscriptions.license_keys import license_key_digest, license_key_plausible
from subscriptions.models import AddOnPurchase, Instance, InstanceLastSync, Subscription
from subscriptions.selectors import instance_by_license_key

GENERATION_SECONDS = 86400  # outlives every cached state
# While any writer's transaction is open (its count above zero) states are neither served nor stored. Should a
# writer's release after commit be lost, the count expires after this long: no caching meanwhile, never stale.
WRITING_SECONDS = 300


# [SCHEMA, the instance, its last sync, the subscription, the add-on purchases, the newest token]
PLAIN_SECTIONS = 6


class SyncStateCacheKeys(NamedTuple):
    state: str  # the cached SyncState
    generation: str  # the tag a state must carry to be served
    writers: str  # how many writers' transactions are open on this license key


@dataclass(frozen=True)
class NewestToken:
    kid: str
    fingerprint: str
    expires_at: dt.datetime
    ciphertext: bytes
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]


@dataclass(frozen=True)
class SyncState:
    instance: Instance  # subscription attached, add-on purchases prefetched
    newest: NewestToken | None
    generation: int | None  # None: not to be cached (no shared cache, a writer is at work, or Redis is away)
    cached: bool = False  # read from the shared cache as it is: storing it again would write the same


def sync_state_cache_keys(digest: str) -> SyncStateCacheKeys:
    """The shared-cache keys of a license key's digest (v3 of the state: plain data with an HMAC, no pickle, the last
    sync in a section of its own; a v2 state left by the code before is never read)."""
    return SyncStateCacheKeys(
        f"issuer:sync:v3:{digest}", f"issuer:sync-generation:{digest}", f"issuer:sync-writers:{digest}"
    )


def sync_state_plain(state: SyncState) -> list:
    """The state as plain data (what orjson writes); its generation is bound by the seal, not stored here."""
    instance = state.instance
    subscription = instance.subscription
    purchases = subscription._prefetched_objects_cache["add_on_purchases"]
    newest = state.newest
    return [
        SCHEMA,
        model_values(instance, INSTANCE_FIELDS),
        last_sync_values(instance),
        model_values(subscription, SUBSCRIPTION_FIELDS),
        [model_values(purchase, PURCHASE_FIELDS) for purchase in purchases],
        None
        if newest is None
        else [
            newest.kid,
            newest.fingerprint,
            newest.expires_at,
            newest.ciphertext.decode("latin-1"),
            newest.scopes,
            newest.audiences,
        ],
    ]


def sync_state_from_plain(plain, generation: int) -> SyncState | None:
    """The state `sync_state_plain` wrote (read only after its HMAC was verified); None when written by code with
    other models or another layout (a deploy in between)."""
    if not isinstance(plain, list) or len(plain) != PLAIN_SECTIONS or plain[0] != SCHEMA:
        return None
    _, instance_values, last_sync, subscription_values, purchase_rows, newest = plain
    instance = model_rebuilt(Instance, INSTANCE_FIELDS, instance_values)
    last_sync_attached(instance, last_sync)
    subscription = model_rebuilt(Subscription, SUBSCRIPTION_FIELDS, subscription_values)
    purchases_attached(subscription, [model_rebuilt(AddOnPurchase, PURCHASE_FIELDS, row) for row in purchase_rows])
    instance._state.fields_cache["subscription"] = subscription
    subscription._state.fields_cache["instance"] = instance
    if newest is not None:
        kid, fingerprint, expires_at, ciphertext, scopes, audiences = newest
        newest = NewestToken(
            kid,
            fingerprint,
            dt.datetime.fromisoformat(expires_at),
            ciphertext.encode("latin-1"),
            tuple(scopes),
            tuple(audiences),
        )
    return SyncState(instance=instance, newest=newest, generation=generation, cached=True)


def sync_state_enabled() -> bool:
    return settings.CACHE_IS_SHARED and issuer_settings.SYNC_STATE_CACHE_SECONDS > 0


def _still_valid_since() -> dt.datetime:
    """The oldest issue time of a token that may still be valid: one lifetime ago. The newest stored token is looked
    for only after it, so PostgreSQL prunes, at the start of each execution, the monthly partitions of token records
    that end before it: it reads this month's (and last month's in the first days), the two made ahead and the
    default (both empty while the partition job keeps up), not every month the records are kept (400 days: 14
    partitions, each an index probe into the instance's records).
    A token older than that has expired (`token_is_fresh` would refuse it): after a lifetime was shortened, one
    issued under the longer lifetime is at most minted again once."""
    return timezone.now() - issuer_settings.token_ttl


def _newest_token(instance: Instance) -> NewestToken | None:
    row = (
        IssuedToken.objects.filter(instance=instance, token_encrypted__isnull=False, issued_at__gt=_still_valid_since())
        .order_by("-issued_at")
        .values_list("kid", "fingerprint", "expires_at", "token_encrypted", "scopes", "audiences")
        .first()
    )
    if row is None:
        return None
    kid, fingerprint, expires_at, ciphertext, scopes, audiences = row
    return NewestToken(kid, fingerprint, expires_at, bytes(ciphertext), tuple(scopes), tuple(audiences))


def sync_state_by_license_key(license_key: str | None) -> SyncState | None:
    """The sync inputs of the instance holding `license_key`; None for an unknown or wrong key (same answer). A
    state read from the database is not stored here: the request stores it once, at its end (`sync_state_settle`)."""
    return _state(license_key, None)[0]


def sync_state_counted(license_key: str | None, counters: list[RateCount]) -> tuple[SyncState | None, list[int | None]]:
    """The state and the request's counts against its rate limits (`counters`, in order: the client address, then the
    license key), made in one round trip with the state's read on Redis (the counts would otherwise be a round trip
    each, on every sync). Counting stops at the first count over its limit, and then nothing is read: the state is
    None, and the caller refuses by the counts."""
    if not counters:
        return sync_state_by_license_key(license_key), []
    return _state(license_key, counters)


def _over(counters: list[RateCount], counts: list[int | None]) -> bool:
    return any(counter.refusal(count) is not None for counter, count in zip(counters, counts, strict=True))


def _counted_alone(counters: list[RateCount]) -> list[int | None]:
    """The counts in a round trip each (nothing to read with them, or no Redis), stopping at the first over."""
    counts = [None] * len(counters)
    for index, counter in enumerate(counters):
        counts[index] = counter.count_alone()
        if counter.refusal(counts[index]) is not None:
            break
    return counts


def _state(license_key: str | None, counters: list[RateCount] | None) -> tuple[SyncState | None, list[int | None]]:
    counters = counters or []
    counts = [None] * len(counters)
    if not license_key_plausible(license_key):
        return None, _counted_alone(counters)
    generation = None
    # Redis (config.cache) counts and reads in one round trip; another shared cache counts first, then reads.
    counted_read = getattr(cache, "count_and_get_many", None) if sync_state_enabled() else None
    if counters and counted_read is None:
        counts = _counted_alone(counters)
        if _over(counters, counts):
            return None, counts
    if sync_state_enabled():
        digest = license_key_digest(license_key)
        keys = sync_state_cache_keys(digest)
        fresh = time.time_ns()  # the generation this read starts, should there be none
        if counters and counted_read is not None:  # the generation started in the same round trip
            counted = [(c.key, c.limit, c.timeout) for c in counters]
            counts, found = counted_read(counted, list(keys), [(keys.generation, fresh, GENERATION_SECONDS)])
            if _over(counters, counts):
                return None, counts
        else:
            found = cache.get_many(list(keys))
        sealed, generation, writers = found.get(keys.state), found.get(keys.generation), found.get(keys.writers, 0)
        state = None
        if type(writers) is not int or writers > 0:  # a writer is at work: read the database, cache nothing
            generation = None
        elif generation is None:
            generation = _generation_started(keys.generation, fresh)
        elif type(generation) is not int:  # not a generation we wrote: nothing can be verified against it
            generation = None
        elif generation == fresh:  # started just now: nothing is sealed under it yet
            pass
        elif sealed is not None:
            plain = signed_value_open(keys.state, sealed, generation=generation)
            state = None if plain is None else sync_state_from_plain(plain, generation)
        if state is not None and hmac.compare_digest(state.instance.license_key_digest or "", digest):
            return state, counts
    found = _inputs_read(license_key)
    if found is None:
        return None, counts
    instance, newest = found
    return SyncState(instance=instance, newest=newest, generation=generation), counts


def _inputs_read(license_key: str) -> tuple[Instance, NewestToken | None] | None:
    """The instance holding `license_key` (subscription attached, purchases prefetched) and its newest stored token,
    from the database. On PostgreSQL in one query, the rows as the cache's plain data (`sync_state_from_plain`
    rebuilds them): a sync whose state is not cached, the hourly sync of a fleet, makes one round trip for its
    inputs where it made three."""
    if connection.vendor != "postgresql":
        instance = instance_by_license_key(license_key, with_purchases=True)
        return None if instance is None else (instance, _newest_token(instance))
    digest = license_key_digest(license_key)
    with prepared_cursor() as cursor:
        cursor.execute(_inputs_query(), [_still_valid_since(), digest])
        row = cursor.fetchone()
    if row is None:
        return None
    plain, kid, fingerprint, expires_at, ciphertext, scopes, audiences = row
    plain = orjson.loads(plain) if isinstance(plain, str) else plain
    state = sync_state_from_plain([SCHEMA, *plain, None], generation=None)
    if not hmac.compare_digest(state.instance.license_key_digest or "", digest):
        return None
    newest = None
    if kid is not None:
        scopes, audiences = (orjson.loads(v) if isinstance(v, str) else v for v in (scopes, audiences))
        newest = NewestToken(kid, fingerprint, expires_at, bytes(ciphertext), tuple(scopes), tuple(audiences))
    return state.instance, newest


def _columns(model, fields, alias: str) -> str:
    """`fields` (plain.py's lists) of `model` as SQL, quoted, in their order: the model's own column names."""
    columns = {field.attname: field.column for field in model._meta.concrete_fields}
    return ", ".join(f"{alias}.{connection.ops.quote_name(columns[name])}" for name, _ in fields)


@functools.cache
def _inputs_query() -> str:
    instance, subscription = Instance._meta.db_table, Subscription._meta.db_table
    last_sync = InstanceLastSync._meta.db_table
    purchase, token = AddOnPurchase._meta.db_table, IssuedToken._meta.db_table
    return (  # the models' own names; the oldest issue time and the digest are parameters
        "SELECT json_build_array("  # noqa: S608
        f"json_build_array({_columns(Instance, INSTANCE_FIELDS, 'i')}), "
        "CASE WHEN l.instance_id IS NULL THEN NULL "
        f"ELSE json_build_array({_columns(InstanceLastSync, LAST_SYNC_FIELDS, 'l')}) END, "
        f"json_build_array({_columns(Subscription, SUBSCRIPTION_FIELDS, 's')}), "
        f"(SELECT coalesce(json_agg(json_build_array({_columns(AddOnPurchase, PURCHASE_FIELDS, 'p')}) "
        "ORDER BY p.started_on, p.id),"  # the model's ordering, as a prefetch orders them
        f" '[]') FROM {purchase} p WHERE p.subscription_id = s.id)), "
        "t.kid, t.fingerprint, t.expires_at, t.token_encrypted, t.scopes, t.audiences "
        f"FROM {instance} i JOIN {subscription} s ON s.id = i.subscription_id "
        f"LEFT JOIN {last_sync} l ON l.instance_id = i.id "
        "LEFT JOIN LATERAL (SELECT kid, fingerprint, expires_at, token_encrypted, scopes, audiences "
        f"FROM {token} WHERE instance_id = i.id AND token_encrypted IS NOT NULL AND issued_at > %s "
        "ORDER BY issued_at DESC LIMIT 1) t "
        "ON true WHERE i.license_key_digest = %s"
    )


def _generation_started(generation_key: str, fresh: int):
    """A new generation where there is none (first use, expiry, a lost release): `fresh`, the time in nanoseconds
    when the read began, never a value an older state carries. None when the cache cannot say (Redis away): the state
    is then not cached. On Redis, the sync's own round trip (its counts and reads) starts it instead."""
    if cache.add(generation_key, fresh, GENERATION_SECONDS):
        return fresh
    found = cache.get(generation_key)
    return found if type(found) is int else None


def _store(state: SyncState) -> None:
    if sync_state_enabled() and state.generation is not None:
        key = sync_state_cache_keys(state.instance.license_key_digest).state
        seconds = issuer_settings.SYNC_STATE_CACHE_SECONDS
        cache.set(
            key, signed_value_seal(key, sync_state_plain(state), timeout=seconds, generation=state.generation), seconds
        )


def sync_state_expected_back(previous_sync_at: dt.datetime | None, at: dt.datetime) -> bool:
    """Whether a state stored now is likely to be read before it expires: the instance's previous sync came within
    the cache's lifetime (or it never synced: activation is followed by syncs). An instance that syncs hourly, the
    fleet, comes back after a 900 s state has expired: storing it would be a write nobody reads."""
    if previous_sync_at is None:
        return True
    return at - previous_sync_at < dt.timedelta(seconds=issuer_settings.SYNC_STATE_CACHE_SECONDS)


def sync_state_settle(
    state: SyncState, *, changed: bool = False, minted: IssuedToken | None = None, expected_back: bool = True
) -> None:
    """The one cache write of a request that read a state: stores it when the cache did not hold it (read from the
    database), when the request `changed` it in a way that is not an entitlement input (the last sync, the last
    error), or with the token it `minted` as the newest; nothing when the cache already holds it as it is. Stored
    with the generation it was read under, so a write to an input since then still wins.

    A state read from the database is not stored when nobody is `expected_back` to read it
    (`sync_state_expected_back`): the next request reads the database again, as it would after expiry. A cached
    state is always rewritten when it changed, so the cache never holds an older token than the database."""
    if not state.cached and not expected_back:
        return
    if minted is not None:
        newest = NewestToken(
            kid=minted.kid,
            fingerprint=minted.fingerprint,
            expires_at=minted.expires_at,
            ciphertext=bytes(minted.token_encrypted),
            scopes=tuple(minted.scopes),
            audiences=tuple(minted.audiences),
        )
        state = SyncState(instance=state.instance, newest=newest, generation=state.generation)
    elif state.cached and not changed:
        return
    _store(state)


def sync_state_forget(digests: Iterable[str | None]) -> None:
    """After tokens were minted outside a sync (refresh job, by hand): drop the cached states in one round trip.

    No generation bump is needed: a token is not an entitlement input, and a state that still names an older token
    only makes the next sync find that token not fresh (rotated key, near expiry) and mint again, or hand out the
    older token, which is valid and carries the same entitlements."""
    if sync_state_enabled():
        cache.delete_many([sync_state_cache_keys(digest).state for digest in digests if digest])


def sync_state_invalidate(digests: Iterable[str | None]) -> None:
    """Drops the cached states of these license keys, failing closed: written strictly (CacheUnavailable rolls the
    writer's transaction back), never lost in silence.

    Every call starts a new generation, so a state read before it never matches again. Inside a transaction the
    key's writer count also stays raised until commit (a reader in between reads the old rows and must not cache
    them); after commit it is lowered and the generation renewed once more.
    """
    if not sync_state_enabled():
        return
    keys = [sync_state_cache_keys(digest) for digest in digests if digest]
    if not keys:
        return
    in_transaction = transaction.get_connection().in_atomic_block
    with cache_strict():
        if in_transaction:
            for key in keys:
                cache.add(key.writers, 0, WRITING_SECONDS)
                cache.incr(key.writers)
                cache.touch(key.writers, WRITING_SECONDS)
        _generations_renewed(keys)
        cache.delete_many([key.state for key in keys])
    if in_transaction:
        transaction.on_commit(lambda: _writers_done(keys))


def _generations_renewed(keys: list[SyncStateCacheKeys]) -> None:
    fresh = time.time_ns()
    cache.set_many({key.generation: fresh for key in keys}, GENERATION_SECONDS)


def _writers_done(keys: list[SyncStateCacheKeys]) -> None:
    """After commit. Lost to a Redis blip, the count expires after WRITING_SECONDS: uncached meanwhile, not stale."""
    for key in keys:
        with contextlib.suppress(ValueError):  # expired meanwhile (or Redis away): nothing to lower
            cache.decr(key.writers)
    _generations_renewed(keys)


def sync_state_invalidate_subscription(subscription_id: int | None) -> None:
    if subscription_id is not None and sync_state_enabled():
        sync_state_invalidate(
            Instance.objects.filter(subscription_id=subscription_id).values_list("license_key_digest", flat=True)
        )
