"""What a sync leaves behind: its last sync on a narrow row of its own, the instance row only when a value it holds
changes (issue 29: the hourly sync of a fleet wrote a new entry into each of the instance row's twelve indexes)."""

import datetime as dt
import uuid

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from subscriptions.admin import InstanceAdmin
from subscriptions.models import Instance, InstanceLastSync
from subscriptions.selectors import customer_overview, instances_in_state
from subscriptions.services import SyncRecord, instance_activate, instance_sync_observed, sync_observation_start
from tests.factories import CustomerFactory, SubscriptionFactory
from tests.helpers import GITLAB_19_HEADERS, last_sync_set, sync

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def statements_logged_with_their_text(settings):
    """Statements bound on the server are logged without their text: these tests read what was written."""
    settings.DATABASE_PREPARED_STATEMENTS = False


INSTANCE_TABLE = Instance._meta.db_table
LAST_SYNC_TABLE = InstanceLastSync._meta.db_table


def _sync_at(client, key, at: dt.datetime, instance, **headers) -> list[str]:
    """The statements a sync at `at` wrote (reads left out)."""
    with time_machine.travel(at, tick=False), CaptureQueriesContext(connection) as queries:
        response, body = sync(
            client,
            key,
            "19.1.0-ee",
            **{**GITLAB_19_HEADERS, "X-Gitlab-Instance-Id": str(instance.instance_identifier), **headers},
        )
    assert response.status_code == 200 and body["data"]["cloudConnectorAccess"]["serviceToken"]["token"]
    reads = ("SELECT", "SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT")
    return [query["sql"] for query in queries.captured_queries if not query["sql"].lstrip().startswith(reads)]


def test_a_new_instance_has_no_last_sync(activated):
    instance, _ = activated
    assert instance.last_sync_at is None
    assert not InstanceLastSync.objects.filter(instance=instance).exists()


def test_the_hourly_sync_of_an_instance_that_sends_the_same_headers_writes_only_its_last_sync(client, activated):
    instance, key = activated
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _sync_at(client, key, start, instance)  # the first: mints, and records the headers and the last sync
    written = _sync_at(client, key, start + dt.timedelta(hours=1), instance)
    bookkeeping = [sql for sql in written if LAST_SYNC_TABLE in sql]
    assert bookkeeping, written
    assert not any(f'UPDATE "{INSTANCE_TABLE}"' in sql for sql in written), "the instance row is left as it is"
    if connection.vendor == "postgresql":
        assert len(bookkeeping) == 1, "one statement, its own transaction"
    instance.refresh_from_db()
    assert instance.last_sync_at == start + dt.timedelta(hours=1)
    assert (instance.deployment_type, instance.gitlab_version) == ("self-managed", "19.1.0-ee")


def test_a_changed_header_is_written_with_the_last_sync(client, activated):
    instance, key = activated
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _sync_at(client, key, start, instance)
    written = _sync_at(
        client, key, start + dt.timedelta(hours=1), instance, **{"X-Gitlab-Deployment-Type": "dedicated"}
    )
    if connection.vendor == "postgresql":
        both = [sql for sql in written if LAST_SYNC_TABLE in sql and f'UPDATE "{INSTANCE_TABLE}"' in sql]
        assert len(both) == 1 and len(written) == 1, written
    instance.refresh_from_db()
    assert instance.deployment_type == "dedicated"
    assert instance.last_sync_at == start + dt.timedelta(hours=1)


def test_within_the_minute_nothing_is_written_and_the_last_sync_stays(client, activated):
    instance, key = activated
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _sync_at(client, key, start, instance)
    assert _sync_at(client, key, start + dt.timedelta(seconds=30), instance) == []
    instance.refresh_from_db()
    assert instance.last_sync_at == start


def test_the_last_sync_goes_with_its_instance(activated):
    instance, _ = activated
    InstanceLastSync.objects.create(instance=instance, at=dt.datetime.now(dt.UTC))
    instance.subscription = None
    instance.save(update_fields=["subscription"])
    instance.delete()
    assert not InstanceLastSync.objects.exists()


@pytest.fixture
def as_the_owner(settings):
    """Migrations change tables: with two roles (CI on PostgreSQL) only the owner may, as in production."""
    from django.db import connections

    owner, runtime = settings.DATABASE_OWNER_CREDENTIALS, settings.DATABASE_RUNTIME_CREDENTIALS
    if owner is not None:
        connections["default"].close()
        connections["default"].settings_dict.update(owner)
    yield
    if owner is not None:
        connections["default"].close()
        connections["default"].settings_dict.update(runtime)


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_every_last_sync_to_its_row_and_back(as_the_owner):
    from django.db.migrations.executor import MigrationExecutor

    before, after = ("subscriptions", "0013_addonpurchase_suspended"), ("subscriptions", "0014_instance_last_sync")
    at = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    old = executor.loader.project_state([before]).apps
    customer = old.get_model("subscriptions", "Customer").objects.create(name="migrated")
    subscription = old.get_model("subscriptions", "Subscription").objects.create(
        customer=customer,
        activation_code="A" * 24,
        license_type="ultimate",
        seats=1,
        starts_on=at.date(),
        expires_on=at.date() + dt.timedelta(days=365),
    )
    instances = old.get_model("subscriptions", "Instance").objects
    synced = instances.create(instance_identifier=uuid.uuid4(), subscription=subscription, last_sync_at=at)
    never = instances.create(instance_identifier=uuid.uuid4())
    executor = MigrationExecutor(connection)
    executor.migrate([after])
    assert list(InstanceLastSync.objects.values_list("instance_id", "at")) == [(synced.pk, at)]
    assert Instance.objects.get(pk=never.pk).last_sync_at is None
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    rows = executor.loader.project_state([before]).apps.get_model("subscriptions", "Instance").objects
    assert dict(rows.values_list("pk", "last_sync_at")) == {synced.pk: at, never.pk: None}
    MigrationExecutor(connection).migrate([after])


