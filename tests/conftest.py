import datetime as dt
import os
import uuid

import pytest
import time_machine
from django.core.cache import cache

from issuer.keys.selectors import keyset_invalidate
from issuer.keys.services import _validators_written as validators_written
from issuer.keys.services import signing_key_ensure_active
from subscriptions.services import instance_activate
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory

# `TEST_CLOCK_SHIFT_DAYS=730 make test` (a CI step) runs the suite with Python's clock that far ahead, so a date
# written into a test, or computed by the code under test, that only holds until some day fails today, not then.
CLOCK_SHIFT_DAYS = int(os.environ.get("TEST_CLOCK_SHIFT_DAYS") or 0)
WALL_CLOCK_REASON = "wall_clock: compares Python's clock with PostgreSQL's now(), Redis TTLs or another process's clock"


def pytest_collection_modifyitems(config, items):
    """In the shifted run, tests marked `wall_clock` cannot hold (the other clock is not moved): they are skipped
    with the reason, and listed at the end of the run, never dropped silently."""
    if not CLOCK_SHIFT_DAYS:
        return
    for item in items:
        if item.get_closest_marker("wall_clock"):
            item.add_marker(pytest.mark.skip(reason=f"{WALL_CLOCK_REASON} (clock shifted {CLOCK_SHIFT_DAYS} days)"))


def pytest_terminal_summary(terminalreporter, config):
    if CLOCK_SHIFT_DAYS:
        unshifted = [
            r.nodeid for r in terminalreporter.stats.get("skipped", []) if WALL_CLOCK_REASON in str(r.longrepr)
        ]
        terminalreporter.write_line(
            f"Clock shifted {CLOCK_SHIFT_DAYS} days ahead; {len(unshifted)} wall-clock tests ran only on the real clock:"
        )
        for nodeid in sorted(unshifted):
            terminalreporter.write_line(f"  {nodeid}")


@pytest.fixture(scope="session", autouse=True)
def _shifted_clock():
    if not CLOCK_SHIFT_DAYS:
        yield
        return
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=CLOCK_SHIFT_DAYS), tick=True):
        yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Every test starts with an empty cache, no key set memoized and no validator write remembered in this
    process."""
    keyset_invalidate()
    cache.clear()
    validators_written.clear()
    yield
    keyset_invalidate()
    cache.clear()
    validators_written.clear()


@pytest.fixture(autouse=True)
def _commit_hooks_run_as_in_production(request, monkeypatch):
    """pytest-django wraps a test in a transaction that never commits, so on-commit hooks (sync-state release, key-set
    invalidation, the re-mint after a revoke) would never run. Here they run when the code under test's own
    outermost transaction ends, or at once outside one, as a real commit would run them."""
    if request.node.get_closest_marker("django_db") is None and "db" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("db")
    from django.db import connections, transaction

    connection = connections["default"]
    baseline = len(connection.atomic_blocks)
    original_exit = transaction.Atomic.__exit__
    original_on_commit = type(connection).on_commit

    def run_pending():
        pending, connection.run_on_commit = connection.run_on_commit, []
        for _sids, func, _robust in pending:
            func()

    def exit_and_commit(self, exc_type, exc_value, traceback):
        result = original_exit(self, exc_type, exc_value, traceback)
        if exc_type is None and len(connection.atomic_blocks) == baseline and connection.run_on_commit:
            run_pending()
        return result

    def on_commit(self, func, robust=False):
        if self is connection and len(connection.atomic_blocks) <= baseline:
            func()
            return
        original_on_commit(self, func, robust)

    monkeypatch.setattr(transaction.Atomic, "__exit__", exit_and_commit)
    monkeypatch.setattr(type(connection), "on_commit", on_commit)
    yield


@pytest.fixture
def signing_key(db):
    return signing_key_ensure_active()


@pytest.fixture
def enterprise_subscription(db):
    purchase = AddOnPurchaseFactory(add_on="duo_enterprise", quantity=50)
    return purchase.subscription


@pytest.fixture
def pro_subscription(db):
    purchase = AddOnPurchaseFactory(
        add_on="duo_pro", quantity=10, subscription=SubscriptionFactory(license_type="premium")
    )
    return purchase.subscription


@pytest.fixture
def activated(enterprise_subscription, signing_key):
    """(instance, license_key) of an instance bound to an ultimate + Duo Enterprise subscription."""
    activation = instance_activate(
        activation_code=enterprise_subscription.activation_code,
        instance_identifier=str(uuid.uuid4()),
        hostname="gitlab.example.test",
        gitlab_version="17.11.0",
    )
    return activation.instance, activation.license_key
