"""Issue 23, part 1: nothing read from the cache runs code or is trusted unverified.

Whoever can write to Redis plants values under the sync-state keys (`issuer:sync:*`), the key set's key and the
counters: a pickle never runs (its `__reduce__` would create a file), a forged, moved, rotated-out or expired value
is a miss, and the sync and the JWKS keep answering what the database says."""

import pathlib
import pickle
import time

import jwt
import orjson
import pytest
from django.core.cache import cache
from prometheus_client import REGISTRY

from config.signed_cache import HEADER_SIZE, signed_value_seal
from issuer.keys import selectors
from issuer.keys.selectors import KEYSET_CACHE_KEY
from issuer.sync_state.store import sync_state_by_license_key, sync_state_cache_keys
from subscriptions.license_keys import license_key_digest
from subscriptions.services import add_on_purchase_cancel
from tests.helpers import redis_only, sync

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def shared_cache(settings):
    """Tests run in one process, so the local-memory cache behaves as a shared one here."""
    settings.CACHE_IS_SHARED = True


class Planted:
    """What an attacker stores: unpickling it creates `path`."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.path),)


def planted_raw(key: str, value: bytes) -> None:
    """Written straight into Redis under the cache's own key, as anybody with the Redis password could."""
    cache._cache.get_client(write=True).set(cache.make_and_validate_key(key), value)


def as_another_worker() -> None:
    """Nothing memoized in this process: the next public request reads the key set from the cache."""
    selectors._memo.clear()


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("issuer_cache_values_rejected_total", {"reason": reason}) or 0.0


def token_of(body) -> dict:
    token = body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    return jwt.decode(token, options={"verify_signature": False})


def state_keys(license_key: str):
    return sync_state_cache_keys(license_key_digest(license_key))


# --- a pickle planted in Redis never runs ----------------------------------------------------------------------


@redis_only
def test_a_pickle_under_a_sync_state_key_never_runs_and_is_a_miss(client, activated, tmp_path):
    _, key = activated
    _, first = sync(client, key)  # mints, and caches the state
    marker = tmp_path / "pwned-sync"
    before = rejected("unreadable")
    planted_raw(state_keys(key).state, pickle.dumps(Planted(marker)))
    response, body = sync(client, key)
    assert not marker.exists(), "a pickle from Redis was unpickled"
    assert response.status_code == 200 and token_of(body)["scopes"] == token_of(first)["scopes"]
    assert rejected("unreadable") == before + 1
    assert cache.get(state_keys(key).state)[:3] == b"sc1", "and the state we read from the database replaced it"


@redis_only
def test_a_pickle_under_the_key_set_key_never_runs_and_the_jwks_still_answers(client, signing_key, tmp_path):
    genuine = client.get("/oauth/discovery/keys")
    marker = tmp_path / "pwned-jwks"
    planted_raw(KEYSET_CACHE_KEY, pickle.dumps(Planted(marker)))
    as_another_worker()
    response = client.get("/oauth/discovery/keys")
    assert not marker.exists(), "a pickle from Redis was unpickled on an anonymous JWKS fetch"
    assert response.status_code == 200
    assert response.content == genuine.content and response["ETag"] == genuine["ETag"]
    assert [key["kid"] for key in orjson.loads(response.content)["keys"]] == [signing_key.kid]


@redis_only
def test_the_generation_and_writer_counters_are_never_unpickled(client, activated, tmp_path):
    _, key = activated
    sync(client, key)
    keys = state_keys(key)
    for name in ("generation", "writers"):
        marker = tmp_path / f"pwned-{name}"
        planted_raw(getattr(keys, name), pickle.dumps(Planted(marker)))
        response, body = sync(client, key)
        assert not marker.exists(), f"the {name} counter was unpickled"
        assert response.status_code == 200 and token_of(body)["sub"]
        cache.delete(getattr(keys, name))


@redis_only
def test_counters_that_are_not_integers_only_turn_the_cache_off(client, activated):
    _, key = activated
    sync(client, key)
    keys = state_keys(key)
    for name, value in (("writers", b'"x"'), ("generation", b"[1]"), ("generation", b"1.5")):
        cache.delete_many([keys.state, keys.writers])
        planted_raw(getattr(keys, name), value)
        response, body = sync(client, key)
        assert response.status_code == 200 and token_of(body)["sub"]
        assert sync_state_by_license_key(key).generation is None, "nothing cached against a counter we did not write"
        assert cache.get(keys.state) is None


