"""The fleet's rollups: counts the dashboard shows, computed by a periodic job into a small table (`FleetCount`)
instead of by every page view over a million instances. Each run recomputes today's and the current hour's rows
(and finishes yesterday's daily counts), so a run is idempotent and a missed run loses nothing but freshness."""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from audit.services import not_audited
from issuer.fleet.selectors import VERSION_METRIC, day_start, fleet_gauges, fleet_versions, hour_start
from issuer.models import FleetCount, IssuedToken
from subscriptions.models import Instance


def _daily(metric_filter, day: dt.datetime) -> int:
    return metric_filter(day, day + dt.timedelta(days=1)).count()


DAILY = {
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
    rows = [(metric, today, value) for metric, value in {**fleet_gauges(at), **fleet_versions(at)}.items()]
    for day in (today - dt.timedelta(days=1), today):
        rows.extend((metric, day, _daily(query, day)) for metric, query in DAILY.items())
    hour = hour_start(at)
    synced = Instance.objects.filter(subscription__isnull=False, last_sync_at__gte=hour).count()
    rows.append(("instances_synced", hour, synced))
    FleetCount.objects.filter(metric__startswith=VERSION_METRIC, period_start=today).delete()  # gone versions
    FleetCount.objects.bulk_create(
        [FleetCount(metric=m, period_start=start, value=v, computed_at=at) for m, start, v in rows],
        update_conflicts=True,
        unique_fields=["metric", "period_start"],
        update_fields=["value", "computed_at"],
    )
    return len(rows)
