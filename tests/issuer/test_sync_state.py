"""The sync-state cache: a warm sync reads no database, and every write to an input is seen at the next sync."""

import datetime as dt
import json
import uuid

import jwt
import pytest
import time_machine
from django.core.cache import cache
from django.db import connection

from config.signed_cache import signed_value_seal
from issuer.conf import issuer_settings
from issuer.keys.services import signing_key_activate, signing_key_create
from issuer.models import IssuedToken
from issuer.sync_state.store import (
    GENERATION_SECONDS,
    _inputs_query,
    sync_state_by_license_key,
    sync_state_cache_keys,
    sync_state_invalidate,
    sync_state_plain,
)
from issuer.tokens.services import service_access_token_sync
from subscriptions.license_keys import license_key_digest
from subscriptions.services import (
    add_on_purchase_cancel,
    add_on_purchase_update,
    instance_activate,
    instance_release,
    instance_set_suspended,
    subscription_set_suspended,
    subscription_update,
)
from tests.factories import AddOnPurchaseFactory
from tests.helpers import last_sync_set, postgres_only, redis_only, sync

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def shared_cache(settings):
    """Tests run in one process, so the local-memory cache behaves as a shared one here."""
    settings.CACHE_IS_SHARED = True


def scopes_of(client, key):
    _, body = sync(client, key)
    token = (body["data"]["cloudConnectorAccess"] or {}).get("serviceToken")
    return None if token is None else set(jwt.decode(token["token"], options={"verify_signature": False})["scopes"])


def test_warm_sync_reads_no_database(client, activated, django_assert_num_queries):
    _, key = activated
    sync(client, key)  # mints and records
    sync(client, key)  # reads the new token into the cache
    with django_assert_num_queries(0):
        _, body = sync(client, key)
    assert body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]


def test_purchase_changes_are_seen_at_once(client, activated):
    instance, key = activated
    assert "troubleshoot_job" in scopes_of(client, key)
    purchase = instance.subscription.add_on_purchases.get()
    add_on_purchase_update(purchase, quantity=7)
    _, body = sync(client, key)
    assert (
        jwt.decode(body["data"]["cloudConnectorAccess"]["serviceToken"]["token"], options={"verify_signature": False})[
            "duo_seat_count"
        ]
        == 7
    )
    add_on_purchase_cancel(purchase)
    assert "troubleshoot_job" not in scopes_of(client, key)
    AddOnPurchaseFactory(subscription=instance.subscription, add_on="duo_pro", quantity=2)
    assert "code_suggestions" in scopes_of(client, key)


def test_suspension_and_end_are_seen_at_once(client, activated):
    instance, key = activated
    assert scopes_of(client, key)
    instance_set_suspended(instance, True)
    assert scopes_of(client, key) is None
    instance_set_suspended(instance, False)
    assert scopes_of(client, key)
    subscription_set_suspended(instance.subscription, True)
    assert scopes_of(client, key) is None
    subscription_set_suspended(instance.subscription, False)
    subscription_update(instance.subscription, expires_on=instance.subscription.starts_on + dt.timedelta(days=1))
    assert scopes_of(client, key) is None


def test_release_and_reactivation_kill_the_old_key_at_once(client, activated):
    instance, key = activated
    assert scopes_of(client, key)
    new_key = instance_activate(
        activation_code=instance.subscription.activation_code, instance_identifier=str(instance.instance_identifier)
    ).license_key
    _, body = sync(client, key)
    assert body["errors"] and body["data"]["cloudConnectorAccess"] is None
    assert scopes_of(client, new_key)
    instance_release(instance)
    _, body = sync(client, new_key)
    assert body["errors"]


def test_admin_edit_through_the_model_is_seen(client, activated):
    instance, key = activated
    assert scopes_of(client, key)
    subscription = instance.subscription
    subscription.license_type = "premium"
    subscription.save()  # what a Django admin form does
    assert "troubleshoot_job" in scopes_of(client, key)  # premium still has Duo Enterprise primitives listed
    purchase = subscription.add_on_purchases.get()
    purchase.delete()
    assert "troubleshoot_job" not in scopes_of(client, key)


def test_a_state_read_before_a_write_is_never_served_after_it(activated):
    instance, key = activated
    stale = sync_state_by_license_key(key)  # a reader read the rows ...
    add_on_purchase_cancel(instance.subscription.add_on_purchases.get())  # ... a writer changed them ...
    state_key = sync_state_cache_keys(license_key_digest(key)).state
    sealed = signed_value_seal(state_key, sync_state_plain(stale), timeout=900, generation=stale.generation)
    cache.set(state_key, sealed, 900)  # ... and the slow reader stores what it read, sealed with its generation
    fresh = sync_state_by_license_key(key)
    assert fresh.generation != stale.generation
    assert fresh.instance.subscription.add_on_purchases.all()[0].cancelled_at is not None