def test_the_redis_cache_never_unpickles(settings, monkeypatch, tmp_path):
    """The alias's serializer is ours (Django's RedisSerializer would unpickle any value that is not an int), and a
    cache built without the option gets it too."""
    from config.cache import RedisCache
    from config.signed_cache import PlainSerializer, UnreadableCacheValue

    if settings.CACHE_IS_SHARED and "RedisCache" in settings.CACHES["default"]["BACKEND"]:
        assert settings.CACHES["default"]["OPTIONS"]["serializer"] == "config.signed_cache.PlainSerializer"
    assert isinstance(RedisCache("redis://127.0.0.1:9/0", {})._cache._serializer, PlainSerializer)
    monkeypatch.setattr(pickle, "loads", lambda *args, **kwargs: pytest.fail("pickle.loads was called"))
    serializer = PlainSerializer()
    marker = tmp_path / "pwned"
    with pytest.raises(UnreadableCacheValue):
        serializer.loads(pickle.dumps(Planted(marker)))
    assert not marker.exists()
    for value in (7, -3, "1", b"\x80\x05raw", [1.5, 2.5], {"a": [None, True]}):
        stored = serializer.dumps(value)
        assert serializer.loads(stored if isinstance(stored, bytes) else str(stored).encode()) == value
    assert serializer.dumps(7) == 7, "an int stays a Redis integer (INCR, the rate-limit scripts)"
    with pytest.raises(TypeError):
        serializer.dumps(object())  # not plain data: a bug, never pickled


# --- plain data that we did not sign, or not for this key, generation or time, is a miss ---------------------


def test_a_tampered_state_is_a_miss(client, activated):
    """The add-on cancelled, a forger un-cancels it in the cached plain data: the sync does not grant its scopes."""
    instance, key = activated
    add_on_purchase_cancel(instance.subscription.add_on_purchases.get())
    _, body = sync(client, key)  # mints without the add-on's scopes, and caches the state with that token
    granted = set(token_of(body)["scopes"])
    assert "troubleshoot_job" not in granted
    keys = state_keys(key)
    sealed = cache.get(keys.state)
    plain = orjson.loads(sealed[HEADER_SIZE:])
    from issuer.sync_state.plain import PURCHASE_FIELDS

    cancelled = [name for name, _ in PURCHASE_FIELDS].index("cancelled_at")
    assert plain[4][0][cancelled] is not None
    plain[4][0][cancelled] = None  # the purchase active again ...
    plain[5] = None  # ... and no stored token, so the sync mints from these inputs
    before = rejected("forged")
    cache.set(keys.state, sealed[:HEADER_SIZE] + orjson.dumps(plain), 900)  # the header (and HMAC) kept
    _, body = sync(client, key)
    assert set(token_of(body)["scopes"]) == granted
    assert rejected("forged") == before + 1


def test_plain_json_written_by_someone_else_is_a_miss(client, activated):
    _, key = activated
    _, first = sync(client, key)
    keys = state_keys(key)
    before = rejected("forged")
    cache.set(keys.state, ["whatever", {"scopes": ["everything"]}], 900)
    _, body = sync(client, key)
    assert token_of(body)["scopes"] == token_of(first)["scopes"]
    assert rejected("forged") == before + 1


def test_a_state_moved_to_another_license_key_is_a_miss(client, activated, enterprise_subscription):
    """A genuine sealed state copied under another key (or generation) does not verify there."""
    _, key = activated
    sync(client, key)
    sealed = cache.get(state_keys(key).state)
    other = "x" * 43
    other_keys = state_keys(other)
    generation = cache.get(state_keys(key).generation)
    cache.set(other_keys.generation, generation, 900)
    cache.set(other_keys.state, sealed, 900)
    before = rejected("forged")
    assert sync_state_by_license_key(other) is None
    assert rejected("forged") == before + 1


