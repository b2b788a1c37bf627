"""The back office's pictures, drawn on the server as SVG geometry the templates render: no JavaScript chart
library, nothing inline for the Content-Security-Policy to refuse, and readable without colour (every bar carries
its value as text, a second series is outlined instead of solid, markers differ by shape)."""

import datetime as dt
from dataclasses import dataclass, field

from issuer.keys.selectors import KeyTimelineEntry, ValidatorRow


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # under the bar (a day, an hour, a version)
    value: int
    hatched: bool = False  # the second series, drawn outlined (dashed) instead of solid


@dataclass(frozen=True)
class BarChart:
    """Vertical bars with their values; `title` and `description` are the SVG's accessible name."""

    slug: str
    title: str
    description: str
    width: int
    height: int
    bars: list[Bar]
    top: int
    legend: list[tuple[str, bool]] = field(default_factory=list)  # (series name, hatched)
    baseline: float = 0

    @property
    def empty(self) -> bool:
        return not any(bar.value for bar in self.bars)


def bar_chart(slug, title, series, *, width=640, height=200, label_every=1, legend=()) -> BarChart:
    """`series`: [(label, value)] or [(label, value, hatched)], one bar each, left to right."""
    pad_top, pad_bottom, pad_side = 22, 28, 8
    rows = [(row[0], row[1], row[2] if len(row) > 2 else False) for row in series]
    top = max([value for _, value, _ in rows] + [1])
    slot = (width - 2 * pad_side) / max(len(rows), 1)
    plot = height - pad_top - pad_bottom
    bars = []
    for index, (label, value, hatched) in enumerate(rows):
        bar_height = plot * value / top
        bars.append(
            Bar(
                x=round(pad_side + index * slot + slot * 0.1, 1),
                y=round(pad_top + plot - bar_height, 1),
                width=round(slot * 0.8, 1),
                height=round(bar_height, 1),
                label=label if index % label_every == 0 else "",
                value=value,
                hatched=hatched,
            )
        )
    total = sum(value for _, value, _ in rows)
    description = f"{len(rows)} bars, total {total}, highest {max((v for _, v, _ in rows), default=0)}."
    return BarChart(slug, title, description, width, height, bars, top, list(legend), baseline=pad_top + plot)


def tokens_per_day_chart(series: list[tuple[dt.date, int]]) -> BarChart:
    return bar_chart(
        "tokens-per-day",
        f"Tokens issued per day, last {len(series)} days",
        [(f"{day:%m-%d}", value) for day, value in series],
        label_every=5,
    )


def syncs_per_hour_chart(series: list[tuple[dt.datetime, int]]) -> BarChart:
    return bar_chart(
        "syncs-per-hour",
        f"Instances synced per hour, last {len(series)} hours",
        [(f"{hour:%H}h", value) for hour, value in series],
        label_every=6,
    )


def versions_chart(versions: dict[str, int]) -> BarChart:
    ordered = sorted(versions.items(), key=lambda item: [int(p) if p.isdigit() else 0 for p in item[0].split(".")])
    return bar_chart("instances-by-version", "Active instances by GitLab version (synced within 7 days)", ordered)


def seats_chart(seats: dict[str, tuple[int, int]]) -> BarChart:
    """Per add-on: assigned (solid) next to purchased (hatched), from each instance's latest seat report."""
    series = []
    for add_on, (assigned, purchased) in sorted(seats.items()):
        series.extend([(add_on, assigned, False), ("", purchased, True)])
    return bar_chart(
        "seat-utilisation",
        "Seat utilisation per add-on: assigned against purchased (latest seat reports)",
        series,
        legend=[("assigned", False), ("purchased", True)],
    )


def stale_chart(series: list[tuple[dt.date, int]]) -> BarChart:
    return bar_chart(
        "stale-instances",
        f"Stale instances (no sync for 3 days), last {len(series)} days",
        [(f"{day:%m-%d}", value) for day, value in series],
        label_every=5,
    )


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    phase: str  # "published", "signing", "retired", "purge-due"


