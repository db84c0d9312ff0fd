"""Registry reports for administrators and auditors: CSV and JSON, streamed
from the tracking DB in keyset chunks so a million rows export in bounded
memory. Output goes to a temporary file renamed into place at the end, so a
failed or cancelled export never leaves a partial report under the name.

The PDF status report is drawn by the console (it needs Qt); what it shows
is gathered here, as a `StatusReport` of plain data, so the command line can
hand it to the console's exporter.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import pathlib
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Iterable

from backend.secondary import status_history
from backend.secondary.registry_query import exact_count, failure_groups, stream
from backend.secondary.registry_row import REPORT_COLUMNS, RegistryRow, iso
from backend.secondary.registry_selection import RegistrySelection

FORMATS = ("csv", "json")
# Spreadsheets evaluate cells starting with these (CWE-1236).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# The PDF report's history ranges, as `report --range` names them.
HISTORY_RANGES = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1),
                  "week": dt.timedelta(days=7), "month": dt.timedelta(days=30)}
HISTORY_BUCKETS = 240
REPORTED_FAILURE_GROUPS = 15


class ReportCancelled(Exception):
    pass


@dataclass
class StatusReport:
    """What the PDF report shows: the status of every type, the history of
    the charted ones over [start, end], every type's top failure groups."""
    site_name: str
    status: dict
    types: list                # replicators or ReplicableTypes: names and titles
    charted: list              # the types whose history is charted
    start: dt.datetime
    end: dt.datetime
    histories: dict = field(default_factory=dict)       # replicable name -> points
    failure_groups: dict = field(default_factory=dict)  # replicable name -> groups
    generated_at: dt.datetime = field(
        default_factory=lambda: dt.datetime.now(dt.timezone.utc))


def status_report(engine, types: list, charted: list, start: dt.datetime, end: dt.datetime,
                  summary: dict, site_name: str) -> StatusReport:
    """A StatusReport read from a tracking DB (the command line's)."""
    return StatusReport(
        site_name, summary, list(types), list(charted), start, end,
        histories={kind.replicable_name: status_history.read(
            engine, kind.replicable_name, start, end, HISTORY_BUCKETS) for kind in charted},
        failure_groups={kind.replicable_name: failure_groups(
            engine, kind, REPORTED_FAILURE_GROUPS) for kind in types})


def source_status_report(source, types: list, charted: list, start: dt.datetime,
                         end: dt.datetime) -> StatusReport:
    """A StatusReport read from a console source (blocking): its status,
    the history of `charted`, the failure groups of `types`."""
    return StatusReport(
        source.name, source.overview(), list(types), list(charted), start, end,
        histories={kind.replicable_name: source.history(kind.replicable_name, start, end,
                                                        HISTORY_BUCKETS)
                   for kind in charted},
        failure_groups={kind.replicable_name: source.failure_groups(
            kind.replicable_name, REPORTED_FAILURE_GROUPS) for kind in types})


def columns(replicator) -> list[str]:
    """The report's columns: the registry's, the model id under its name."""
    return [replicator.registry_fk if name == "model_id" else name for name in REPORT_COLUMNS]


def neutralise(value) -> str:
    """A CSV cell that no spreadsheet will evaluate as a formula."""
    if value is None:
        return ""
    text = str(value)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif text.startswith(FORMULA_PREFIXES):
        text = "'" + text
    return text


def export(engine, replicator, selection: RegistrySelection, fmt: str,
           output: str | os.PathLike, *, summary: dict | None = None, site_name: str = "",
           progress: Callable[[int, int], None] | None = None,
           cancelled: Callable[[], bool] | None = None, chunk: int = 5000) -> int:
    """Write the registries matching `selection`; returns how many."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; use csv or json")
    total = exact_count(engine, replicator, selection)
    return write_report(replicator, stream(engine, replicator, selection, chunk=chunk), total,
                        fmt, output, selection=selection, summary=summary,
                        site_name=site_name, progress=progress, cancelled=cancelled)


def write_report(replicator, rows: Iterable[RegistryRow], total: int, fmt: str,
                 output: str | os.PathLike, *, selection: RegistrySelection,
                 summary: dict | None = None, site_name: str = "",
                 progress: Callable[[int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> int:
    """Write registry rows as CSV or JSON, atomically; `total` (the rows
    expected) drives the progress."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; use csv or json")
    output = pathlib.Path(output)
    fk = replicator.registry_fk
    rows = (row.report(fk) for row in _watched(rows, total, progress, cancelled))
    handle = tempfile.NamedTemporaryFile("w", dir=output.parent, prefix=f".{output.name}.",
                                         delete=False, newline="", encoding="utf-8")
    try:
        with handle:
            if fmt == "csv":
                written = _write_csv(handle, replicator, rows)
            else:
                written = _write_json(handle, replicator, rows, selection.as_dict(),
                                      summary, site_name)
        os.replace(handle.name, output)
    except BaseException:
        pathlib.Path(handle.name).unlink(missing_ok=True)
        raise
    return written


def _watched(rows: Iterable[RegistryRow], total: int, progress, cancelled):
    done = 0
    for row in rows:
        if cancelled and done % 500 == 0 and cancelled():
            raise ReportCancelled("export cancelled")
        yield row
        done += 1
        if progress and (done % 1000 == 0 or done == total):
            progress(done, total)
    if progress and done != total:
        progress(done, max(done, total))


def _write_csv(handle, replicator, rows) -> int:
    writer = csv.writer(handle)
    names = columns(replicator)
    writer.writerow(names)
    count = 0
    for row in rows:
        writer.writerow([neutralise(row[name]) for name in names])
        count += 1
    return count


def _write_json(handle, replicator, rows, filter_description: dict, summary,
                site_name) -> int:
    header = {
        "generated_at": iso(dt.datetime.now(dt.timezone.utc)),
        "site": site_name,
        "replicable": replicator.replicable_name,
        "filter": filter_description,
        "summary": summary or {},
    }
    text = json.dumps(header, indent=2, default=str)
    handle.write(text[:-2] + ',\n  "registries": [')
    count = 0
    for row in rows:
        handle.write(("," if count else "") + "\n    " + json.dumps(row, default=str))
        count += 1
    handle.write("\n  ],\n" + f'  "count": {count}\n' + "}\n")
    return count