def test_invalidate_is_per_license_key(signing_key):
    keys = []
    for _ in range(2):
        subscription = AddOnPurchaseFactory().subscription
        keys.append(
            instance_activate(
                activation_code=subscription.activation_code, instance_identifier=str(uuid.uuid4())
            ).license_key
        )
    first, second = (sync_state_by_license_key(k) for k in keys)
    sync_state_invalidate([license_key_digest(keys[0])])
    assert sync_state_by_license_key(keys[1]).generation == second.generation
    assert sync_state_by_license_key(keys[0]).generation != first.generation


def test_cache_off_without_a_shared_cache(settings, activated, django_assert_num_queries):
    settings.CACHE_IS_SHARED = False
    _, key = activated
    service_access_token_sync(sync_state_by_license_key(key), gitlab_version="17.11.0")
    # PostgreSQL: one query for all of it; elsewhere instance + subscription, purchases, newest token
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 3):
        state = sync_state_by_license_key(key)
    assert state.instance.subscription.add_on_purchases.all()[0].add_on == "duo_enterprise"
    assert state.newest is not None and state.newest.kid


def _state_cached(key) -> bool:
    return cache.get(sync_state_cache_keys(license_key_digest(key)).state) is not None


def _last_synced(instance, ago: dt.timedelta) -> None:
    last_sync_set([instance], dt.datetime.now(dt.UTC) - ago)


def test_an_instance_back_after_the_states_lifetime_costs_no_cache_write(client, activated):
    """The fleet: an instance that syncs hourly would never read a 900 s state (the default) again: not stored."""
    instance, key = activated
    sync(client, key)  # mints (first sync after activation: stored)
    cache.delete(sync_state_cache_keys(license_key_digest(key)).state)
    _last_synced(instance, dt.timedelta(hours=1))
    _, body = sync(client, key)
    assert body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    assert not _state_cached(key)
    instance.refresh_from_db()
    assert dt.datetime.now(dt.UTC) - instance.last_sync_at < dt.timedelta(minutes=1), "the sync is still recorded"
    # Back within the lifetime (a retry, a read-back, a clone): stored, and the next sync reads no database.
    _, again = sync(client, key)
    assert _state_cached(key)
    assert (
        again["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
        == (body["data"]["cloudConnectorAccess"]["serviceToken"]["token"])
    )


def test_a_cached_state_is_rewritten_with_a_new_token_however_long_ago_the_last_sync(client, activated):
    """A cached state must never hold an older token than the database: the next reader would mint again."""
    instance, key = activated
    sync(client, key)
    sync(client, key)  # the state is cached with the token minted above
    assert _state_cached(key)
    _last_synced(instance, dt.timedelta(hours=1))  # (the cached copy still says a minute ago: not re-read)
    state = sync_state_by_license_key(key)
    assert state.cached
    state.instance.last_sync.at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    old_kid = state.newest.kid
    new_key = signing_key_create()
    signing_key_activate(new_key.kid, force=True, reason="test: the stored token is no longer fresh")
    result = service_access_token_sync(state, gitlab_version="17.11.0")
    assert result.kid != old_kid
    assert sync_state_by_license_key(key).newest.kid == result.kid


@redis_only
def test_a_missing_generation_is_started_in_the_syncs_own_round_trip(client, activated, django_assert_num_queries):
    """An hourly instance finds its state expired, and once a day its generation too (and every instance at its
    first sync): the generation is started by the script that counts and reads, not in a round trip of its own."""
    _, key = activated
    sync(client, key)
    keys = sync_state_cache_keys(license_key_digest(key))
    cache.delete_many([keys.state, keys.generation])
    redis = cache._cache.get_client(write=True)
    calls = []
    original = redis.execute_command
    redis.execute_command = lambda *args, **kwargs: calls.append(args) or original(*args, **kwargs)
    try:
        _, body = sync(client, key)
    finally:
        redis.execute_command = original
    assert body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    assert [call[0] for call in calls].count("EVALSHA") == 1
    assert not [call for call in calls if call[0] == "SET" and "NX" in call], "no `add` of its own"
    generation = cache.get(keys.generation)
    assert type(generation) is int
    assert 0 < redis.ttl(cache.make_and_validate_key(keys.generation)) <= GENERATION_SECONDS
    with django_assert_num_queries(0):  # the state was stored under the generation started, and is read back
        _, again = sync(client, key)
    assert again["data"]["cloudConnectorAccess"]["serviceToken"] == body["data"]["cloudConnectorAccess"]["serviceToken"]
    assert cache.get(keys.generation) == generation


def test_a_state_sealed_in_the_layout_before_is_a_miss_not_an_error(client, activated):
    """A deploy that changed the state's sections: what the code before sealed, with the same key and generation,
    is read as a miss (the database answers), never unpacked into the wrong names."""
    _, key = activated
    sync(client, key)
    sync(client, key)  # the state is cached
    keys = sync_state_cache_keys(license_key_digest(key))
    generation = cache.get(keys.generation)
    plain = sync_state_plain(sync_state_by_license_key(key))
    before = [plain[0], plain[1], *plain[3:]]  # no section for the last sync, as before it had its own row
    cache.set(keys.state, signed_value_seal(keys.state, before, timeout=900, generation=generation), 900)
    assert not sync_state_by_license_key(key).cached
    _, body = sync(client, key)
    assert body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]