@dataclass(frozen=True)
class Marker:
    x: float
    label: str
    shape: str  # "circle" (has the pending key), "cross" (has not), "diamond" (the next policy action)


@dataclass(frozen=True)
class KeyLane:
    kid: str
    state: str
    y: float
    segments: list[Segment]
    markers: list[Marker]


@dataclass(frozen=True)
class KeyTimelinePicture:
    title: str
    description: str
    width: int
    height: int
    now_x: float
    lanes: list[KeyLane]
    ticks: list[tuple[float, str]]
    next_action: str
    lane_height: int


def key_timeline_picture(
    timeline: list[KeyTimelineEntry],
    validators: list[ValidatorRow],
    now: dt.datetime,
    *,
    width: int = 900,
    lane_height: int = 34,
) -> KeyTimelinePicture:
    """One lane per key: published (pending), signing, retired (still published), and the purge due; a "now" line;
    the next policy action; on the pending key's lane, one marker per validator at its last key-set fetch (circle:
    its set held the key; cross: not yet)."""
    left, right, top = 150, 20, 24
    moments = [now - dt.timedelta(days=7), now + dt.timedelta(days=7)]
    for entry in timeline:
        key = entry.key
        moments += [m for m in (key.created_at, key.activated_at, key.retired_at, key.revoked_at) if m]
        moments += [m for m in (entry.activation_due, entry.purge_due) if m]
    start, end = min(moments), max(moments)
    span = (end - start).total_seconds() or 1

    def x(moment: dt.datetime) -> float:
        return round(left + (width - left - right) * (moment - start).total_seconds() / span, 1)

    lanes, next_actions = [], []
    for index, entry in enumerate(timeline):
        key = entry.key
        segments = []
        signing_from = key.activated_at
        published_until = signing_from or key.revoked_at or key.retired_at or entry.activation_due or now
        segments.append(Segment(x(key.created_at), x(published_until) - x(key.created_at), "published"))
        if signing_from:
            signing_until = key.retired_at or key.revoked_at or end  # still signing: on past the picture's edge
            segments.append(Segment(x(signing_from), x(signing_until) - x(signing_from), "signing"))
        if key.retired_at and not key.revoked_at:
            until = entry.purge_due or now
            segments.append(Segment(x(key.retired_at), x(until) - x(key.retired_at), "retired"))
        markers = []
        if entry.activation_due:
            markers.append(
                Marker(x(entry.activation_due), f"activation due {entry.activation_due:%Y-%m-%d %H:%M}", "diamond")
            )
            next_actions.append((entry.activation_due, f"activate {key.kid[:12]}…"))
            for row in validators:
                fetched = row.validator.last_jwks_at or row.validator.last_seen_at
                has = key.kid in row.validator.kids
                markers.append(
                    Marker(x(fetched), f"{row.validator}: {'has' if has else 'lacks'} it", "circle" if has else "cross")
                )
        if entry.purge_due:
            markers.append(Marker(x(entry.purge_due), f"purge due {entry.purge_due:%Y-%m-%d %H:%M}", "diamond"))
            next_actions.append((entry.purge_due, f"purge {key.kid[:12]}…"))
        lanes.append(KeyLane(key.kid, key.state, top + index * lane_height, segments, markers))
    ticks = []
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    step = dt.timedelta(days=max(1, round(span / 86400 / 8)))
    while day <= end:
        if day >= start:
            ticks.append((x(day), f"{day:%m-%d}"))
        day += step
    upcoming = sorted(next_actions)
    next_action = "Nothing due"
    if upcoming:
        when, what = upcoming[0]
        next_action = f"{'Overdue' if when < now else 'Next'}: {what} at {when:%Y-%m-%d %H:%M} UTC"
    height = top + max(len(lanes), 1) * lane_height + 24
    description = (
        f"{len(lanes)} keys from {start:%Y-%m-%d} to {end:%Y-%m-%d}; now is {now:%Y-%m-%d %H:%M} UTC. {next_action}."
    )
    return KeyTimelinePicture(
        "Signing-key timeline", description, width, height, x(now), lanes, ticks, next_action, lane_height
    )
