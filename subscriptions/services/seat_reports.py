"""Seat links: what an instance reports of its users and add-on seats, once a day.

What the instance says it purchased is its own word: overage is judged against our purchases (the add-on
purchases active on the day the report arrives), a timestamp from the future is refused, and an add-on we do not
sell is refused."""

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import not_audited
from subscriptions.models import AddOnPurchase, Instance, SeatReport
from subscriptions.writes import assign, field_clip, validated_save
from unit_primitives.catalog import get_catalog

# How far ahead of our clock a report's timestamp may be (clock skew); a report dated later is refused, so it can
# never sort above the reports that follow it.
MAX_CLOCK_AHEAD = dt.timedelta(seconds=300)
# GitLab's own name of an add-on where it differs from the catalog's (its add-on enum calls Duo Pro this).
ADD_ON_ALIASES = {"code_suggestions": "duo_pro"}


@dataclass(frozen=True)
class AddOnMetric:
    add_on_type: str
    purchased_seats: int
    assigned_seats: int


@not_audited("a seat report is itself a record of what the instance reported")
@transaction.atomic
def seat_report_record(
    *,
    instance: Instance,
    reported_at: dt.datetime,
    gitlab_version: str,
    billable_users: int,
    max_historical_users: int,
    hostname: str = "",
    unique_instance_id: str = "",
    add_on_metrics: list[AddOnMetric] = (),
    at: dt.datetime | None = None,
) -> SeatReport:
    """Stores the report as the instance sent it; `has_overage` compares its assigned seats with our purchases.
    Raises ValidationError for a timestamp more than MAX_CLOCK_AHEAD ahead of `at` (now) or an unknown add-on."""
    at = at or timezone.now()
    if reported_at > at + MAX_CLOCK_AHEAD:
        raise ValidationError(
            f"timestamp {reported_at.isoformat()} is ahead of the server's clock by more than "
            f"{int(MAX_CLOCK_AHEAD.total_seconds())} s."
        )
    known = get_catalog().add_ons
    unknown = sorted({m.add_on_type for m in add_on_metrics if _add_on_name(m.add_on_type) not in known})
    if unknown:
        raise ValidationError(f"Unknown add_on_type {', '.join(map(repr, unknown))}; known: {', '.join(known)}.")
    metrics = [
        {"add_on_type": m.add_on_type, "purchased_seats": m.purchased_seats, "assigned_seats": m.assigned_seats}
        for m in add_on_metrics
    ]
    report = validated_save(
        SeatReport(
            instance=instance,
            reported_at=reported_at,
            gitlab_version=field_clip(SeatReport, "gitlab_version", gitlab_version),
            billable_users=billable_users,
            max_historical_users=max_historical_users,
            add_on_metrics=metrics,
            has_overage=_has_overage(instance, add_on_metrics, at),
        )
    )
    updates = {}
    if unique_instance_id and unique_instance_id != instance.unique_instance_id:
        updates["unique_instance_id"] = field_clip(Instance, "unique_instance_id", unique_instance_id)
    if hostname and hostname != instance.hostname:
        updates["hostname"] = field_clip(Instance, "hostname", hostname)
    if updates:
        assign(instance, updates)
        instance.save(update_fields=list(updates))
    return report


def _add_on_name(add_on_type: str) -> str:
    """The catalog's name of a seat link's `add_on_type`."""
    return ADD_ON_ALIASES.get(add_on_type, add_on_type)


def _has_overage(instance: Instance, add_on_metrics: list[AddOnMetric], at: dt.datetime) -> bool:
    """More seats assigned than we sold: the quantities of the subscription's purchases active on the day (UTC), never
    the `purchased_seats` the instance claims."""
    if not add_on_metrics:
        return False
    day = at.astimezone(dt.UTC).date()
    purchased: dict[str, int] = {}
    rows = AddOnPurchase.objects.active_on(day).filter(subscription_id=instance.subscription_id)
    for add_on, quantity in rows.values_list("add_on", "quantity"):
        purchased[add_on] = purchased.get(add_on, 0) + quantity
    return any(m.assigned_seats > purchased.get(_add_on_name(m.add_on_type), 0) for m in add_on_metrics)