def test_the_newest_token_is_looked_for_within_one_lifetime(client, activated, settings):
    """A token issued more than a lifetime ago has expired, even while its ciphertext is still held (the job that
    drops expired ciphertexts runs daily): the state reads no further back, so PostgreSQL reads only the monthly
    partitions of token records that can hold a valid token (issue 29)."""
    settings.CACHE_IS_SHARED = False  # every read from the database
    _, key = activated
    issued = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with time_machine.travel(issued, tick=False):
        sync(client, key)
    lifetime = issuer_settings.token_ttl
    with time_machine.travel(issued + lifetime - dt.timedelta(seconds=1), tick=False):
        assert sync_state_by_license_key(key).newest.expires_at == issued + lifetime
    with time_machine.travel(issued + lifetime + dt.timedelta(seconds=1), tick=False):
        assert sync_state_by_license_key(key).newest is None
        _, body = sync(client, key)  # and the sync mints, as it would for the expired token
    token = body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    minted_at = jwt.decode(token, options={"verify_signature": False})["iat"]
    assert minted_at == int((issued + lifetime + dt.timedelta(seconds=1)).timestamp())


@postgres_only
def test_the_inputs_read_prunes_the_token_partitions_before_its_bound():
    """The sync runs its inputs' read as a prepared statement, so PostgreSQL plans it once, without the bound's
    value: the partitions of token records before the bound must be pruned when each execution starts, or every
    month the records are kept is probed again at every sync (issue 29, bench/inputs_read_bench.py)."""
    statement = _inputs_query().replace("%s", "$1", 1).replace("%s", "$2", 1)
    assert "%s" not in statement
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE inputs_probe (timestamptz, text) AS {statement}")
        try:  # a bound after every monthly partition: only the default partition can be left
            cursor.execute("EXPLAIN (FORMAT JSON) EXECUTE inputs_probe ('2100-01-01T00:00:00Z', 'no such digest')")
            plan = cursor.fetchone()[0]
        finally:
            cursor.execute("DEALLOCATE inputs_probe")
            cursor.execute("RESET plan_cache_mode")
        cursor.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass", [IssuedToken._meta.db_table])
        partitions = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    removed = [node["Subplans Removed"] for node in _plan_nodes(plan[0]["Plan"]) if "Subplans Removed" in node]
    assert partitions > 1 and removed == [partitions - 1]


def _plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


def test_a_states_purchases_answer_without_a_query_and_a_query_from_them_keeps_to_the_subscription(
    client, activated, django_assert_num_queries
):
    """Read from the database and from the cache alike: the purchases are at hand, and a query built from them (the
    subscription's filter, applied only then) still returns this subscription's purchases, not another's."""
    instance, key = activated
    AddOnPurchaseFactory(add_on="duo_pro", quantity=7)  # another subscription's
    subscription = instance.subscription
    first = subscription.add_on_purchases.get()
    AddOnPurchaseFactory(  # a later id that starts earlier: the model's ordering (started_on, id) is not the ids'
        subscription=subscription, add_on="duo_pro", quantity=3, started_on=first.started_on - dt.timedelta(days=1)
    )
    own = list(subscription.add_on_purchases.all())
    assert [purchase.pk for purchase in own] != sorted(purchase.pk for purchase in own)
    today = dt.date.today()
    from_database = sync_state_by_license_key(key)
    sync(client, key)
    sync(client, key)  # the second sync finds its state cached
    from_cache = sync_state_by_license_key(key)
    assert from_cache.cached and not from_database.cached
    for state in (from_database, from_cache):
        purchases = state.instance.subscription.add_on_purchases
        with django_assert_num_queries(0):
            assert [purchase.pk for purchase in purchases.all()] == [purchase.pk for purchase in own]
        with django_assert_num_queries(1):
            active = list(purchases.active_on(today))
        assert {purchase.pk for purchase in active} == {p.pk for p in own if p.is_active_on(today)} != set()


def test_the_newest_token_read_from_the_database_is_the_stored_one(client, activated):
    instance, key = activated
    sync(client, key)
    record = IssuedToken.objects.get(instance=instance)
    newest = sync_state_by_license_key(key).newest
    assert (newest.kid, newest.fingerprint, newest.expires_at, newest.ciphertext) == (
        record.kid,
        record.fingerprint,
        record.expires_at,
        bytes(record.token_encrypted),
    )
    assert (list(newest.scopes), list(newest.audiences)) == (record.scopes, record.audiences)
