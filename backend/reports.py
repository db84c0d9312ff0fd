"""Registry reports for administrators and auditors: CSV and JSON, streamed
from the tracking DB in keyset chunks so a million rows export in bounded
memory. Output goes to a temporary file renamed into place at the end, so a
failed or cancelled export never leaves a partial report under the name.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import pathlib
import tempfile
from typing import Callable, Iterable

from backend.framework.states import SyncState, VerificationState
from backend.secondary.registry_store import RegistryFilter, registry_rows
from backend.secondary.registry_query import RegistryQuery, exact_count

FORMATS = ("csv", "json")
# Spreadsheets evaluate cells starting with these (CWE-1236).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class ReportCancelled(Exception):
    pass


def columns(replicator) -> list[str]:
    return ["registry_id", replicator.registry_fk, "state", "verification_state",
            "retry_count", "retry_at", "last_synced_at", "last_sync_failure",
            "verification_retry_count", "verification_retry_at", "verified_at",
            "verification_started_at", "verification_failure", "checksum_mismatch",
            "verification_checksum", "verification_checksum_mismatched", "created_at"]


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def report_row(row: dict, replicator) -> dict:
    """A registry row as reports show it: names for states, ISO times, text."""
    out = {"registry_id": row["id"], replicator.registry_fk: row[replicator.registry_fk]}
    for name in columns(replicator)[2:]:
        value = row[name]
        if name == "state":
            value = SyncState(value).label
        elif name == "verification_state":
            value = VerificationState(value).label
        elif isinstance(value, dt.datetime):
            value = iso(value)
        elif isinstance(value, (bytes, memoryview)):
            value = bytes(value).decode("ascii", "replace")
        out[name] = value
    return out


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


def export(engine, replicator, selection: RegistryFilter, fmt: str, output: str | os.PathLike,
           *, summary: dict | None = None, site_name: str = "",
           progress: Callable[[int, int], None] | None = None,
           cancelled: Callable[[], bool] | None = None, chunk: int = 5000) -> int:
    """Write the registries matching `selection`; returns how many."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; use csv or json")
    query = RegistryQuery(ids=selection.ids, replication_state=selection.replication_state,
                          verification_state=selection.verification_state)
    total = exact_count(engine, replicator, query)
    rows = (report_row(row, replicator)
            for row in registry_rows(engine, replicator, selection, chunk=chunk))
    described = describe_filter(selection.replication_state, selection.verification_state,
                                selection.ids)
    return write_report(replicator, rows, total, fmt, output, filter_description=described,
                        summary=summary, site_name=site_name, progress=progress,
                        cancelled=cancelled)


def describe_filter(replication_state, verification_state, ids=None, search=None) -> dict:
    def label(state):
        return state.label if hasattr(state, "label") else state

    described = {"replication_state": label(replication_state),
                 "verification_state": label(verification_state),
                 "ids": list(ids) if ids else None}
    if search:
        described["search"] = search
    return described


def write_report(replicator, rows: Iterable[dict], total: int, fmt: str,
                 output: str | os.PathLike, *, filter_description: dict,
                 summary: dict | None = None, site_name: str = "",
                 progress: Callable[[int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> int:
    """Write report rows (see report_row) as CSV or JSON, atomically."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; use csv or json")
    output = pathlib.Path(output)
    rows = _watched(rows, total, progress, cancelled)
    output.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", dir=output.parent, prefix=f".{output.name}.",
                                         delete=False, newline="", encoding="utf-8")
    try:
        with handle:
            if fmt == "csv":
                written = _write_csv(handle, replicator, rows)
            else:
                written = _write_json(handle, replicator, rows, filter_description, summary,
                                      site_name)
        os.replace(handle.name, output)
    except BaseException:
        pathlib.Path(handle.name).unlink(missing_ok=True)
        raise
    return written


def _watched(rows: Iterable[dict], total: int, progress, cancelled):
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
