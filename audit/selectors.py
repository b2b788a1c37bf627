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


def audit_events_matching_text(term: str) -> QuerySet:
    """Ids of the events of the actor `term` (as shown), or whose object's or customer's name (as it was at the
    time) contains `term` in any case: the union of three searches, each served by an index on PostgreSQL (the
    names by trigram indexes; an OR would scan the trail)."""
    by_actor = audit_events_filtered(actor=term).order_by().values("pk")
    by_object = AuditEvent.objects.filter(object_repr__icontains=term).order_by().values("pk")
    by_customer = AuditEvent.objects.filter(customer_name__icontains=term).order_by().values("pk")
    return by_actor.union(by_object, by_customer)


def audit_events_of_customer(customer_id: int, limit: int = RECENT_EVENTS) -> list[AuditEvent]:
    """The newest events of anything the customer owns (or owned), one index range scan (customer, time)."""
    return list(AuditEvent.objects.filter(customer_id=customer_id)[:limit])


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
        "customer_id": event.customer_id,
        "customer_name": event.customer_name,
        "changes": event.changes,
        "reason": event.reason,
        "request_id": event.request_id,
        "client_address": event.client_address,
    }
