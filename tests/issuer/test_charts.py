"""The charts' data: what Chart.js draws and the tables show, the key timeline's lanes, and the dashboard's live
counts before the first rollup (bounded by the fleet's size)."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from issuer.backoffice import selectors
from issuer.backoffice.charts import Chart, Series, key_timeline_chart, stale_chart, versions_chart
from issuer.fleet.services import fleet_rollup_run
from issuer.keys.selectors import signing_key_timeline
from issuer.keys.services import signing_key_create, signing_key_ensure_active
from subscriptions.models import Instance
from subscriptions.services import instance_activate
from tests.factories import AddOnPurchaseFactory
from tests.helpers import last_sync_set, mint_token

NOW = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)


def test_a_chart_carries_its_values_its_table_rows_and_a_summary():
    chart = Chart(
        "c", "A chart", "bar", ["a", "b"], [Series("x", [3, 7]), Series("y", [5, 5], outlined=True)], "k", "n"
    )
    assert chart.rows == [("a", [3, 5]), ("b", [7, 5])]
    assert chart.data()["series"][1] == {"name": "y", "values": [5, 5], "outlined": True}
    assert "x: total 10, highest 7 at b" in chart.summary and chart.summary.startswith("2 points")
    assert not chart.empty and Chart("e", "E", "bar", ["a"], [Series("x", [0])], "", "").empty


def test_versions_sort_numerically_and_a_single_day_is_one_point():
    chart = versions_chart({"19.10": 1, "19.2": 4, "18.11": 2})
    assert chart.labels == ["18.11", "19.2", "19.10"]
    single = stale_chart([(NOW.date(), 3)])
    assert single.labels == ["11-29"] and single.series[0].values == [3] and single.title.endswith("last 1 day")


@pytest.mark.django_db
def test_the_key_timeline_has_a_lane_per_key_the_phases_and_the_next_action():
    active = signing_key_ensure_active(at=NOW - dt.timedelta(days=30))
    pending = signing_key_create(at=NOW - dt.timedelta(hours=10))
    chart = key_timeline_chart(signing_key_timeline(), [], NOW)
    assert [lane.split("…")[0] for lane in chart.lanes] == [active.kid[:10], pending.kid[:10]]
    signing = next(bar for bar in chart.bars if bar["phase"] == "signing")
    assert signing["start"] < chart.now < signing["end"], "still signing: on past now"
    assert [marker["shape"] for marker in chart.markers] == ["due"]
    assert chart.next_action.startswith(f"Next: activate {pending.kid[:12]}")
    overdue = key_timeline_chart(signing_key_timeline(), [], NOW + dt.timedelta(days=90))
    assert overdue.next_action.startswith("Overdue: activate")


def _small_fleet(count: int, now):
    signing_key_ensure_active(at=now - dt.timedelta(days=5))
    for n in range(count):
        subscription = AddOnPurchaseFactory().subscription
        activation = instance_activate(
            activation_code=subscription.activation_code,
            instance_identifier=str(uuid.uuid4()),
            gitlab_version=f"19.{n}.0",
        )
        mint_token(activation.instance, at=now - dt.timedelta(days=n))
    last_sync_set(Instance.objects.all(), now - dt.timedelta(minutes=5))


@pytest.mark.django_db
def test_before_the_first_rollup_a_small_fleet_is_counted_live():
    now = timezone.now()
    _small_fleet(2, now)
    charts = {chart.slug: chart for chart in selectors.dashboard(now)["charts"]}
    assert all(chart.note.startswith("Counted now") for chart in charts.values())
    assert charts["tokens-per-day"].series[0].values[-2:] == [1, 1]
    assert sum(charts["syncs-per-hour"].series[0].values) == 2
    assert charts["instances-by-version"].labels == ["19.0", "19.1"]
    assert charts["stale-instances"].series[0].values == [0] and len(charts["stale-instances"].labels) == 1
    fleet_rollup_run(at=now)
    charts = {chart.slug: chart for chart in selectors.dashboard(now)["charts"]}
    assert all(chart.note == "" for chart in charts.values()), "from the rollups once they exist"
    assert sum(charts["tokens-per-day"].series[0].values) >= 1


@pytest.mark.django_db
def test_a_fleet_above_the_bound_waits_for_the_rollup(monkeypatch):
    from issuer.fleet import selectors as fleet_selectors

    now = timezone.now()
    _small_fleet(2, now)
    monkeypatch.setattr(fleet_selectors, "LIVE_COUNT_MAX_INSTANCES", 1)
    charts = selectors.dashboard(now)["charts"]
    assert all(chart.note.startswith("Waiting for the first rollup") for chart in charts)
    assert all(chart.empty for chart in charts)
