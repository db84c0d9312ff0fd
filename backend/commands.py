"""What each CLI command does (parsing lives in backend/cli.py)."""
from __future__ import annotations

import json
import logging
import pathlib
import signal
import sys
import threading

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from backend.config import Config, ConfigError, load_config
from backend.db import migrate
from backend.db.engine import DatabaseUrlError, create_db_engine, normalize_url
from backend.replicables import registered, replicator_for
from backend.framework.states import parse_sync_state, parse_verification_state
from backend.secondary.geo_client import GeoApiError, PrimaryUnreachable

log = logging.getLogger(__name__)


class CommandError(Exception):
    """A user-facing failure; the message is the whole story."""


def describe_error(exc: BaseException) -> str:
    # The catalog's CatalogError is a ValueError: its text is the message too.
    if isinstance(exc, (ConfigError, CommandError, DatabaseUrlError)):
        return str(exc)
    if isinstance(exc, OperationalError) or isinstance(exc, DBAPIError):
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return f"database error: {reason}"
    if isinstance(exc, PrimaryUnreachable):
        return f"cannot reach the primary: {exc}"
    if isinstance(exc, GeoApiError):
        if exc.status == 401:
            return f"the primary refused our credentials (check access_key and secret): {exc}"
        return f"the primary answered HTTP {exc.status}: {exc}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    if isinstance(exc, ValueError):
        return str(exc)
    return f"{exc.__class__.__name__}: {exc}"


def dispatch(args) -> int:
    handler = {
        "primary": _primary, "secondary": _secondary, "status": _status, "check": _check,
        "registries": _registries, "resync": _resync, "reverify": _reverify,
        "report": _report,
        "demo": _demo, "db": _db,
    }[args.command]
    return handler(args)


# --- helpers ------------------------------------------------------------------------

def _config(args) -> Config:
    if not args.config:
        raise CommandError("no configuration: pass --config FILE or set GEO_CONSOLE_CONFIG")
    return load_config(args.config)


def _replicator(args):
    if args.replicable:
        try:
            return replicator_for(args.replicable)
        except KeyError:
            names = ", ".join(r.replicable_name for r in registered())
            raise CommandError(f"unknown type {args.replicable!r}; known: {names}") from None
    return registered()[0]


