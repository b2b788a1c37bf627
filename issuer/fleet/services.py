"""The fleet's rollups: counts the dashboard shows, computed by a periodic job into a small table (`FleetCount`)
instead of by every page view over a million instances. Each run recomputes today's and the current hour's rows
(and finishes yesterday's daily counts), so a run is idempotent and a missed run loses nothing but freshness."""

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from audit.services import audit_record, not_audited
from config.signed_cache import signed_cache_set
from credits.selectors import credit_usage_bands, month_of
from issuer.conf import issuer_settings
from issuer.fleet.selectors import (
    CREDITS_BAND_METRIC,
    CREDITS_NEARLY_OUT_KEY,
    PARTITION_PREFIX,
    SEATS_METRIC,
    VERSION_METRIC,
    day_start,
    fleet_gauges,
    fleet_versions,
    hour_start,
    seat_utilisation,
    token_partitions,
)
from issuer.models import FleetCount, IssuedToken
from subscriptions.models import Instance


def _daily(metric_filter, day: dt.datetime) -> int:
    return metric_filter(day, day + dt.timedelta(days=1)).count()


DAILY = {  # the names are selectors.DAILY_METRICS
    "tokens_issued": lambda start, end: IssuedToken.objects.filter(issued_at__gte=start, issued_at__lt=end),
    "activations": lambda start, end: Instance.objects.filter(activated_at__gte=start, activated_at__lt=end),
}


@not_audited("derived counts, recomputed every run")
@transaction.atomic
def fleet_rollup_run(*, at: dt.datetime | None = None) -> int:
    """Recomputes today's gauges and versions, today's and yesterday's daily counts, and this hour's synced
    instances. Returns the number of rows written."""
    at = at or timezone.now()
    today = day_start(at)
    seats = {
        f"{SEATS_METRIC}{add_on}:{which}": value
        for add_on, pair in seat_utilisation().items()
        for which, value in zip(("assigned", "purchased"), pair, strict=True)
    }
    gauges = fleet_gauges(at)
    bands, nearly_out = credit_usage_bands(month_of(at), gauges["active_subscriptions"])
    credit_bands = {f"{CREDITS_BAND_METRIC}{band}": count for band, count in bands.items()}
    signed_cache_set(CREDITS_NEARLY_OUT_KEY, [[pk, share] for pk, share in nearly_out], 3600)
    rows = [
        (metric, today, value) for metric, value in {**gauges, **fleet_versions(at), **seats, **credit_bands}.items()
    ]
    for day in (today - dt.timedelta(days=1), today):
        rows.extend((metric, day, _daily(query, day)) for metric, query in DAILY.items())
    hour = hour_start(at)
    synced = Instance.objects.filter(subscription__isnull=False, last_sync__at__gte=hour).count()
    rows.append(("instances_synced", hour, synced))
    for prefix in (VERSION_METRIC, SEATS_METRIC, CREDITS_BAND_METRIC):  # versions and add-ons no longer seen
        FleetCount.objects.filter(metric__startswith=prefix, period_start=today).delete()
    FleetCount.objects.bulk_create(
        [FleetCount(metric=m, period_start=start, value=v, computed_at=at) for m, start, v in rows],
        update_conflicts=True,
        unique_fields=["metric", "period_start"],
        update_fields=["value", "computed_at"],
    )
    return len(rows)


# Monthly partitions of the token records (PostgreSQL), created this many months ahead of the current one.
# The partitions are made by `issuer_token_partition_create` (migration issuer 0013), each WITH
# (toast_tuple_target = 8160): a record (about 3.3 kB, most of it the token's ciphertext) stays in its heap row;
# under PostgreSQL's default 2 kB target every insert tried to compress the random ciphertext, failed, and wrote
# it out of line through the TOAST table and its index.
PARTITIONS_AHEAD = 2
DELETE_BATCH = 5000


@dataclass
class RetentionReport:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    deleted: int = 0


def _month_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC)


def _next_month(month: dt.datetime) -> dt.datetime:
    return (month + dt.timedelta(days=32)).replace(day=1)


def _partition_name(month: dt.datetime) -> str:
    return f"{PARTITION_PREFIX}{month:%Y}m{month:%m}"


def _partition_create(cursor, month: dt.datetime) -> None:
    """A month's partition (rows that fell into the default partition meanwhile move into it first), made by the
    owner's function `issuer_token_partition_create`: the runtime role runs no DDL."""
    cursor.execute("SELECT issuer_token_partition_create(%s)", [month.date()])


def _partition_drop(cursor, name: str, month: dt.datetime, days: int) -> None:
    cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [name])
    estimated_rows = max(cursor.fetchone()[0], 0)
    cursor.execute("SELECT issuer_token_partition_drop(%s)", [name])
    audit_record(
        "issuedtoken.partition_drop",
        object_type="issuedtoken",
        object_id=name,
        changes={"records (planner estimate)": [estimated_rows, 0], "month": [f"{month:%Y-%m}", None]},
        reason=f"every record of {month:%Y-%m} is older than the retention of {days} days",
    )


def _batched_delete(older: dt.datetime) -> int:
    deleted = 0
    while batch := list(IssuedToken.objects.filter(issued_at__lt=older).values_list("pk", flat=True)[:DELETE_BATCH]):
        deleted += IssuedToken.objects.filter(pk__in=batch).delete()[0]
    return deleted


@transaction.atomic
def token_records_retain(*, at: dt.datetime | None = None) -> RetentionReport:
    """Keeps token records for ISSUER_TOKEN_RECORD_RETENTION_DAYS. On PostgreSQL: creates the partitions of this
    month and the next PARTITIONS_AHEAD, and drops every month that ended before the cutoff (a month at a time, so
    a record lives up to a month longer). Elsewhere: deletes older records in batches. Every removal is an audit
    event."""
    at = at or timezone.now()
    days = issuer_settings.TOKEN_RECORD_RETENTION_DAYS
    cutoff = at - dt.timedelta(days=days)
    report = RetentionReport()
    if connection.vendor != "postgresql":
        report.deleted = _batched_delete(cutoff)
    else:
        existing = token_partitions()
        with connection.cursor() as cursor:
            # deferred foreign-key checks of rows this transaction wrote would forbid dropping their partition
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            month = _month_start(at.astimezone(dt.UTC).date())
            for _ in range(PARTITIONS_AHEAD + 1):
                if _partition_name(month) not in existing:
                    _partition_create(cursor, month)
                    report.created.append(_partition_name(month))
                month = _next_month(month)
            for name, start in existing.items():
                if _next_month(start) <= cutoff:
                    _partition_drop(cursor, name, start, days)
                    report.dropped.append(name)
        report.deleted = _batched_delete(_month_start(cutoff.date()))  # strays in the default partition
    if report.deleted:
        audit_record(
            "issuedtoken.retention_delete",
            object_type="issuedtoken",
            changes={"records": [report.deleted, 0]},
            reason=f"older than the retention of {days} days",
        )
    return report
