"""The three history charts of a type, as the Overview shows them and the
PDF report prints them: synced and verified percentages, syncs and
verifications per minute with their failures, and bytes downloaded per
second. Points are those of `source.history` (status_history.read, or a
remote site's statusHistory: the same fields)."""
from __future__ import annotations

import datetime as dt

from widgets.charts import HistoryChart, Series

NOT_REPORTED = "Not reported by this site"
GREEN, BLUE, RED, AMBER = "#2e9e5b", "#3b82c4", "#d9534f", "#c98a12"

# (chart name, title after the type's name, kind, unit, [(series, colour, field, dashed, width)])
CHARTS = (
    ("progress", "replicated and verified", "percent", "%", (
        # Synced is wide and below, verified dashed on top: both show where they coincide.
        ("synced %", GREEN, "synced_percentage", False, 4.0),
        ("verified %", BLUE, "verified_percentage", True, 2.0))),
    ("work", "throughput and failures", "count", "per minute", (
        ("syncs", GREEN, "syncs_succeeded_per_minute", False, 3.0),
        ("verifications", BLUE, "verifications_succeeded_per_minute", True, 2.0),
        ("sync failures", RED, "syncs_failed_per_minute", False, 2.0),
        ("verification failures", AMBER, "verifications_failed_per_minute", True, 2.0))),
    ("bytes", "download rate", "bytes", "", (
        ("downloaded", GREEN, "bytes_per_second", False, 2.0),)),
)


def make_charts(relative: bool = True,
                zone: dt.tzinfo | None = None) -> dict[str, HistoryChart]:
    """name -> chart; `relative`: "5 min ago" time labels (on screen) or
    clock times (in print)."""
    return {name: HistoryChart(title, kind, [Series(label, colour, dashed, width,
                                                    label.removesuffix(" %"))
                                             for label, colour, _field, dashed, width in series],
                               unit=unit, relative=relative, zone=zone)
            for name, title, kind, unit, series in CHARTS}


def title_charts(charts: dict[str, HistoryChart], type_title: str) -> None:
    for name, title, *_rest in CHARTS:
        charts[name].setTitle(f"{type_title}: {title}")


def fill_charts(charts: dict[str, HistoryChart], points: list[dict],
                start: dt.datetime, end: dt.datetime) -> None:
    times = [point["time"].timestamp() for point in points if point.get("time")]
    points = [point for point in points if point.get("time")]
    for name, _title, _kind, _unit, series in CHARTS:
        fields = [field for _label, _colour, field, _d, _w in series]
        if points and all(point.get(field) is None for point in points for field in fields):
            # The site reports none of it (GitLab: no bytes): not a zero.
            charts[name].set_series([], {}, start.timestamp(), end.timestamp(),
                                    empty=NOT_REPORTED)
            continue
        charts[name].set_series(times, {label: [point.get(field) or 0 for point in points]
                                        for label, _colour, field, _d, _w in series},
                                start.timestamp(), end.timestamp())
