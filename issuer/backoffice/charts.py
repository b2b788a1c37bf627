"""The back office's pictures as data: each chart is a title, labels and series, handed to the page as JSON
(`json_script`, no inline script) and drawn in the browser by Chart.js (static/vendor/chart.js-4.6.2, started by
static/issuer/charts.js). Every chart also renders its numbers as a table, for screen readers and for anyone who
wants the values; a second series is drawn outlined and markers differ by shape, so nothing depends on colour."""

import datetime as dt
from dataclasses import dataclass, field

from issuer.keys.selectors import KeyTimelineEntry, ValidatorRow


@dataclass(frozen=True)
class Series:
    name: str
    values: list[int]
    outlined: bool = False  # the second series: drawn outlined instead of solid


@dataclass(frozen=True)
class Chart:
    """Bars or a line over labelled points (days, hours, versions, add-ons)."""

    slug: str
    title: str
    kind: str  # "bar" or "line"
    labels: list[str]
    series: list[Series]
    x_title: str
    y_title: str
    note: str = ""  # where the numbers come from, when not from the newest rollup

    @property
    def empty(self) -> bool:
        return not any(value for series in self.series for value in series.values)

    @property
    def summary(self) -> str:
        """The canvas's accessible description: what a sighted reader takes in at a glance."""
        parts = []
        for series in self.series:
            if not series.values:
                continue
            top = max(series.values)
            at = self.labels[series.values.index(top)]
            parts.append(f"{series.name}: total {sum(series.values)}, highest {top} at {at}")
        points = f"{len(self.labels)} point{'s' if len(self.labels) != 1 else ''}"
        return f"{points}; " + ("; ".join(parts) if parts else "no data") + ". Every value is in the table below."

    @property
    def rows(self) -> list[tuple[str, list[int]]]:
        return [(label, [series.values[index] for series in self.series]) for index, label in enumerate(self.labels)]

    def data(self) -> dict:
        return {
            "kind": self.kind,
            "labels": self.labels,
            "series": [{"name": s.name, "values": s.values, "outlined": s.outlined} for s in self.series],
            "xTitle": self.x_title,
            "yTitle": self.y_title,
        }


def tokens_per_day_chart(series: list[tuple[dt.date, int]], note: str = "") -> Chart:
    return Chart(
        "tokens-per-day",
        f"Tokens issued per day, last {len(series)} days",
        "bar",
        [f"{day:%m-%d}" for day, _ in series],
        [Series("tokens issued", [value for _, value in series])],
        "day (UTC)",
        "tokens",
        note,
    )


def syncs_per_hour_chart(series: list[tuple[dt.datetime, int]], note: str = "") -> Chart:
    return Chart(
        "syncs-per-hour",
        f"Instances synced per hour, last {len(series)} hours",
        "bar",
        [f"{hour:%m-%d %H}h" for hour, _ in series],
        [Series("instances synced", [value for _, value in series])],
        "hour (UTC)",
        "instances",
        note,
    )


def versions_chart(versions: dict[str, int], note: str = "") -> Chart:
    ordered = sorted(versions.items(), key=lambda item: [int(p) if p.isdigit() else 0 for p in item[0].split(".")])
    return Chart(
        "instances-by-version",
        "Active instances by GitLab version (synced within 7 days)",
        "bar",
        [version for version, _ in ordered],
        [Series("instances", [count for _, count in ordered])],
        "GitLab version",
        "instances",
        note,
    )


def seats_chart(seats: dict[str, tuple[int, int]], note: str = "") -> Chart:
    """Per add-on: assigned (solid) next to purchased (outlined), from each instance's latest seat report."""
    ordered = sorted(seats.items())
    return Chart(
        "seat-utilisation",
        "Seat utilisation per add-on: assigned against purchased (latest seat reports)",
        "bar",
        [add_on for add_on, _ in ordered],
        [
            Series("assigned", [assigned for _, (assigned, _) in ordered]),
            Series("purchased", [purchased for _, (_, purchased) in ordered], outlined=True),
        ],
        "add-on",
        "seats",
        note,
    )


def stale_chart(series: list[tuple[dt.date, int]], note: str = "") -> Chart:
    return Chart(
        "stale-instances",
        f"Stale instances (no sync for 3 days), last {len(series)} day{'s' if len(series) != 1 else ''}",
        "line",
        [f"{day:%m-%d}" for day, _ in series],
        [Series("stale instances", [value for _, value in series])],
        "day (UTC)",
        "instances",
        note,
    )


