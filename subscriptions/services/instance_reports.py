"""What an instance tells us in passing on every sync: written rarely, never failing the sync."""

import datetime as dt
import enum
import functools
import logging
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction

from audit.services import not_audited
from config.postgres import prepared_cursor
from config.unavailable import TRANSIENT_FAILURES
from subscriptions.models import Instance, InstanceIdSighting, InstanceLastSync
from subscriptions.services.last_sync_batch import last_sync_batch, last_sync_batching
from subscriptions.writes import assign, field_clip

logger = logging.getLogger(__name__)

# What an instance tells us in passing (last sync, headers, last error) is written at most this often, so the hot
# path stays read-only between writes.
SYNC_RECORD_INTERVAL = dt.timedelta(minutes=1)
# Distinct foreign instance ids kept per license key: enough to show a clone, bounded against a caller cycling ids.
SIGHTINGS_PER_INSTANCE = 20


class SyncRecord(enum.Enum):
    NOTHING = "nothing"  # synced less than SYNC_RECORD_INTERVAL ago (or the database is unreachable): nothing written
    TOUCHED = "touched"  # only bookkeeping written (last sync, headers): not an entitlement input
    CHANGED = "changed"  # version or host name changed: saved, listeners notified


@dataclass
class SyncObservation:
    """What one sync saw, gathered while it runs and recorded once at its end (`instance_sync_observed`).

    Made by `sync_observation_start`, which also shows the instance's reported version and host name to the rest of
    the sync (the version is an entitlement input), and remembers what they were."""

    recorded_version: str  # as the instance row has them
    recorded_hostname: str
    deployment_type: str
    seen_instance_id: str
    previous_sync_at: dt.datetime | None  # the instance's last sync before this one (how often it comes back)
    refusal: str = ""  # the refusal the sync answered with, if any (kept as the instance's last error)

    def refused(self, message: str) -> None:
        self.refusal = field_clip(Instance, "last_error", message)


@not_audited("writes nothing: what a sync saw is recorded at its end by instance_sync_observed")
def sync_observation_start(
    instance: Instance,
    *,
    gitlab_version: str,
    hostname: str = "",
    deployment_type: str = "",
    seen_instance_id: str = "",
) -> SyncObservation:
    observation = SyncObservation(
        recorded_version=instance.gitlab_version,
        recorded_hostname=instance.hostname,
        deployment_type=field_clip(Instance, "deployment_type", deployment_type or instance.deployment_type),
        seen_instance_id=field_clip(
            Instance, "last_seen_instance_id", seen_instance_id or instance.last_seen_instance_id
        ),
        previous_sync_at=instance.last_sync_at,
    )
    instance.gitlab_version = field_clip(Instance, "gitlab_version", gitlab_version or instance.gitlab_version)
    instance.hostname = field_clip(Instance, "hostname", hostname or instance.hostname)
    return observation


