"""A Redis outage degrades the cache to misses: the public endpoints and token syncs keep answering."""

import pytest
from django.core.cache import caches
from django.test import override_settings

from config.cache import RedisCache
from tests.helpers import sync
from tests.requirements import need

DOWN = {
    "default": {
        "BACKEND": "config.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",  # the discard port: nothing listens, connections are refused
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    }
}


def test_every_operation_degrades_instead_of_raising():
    cache = RedisCache(DOWN["default"]["LOCATION"], {"OPTIONS": DOWN["default"]["OPTIONS"]})
    assert cache.get("k", "fallback") == "fallback"
    assert cache.get_many(["a", "b"]) == {}
    cache.set("k", 1)  # dropped, not raised
    assert cache.add("k", 1) is False
    assert cache.delete("k") is False
    cache.delete_many(["a"])
    assert cache.get("k") is None
    with pytest.raises(ValueError):
        cache.incr("k")


@pytest.mark.django_db
def test_public_endpoints_and_sync_survive_a_redis_outage(client, activated, settings):
    with override_settings(CACHES=DOWN, CACHE_IS_SHARED=True):
        caches["default"].get("probe")  # the overridden cache is in use
        assert client.get("/oauth/discovery/keys").status_code == 200
        assert client.get("/.well-known/openid-configuration").status_code == 200
        response, body = sync(client, activated[1])
        assert response.status_code == 200 and body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["cache"]["ok"] is False
        rest = client.post(
            "/api/v1/service_access_tokens",
            HTTP_AUTHORIZATION=f"Bearer {activated[1]}",
            content_type="application/json",
        )
        assert rest.status_code == 200  # throttling fails open rather than refusing everyone


@pytest.mark.redis
def test_incr_counts_in_one_round_trip_and_refuses_a_missing_key():
    import os

    need("redis")
    location = os.environ.get("REDIS_URL")
    cache = RedisCache(location, {})
    cache.delete("incr-probe")
    with pytest.raises(ValueError):
        cache.incr("incr-probe")
    assert cache.get("incr-probe") is None, "a missing key is not created"
    cache.set("incr-probe", 5)
    assert cache.incr("incr-probe") == 6 and cache.decr("incr-probe", 2) == 4 and cache.get("incr-probe") == 4
    cache.delete("incr-probe")


@pytest.mark.redis
def test_replies_are_parsed_by_hiredis():
    """hiredis (requirements.txt) parses what Redis answers in C: a sync's counts and cached state cost a quarter
    less of the client's CPU than with redis-py's own parser (docs/performance.md). Were it dropped, redis-py would
    fall back silently."""
    import os

    from redis._parsers import _HiredisParser

    need("redis")
    cache = RedisCache(os.environ.get("REDIS_URL"), {})
    cache.set("parser-probe", b"x" * 4096)
    client = cache._cache.get_client("parser-probe")
    connection = client.connection_pool.get_connection()
    try:
        assert isinstance(connection._parser, _HiredisParser)
    finally:
        client.connection_pool.release(connection)
    assert cache.get("parser-probe") == b"x" * 4096
    cache.delete("parser-probe")


@pytest.mark.redis
def test_rate_limit_counters_take_one_round_trip_and_count_like_django_ratelimit():

    from django.test import RequestFactory
    from django_ratelimit.core import get_usage

    need("redis")
    cache = caches["default"]
    cache.clear()
    request = RequestFactory().get("/")

    def count(increment=True):
        return get_usage(request, group="probe", key=lambda *_: "one-rtt", rate="100/m", increment=increment)["count"]

    assert count() == 1  # (the first call also loads the script into Redis)
    client = cache._cache.get_client(write=True)
    calls = []
    original = client.execute_command
    client.execute_command = lambda *args, **kwargs: calls.append(args[0]) or original(*args, **kwargs)
    try:
        counts = [count() for _ in range(3)]
    finally:
        client.execute_command = original
    assert counts == [2, 3, 4]
    assert calls == ["EVALSHA"] * 3  # one round trip per count, where add then incr took two
    assert count(increment=False) == 4
    key = next(iter(client.keys("*rl:*")))
    assert 0 < client.ttl(key) <= 65
