"""Last syncs written in batches (issue 29): on PostgreSQL the hourly sync of an instance that sends the same
headers leaves its last sync to its process's writer, which writes them all in one statement, forward only."""

import datetime as dt
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import time_machine
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from subscriptions.models import Instance, InstanceLastSync
from subscriptions.services import SyncRecord, instance_sync_observed, sync_observation_start
from subscriptions.services import last_sync_batch as batching
from subscriptions.services.last_sync_batch import last_sync_batch, last_sync_batching, last_syncs_batched
from tests.factories import AddOnPurchaseFactory
from tests.helpers import (
    GITLAB_19_HEADERS,
    SYNC_QUERY,
    free_port,
    gunicorn_as_production,
    instance_activated,
    postgres_only,
    signing_backend_environment,
    sync,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def batch_afresh(settings):
    """Each test with its own batch and writer (a writer started here ends when the test does)."""
    last_sync_batch.reset()
    yield
    last_sync_batch.reset()


@pytest.fixture
def now() -> dt.datetime:
    """Read when the test runs (the shifted-clock run moves the clock after the modules are imported)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def batched(settings):
    settings.SYNC_RECORD_BATCH_SECONDS = 3600  # the writer sleeps: the test writes when it chooses


@pytest.fixture
def activated_many(signing_key):
    def made(count: int) -> list[Instance]:
        return [
            instance_activated(AddOnPurchaseFactory(add_on="duo_enterprise").subscription.activation_code).instance
            for _ in range(count)
        ]

    return made


def _synced_an_hour_later(client, activated, now, **changed_headers) -> list[str]:
    """A sync at now, its last sync written; then the sync an hour later: the statements it sent."""
    instance, key = activated
    headers = {**GITLAB_19_HEADERS, "X-Gitlab-Instance-Id": str(instance.instance_identifier)}
    with time_machine.travel(now, tick=False):
        sync(client, key, "19.1.0-ee", **headers)
    last_sync_batch.write()
    with time_machine.travel(now + dt.timedelta(hours=1), tick=False), CaptureQueriesContext(connection) as queries:
        response, _ = sync(client, key, "19.1.0-ee", **{**headers, **changed_headers})
    assert response.status_code == 200
    return [query["sql"] for query in queries.captured_queries]


def _last_sync(instance) -> dt.datetime | None:
    return InstanceLastSync.objects.filter(instance=instance).values_list("at", flat=True).first()


def _counted(result: str) -> float:
    return last_syncs_batched.labels(result=result)._value.get()


@pytest.mark.django_db
def test_batching_is_for_postgresql_and_a_positive_interval(settings):
    settings.SYNC_RECORD_BATCH_SECONDS = 1
    assert last_sync_batching() is (connection.vendor == "postgresql")
    settings.SYNC_RECORD_BATCH_SECONDS = 0
    assert last_sync_batching() is False


@postgres_only
@pytest.mark.django_db
def test_the_hourly_sync_leaves_its_last_sync_to_the_batch(client, activated, batched, settings, now):
    instance, key = activated
    settings.DATABASE_PREPARED_STATEMENTS = False  # statements logged with their text
    sent = _synced_an_hour_later(client, activated, now)
    written = [sql for sql in sent if InstanceLastSync._meta.db_table in sql]
    assert not [sql for sql in written if not sql.lstrip().startswith("SELECT")], "the sync wrote no last sync itself"
    assert last_sync_batch.pending() == 1 and _last_sync(instance) == now
    assert last_sync_batch.write() == 1
    assert _last_sync(instance) == now + dt.timedelta(hours=1)


@postgres_only
@pytest.mark.django_db
def test_a_changed_header_is_written_by_the_sync_itself(client, activated, batched, now):
    instance, key = activated
    _synced_an_hour_later(client, activated, now, **{"X-Gitlab-Deployment-Type": "dedicated"})
    assert last_sync_batch.pending() == 0
    instance.refresh_from_db()
    assert (instance.deployment_type, _last_sync(instance)) == ("dedicated", now + dt.timedelta(hours=1))


@postgres_only
@pytest.mark.django_db
def test_the_batch_moves_each_last_sync_forward_only_and_skips_deleted_instances(activated_many, batched, now):
    kept, older, gone = activated_many(3)
    InstanceLastSync.objects.create(instance=older, at=now)
    last_sync_batch.keep(kept.pk, now + dt.timedelta(seconds=2))
    last_sync_batch.keep(kept.pk, now + dt.timedelta(seconds=1))  # a slower request's, after the faster one's
    last_sync_batch.keep(older.pk, now - dt.timedelta(minutes=5))
    last_sync_batch.keep(gone.pk, now)
    Instance.objects.filter(pk=gone.pk).update(subscription=None)
    Instance.objects.filter(pk=gone.pk).delete()
    assert last_sync_batch.write() == 1, "one made; one older than its row and one of a deleted instance: neither"
    assert (_last_sync(kept), _last_sync(older)) == (now + dt.timedelta(seconds=2), now)
    assert not InstanceLastSync.objects.filter(instance_id=gone.pk).exists()


@postgres_only
@pytest.mark.django_db
def test_with_the_database_away_the_batch_is_kept_for_the_next_write(activated, batched, monkeypatch, now):
    instance, _ = activated
    last_sync_batch.keep(instance.pk, now)

    def away(batch):
        raise OperationalError("connection refused")

    with monkeypatch.context() as patched, pytest.raises(OperationalError):
        patched.setattr(batching, "last_syncs_write", away)
        last_sync_batch.write()
    last_sync_batch.keep(instance.pk, now - dt.timedelta(seconds=30))  # older than the kept one: not taken
    assert last_sync_batch.pending() == 1
    assert last_sync_batch.write() == 1 and _last_sync(instance) == now


@pytest.mark.django_db
def test_a_process_keeps_at_most_max_pending_instances(batched, monkeypatch, now):
    monkeypatch.setattr(batching, "MAX_PENDING", 2)
    refused = _counted("refused")
    assert [last_sync_batch.keep(instance_id, now) for instance_id in (1, 2, 3)] == [True, True, False]
    assert last_sync_batch.keep(1, now + dt.timedelta(seconds=1)), "one that waits is still moved forward"
    assert last_sync_batch.pending() == 2 and _counted("refused") == refused + 1


@postgres_only
@pytest.mark.django_db
def test_a_sync_the_batch_cannot_keep_writes_its_own_last_sync(activated, batched, monkeypatch, now):
    instance, _ = activated

    def no_thread(thread):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    observation = sync_observation_start(instance, gitlab_version=instance.gitlab_version)
    assert instance_sync_observed(instance, observation, at=now) is SyncRecord.TOUCHED
    assert last_sync_batch.pending() == 0 and _last_sync(instance) == now


def test_after_a_failed_write_the_writer_waits_instead_of_answering_every_wake_up(settings, monkeypatch, now):
    settings.SYNC_RECORD_BATCH_SECONDS = 5  # the first retry comes 10 s after the failure
    monkeypatch.setattr(batching, "BATCH_ROWS", 1)  # every keep wakes the writer
    attempts = []

    def away(batch):
        attempts.append(len(batch))
        raise OperationalError("connection refused")

    monkeypatch.setattr(batching, "last_syncs_write", away)
    last_sync_batch.keep(1, now)
    deadline = time.monotonic() + 60  # a liveness bound for a loaded machine, not a speed target
    while not attempts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert attempts == [1]
    for instance_id in range(2, 12):  # wake-ups while it backs off
        last_sync_batch.keep(instance_id, now)
        time.sleep(0.05)
    assert attempts == [1] and last_sync_batch.pending() == 11, "kept, not hammered"


@pytest.mark.django_db
def test_a_forked_child_starts_with_nothing_of_its_parent(batched, now):
    last_sync_batch.keep(1, now)
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's verdict is its exit code)
        os._exit(0 if last_sync_batch.pending() == 0 else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert last_sync_batch.pending() == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_writer_writes_within_its_interval(activated, settings, now):
    settings.SYNC_RECORD_BATCH_SECONDS = 1
    instance, _ = activated
    last_sync_batch.keep(instance.pk, now)
    deadline = time.monotonic() + 60  # a liveness bound for a loaded machine, not a speed target
    while _last_sync(instance) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _last_sync(instance) == now and last_sync_batch.pending() == 0


@postgres_only
@pytest.mark.wall_clock  # the server's clock is the machine's: the shifted run's subscription has not started there
@pytest.mark.django_db(transaction=True)
def test_a_web_worker_that_exits_gracefully_writes_what_waits(activated, tmp_path):
    """gunicorn as production runs it (config/gunicorn.conf.py), its writer asleep: a restart or a deploy (SIGTERM)
    still leaves the last syncs its workers kept."""
    instance, key = activated
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "DATABASE_OWNER_URL": "",
        "SYNC_RECORD_BATCH_SECONDS": "3600",
        "WEB_CONCURRENCY": "1",
        **signing_backend_environment(),  # under `make test-pkcs11`, the token the test's keys live in
    }
    log = tmp_path / "gunicorn.log"
    with log.open("w") as errors:
        server = subprocess.Popen(
            gunicorn_as_production(port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors
        )
    try:
        body = json.dumps({"query": SYNC_QUERY, "variables": {"licenseKey": key, "gitlabVersion": "17.11.0"}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"})
        deadline = time.monotonic() + 60  # a liveness bound for a loaded machine, not a speed target
        while True:
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    assert b'"token"' in response.read()
                break
            except (ConnectionError, urllib.error.URLError):
                assert time.monotonic() < deadline and server.poll() is None, log.read_text()[-3000:]
                time.sleep(0.2)
        assert _last_sync(instance) is None, "kept by the worker, not written yet"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert server.returncode == 0, log.read_text()[-3000:]
    assert _last_sync(instance) is not None
