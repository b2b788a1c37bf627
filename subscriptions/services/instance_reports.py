"""What an instance tells us in passing on every sync: written rarely, never failing the sync."""

import datetime as dt
import enum
import logging

from django.db import IntegrityError, transaction

from audit.services import not_audited
from config.unavailable import TRANSIENT_FAILURES
from subscriptions.models import Instance, InstanceIdSighting
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


@not_audited("what an instance reports about itself: kept on the instance row, no one's decision")
def instance_sync_record(
    instance: Instance,
    *,
    gitlab_version: str,
    hostname: str = "",
    deployment_type: str = "",
    seen_instance_id: str = "",
    at: dt.datetime,
) -> SyncRecord:
    """Notes what a sync told us. A version change is written at once (it changes scopes); otherwise the row is
    touched at most once per SYNC_RECORD_INTERVAL, with a bare update (no entitlement input changes).

    Bookkeeping never fails a sync: with the database unreachable a warm sync is still served from the cache.
    """
    gitlab_version = field_clip(Instance, "gitlab_version", gitlab_version or instance.gitlab_version)
    hostname = field_clip(Instance, "hostname", hostname or instance.hostname)
    changed = gitlab_version != instance.gitlab_version or hostname != instance.hostname
    due = instance.last_sync_at is None or at - instance.last_sync_at >= SYNC_RECORD_INTERVAL
    if not (changed or due):
        return SyncRecord.NOTHING
    bookkeeping = {
        "last_sync_at": at,
        "deployment_type": field_clip(Instance, "deployment_type", deployment_type or instance.deployment_type),
        "last_seen_instance_id": field_clip(
            Instance, "last_seen_instance_id", seen_instance_id or instance.last_seen_instance_id
        ),
    }
    try:
        with transaction.atomic():
            if changed:
                instance.gitlab_version, instance.hostname = gitlab_version, hostname
                assign(instance, bookkeeping)
                instance.save(update_fields=["gitlab_version", "hostname", *bookkeeping])
                return SyncRecord.CHANGED
            Instance.objects.filter(pk=instance.pk).update(**bookkeeping)
    except TRANSIENT_FAILURES:
        logger.warning(
            "sync bookkeeping skipped: the database or cache is unavailable", extra={"instance": instance.pk}
        )
        return SyncRecord.NOTHING
    assign(instance, bookkeeping)
    return SyncRecord.TOUCHED


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
