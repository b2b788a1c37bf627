"""Seat links: what an instance reports of its users and add-on seats, once a day."""

import datetime as dt
from dataclasses import dataclass

from django.db import transaction

from audit.services import not_audited
from subscriptions.models import Instance, SeatReport
from subscriptions.writes import assign, field_clip, validated_save


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
) -> SeatReport:
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
            has_overage=any(m.assigned_seats > m.purchased_seats for m in add_on_metrics),
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
