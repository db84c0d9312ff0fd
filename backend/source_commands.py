"""The commands that read and act on registries, on a site this machine
does not run: `--site URL` (a Geo Console or GitLab Geo secondary, through
its API) or `--gitlab-db URL` (a GitLab secondary's tracking database).

The sources are the console's (`app.sources.RemoteSource`,
`app.gitlab_db_source.GitLabDatabaseSource`), handed in by the launcher as
`args.open_source(kind, url)`, since the backend imports neither the
console's client libraries nor the console. What each command prints is
what it prints for a configuration's own tracking database: `status` and
`check` GitLab's geo:status and geo:check lines, `registries` the same
table or JSON, `resync` / `reverify` the same counts with progress and
Ctrl+C, `report` the same CSV or JSON.
"""
from __future__ import annotations

import itertools
import json
import pathlib
import sys
import threading

from backend.commands import (CommandError, _cancelled_by_ctrl_c, _check_output,
                              _print_registries, _ProgressLine, _selection,
                              check_action_arguments, check_pdf_report, write_pdf)
from backend.secondary.bulk_actions import BATCH
from backend.secondary.status import status_lines

COMMANDS = ("status", "check", "registries", "resync", "reverify", "report")
LABEL = 44


def dispatch(args) -> int:
    if args.command not in COMMANDS:
        raise CommandError(f"--site and --gitlab-db go with {', '.join(COMMANDS)}, not with "
                           f"{args.command}")
    if args.site and args.gitlab_db:
        raise CommandError("give --site or --gitlab-db, not both")
    _check_before_opening(args)
    if args.open_source is None:
        raise CommandError("--site and --gitlab-db read sites with the console's client, "
                           "which is not installed (pip install -e .[console])")
    if args.through is not None and not args.site:
        raise CommandError("--through goes with --site: the site whose proxy reaches the other")
    kind, url = ("site", args.site) if args.site else ("gitlab_db", args.gitlab_db)
    source = args.open_source(kind, url, args.through)
    try:
        return {"status": _status, "check": _check, "registries": _registries,
                "resync": _resync, "reverify": _reverify, "report": _report
                }[args.command](args, source)
    finally:
        source.close()


def _check_before_opening(args) -> None:
    """Bad arguments end here, before anything is asked of a site."""
    if args.command == "registries" and args.limit is not None and args.limit < 1:
        raise CommandError("--limit must be at least 1")
    if args.command in ("resync", "reverify"):
        check_action_arguments(args, args.command)
    if args.command == "report":
        if args.format == "pdf":
            check_pdf_report(args, pathlib.Path(args.output))  # the output's folder too
        elif not args.replicable:
            raise CommandError("a CSV or JSON report takes one type: give --type")
        else:
            _check_output(pathlib.Path(args.output))
    if hasattr(args, "replication_state"):
        _selection(args)  # the state names


def _types(args, source) -> list:
    if not args.replicable:
        return list(source.types)
    for kind in source.types:
        if args.replicable in (kind.replicable_name, kind.plural_name):
            return [kind]
    names = ", ".join(kind.replicable_name for kind in source.types)
    raise CommandError(f"{source.name} has no type {args.replicable!r}; it has {names}")


def _status(args, source) -> int:
    status = source.overview()
    types = _types(args, source)
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    print("Geo Site Information")
    print(f"{'Name:':>{LABEL}} {status.get('name') or source.name}")
    print(f"{'Geo Role:':>{LABEL}} Secondary")
    print(f"{'Health Status:':>{LABEL}} {status.get('health_status') or _health(status)}")
    if status.get("healthy") is False:
        print(f"{'Health Status Summary:':>{LABEL}} {status.get('health')}")
    if status.get("version"):
        print(f"{'GitLab Version:' if '-ee' in str(status['version']) else 'Version:':>{LABEL}}"
              f" {status['version']}")
    print("Replication Information")
    cursor = status.get("cursor_last_event_id")
    print(f"{'Last event ID processed:':>{LABEL}} "
          f"{cursor if cursor is not None else 'Not applicable.'}")
    for line in status_lines(_counted(types, status), status):
        print(line)
    for left_out in status.get("left_out") or []:
        print(f"{'Not read:':>{LABEL}} {left_out}")
    return 0


def _health(status: dict) -> str:
    return "Healthy" if status.get("healthy") else "Unknown"


