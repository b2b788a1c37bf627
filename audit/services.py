"""Writes of the audit trail. Every other service calls `audit_record` inside its own transaction, so an event
exists exactly when its change was committed. Secrets never enter an event: a field in SECRET_FIELDS is recorded
as a short digest, enough to see that it changed and to compare two events, useless to an attacker."""

import datetime as dt
import decimal
import hashlib
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from audit.context import Actor, current_actor, current_request_details
from audit.models import AuditEvent

SECRET_FIELDS = frozenset({"activation_code", "license_key_digest", "private_key_encrypted", "token_encrypted"})
# Bulky and public, or bookkeeping no one decides: left out of snapshots.
UNRECORDED_FIELDS = frozenset({"public_jwk", "updated_at"})


def not_audited(why: str) -> Callable:
    """Marks a service whose writes are not decisions (what an instance reports about itself, caches, job
    bookkeeping): the audit registry test accepts it without an event, and `why` says so to the reader."""

    def mark(function):
        function.not_audited = why
        return function

    return mark


def secret_digest(value) -> str | None:
    if value in (None, "", b""):
        return None
    raw = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:12]


def _plain(value):
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return secret_digest(value)
    return value


def audit_snapshot(obj: models.Model) -> dict:
    """The object's recordable fields as JSON values (a foreign key as its id, a secret as its digest)."""
    snapshot = {}
    for field in obj._meta.concrete_fields:
        if field.primary_key or field.name in UNRECORDED_FIELDS:
            continue
        value = getattr(obj, field.attname)
        snapshot[field.name] = secret_digest(value) if field.name in SECRET_FIELDS else _plain(value)
    return snapshot


def audit_changes(before: dict, after: dict) -> dict:
    """{field: [before, after]} for the fields whose value differs."""
    blank = (None, "", [], {})
    return {
        name: [before.get(name), after.get(name)]
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name) and not (before.get(name) in blank and after.get(name) in blank)
    }


def audit_record(
    action: str,
    obj: models.Model | None = None,
    *,
    object_type: str = "",
    object_id: str = "",
    changes: dict | None = None,
    reason: str = "",
    actor: Actor | None = None,
    at: dt.datetime | None = None,
) -> AuditEvent:
    """One event, in the caller's transaction (refused outside one: an event must live and die with its change)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record runs inside the transaction of the change it records")
    actor = actor or current_actor()
    request_id, address = current_request_details()
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(obj.pk)
    customer = getattr(obj, "audit_customer", None)  # the models that belong to a customer say which
    return AuditEvent.objects.create(
        at=at or timezone.now(),
        actor_kind=actor.kind,
        actor_name=actor.name[:150],
        actor_user_id=actor.user_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:64],
        object_repr=str(obj)[:200] if obj is not None else "",
        customer_id=customer.pk if customer is not None else None,
        customer_name=str(customer)[:200] if customer is not None else "",
        changes=changes or {},
        reason=reason,
        request_id=request_id,
        client_address=address,
    )


def audit_record_change(
    action: str, obj: models.Model, before: dict, *, reason: str = "", actor: Actor | None = None, at=None
) -> bool:
    """Records `obj`'s change since `before` (a snapshot; {} for a creation); nothing when nothing changed.
    Returns whether it recorded."""
    changes = audit_changes(before, audit_snapshot(obj))
    if not changes:
        return False
    audit_record(action, obj, changes=changes, reason=reason, actor=actor, at=at)
    return True


# On PostgreSQL nothing younger than this is ever purged, whatever the setting (the purge function's floor).
AUDIT_RETENTION_FLOOR_DAYS = 30


def _delete_before(expired, cutoff: dt.datetime) -> int:
    if connection.vendor != "postgresql":
        return expired.delete()[0]
    with connection.cursor() as cursor:  # the runtime role may not DELETE: the owner's function does, within bounds
        cursor.execute("SELECT audit_events_purge(%s)", [cutoff])
        return cursor.fetchone()[0]


@transaction.atomic
def audit_purge(*, at: dt.datetime | None = None) -> int:
    """Deletes events older than ISSUER_AUDIT_RETENTION_DAYS (unset: keep forever) and records the purge itself.

    On PostgreSQL the runtime role holds no DELETE on the table: the purge calls `audit_events_purge`, a function
    owned by the role that migrates, which deletes nothing younger than AUDIT_RETENTION_FLOOR_DAYS by the database's
    own clock; no admin page, API or connection setting can delete an event.
    """
    days = settings.ISSUER_AUDIT_RETENTION_DAYS
    if not days:
        return 0
    at = at or timezone.now()
    cutoff = at - dt.timedelta(days=days)
    expired = AuditEvent.objects.filter(at__lt=cutoff)
    span = expired.aggregate(oldest=models.Min("at"), newest=models.Max("at"))
    if span["oldest"] is None:
        return 0
    purged = _delete_before(expired, cutoff)
    audit_record(
        "audit.purge",
        object_type="auditevent",
        changes={
            "events": [purged, 0],
            "oldest": [_plain(span["oldest"]), None],
            "newest": [_plain(span["newest"]), None],
        },
        reason=f"older than the retention of {days} days (before {cutoff.isoformat()})",
        at=at,
    )
    return purged
