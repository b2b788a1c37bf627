"""The server-side pictures: geometry that fits its box, values that stay readable without colour."""

import datetime as dt

import pytest

from issuer.backoffice.charts import bar_chart, key_timeline_picture
from issuer.keys.selectors import signing_key_timeline
from issuer.keys.services import signing_key_create, signing_key_ensure_active

NOW = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)


def test_bars_scale_to_the_highest_value_and_keep_their_values():
    chart = bar_chart("c", "A chart", [("a", 0), ("b", 5), ("c", 10)], width=300, height=100)
    assert [bar.value for bar in chart.bars] == [0, 5, 10]
    tallest = max(chart.bars, key=lambda bar: bar.height)
    assert tallest.value == 10 and tallest.y + tallest.height == pytest.approx(chart.baseline)
    assert chart.bars[1].height == pytest.approx(tallest.height / 2)
    assert all(bar.x >= 0 and bar.x + bar.width <= chart.width for bar in chart.bars)
    assert not chart.empty and bar_chart("e", "Empty", [("a", 0)]).empty


@pytest.mark.django_db
def test_the_key_timeline_has_a_lane_per_key_a_now_line_and_the_next_action():
    active = signing_key_ensure_active(at=NOW - dt.timedelta(days=30))
    pending = signing_key_create(at=NOW - dt.timedelta(hours=10))
    picture = key_timeline_picture(signing_key_timeline(), [], NOW, width=600)
    assert [lane.kid for lane in picture.lanes] == [active.kid, pending.kid]
    assert 0 < picture.now_x < 600
    signing = next(segment for segment in picture.lanes[0].segments if segment.phase == "signing")
    assert signing.x < picture.now_x < signing.x + signing.width  # still signing: on past now
    assert picture.next_action.startswith(f"Next: activate {pending.kid[:12]}")
    overdue = key_timeline_picture(signing_key_timeline(), [], NOW + dt.timedelta(days=90), width=600)
    assert overdue.next_action.startswith("Overdue: activate")
