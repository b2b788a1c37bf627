import datetime as dt
import os

import pytest
import time_machine
from django.core.cache import cache

from credits.views import _credentials_verified as credentials_verified
from issuer.keys.selectors import keyset_invalidate
from issuer.keys.services import _validators_written as validators_written
from issuer.keys.services import signing_key_ensure_active
from tests.factories import AddOnPurchaseFactory, SubscriptionFactory
from tests.helpers import instance_activated
from tests.requirements import need
from tests.softhsm import softhsm_token_init

# `TEST_CLOCK_SHIFT_DAYS=730 make test` (a CI step) runs the suite with Python's clock that far ahead, so a date
# written into a test, or computed by the code under test, that only holds until some day fails today, not then.
CLOCK_SHIFT_DAYS = int(os.environ.get("TEST_CLOCK_SHIFT_DAYS") or 0)
WALL_CLOCK_REASON = "wall_clock: compares Python's clock with PostgreSQL's now(), Redis TTLs or another process's clock"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "needs(*names): tools or services the test needs (tests/requirements.py): skipped where one is missing, "
        "failed where it is required (CI=true)",
    )


def pytest_runtest_setup(item):
    """After pytest's own skips (a wall-clock test in the shifted run is skipped, not failed), before fixtures."""
    for marker in item.iter_markers("needs"):
        for name in marker.args:
            need(name)


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


def _connect_as(credentials: dict) -> None:
    from django.db import connections

    connection = connections["default"]
    connection.close()
    connection.settings_dict.update(credentials)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """With DATABASE_OWNER_URL (CI on PostgreSQL): the test database was created and migrated as the owner, whose
    `migrate` granted the runtime role its privileges; every test now runs as the runtime role. A flush (after a
    transactional test) and the final drop go back to the owner, the only role allowed to empty the audit trail."""
    from django.conf import settings
    from django.core.management.commands import flush
    from django.db import connections

    runtime = settings.DATABASE_RUNTIME_CREDENTIALS
    if runtime is None:
        yield
        return
    owner = {key: connections["default"].settings_dict[key] for key in ("USER", "PASSWORD")}
    original_flush = flush.Command.handle

    def flush_as_owner(self, *args, **options):
        _connect_as(owner)
        try:
            return original_flush(self, *args, **options)
        finally:
            _connect_as(runtime)

    flush.Command.handle = flush_as_owner
    _connect_as(runtime)
    try:
        yield
    finally:
        flush.Command.handle = original_flush
        with django_db_blocker.unblock():
            _connect_as(owner)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Every test starts with an empty cache, no key set memoized and no validator write remembered in this
    process."""
    keyset_invalidate()
    cache.clear()
    validators_written.clear()
    credentials_verified.clear()
    yield
    keyset_invalidate()
    cache.clear()
    validators_written.clear()
    credentials_verified.clear()


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


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory):
    """This run's (and xdist worker's) SoftHSM2 token: the PKCS#11 settings that point at it."""
    need("softhsm2")
    return softhsm_token_init(tmp_path_factory.mktemp("softhsm"))


@pytest.fixture
def pkcs11_token(softhsm_token, settings):
    """The token configured; new keys are still made where the test's backend says."""
    for name, value in softhsm_token.items():
        setattr(settings, name, value)
    return softhsm_token


@pytest.fixture(params=["local", "pkcs11"])
def signing_backend(request, settings):
    """Runs the test once with each backend: new keys made locally, then in the SoftHSM2 token."""
    if request.param == "pkcs11":
        request.getfixturevalue("pkcs11_token")
    settings.ISSUER_SIGNING_KEY_BACKEND = request.param
    return request.param


@pytest.fixture
def local_signing_keys(settings):
    """For tests of the local backend's own matter (encrypted PKCS#8, rewrap, key-encryption-key errors, PEM that
    must not leak): new keys are made locally even when the whole suite runs with ISSUER_SIGNING_KEY_BACKEND=pkcs11.
    Used by name (`usefixtures`), so each pinned test says it is about local keys."""
    settings.ISSUER_SIGNING_KEY_BACKEND = "local"


@pytest.fixture(autouse=True)
def _whole_suite_backend(request):
    """`ISSUER_SIGNING_KEY_BACKEND=pkcs11 pytest`: every key the suite makes is made in the SoftHSM2 token."""
    if os.environ.get("ISSUER_SIGNING_KEY_BACKEND") == "pkcs11" and "signing_backend" not in request.fixturenames:
        request.getfixturevalue("pkcs11_token")


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
    activation = instance_activated(
        enterprise_subscription.activation_code, hostname="gitlab.example.test", gitlab_version="17.11.0"
    )
    return activation.instance, activation.license_key
