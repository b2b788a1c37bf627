"""The PostgreSQL connection's health check (config/postgresql/base.py): a connection that just served a request
is used at once, one idle longer than DATABASE_CHECK_IDLE_SECONDS is checked, and a dead one is replaced."""

import psycopg
import pytest
from django.db import DatabaseError, close_old_connections, connection, connections

from tests.helpers import postgres_only

pytestmark = [pytest.mark.django_db(transaction=True)]


def a_request(sql: str = "SELECT pg_backend_pid()"):
    """What a request does to the connection: `close_old_connections` at its start and end, a query between."""
    close_old_connections()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0]
    finally:
        close_old_connections()


@pytest.fixture
def checks(monkeypatch):
    """The health checks made (each a `SELECT 1` round trip)."""
    made = []
    wrapper = type(connections["default"])
    real = wrapper.is_usable
    monkeypatch.setattr(wrapper, "is_usable", lambda self: made.append(self.alias) or real(self))
    return made


def terminated(pid: int) -> None:
    """The backend killed from another session, as a server restart or `pg_terminate_backend` kills it."""
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@postgres_only
def test_the_backend_is_ours():
    assert type(connections["default"]).__module__ == "config.postgresql.base"


@postgres_only
def test_a_connection_that_just_served_a_request_is_not_checked(checks):
    first = a_request()
    checks.clear()
    assert a_request() == first
    assert a_request() == first
    assert checks == []


@postgres_only
def test_with_zero_seconds_every_request_is_checked_as_djangos_are(checks, settings):
    settings.DATABASE_CHECK_IDLE_SECONDS = 0
    first = a_request()
    checks.clear()
    assert a_request() == first
    assert a_request() == first
    assert checks == ["default", "default"]


@postgres_only
def test_a_connection_killed_while_idle_is_checked_and_replaced_without_an_error(checks, settings):
    first = a_request()
    connection.proven_until = 0.0  # idle for longer than DATABASE_CHECK_IDLE_SECONDS
    terminated(first)
    checks.clear()
    assert a_request() != first
    assert checks == ["default"]


@postgres_only
def test_a_connection_killed_within_the_window_fails_one_request_then_is_replaced():
    """The trade-off the module states: one failed query (the 503 GitLab retries), and the connection is gone."""
    first = a_request()
    terminated(first)
    with pytest.raises(DatabaseError):
        a_request()
    assert a_request() != first


@postgres_only
def test_after_a_database_error_the_connection_is_checked_before_it_is_used_again(checks):
    first = a_request()
    checks.clear()
    with pytest.raises(DatabaseError):
        a_request("SELECT * FROM no_such_table")
    assert checks == ["default"], "checked at the request's end, as Django checks a connection that saw an error"
    assert a_request() == first
    assert checks == ["default"], "that check proves it for the next request"