@pytest.fixture
def three_instances():
    """One customer's instances: synced an hour ago, synced 5 days ago (stale), never synced; activated 10 days
    ago."""
    now = dt.datetime.now(dt.UTC)
    customer = CustomerFactory()
    instances = [
        instance_activate(
            activation_code=SubscriptionFactory(customer=customer).activation_code,
            instance_identifier=str(uuid.uuid4()),
        ).instance
        for _ in range(3)
    ]
    Instance.objects.update(activated_at=now - dt.timedelta(days=10))
    last_sync_set(instances[:1], now - dt.timedelta(hours=1))
    last_sync_set(instances[1:2], now - dt.timedelta(days=5))
    return customer, [instance.pk for instance in instances], now


def test_lists_order_and_filter_instances_by_their_last_sync(
    admin_client, three_instances, django_assert_max_num_queries
):
    customer, (recent, stale, never), now = three_instances
    assert [i.pk for i in customer_overview(customer, now.date())["instances"].rows] == [recent, stale, never]
    assert {i.pk for i in instances_in_state(Instance.objects.all(), "synced_24h", now)} == {recent}
    assert {i.pk for i in instances_in_state(Instance.objects.all(), "stale", now)} == {stale, never}
    column = InstanceAdmin.list_display.index("last_sync_at") + 1
    for order, expected in ((f"-{column}", [recent, stale, never]), (str(column), [never, stale, recent])):
        page = admin_client.get(f"/admin/subscriptions/instance/?o={order}")
        assert [i.pk for i in page.context["cl"].result_list] == expected, f"never synced is the oldest ({order})"
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get("/admin/subscriptions/instance/")
    assert page.status_code == 200 and "never" in page.content.decode()
    apart = [q["sql"] for q in queries.captured_queries if f'FROM "{LAST_SYNC_TABLE}"' in q["sql"]]
    assert not apart, "the last sync comes with the rows (select_related), not in a query per row"


@pytest.mark.django_db(transaction=True)  # the foreign key is checked when the bookkeeping commits
def test_an_instance_deleted_while_it_syncs_only_skips_the_bookkeeping(activated):
    instance, _ = activated
    seen = Instance.objects.get(pk=instance.pk)  # what the sync read before the delete
    Instance.objects.filter(pk=instance.pk).update(subscription=None)
    Instance.objects.filter(pk=instance.pk).delete()
    observation = sync_observation_start(seen, gitlab_version=seen.gitlab_version)
    assert instance_sync_observed(seen, observation, at=dt.datetime.now(dt.UTC)) is SyncRecord.NOTHING
    assert not InstanceLastSync.objects.exists()


def test_a_slower_request_never_moves_the_last_sync_back(activated):
    instance, _ = activated
    now = dt.datetime.now(dt.UTC)
    slower = Instance.objects.select_related("last_sync").get(pk=instance.pk)  # read before the faster one wrote
    assert slower.last_sync_at is None
    observation = sync_observation_start(instance, gitlab_version=instance.gitlab_version)
    assert instance_sync_observed(instance, observation, at=now) is SyncRecord.TOUCHED
    observation = sync_observation_start(slower, gitlab_version=slower.gitlab_version)
    assert instance_sync_observed(slower, observation, at=now - dt.timedelta(seconds=5)) is SyncRecord.TOUCHED
    assert Instance.objects.select_related("last_sync").get(pk=instance.pk).last_sync_at == now


def test_a_slower_request_that_changes_the_version_never_moves_the_last_sync_back(activated):
    instance, _ = activated
    now = dt.datetime.now(dt.UTC)
    slower = Instance.objects.select_related("last_sync").get(pk=instance.pk)
    observation = sync_observation_start(instance, gitlab_version=instance.gitlab_version)
    assert instance_sync_observed(instance, observation, at=now) is SyncRecord.TOUCHED
    observation = sync_observation_start(slower, gitlab_version="19.2.0-ee")
    assert instance_sync_observed(slower, observation, at=now - dt.timedelta(seconds=5)) is SyncRecord.CHANGED
    stored = Instance.objects.select_related("last_sync").get(pk=instance.pk)
    assert (stored.gitlab_version, stored.last_sync_at) == ("19.2.0-ee", now)


def test_an_instance_deleted_while_it_syncs_a_new_version_only_skips_the_bookkeeping(activated):
    instance, _ = activated
    seen = Instance.objects.get(pk=instance.pk)
    Instance.objects.filter(pk=instance.pk).update(subscription=None)
    Instance.objects.filter(pk=instance.pk).delete()
    observation = sync_observation_start(seen, gitlab_version="19.2.0-ee")
    assert instance_sync_observed(seen, observation, at=dt.datetime.now(dt.UTC)) is SyncRecord.NOTHING
    assert not InstanceLastSync.objects.exists()