def _counted(types: list, status: dict) -> list:
    """The types the status counts (a GitLab site lists types it replicates none of)."""
    return [kind for kind in types if status.get(f"{kind.plural_name}_registry_count")]


def _check(args, source) -> int:
    """geo:check on the status the site gives: exit 0 only when it is
    healthy and every registry of every type is synced and verified."""
    status = source.overview()
    types = _counted(_types(args, source), status)
    for line in status_lines(types, status):
        print(line)
    errors = []
    if status.get("healthy") is False:
        errors.append(f"ERROR - {status.get('health') or 'The site is unhealthy'}.")
    for kind in types:
        p = kind.plural_name
        total = status[f"{p}_registry_count"]
        synced = status.get(f"{p}_synced_count") or 0
        verified = status.get(f"{p}_verified_count") or 0
        if synced != total or verified != total:
            # Only synced registries are verified, so the larger gap is the count.
            errors.append(f"ERROR - {kind.title_plural}: {total - min(synced, verified):,} "
                          "registries are not synced and verified.")
    for error in errors:
        print(error)
    print("FAILURE" if errors else "SUCCESS")
    return 1 if errors else 0


def _registries(args, source) -> int:
    selection = _selection(args)
    types = _types(args, source)
    rows_of = {kind.replicable_name: itertools.islice(
        source.export_rows(kind.replicable_name, selection), args.limit) for kind in types}
    if args.json:
        print("[", end="")
        count = 0
        for kind in types:
            for row in rows_of[kind.replicable_name]:
                print(("," if count else "") + "\n  " + json.dumps(row.report(kind.registry_fk)),
                      end="")
                count += 1
        print("\n]" if count else "]")
        return 0
    for kind in types:
        _print_registries(kind, rows_of[kind.replicable_name])
    return 0


def _resync(args, source) -> int:
    return _act(args, source, "resync")


def _reverify(args, source) -> int:
    return _act(args, source, "reverify")


class _Progress:
    """What a source's bulk action reports, as the CLI shows it (a line on
    stderr every few seconds of a job of more than one batch); Ctrl+C
    cancels between two steps."""

    def __init__(self, action: str, kind, cancelled: threading.Event) -> None:
        self.line = _ProgressLine(action, kind, BATCH)
        self.cancel = cancelled
        self.early = False

    def report(self, done: int, total: int) -> None:
        self.line(done, total)

    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def stopped(self, early: bool) -> None:
        self.early = early


def _act(args, source, action: str) -> int:
    if not source.can_act:
        raise CommandError(source.cannot_act_because)
    types = _types(args, source)
    if args.ids and len(types) != 1:
        raise CommandError(f"{action} by registry id takes one type: give --type")
    selection = _selection(args, args.ids)
    verb = "resync" if action == "resync" else "re-verification"
    with _cancelled_by_ctrl_c() as cancelled:
        for kind in types:
            progress = _Progress(action, kind, cancelled)
            changed = source.act(kind.replicable_name, action, selection, progress=progress)
            print(f"Scheduled {changed:,} {kind.title_plural.lower()} for {verb}.")
            if cancelled.is_set():
                print("Cancelled: the registries not scheduled above are as they were.",
                      file=sys.stderr)
                return 130
    return 0


def _report(args, source) -> int:
    from backend import reports
    if args.format == "pdf":
        return _pdf_report(args, source)
    kind = _types(args, source)[0]
    selection = _selection(args)
    total = source.count(kind.replicable_name, selection)
    written = reports.write_report(kind, source.export_rows(kind.replicable_name, selection),
                                   int(total), args.format, args.output,
                                   selection=selection, summary=source.overview(),
                                   site_name=source.name)
    print(f"Wrote {written} registries to {args.output}")
    return 0


def _pdf_report(args, source) -> int:
    """The status of every type the site counts and the history of --type
    (or of those types) over --range: the site's own history, or what the
    console recorded of a site that keeps none."""
    import datetime as dt

    from backend import reports
    status = source.overview()
    types = _counted(list(source.types), status)  # not GitLab's empty ones
    charted = _types(args, source) if args.replicable else types
    end = dt.datetime.now(dt.timezone.utc)
    start = end - reports.HISTORY_RANGES[args.history_range]
    report = reports.source_status_report(source, types, charted, start, end)
    return write_pdf(args, pathlib.Path(args.output), report)
