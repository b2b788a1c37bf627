"""A revocation never depends on a cache write succeeding (fail closed): during a Redis outage the write that
must drop a cached sync state fails and rolls back, and a release whose after-commit step is lost serves nothing
stale."""

import socket
from unittest import mock

import pytest
from django.core.cache import cache
from django.test import override_settings

from config.cache import CacheUnavailable, cache_strict
from issuer.sync_state.store import sync_state_by_license_key, sync_state_cache_keys
from subscriptions.license_keys import license_key_digest
from subscriptions.models import Instance
from subscriptions.services import instance_release, instance_set_suspended
from tests.helpers import sync

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_down():
    """The project's Redis cache, pointed at a port where nothing listens: every command fails to connect."""
    caches = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0"}}
    with override_settings(CACHES=caches, CACHE_IS_SHARED=True):
        yield


def test_a_strict_write_raises_where_a_normal_one_degrades(redis_down):
    cache.set("k", 1)  # degrades: dropped, no exception
    assert cache.get("k") is None
    with cache_strict(), pytest.raises(CacheUnavailable):
        cache.set_many({"k": 1})


def test_release_during_a_redis_outage_fails_and_changes_nothing(activated, redis_down):
    instance, key = activated
    with pytest.raises(CacheUnavailable):
        instance_release(instance)
    instance.refresh_from_db()
    assert instance.subscription is not None and instance.license_key_digest == license_key_digest(key)


def test_an_admin_action_during_an_outage_is_a_503_not_a_silent_success(client, activated, redis_down, admin_user):
    instance, _ = activated
    client.force_login(admin_user)
    response = client.post(
        "/admin/subscriptions/instance/",
        {"action": "release", "_selected_action": [instance.pk], "apply": "1", "reason": "moving to new hardware"},
    )
    assert response.status_code == 503 and "retry" in response.json()["error"].lower()
    assert Instance.objects.get(pk=instance.pk).subscription is not None


def test_a_lost_release_after_commit_serves_nothing_stale(client, activated, settings):
    settings.CACHE_IS_SHARED = True
    instance, key = activated
    sync(client, key)
    sync(client, key)  # the state is cached
    keys = sync_state_cache_keys(license_key_digest(key))
    with mock.patch("issuer.sync_state.store._writers_done"):  # Redis went away right at commit
        instance_set_suspended(instance, True)
    assert cache.get(keys.writers) >= 1
    _, body = sync(client, key)
    assert body["data"]["cloudConnectorAccess"]["serviceToken"] is None, "the suspension is seen at once"
    assert sync_state_by_license_key(key).generation is None, "and nothing is cached while the count stands"
    cache.delete(keys.writers)  # the count expires
    instance_set_suspended(instance, False)
    _, body = sync(client, key)
    assert body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    assert sync_state_by_license_key(key).generation is not None, "cached again"


def test_one_writers_release_does_not_open_the_cache_while_another_writes(activated, settings):
    """Two writers on one key: the first one's commit must not let readers cache what the second will change."""
    settings.CACHE_IS_SHARED = True
    _, key = activated
    keys = sync_state_cache_keys(license_key_digest(key))
    sync_state_by_license_key(key)
    cache.set(keys.writers, 2)  # two transactions open on this key, and their mark dropped the state
    cache.delete(keys.state)
    cache.decr(keys.writers)  # the first commits
    assert sync_state_by_license_key(key).generation is None
    assert cache.get(keys.state) is None, "nothing stored while the second is open"
    cache.decr(keys.writers)  # the second commits
    assert sync_state_by_license_key(key).generation is not None
