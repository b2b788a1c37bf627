"""Reads of the audit trail: the recent events of one object (the back-office pages), the filtered list (admin
API, export), and an event as plain data."""

import datetime as dt
from urllib.parse import urlencode

from django.db.models import Model, QuerySet

from audit.models import AuditEvent

RECENT_EVENTS = 20


def audit_events_of(obj: Model, limit: int = RECENT_EVENTS) -> list[AuditEvent]:
    """`obj`'s newest events, one index range scan (object type, id, time)."""
    return list(AuditEvent.objects.filter(object_type=obj._meta.model_name, object_id=str(obj.pk))[:limit])


def audit_context(obj: Model) -> dict:
    """What the `admin/audit/_events.html` fragment needs to show `obj`'s recent events."""
    return {
        "events": audit_events_of(obj),
        "events_query": f"?{urlencode({'object_type': obj._meta.model_name, 'object_id': obj.pk})}",
    }


def audit_events_of_type(object_type: str, limit: int = RECENT_EVENTS) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(object_type=object_type)[:limit])


def audit_events_filtered(
    *,
    actor: str = "",
    action: str = "",
    object_type: str = "",
    object_id: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[AuditEvent]:
    """Events matching every filter given: an actor as shown (`alice`, `cli:root`, `job:issuer.tasks...`), an
    action, an object, and a half-open time range [since, until)."""
    events = AuditEvent.objects.all()
    if actor:
        kind, _, name = actor.partition(":")
        if name and kind in AuditEvent.ActorKind.values:
            events = events.filter(actor_kind=kind, actor_name=name)
        else:
            events = events.filter(actor_kind=AuditEvent.ActorKind.USER, actor_name=actor)
    if action:
        events = events.filter(action=action)
    if object_type:
        events = events.filter(object_type=object_type)
    if object_id:
        events = events.filter(object_id=object_id)
    if since:
        events = events.filter(at__gte=since)
    if until:
        events = events.filter(at__lt=until)
    return events


def audit_event_data(event: AuditEvent) -> dict:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "actor_kind": event.actor_kind,
        "actor_user_id": event.actor_user_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "changes": event.changes,
        "reason": event.reason,
        "request_id": event.request_id,
        "client_address": event.client_address,
    }
