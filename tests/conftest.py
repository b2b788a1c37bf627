import uuid

import pytest
from django.core.cache import cache

from issuer.keys.selectors import keyset_invalidate
from issuer.keys.services import _validators_written as validators_written
from issuer.keys.services import signing_key_ensure_active
from subscriptions.services import instance_activate
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory


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
