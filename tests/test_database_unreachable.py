"""With the database unreachable, writes answer 503 "retry later" (GitLab retries a 5xx) and lose nothing, while warm
syncs keep being served from the cache (PROTOCOL §2.1)."""

import datetime as dt
import json
import socket
from unittest import mock

import pytest
import time_machine
from django.db import OperationalError, connection, connections
from django.utils import timezone

from subscriptions.models import Instance
from tests.helpers import activation_post, sync

pytestmark = pytest.mark.django_db(transaction=True)


def _connect_fails(**kwargs):
    return mock.patch.object(type(connections["default"]), "ensure_connection", **kwargs)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def database_down():
    """On PostgreSQL the connection really fails: it is re-pointed at a port where nothing listens, as when the
    server is stopped. SQLite's in-memory test database cannot be closed, so there its connect raises instead."""
    if connection.vendor == "postgresql":
        saved = dict(connection.settings_dict)
        connection.close()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
        yield
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
        return
    with _connect_fails(side_effect=OperationalError("unable to open")):
        yield


def test_activation_answers_503_retry_and_writes_nothing(client, enterprise_subscription, database_down):
    response, body = activation_post(client, enterprise_subscription.activation_code, text="19.x")
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "retry" in body["errors"][0]["message"].lower()
    assert "Internal error" not in json.dumps(body)


def test_activation_works_again_once_the_database_is_back(client, enterprise_subscription):
    with _connect_fails(side_effect=OperationalError("down")):
        failed, _ = activation_post(client, enterprise_subscription.activation_code, text="19.x")
    assert failed.status_code == 503 and not Instance.objects.exists()
    response, body = activation_post(client, enterprise_subscription.activation_code, text="19.x")
    assert response.status_code == 200 and body["data"]["cloudActivationActivate"]["licenseKey"]


def test_a_cold_sync_seat_link_and_rest_answer_503(client, activated, database_down):
    _, key = activated
    response, body = sync(client, key)
    assert response.status_code == 503 and "retry" in body["errors"][0]["message"].lower()
    seat = client.post(
        "/api/v1/seat_links",
        data=json.dumps({"license_key": key, "timestamp": "2026-11-01T00:00:00Z"}),
        content_type="application/json",
    )
    assert seat.status_code == 503 and seat.json()["success"] is False and "retry" in seat.json()["error"].lower()
    rest = client.post(
        "/api/v1/service_access_tokens", data="{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert rest.status_code == 503 and "retry" in rest.json()["detail"].lower()


def test_warm_syncs_are_served_from_the_cache_even_when_bookkeeping_is_due(client, activated, settings):
    settings.CACHE_IS_SHARED = True
    _, key = activated
    sync(client, key)  # mints
    _, warm = sync(client, key)  # caches the state with its token
    token = warm["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    with _connect_fails(side_effect=OperationalError("down")):
        response, body = sync(client, key)
        assert response.status_code == 200 and body["data"]["cloudConnectorAccess"]["serviceToken"]["token"] == token
        with time_machine.travel(timezone.now() + dt.timedelta(minutes=5)):  # the last-sync write is due, and fails
            response, body = sync(client, key)
    assert response.status_code == 200 and body["data"]["cloudConnectorAccess"]["serviceToken"]["token"] == token