def test_a_state_signed_with_a_rotated_out_key_is_a_plain_miss(client, activated, settings, caplog):
    _, key = activated
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "old-secret-" + "o" * 40, []
    _, first = sync(client, key)
    sync(client, key)  # the state (with its newest token) sealed with the old key
    generation = sync_state_by_license_key(key).generation
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-secret-" + "n" * 40, ["old-secret-" + "o" * 40]
    assert sync_state_by_license_key(key).generation == generation, "a fallback key still verifies"
    settings.SECRET_KEY_FALLBACKS = []  # the old key dropped
    # The key set sealed with the old key would be a second unknown_key rejection whenever the sync outlives the
    # key set's one-second memo (a loaded machine): this test counts the state's alone.
    selectors.keyset_invalidate()
    before, forged = rejected("unknown_key"), rejected("forged")
    with caplog.at_level("WARNING", logger="config.signed_cache"):
        _, body = sync(client, key)
    assert token_of(body)["scopes"] == token_of(first)["scopes"]
    assert rejected("unknown_key") == before + 1 and rejected("forged") == forged
    assert not caplog.records, "a rotation is no alarm"


def test_an_expired_state_is_a_miss(client, activated):
    _, key = activated
    sync(client, key)
    sync(client, key)
    keys = state_keys(key)
    generation = cache.get(keys.generation)
    sealed = cache.get(keys.state)
    plain = orjson.loads(sealed[HEADER_SIZE:])
    expired = signed_value_seal(keys.state, plain, timeout=900, generation=generation, now=time.time() - 901)
    cache.set(keys.state, expired, 900)  # Redis would keep it: only the sealed expiry says it is over
    before = rejected("expired")
    assert sync_state_by_license_key(key).generation == generation
    assert rejected("expired") == before + 1
    cache.set(keys.state, sealed, 900)
    assert rejected("expired") == before + 1


def test_a_genuine_state_is_read_back_whole(client, activated, django_assert_num_queries):
    """What the database gave is what the cache gives back: every field of the instance, subscription, purchases
    and newest token, the subscription's activation code excepted (never cached; loaded if ever read)."""
    instance, key = activated
    sync(client, key)
    from_database = sync_state_by_license_key(key)
    with django_assert_num_queries(0):
        cached = sync_state_by_license_key(key)
        for obj, fresh in (
            (cached.instance, from_database.instance),
            (cached.instance.subscription, from_database.instance.subscription),
        ):
            for field in type(obj)._meta.concrete_fields:
                if field.attname != "activation_code":
                    assert getattr(obj, field.attname) == getattr(fresh, field.attname), field.attname
        purchases = list(cached.instance.subscription.add_on_purchases.all())
        assert [vars_of(p) for p in purchases] == [
            vars_of(p) for p in from_database.instance.subscription.add_on_purchases.all()
        ]
        assert cached.newest == from_database.newest and cached.instance._state.adding is False
    with django_assert_num_queries(1):
        assert cached.instance.subscription.activation_code == instance.subscription.activation_code
    with django_assert_num_queries(1):  # a query from the cached manager is still this subscription's
        assert list(cached.instance.subscription.add_on_purchases.active_on(dt_today())) == purchases


def vars_of(obj) -> dict:
    return {field.attname: getattr(obj, field.attname) for field in type(obj)._meta.concrete_fields}


def dt_today():
    import datetime as dt

    return dt.datetime.now(dt.UTC).date()


# --- the key set -------------------------------------------------------------------------------------------------


def test_a_forged_key_set_is_a_miss(client, signing_key):
    genuine = client.get("/oauth/discovery/keys")
    sealed = cache.get(KEYSET_CACHE_KEY)
    body, etag, active_kid, kids = orjson.loads(sealed[HEADER_SIZE:])
    forged = orjson.dumps({"keys": [{"kty": "RSA", "kid": "attacker", "n": "AQAB", "e": "AQAB"}]}).decode()
    as_another_worker()
    before = rejected("forged")
    cache.set(KEYSET_CACHE_KEY, sealed[:HEADER_SIZE] + orjson.dumps([forged, etag, "attacker", ["attacker"]]), 60)
    response = client.get("/oauth/discovery/keys")
    assert response.status_code == 200 and response.content == genuine.content
    assert rejected("forged") == before + 1