@not_audited("what an instance reports about itself: kept on the instance row, no one's decision")
def instance_sync_observed(
    instance: Instance, observation: SyncObservation, *, at: dt.datetime, synced: bool = True
) -> SyncRecord:
    """Records what a sync saw, in one statement, only when something changed or is due: a version or host-name
    change at once (it changes scopes: saved, listeners notified); otherwise the last sync (`synced`: the sync was
    the bound instance's) at most once per SYNC_RECORD_INTERVAL, and a refusal when its message changed or is due.

    The last sync goes to its own narrow row (`InstanceLastSync`); the instance row is written only when a value it
    holds changes (the headers, a refusal), so the hourly sync of an instance that sends the same headers writes
    that one narrow row, and on PostgreSQL not even that itself: its last sync joins the process's batch
    (`last_sync_batch`), written within SYNC_RECORD_BATCH_SECONDS. Headers are compared with the row as the sync
    read it (a cached state, at most SYNC_STATE_CACHE_SECONDS old): should a state's store have been lost after a
    write, a header that flipped back meanwhile is written at the next due sync after that state expires, not at
    once.

    The bare update commits without waiting for the write-ahead log's flush (PostgreSQL's synchronous_commit off,
    for this statement's own transaction): it is the instance's bookkeeping, and a crash that loses the last
    moments' only shows an older last sync. Bookkeeping never fails a sync: with the database unreachable a warm
    sync is still served from the cache."""
    changed = (
        instance.gitlab_version != observation.recorded_version or instance.hostname != observation.recorded_hostname
    )
    previous = instance.last_sync_at
    synced_at = at if synced and (changed or previous is None or at - previous >= SYNC_RECORD_INTERVAL) else None
    values = {}
    if synced_at is not None:
        values.update(
            (name, value)
            for name, value in (
                ("deployment_type", observation.deployment_type),
                ("last_seen_instance_id", observation.seen_instance_id),
            )
            if getattr(instance, name) != value
        )
    if observation.refusal and (
        observation.refusal != instance.last_error
        or instance.last_error_at is None
        or at - instance.last_error_at >= SYNC_RECORD_INTERVAL
    ):
        values.update(last_error=observation.refusal, last_error_at=at)
    if not (changed or values or synced_at):
        return SyncRecord.NOTHING
    try:
        if changed:
            _change_saved(instance, values, synced_at)
        elif values or not (last_sync_batching() and last_sync_batch.keep(instance.pk, synced_at)):
            _bookkeeping_update(instance.pk, values, synced_at)
    except TRANSIENT_FAILURES:
        logger.warning(
            "sync bookkeeping skipped: the database or cache is unavailable", extra={"instance": instance.pk}
        )
        return SyncRecord.NOTHING
    except IntegrityError:  # the instance was deleted while it synced: nothing left to keep its last sync for
        logger.warning("sync bookkeeping skipped: the instance is gone", extra={"instance": instance.pk})
        return SyncRecord.NOTHING
    assign(instance, values)
    if synced_at is not None:
        instance.last_sync = InstanceLastSync(instance_id=instance.pk, at=synced_at)
    return SyncRecord.CHANGED if changed else SyncRecord.TOUCHED


def _change_saved(instance: Instance, values: dict, synced_at: dt.datetime | None) -> None:
    """Saves a version or host-name change (a save: the entitlement listeners hear of it) with the bookkeeping due,
    and the last sync with it, as the change commits. The row is locked first, so that a change of an instance
    deleted meanwhile fails as a gone instance (IntegrityError), as the bare update does."""
    with transaction.atomic():
        if not Instance.objects.select_for_update(no_key=True).filter(pk=instance.pk).exists():
            raise IntegrityError(f"instance {instance.pk} was deleted while it synced")
        assign(instance, values)
        instance.save(update_fields=["gitlab_version", "hostname", *values])
        if synced_at is not None:
            _last_sync_moved_forward(instance.pk, synced_at)


def _bookkeeping_update(instance_id: int, values: dict, synced_at: dt.datetime | None) -> None:
    """Bare writes of bookkeeping (no entitlement input: no listener to tell): `values` of the instance row, and its
    last sync (`synced_at`, made or moved). On PostgreSQL one statement, its own transaction, which also turns
    synchronous_commit off for itself."""
    if connection.vendor != "postgresql":
        if values:
            Instance.objects.filter(pk=instance_id).update(**values)
        if synced_at is not None:
            _last_sync_moved_forward(instance_id, synced_at)
        return
    with prepared_cursor() as cursor:
        cursor.execute(
            _bookkeeping_statement(tuple(values), synced_at is not None),
            _bookkeeping_parameters(instance_id, values, synced_at),
        )


def _last_sync_moved_forward(instance_id: int, at: dt.datetime) -> None:
    """Makes an instance's last sync, or moves it to `at` if it is older: never back, so a slower request that
    finishes after a faster one leaves the newer time. The rule of the PostgreSQL upsert, for the other paths."""
    _, made = InstanceLastSync.objects.get_or_create(instance_id=instance_id, defaults={"at": at})
    if not made:
        InstanceLastSync.objects.filter(instance_id=instance_id, at__lt=at).update(at=at)


