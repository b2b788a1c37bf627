from unittest import mock

import pytest
from django.db import OperationalError


def test_healthz_touches_nothing(client):
    """No `db` fixture: any database access would raise here."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.usefixtures("local_signing_keys")
@pytest.mark.django_db
def test_readyz_ok_with_database_cache_and_active_key(client, signing_key):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "signing_key", "signing_token"}
    assert body["checks"]["signing_token"] == {"ok": True, "detail": "not used"}  # no key in a PKCS#11 token


@pytest.mark.django_db
def test_readyz_503_without_active_signing_key(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["signing_key"] == {"ok": False, "detail": "no active signing key"}


@pytest.mark.django_db
def test_readyz_503_when_database_unreachable(client, signing_key):
    with mock.patch("django.db.backends.base.base.BaseDatabaseWrapper.cursor", side_effect=OperationalError("down")):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {"ok": False, "detail": "OperationalError"}


@pytest.mark.django_db
def test_readyz_503_when_cache_unreachable(client, signing_key):
    with mock.patch("django.core.cache.cache.set", side_effect=ConnectionError("no redis")):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"]["ok"] is False


def test_metrics_endpoint_exports_issuer_metrics(client, db):
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "issuer_signing_keys" in text
    assert "django_http_requests_total_by_method" in text


def test_metrics_are_refused_outside_the_allowed_networks_without_the_token(client, db, settings):
    settings.ISSUER_METRICS_TOKEN = "scrape-me-please"
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    bearer = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer scrape-me-please")
    assert bearer.status_code == 200 and "issuer_signing_keys" in bearer.content.decode()
    settings.ISSUER_METRICS_ALLOWED_NETWORKS = ["203.0.113.0/24"]
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_behind_the_proxy_metrics_judge_the_callers_address_not_the_proxys(client, db, settings):
    settings.ISSUER_URL = "https://issuer.example.test"
    forwarded = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9", "secure": True}
    assert client.get("/metrics", **forwarded).status_code == 403
    forged = {**forwarded, "HTTP_X_FORWARDED_FOR": "127.0.0.1, 203.0.113.9"}
    assert client.get("/metrics", **forged).status_code == 403
    settings.ISSUER_METRICS_ALLOWED_NETWORKS = ["203.0.113.0/24"]
    allowed = client.get("/metrics", **forwarded)
    assert allowed.status_code == 200 and "issuer_signing_keys" in allowed.content.decode(), "the caller's network"
    assert client.get("/metrics", **{**forwarded, "HTTP_X_FORWARDED_FOR": "198.51.100.7"}).status_code == 403
    assert (
        client.get("/metrics", **{**forwarded, "HTTP_X_FORWARDED_FOR": "203.0.113.9, 198.51.100.7"}).status_code == 403
    )