def seat_reports_chart(reports) -> Chart | None:
    """One instance's seat reports over time: assigned against purchased add-on seats; None without a report."""
    if not reports:
        return None
    return Chart(
        "instance-seats",
        "Add-on seats reported: assigned against purchased",
        "line",
        [f"{report.reported_at:%m-%d %H:%M}" for report in reports],
        [
            Series("assigned", [sum(m.get("assigned_seats", 0) for m in r.add_on_metrics) for r in reports]),
            Series(
                "purchased",
                [sum(m.get("purchased_seats", 0) for m in r.add_on_metrics) for r in reports],
                outlined=True,
            ),
        ],
        "report (UTC)",
        "seats",
    )


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class KeyTimelineChart:
    """One lane per key: published (pending), signing, retired (still published) up to the purge; markers for due
    policy actions and, on the pending key's lane, for each validator's last key-set fetch (has it / lacks it)."""

    title: str
    summary: str
    next_action: str
    lanes: list[str]
    bars: list[dict] = field(default_factory=list)  # lane, phase, start, end (ms since the epoch, UTC)
    markers: list[dict] = field(default_factory=list)  # lane, at (ms), shape ("due", "has-key", "lacks-key"), label
    start: int = 0
    end: int = 0
    now: int = 0

    def data(self) -> dict:
        return {
            "kind": "timeline",
            "lanes": self.lanes,
            "bars": self.bars,
            "markers": self.markers,
            "start": self.start,
            "end": self.end,
            "now": self.now,
        }


def key_timeline_chart(
    timeline: list[KeyTimelineEntry], validators: list[ValidatorRow], now: dt.datetime
) -> KeyTimelineChart:
    moments = [now - dt.timedelta(days=7), now + dt.timedelta(days=7)]
    for entry in timeline:
        key = entry.key
        moments += [m for m in (key.created_at, key.activated_at, key.retired_at, key.revoked_at) if m]
        moments += [m for m in (entry.activation_due, entry.purge_due) if m]
    start, end = min(moments), max(moments)
    lanes, bars, markers, next_actions = [], [], [], []
    for entry in timeline:
        key = entry.key
        lane = f"{key.kid[:10]}… {key.state}"
        lanes.append(lane)
        signing_from = key.activated_at
        published_until = signing_from or key.revoked_at or key.retired_at or entry.activation_due or now
        bars.append({"lane": lane, "phase": "published", "start": _ms(key.created_at), "end": _ms(published_until)})
        if signing_from:
            signing_until = key.retired_at or key.revoked_at or end  # still signing: on past the picture's edge
            phase = "revoked" if key.revoked_at else "signing"
            bars.append({"lane": lane, "phase": phase, "start": _ms(signing_from), "end": _ms(signing_until)})
        if key.retired_at and not key.revoked_at:
            until = entry.purge_due or now
            bars.append({"lane": lane, "phase": "retired", "start": _ms(key.retired_at), "end": _ms(until)})
        if entry.activation_due:
            label = f"activation due {entry.activation_due:%Y-%m-%d %H:%M} UTC"
            markers.append({"lane": lane, "at": _ms(entry.activation_due), "shape": "due", "label": label})
            next_actions.append((entry.activation_due, f"activate {key.kid[:12]}…"))
            for row in validators:
                fetched = row.validator.last_jwks_at or row.validator.last_seen_at
                has = key.kid in row.validator.kids
                markers.append(
                    {
                        "lane": lane,
                        "at": _ms(fetched),
                        "shape": "has-key" if has else "lacks-key",
                        "label": f"{row.validator}: {'has' if has else 'lacks'} it ({fetched:%Y-%m-%d %H:%M} UTC)",
                    }
                )
        if entry.purge_due:
            label = f"purge due {entry.purge_due:%Y-%m-%d %H:%M} UTC"
            markers.append({"lane": lane, "at": _ms(entry.purge_due), "shape": "due", "label": label})
            next_actions.append((entry.purge_due, f"purge {key.kid[:12]}…"))
    next_action = "Nothing due"
    if next_actions:
        when, what = min(next_actions)
        next_action = f"{'Overdue' if when < now else 'Next'}: {what} at {when:%Y-%m-%d %H:%M} UTC"
    key_count = f"{len(lanes)} key{'s' if len(lanes) != 1 else ''}"
    summary = f"{key_count} from {start:%Y-%m-%d} to {end:%Y-%m-%d}; now is {now:%Y-%m-%d %H:%M} UTC. {next_action}."
    return KeyTimelineChart(
        "Signing-key timeline", summary, next_action, lanes, bars, markers, _ms(start), _ms(end), _ms(now)
    )
