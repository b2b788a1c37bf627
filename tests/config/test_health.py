from unittest import mock

import pytest
from django.db import OperationalError


def test_healthz_touches_nothing(client):
    """No `db` fixture: any database access would raise here."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_ok_with_database_cache_and_active_key(client, signing_key):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "signing_key"}


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