def _bookkeeping_parameters(instance_id: int, values: dict, synced_at: dt.datetime | None) -> list:
    parameters = [*values.values(), instance_id] if values else []
    return [*parameters, instance_id, synced_at] if synced_at is not None else parameters


@functools.cache
def _bookkeeping_statement(names: tuple[str, ...], synced: bool) -> str:
    """The statement of `_bookkeeping_update` (the models' own names; the values are parameters): the instance row's
    update and the last sync's upsert as parts of one statement, as many as there are."""
    quote = connection.ops.quote_name
    parts = ["asynchronous AS (SELECT set_config('synchronous_commit', 'off', true))"]
    if names:
        table = quote(Instance._meta.db_table)
        assignments = ", ".join(f"{quote(Instance._meta.get_field(name).column)} = %s" for name in names)
        parts.append(f"instance AS (UPDATE {table} SET {assignments} FROM asynchronous WHERE {table}.id = %s)")  # noqa: S608
    if synced:
        table = quote(InstanceLastSync._meta.db_table)
        parts.append(
            f"last_sync AS (INSERT INTO {table} (instance_id, at) SELECT %s, %s FROM asynchronous "  # noqa: S608
            f"ON CONFLICT (instance_id) DO UPDATE SET at = EXCLUDED.at WHERE {table}.at < EXCLUDED.at)"
        )
    return f"WITH {', '.join(parts)} SELECT 1"  # noqa: S608


@not_audited("the last refusal an instance was given: diagnosis, no one's decision")
def instance_error_record(instance: Instance, message: str, *, at: dt.datetime) -> bool:
    """Remembers the last refusal an instance was given (the back office's diagnosis). Written when the message
    changes or at most once per SYNC_RECORD_INTERVAL, so a refused instance retrying costs no write per request.
    Returns whether it wrote (the caller re-stores a cached copy of `instance`)."""
    message = field_clip(Instance, "last_error", message)
    if message == instance.last_error and instance.last_error_at and at - instance.last_error_at < SYNC_RECORD_INTERVAL:
        return False
    values = {"last_error": message, "last_error_at": at}
    try:
        Instance.objects.filter(pk=instance.pk).update(**values)
    except TRANSIENT_FAILURES:
        return False
    assign(instance, values)
    return True


@not_audited("a sighting of a cloned instance: kept in its own table")
def instance_foreign_id_record(instance: Instance, seen_instance_id: str, *, at: dt.datetime) -> None:
    """Notes an X-Gitlab-Instance-Id that contradicts the bound instance (a clone using its license key): at most
    once per SYNC_RECORD_INTERVAL per id, and at most SIGHTINGS_PER_INSTANCE distinct ids per instance."""
    seen = field_clip(InstanceIdSighting, "seen_instance_id", seen_instance_id)
    try:
        sighting = InstanceIdSighting.objects.filter(instance=instance, seen_instance_id=seen).first()
        if sighting is not None:
            if at - sighting.last_seen_at >= SYNC_RECORD_INTERVAL:
                InstanceIdSighting.objects.filter(pk=sighting.pk).update(last_seen_at=at)
            return
        if InstanceIdSighting.objects.filter(instance=instance).count() >= SIGHTINGS_PER_INSTANCE:
            oldest = InstanceIdSighting.objects.filter(instance=instance).order_by("last_seen_at")[:1]
            InstanceIdSighting.objects.filter(pk__in=list(oldest.values_list("pk", flat=True))).delete()
        with transaction.atomic():
            InstanceIdSighting.objects.create(
                instance=instance, seen_instance_id=seen, first_seen_at=at, last_seen_at=at
            )
    except IntegrityError:  # the same id recorded by a concurrent request: already noted
        return
    except TRANSIENT_FAILURES:
        logger.warning("instance id sighting skipped: the database is unavailable", extra={"instance": instance.pk})