def _existing_database(url: str, which: str):
    """An engine for a database that must already exist and be migrated."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not pathlib.Path(parsed.database).exists():
            raise CommandError(f"{which} database {parsed.database} does not exist; "
                               "run `db upgrade` first")
    engine = create_db_engine(url)
    revision = migrate.current_revision(engine, which)
    if revision is None:
        engine.dispose()
        raise CommandError(f"the {which} database is not initialised; run `db upgrade` first")
    return engine


def _tracking(args):
    config = _config(args)
    secondary = config.require_secondary()
    return config, _existing_database(secondary.tracking_database_url, "tracking")


def _filter(args, ids=None):
    from backend.secondary.registry_store import RegistryFilter
    replication = parse_sync_state(args.replication_state) if args.replication_state else None
    verification = (parse_verification_state(args.verification_state)
                    if args.verification_state else None)
    return RegistryFilter(replication, verification, tuple(ids) if ids else None)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


# --- primary ----------------------------------------------------------------------------

def _primary_site(args):
    from backend.sites.primary import PrimarySite
    config = _config(args)
    config.require_primary()
    return PrimarySite.from_config(config)


def _primary(args) -> int:
    command = args.primary_command
    if command is None:
        raise CommandError("primary needs a command: serve, project add, add, delete, list")
    site = _primary_site(args)
    try:
        if command == "serve":
            site.upgrade_database()
            site.start()
            print(f"Primary Geo API listening on {site.url}", flush=True)
            _wait_for_signal()
            return 0
        _existing_database(site.config.database_url, "primary").dispose()
        replicator = _replicator(args)
        catalog = site.catalog(replicator)
        if command == "project":
            if args.project_command != "add":
                raise CommandError("usage: primary project add NAME --namespace PATH")
            print(catalog.add_project(args.name, args.namespace, args.shard))
        elif command == "add":
            for path in args.files:
                if not pathlib.Path(path).is_file():
                    raise CommandError(f"not a readable file: {path}")
            if args.project_id is not None and not catalog.project_exists(args.project_id):
                raise CommandError(f"project {args.project_id} does not exist")
            from backend.framework.replicator import FileStore
            store = FileStore.REMOTE if args.object_storage else FileStore.LOCAL
            for path in args.files:
                print(catalog.add_file(path, args.project_id, store), flush=True)
        elif command == "delete":
            for model_id in catalog.delete(args.ids):
                print(f"deleted {model_id}")
        elif command == "list":
            _print_widgets(catalog.list())
        return 0
    finally:
        if command != "serve":
            site.engine.dispose()
        else:
            site.stop()


def _print_widgets(rows) -> None:
    from backend.framework.states import VerificationState
    print(f"{'ID':>8}  {'PROJECT':>7}  {'STORE':<6} {'SIZE':>10}  {'CHECKSUM STATE':<14} FILE")
    for row in rows:
        state = row["verification_state"]
        label = VerificationState(state).label if state is not None else "-"
        store = "remote" if row["file_store"] == 2 else "local"
        print(f"{row['id']:>8}  {row['project_id']:>7}  {store:<6} {row['size']:>10}  "
              f"{label:<14} {row['file']}")


# --- secondary ----------------------------------------------------------------------------

def _secondary(args) -> int:
    if args.secondary_command != "run":
        raise CommandError("usage: secondary run")
    from backend.sites.secondary import SecondarySite
    config = _config(args)
    site = SecondarySite.from_config(config)
    site.engine.upgrade_database()
    site.engine.client.events(after=0, limit=1)  # fail fast: unreachable primary, wrong secret
    site.start()
    print(f"Secondary {config.secondary.name} replicating from {config.secondary.primary_url}; "
          f"site API on {site.url}", flush=True)
    try:
        _wait_for_signal()
    finally:
        site.stop()
    return 0


def _secondary_status(config: Config, engine) -> dict:
    from backend.secondary.event_consumer import CursorStore
    from backend.secondary.status import secondary_type_status
    status = {"name": config.secondary.name, "role": "secondary",
              "sync_settings": "Selective" if config.secondary.selective_sync_type else "Full",
              "cursor_last_event_id": CursorStore(engine).get()}
    for replicator in registered():
        status.update(secondary_type_status(engine, replicator, config.flag(
            replicator.feature_flag)))
    return status


def _status(args) -> int:
    from backend.secondary.status import status_lines
    config, engine = _tracking(args)
    try:
        status = _secondary_status(config, engine)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    label = 44
    print("Geo Site Information")
    print(f"{'Name:':>{label}} {status['name']}")
    print(f"{'Geo Role:':>{label}} Secondary")
    print("Replication Information")
    print(f"{'Sync Settings:':>{label}} {status['sync_settings']}")
    cursor = status["cursor_last_event_id"]
    print(f"{'Last event ID processed:':>{label}} "
          f"{cursor if cursor is not None else 'Not applicable.'}")
    for line in status_lines(registered(), status):
        print(line)
    return 0


def _check(args) -> int:
    from backend.secondary.status import status_lines
    config, engine = _tracking(args)
    try:
        status = _secondary_status(config, engine)
    finally:
        engine.dispose()
    for line in status_lines(registered(), status):
        print(line)
    complete = True
    for replicator in registered():
        p = replicator.plural_name
        total = status.get(f"{p}_registry_count")
        if total is None:
            continue
        if total and (status[f"{p}_synced_count"] != total
                      or status[f"{p}_verified_count"] != total):
            complete = False
    if complete:
        print("SUCCESS - Replication is up-to-date.")
        return 0
    print("ERROR - Replication is not up-to-date.")
    return 1


def _registries(args) -> int:
    from backend.framework.states import SyncState, VerificationState
    from backend.secondary.registry_store import registry_rows
    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit must be at least 1")
    selection = _filter(args)
    config, engine = _tracking(args)
    replicator = _replicator(args)
    fk = replicator.registry_fk
    try:
        rows = registry_rows(engine, replicator, selection, args.limit)
        if args.json:
            print("[", end="")
            for index, row in enumerate(rows):
                print(("," if index else "") + "\n  " + json.dumps(_jsonable(row)), end="")
            print("\n]")
            return 0
        print(f"{'ID':>8} {fk.upper():>14} {'STATE':<8} {'VERIFICATION':<12} {'RETRIES':>7}  "
              f"{'LAST SYNCED':<20} FAILURE")
        for row in rows:
            failure = row["last_sync_failure"] or row["verification_failure"] or ""
            synced = row["last_synced_at"].strftime("%Y-%m-%d %H:%M:%S") \
                if row["last_synced_at"] else "-"
            print(f"{row['id']:>8} {row[fk]:>14} {SyncState(row['state']).label:<8} "
                  f"{VerificationState(row['verification_state']).label:<12} "
                  f"{row['retry_count']:>7}  {synced:<20} {failure}")
    finally:
        engine.dispose()
    return 0


def _jsonable(row: dict) -> dict:
    from backend.framework.states import SyncState, VerificationState
    out = {}
    for key, value in row.items():
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        out[key] = value
    out["state"] = SyncState(row["state"]).label
    out["verification_state"] = VerificationState(row["verification_state"]).label
    return out


def _admin_action(args, action: str) -> int:
    from backend.secondary.registry_store import RegistryStore, existing_ids
    if args.ids and args.all:
        raise CommandError("give registry ids or --all, not both")
    if not args.ids and not args.all:
        raise CommandError(f"{action} needs registry ids or --all")
    if args.ids and (args.replication_state or args.verification_state):
        raise CommandError("state filters only narrow --all")
    selection = _filter(args, args.ids)
    config, engine = _tracking(args)
    replicator = _replicator(args)
    try:
        if args.ids:
            missing = sorted(set(args.ids) - existing_ids(engine, replicator, args.ids))
            if missing:
                raise CommandError("no such registry: " + ", ".join(map(str, missing)))
        store = RegistryStore(engine, replicator)
        changed = store.resync(selection) if action == "resync" else store.reverify(selection)
    finally:
        engine.dispose()
    verb = "resync" if action == "resync" else "re-verification"
    print(f"Scheduled {changed} {replicator.title_plural.lower()} for {verb}.")
    return 0


def _resync(args) -> int:
    return _admin_action(args, "resync")


def _reverify(args) -> int:
    return _admin_action(args, "reverify")


def _report(args) -> int:
    from backend import reports
    selection = _filter(args)
    config, engine = _tracking(args)
    replicator = _replicator(args)
    output = pathlib.Path(args.output)
    if output.is_dir():
        raise CommandError(f"--output {output} is a folder; give a file name")
    try:
        summary = _secondary_status(config, engine)
        count = reports.export(engine, replicator, selection, args.format, output,
                               summary=summary, site_name=config.secondary.name)
    finally:
        engine.dispose()
    print(f"Wrote {count} registries to {output}")
    return 0


# --- demo and databases ---------------------------------------------------------------------

def _demo(args) -> int:
    from backend.demo import DemoSettings, run_headless
    from backend.workspace import demo_dir
    if args.duration is not None and args.duration <= 0:
        raise CommandError("--duration must be positive")
    workspace = pathlib.Path(args.workspace) if args.workspace else demo_dir()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.headless:
        if args.open_console is None:
            raise CommandError("the console is not installed; use `demo --headless`")
        return args.open_console(workspace=workspace)
    return run_headless(DemoSettings(workspace), args.duration, sys.stdout)


def _db(args) -> int:
    if args.db_command != "upgrade":
        raise CommandError("usage: db upgrade")
    config = _config(args)
    done = []
    if config.primary:
        migrate.upgrade(config.primary.database_url, "primary")
        done.append(f"primary database at revision {migrate.head_revision('primary')}")
    if config.secondary:
        migrate.upgrade(config.secondary.tracking_database_url, "tracking")
        done.append(f"tracking database at revision {migrate.head_revision('tracking')}")
    if not done:
        raise CommandError(f"{config.source}: neither [primary] nor [secondary] is configured")
    for line in done:
        print(line)
    return 0
