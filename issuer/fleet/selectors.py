"""Reads of the fleet's rollups: the dashboard's counts and their freshness, and daily series for charts."""

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncDate, TruncHour
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY

from config.signed_cache import signed_cache_get
from issuer.models import FleetCount, IssuedToken
from subscriptions.models import Customer, Instance, Subscription
from subscriptions.selectors import (
    instances_cloned_count,
    instances_in_state,
    seat_reports_latest,
    seat_reports_latest_with_overage,
)

# An instance counts as active for the version chart when it synced within this window.
ACTIVE_WITHIN = dt.timedelta(days=7)
VERSION_METRIC = "instances_by_version:"


def day_start(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def hour_start(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def stale_instances(at: dt.datetime):
    """Bound instances whose access data GitLab considers stale: no sync for 3 days (or never, activated earlier)."""
    return instances_in_state(Instance.objects.all(), "stale", at)


def fleet_gauges(at: dt.datetime) -> dict[str, int]:
    """The dashboard's counts at `at`, each one indexed aggregate (the rollup job's work, or a fresh install's
    dashboard before the job first ran)."""
    bound = Instance.objects.filter(subscription__isnull=False)
    return {
        "customers": Customer.objects.count(),
        "active_subscriptions": Subscription.objects.active_on(at.date()).count(),
        "instances_synced_24h": instances_in_state(bound, "synced_24h", at).count(),
        "stale_instances": stale_instances(at).count(),
        "tokens_issued_24h": IssuedToken.objects.filter(issued_at__gte=at - dt.timedelta(hours=24)).count(),
        "cloned_instances": instances_cloned_count(at),
        "overage_instances": seat_reports_latest_with_overage().count(),
    }


def fleet_versions(at: dt.datetime) -> dict[str, int]:
    """Active instances by GitLab major.minor version."""
    rows = (
        Instance.objects.filter(subscription__isnull=False, last_sync__at__gte=at - ACTIVE_WITHIN)
        .values("gitlab_version")
        .annotate(n=Count("id"))
    )
    by_minor = Counter()
    for row in rows:
        by_minor[".".join(row["gitlab_version"].split(".")[:2]) or "unknown"] += row["n"]
    return {f"{VERSION_METRIC}{version}": count for version, count in by_minor.items()}


PARTITION_PREFIX = "issuer_issuedtoken_y"


def token_partitions() -> dict[str, dt.datetime]:
    """The monthly partitions of the token records (name -> first moment of its month), oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'issuer_issuedtoken'::regclass"
        )
        names = sorted(name for (name,) in cursor.fetchall() if name.startswith(PARTITION_PREFIX))
    return {name: dt.datetime.strptime(name[len(PARTITION_PREFIX) :], "%Ym%m").replace(tzinfo=dt.UTC) for name in names}


SEATS_METRIC = "seats:"  # seats:<add-on>:assigned and seats:<add-on>:purchased
CREDITS_BAND_METRIC = "credits_band:"  # credits_band:<band>: subscriptions by the share of the month's credits used
CREDITS_NEARLY_OUT_KEY = "issuer:fleet:credits_nearly_out"  # the rollup's list of the most used subscriptions


def seat_utilisation() -> dict[str, tuple[int, int]]:
    """Per add-on, (assigned, purchased) seats summed over every instance's latest seat report (the newest received,
    as `seat_reports_latest`; purchased as the instances report it). On PostgreSQL one DISTINCT ON pass; elsewhere
    through the ORM."""
    totals: dict[str, list[int]] = {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT m->>'add_on_type', SUM((m->>'assigned_seats')::bigint), SUM((m->>'purchased_seats')::bigint) "
                "FROM (SELECT DISTINCT ON (instance_id) add_on_metrics FROM subscriptions_seatreport "
                "ORDER BY instance_id, received_at DESC, id DESC) latest, "
                "jsonb_array_elements(latest.add_on_metrics) m GROUP BY 1"
            )
            return {add_on: (int(assigned or 0), int(purchased or 0)) for add_on, assigned, purchased in cursor}
    for metrics in seat_reports_latest().values_list("add_on_metrics", flat=True).iterator():
        for metric in metrics:
            sums = totals.setdefault(metric.get("add_on_type", "?"), [0, 0])
            sums[0] += int(metric.get("assigned_seats", 0))
            sums[1] += int(metric.get("purchased_seats", 0))
    return {add_on: (assigned, purchased) for add_on, (assigned, purchased) in totals.items()}


# Counts per day (not snapshots): the job writes them for yesterday and today.
DAILY_METRICS = ("tokens_issued", "activations")
GAUGES = (
    "customers",
    "active_subscriptions",
    "instances_synced_24h",
    "stale_instances",
    "tokens_issued_24h",
    "cloned_instances",
    "overage_instances",
)


@dataclass(frozen=True)
class FleetSummary:
    counts: dict[str, int]
    computed_at: dt.datetime | None  # None: computed now, because the rollup job has not run yet

    def __getattr__(self, name):  # the template reads summary.customers, summary.stale_instances, ...
        try:
            return self.counts[name]
        except KeyError:
            raise AttributeError(name) from None


def fleet_snapshot() -> dict[str, FleetCount]:
    """Every row of the newest day the rollup job wrote (gauges, versions, seats), by metric: two indexed reads."""
    latest = FleetCount.objects.filter(metric=GAUGES[0]).order_by("-period_start").first()
    if latest is None:
        return {}
    rows = FleetCount.objects.filter(period_start=latest.period_start).exclude(metric__in=DAILY_METRICS)
    return {row.metric: row for row in rows}


def fleet_summary(at: dt.datetime, snapshot: dict[str, FleetCount] | None = None) -> FleetSummary:
    """The newest snapshot of the gauges; a fresh install without one counts live."""
    snapshot = fleet_snapshot() if snapshot is None else snapshot
    gauges = [snapshot[metric] for metric in GAUGES if metric in snapshot]
    if not gauges:
        return FleetSummary(counts=fleet_gauges(at), computed_at=None)
    counts = dict.fromkeys(GAUGES, 0) | {row.metric: row.value for row in gauges}
    return FleetSummary(counts=counts, computed_at=min(row.computed_at for row in gauges))


def fleet_daily_series(metric: str, at: dt.datetime, days: int = 30) -> list[tuple[dt.date, int]]:
    """(day, value) for the last `days` days up to `at`'s, zero where the job recorded nothing."""
    end = at.astimezone(dt.UTC).date()
    start = end - dt.timedelta(days=days - 1)
    recorded = {
        row.period_start.astimezone(dt.UTC).date(): row.value
        for row in FleetCount.objects.filter(metric=metric, period_start__date__gte=start)
    }
    return [(day, recorded.get(day, 0)) for day in (start + dt.timedelta(days=n) for n in range(days))]


class FleetCollector:
    """/metrics: the newest rollup's gauges (stale instances, overage, ...), read from a handful of rows."""

    def describe(self):
        return [GaugeMetricFamily("issuer_fleet", "The dashboard's counts from the newest rollup", labels=["count"])]

    def collect(self):
        family = GaugeMetricFamily("issuer_fleet", "The dashboard's counts from the newest rollup", labels=["count"])
        try:
            rows = [row for metric, row in fleet_snapshot().items() if metric in GAUGES]
            for row in rows:
                family.add_metric([row.metric], row.value)
        except Exception:  # a scrape must never fail the endpoint
            return
        yield family


REGISTRY.register(FleetCollector())


class CreditBandCollector:
    """/metrics: subscriptions per band of the month's credits used, from the newest rollup: a handful of series
    whatever the fleet's size (never one series per subscription)."""

    def _family(self):
        return GaugeMetricFamily(
            "issuer_credits_subscriptions", "Subscriptions by the share of the month's credits used", labels=["band"]
        )

    def describe(self):
        return [self._family()]

    def collect(self):
        family = self._family()
        try:
            for metric, row in fleet_snapshot().items():
                if metric.startswith(CREDITS_BAND_METRIC):
                    family.add_metric([metric.removeprefix(CREDITS_BAND_METRIC)], row.value)
        except Exception:  # a scrape must never fail the endpoint
            return
        yield family


REGISTRY.register(CreditBandCollector())


def credits_nearly_out() -> list[dict]:
    """The rollup's most used subscriptions (80% or more of the month's credits), with their customers."""
    rows = signed_cache_get(CREDITS_NEARLY_OUT_KEY)
    if not isinstance(rows, list):
        return []
    shares = {pk: share for pk, share in rows if isinstance(pk, int)}
    subscriptions = Subscription.objects.select_related("customer").in_bulk(list(shares))
    return [
        {"subscription": subscriptions[pk], "percent": round(share * 100)}
        for pk, share in shares.items()
        if pk in subscriptions
    ]


def fleet_versions_latest(snapshot: dict[str, FleetCount]) -> dict[str, int]:
    return {
        metric.removeprefix(VERSION_METRIC): row.value
        for metric, row in snapshot.items()
        if metric.startswith(VERSION_METRIC)
    }


def fleet_seats_latest(snapshot: dict[str, FleetCount]) -> dict[str, tuple[int, int]]:
    seats: dict[str, list[int]] = {}
    for metric, row in snapshot.items():
        if metric.startswith(SEATS_METRIC):
            add_on, _, which = metric.removeprefix(SEATS_METRIC).rpartition(":")
            seats.setdefault(add_on, [0, 0])[0 if which == "assigned" else 1] = row.value
    return {add_on: (assigned, purchased) for add_on, (assigned, purchased) in seats.items()}


def fleet_hourly_series(metric: str, at: dt.datetime, hours: int = 48) -> list[tuple[dt.datetime, int]]:
    """(hour, value) for the last `hours` hours up to `at`'s, zero where the job recorded nothing."""
    end = hour_start(at)
    start = end - dt.timedelta(hours=hours - 1)
    recorded = {
        row.period_start: row.value for row in FleetCount.objects.filter(metric=metric, period_start__gte=start)
    }
    return [(hour, recorded.get(hour, 0)) for hour in (start + dt.timedelta(hours=n) for n in range(hours))]


# Until the rollup job has run once (a fresh install, `make run` before beat's first tick), a fleet of at most this
# many instances is counted on each dashboard view: five grouped counts over a thousand instances and their last 30
# days of token records. A larger fleet waits for the job (every 5 minutes): counting it on every page view is the
# work the rollups exist to avoid.
LIVE_COUNT_MAX_INSTANCES = 1000


def fleet_small_enough_to_count_live() -> bool:
    """One bounded count (it stops after LIVE_COUNT_MAX_INSTANCES + 1 rows), whatever the fleet's size."""
    return Instance.objects.order_by()[: LIVE_COUNT_MAX_INSTANCES + 1].count() <= LIVE_COUNT_MAX_INSTANCES


def fleet_tokens_per_day_live(at: dt.datetime, days: int = 30) -> list[tuple[dt.date, int]]:
    """What the rollups' `tokens_issued` would say, counted now from the token records."""
    end = at.astimezone(dt.UTC).date()
    start = end - dt.timedelta(days=days - 1)
    counted = dict(
        IssuedToken.objects.filter(issued_at__gte=day_start(at) - dt.timedelta(days=days - 1))
        .annotate(day=TruncDate("issued_at", tzinfo=dt.UTC))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    return [(day, counted.get(day, 0)) for day in (start + dt.timedelta(days=n) for n in range(days))]


def fleet_syncs_per_hour_live(at: dt.datetime, hours: int = 48) -> list[tuple[dt.datetime, int]]:
    """Bound instances by the hour of their last sync (what each hour's rollup row records when the job runs)."""
    end = hour_start(at)
    start = end - dt.timedelta(hours=hours - 1)
    counted = dict(
        Instance.objects.filter(subscription__isnull=False, last_sync__at__gte=start)
        .annotate(hour=TruncHour("last_sync__at", tzinfo=dt.UTC))
        .values("hour")
        .annotate(n=Count("pk"))
        .values_list("hour", "n")
    )
    return [(hour, counted.get(hour, 0)) for hour in (start + dt.timedelta(hours=n) for n in range(hours))]


def fleet_versions_live(at: dt.datetime) -> dict[str, int]:
    return {metric.removeprefix(VERSION_METRIC): count for metric, count in fleet_versions(at).items()}
