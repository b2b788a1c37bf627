"""The PostgreSQL connection's health check (config/postgresql/base.py): a connection used less than
DATABASE_CHECK_IDLE_SECONDS ago is used at once, one idle longer is checked, and a dead one is replaced. The
backend's clock is a fake one here, moved by the tests: a slow machine makes no test flaky."""

import psycopg
import pytest
from django.db import DatabaseError, close_old_connections, connection, connections

import config.postgresql.base
from tests.helpers import postgres_only

pytestmark = [pytest.mark.django_db(transaction=True)]


class Clock:
    now = 1000.0

    def monotonic(self):
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch, settings):
    settings.DATABASE_CHECK_IDLE_SECONDS = 1
    fake = Clock()
    monkeypatch.setattr(config.postgresql.base, "time", fake)
    return fake


def a_request(sql: str = "SELECT pg_backend_pid()", after_the_query=None):
    """What a request does to the connection: `close_old_connections` at its start and end, a query between."""
    close_old_connections()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            found = cursor.fetchone()[0]
        if after_the_query:
            after_the_query(found)
        return found
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
def test_a_connection_used_just_now_is_not_checked(checks):
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
def test_a_connection_idle_longer_is_checked(checks, clock):
    first = a_request()
    clock.now += 1.5
    checks.clear()
    assert a_request() == first
    assert checks == ["default"]


@postgres_only
def test_requests_without_a_query_do_not_keep_it_proven(checks, clock):
    first = a_request()
    for _ in range(3):  # requests that never touch the database
        clock.now += 0.4
        close_old_connections()
        close_old_connections()
    checks.clear()
    assert a_request() == first
    assert checks == ["default"]


@postgres_only
def test_a_connection_killed_while_idle_is_checked_and_replaced_without_an_error(checks, clock):
    first = a_request()
    clock.now += 1.5
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
def test_a_request_long_after_its_last_query_proves_nothing_past_that_query(checks, clock):
    """A request that queries, then works for a while elsewhere (a signing token, another service): the connection
    has been idle since the query."""
    first = a_request()

    def elsewhere(pid):
        terminated(pid)
        clock.now += 1.5

    a_request(after_the_query=elsewhere)
    checks.clear()
    assert a_request() != first
    assert checks == ["default"]


@postgres_only
def test_after_a_database_error_the_connection_is_checked_and_proven_by_that_check(checks):
    first = a_request()
    checks.clear()
    with pytest.raises(DatabaseError):
        a_request("SELECT * FROM no_such_table")
    assert checks == ["default"], "checked at the request's end, as Django checks a connection that saw an error"
    assert a_request() == first
    assert checks == ["default"], "that check proves it for the next request within the window"


@postgres_only
def test_a_connection_idle_after_a_database_error_is_checked_again(checks, clock):
    first = a_request()
    with pytest.raises(DatabaseError):
        a_request("SELECT * FROM no_such_table")
    clock.now += 1.5
    terminated(first)
    checks.clear()
    assert a_request() != first
    assert checks == ["default"]
