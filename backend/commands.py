"""What each CLI command does (parsing lives in backend/cli.py)."""
from __future__ import annotations

import contextlib
import json
import logging
import pathlib
import signal
import sys
import threading
import time

from sqlalchemy.engine import make_url

from backend.config import Config, ConfigError, load_config
from backend.db import migrate
from backend.db.engine import DatabaseUrlError, create_db_engine, normalize_url
from backend.replicables import registered, replicator_for
from backend.framework.states import parse_sync_state, parse_verification_state
from backend.secondary.errors import describe
from backend.secondary.geo_client import GeoApiError, PrimaryUnreachable
from backend.secondary.registry_selection import RegistrySelection

log = logging.getLogger(__name__)


PROGRESS_EVERY = 2.0  # seconds between two progress lines of a bulk action


class CommandError(Exception):
    """A user-facing failure; the message is the whole story."""


def describe_error(exc: BaseException) -> str:
    """One line for the user, whatever went wrong."""
    # The catalog's CatalogError is a ValueError: its text is the message too.
    if isinstance(exc, (ConfigError, CommandError, DatabaseUrlError, ValueError)):
        return str(exc)
    return describe(exc)


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


def _types(args) -> list:
    """The type --type names, or every type."""
    if args.replicable:
        try:
            return [replicator_for(args.replicable)]
        except KeyError:
            names = ", ".join(r.replicable_name for r in registered())
            raise CommandError(f"unknown type {args.replicable!r}; known: {names}") from None
    return registered()


def _one_type(args, what: str):
    """The one type a command about records by id (or a report) is about:
    --type, needed as soon as more than one type is replicated, since ids
    are per type."""
    types = _types(args)
    if len(types) > 1:
        names = ", ".join(r.replicable_name for r in types)
        raise CommandError(f"{what} needs --type: one of {names}")
    return types[0]


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


def _tracking(args, check=None):
    """The configuration and its tracking database. `check()` runs once the
    configuration is known good and before the database is opened, so a bad
    file is reported first and a refused command opens nothing."""
    config = _config(args)
    secondary = config.require_secondary()
    if check is not None:
        check()
    return config, _existing_database(secondary.tracking_database_url, "tracking")


def _selection(args, ids=None) -> RegistrySelection:
    replication = parse_sync_state(args.replication_state) if args.replication_state else None
    verification = (parse_verification_state(args.verification_state)
                    if args.verification_state else None)
    return RegistrySelection(ids=tuple(ids) if ids else None, replication_state=replication,
                             verification_state=verification)


def _warn(message: str) -> None:
    print(f"geo-console: warning: {message}", file=sys.stderr, flush=True)


def _wait_for_signal() -> None:
    """Until SIGINT or SIGTERM. The kernel may hand a process's signal to
    any of its threads; Python runs the handler only in the main thread,
    once it runs again. A wait without a timeout is not woken by a signal
    another thread took (seen: SIGINT right after SIGCONT was never acted
    on), so the main thread wakes every half second to run it."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


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
        if command == "serve" or getattr(args, "object_storage", False):
            site.check_object_store()  # before anything is written
            if command != "serve" and site.bucket is None:
                from backend.primary.storage import NOT_CONFIGURED
                raise CommandError("--object-storage: " + NOT_CONFIGURED)
        if command == "serve":
            site.upgrade_database()
            site.start()
            print(f"Primary Geo API listening on {site.url}", flush=True)
            _wait_for_signal()
            return 0
        _existing_database(site.config.database_url, "primary").dispose()
        if command == "list":
            for replicator in _types(args):
                _print_records(replicator, site.catalog(replicator).list())
            return 0
        # New files are Cool Widgets unless --type says otherwise; deleting
        # by id needs the type, since ids are per type.
        replicator = (_one_type(args, "primary delete") if command == "delete"
                      else _types(args)[0])
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
        return 0
    finally:
        if command != "serve":
            site.engine.dispose()
        else:
            site.stop()


def _print_records(replicator, rows) -> None:
    from backend.framework.states import VerificationState
    print(replicator.title_plural)
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
    site = SecondarySite.from_config(config, object_store_source=_object_store_source(args))
    site.engine.check_object_store()  # a wrong bucket or key: nothing written
    site.engine.upgrade_database()
    try:
        site.engine.client.events(after=0, limit=1)
    except GeoApiError as exc:
        if exc.status == 401:
            raise  # wrong credentials: waiting will not help
        _warn(f"the primary answered HTTP {exc.status}: {exc}; retrying")
    except PrimaryUnreachable as exc:
        _warn(f"cannot reach the primary ({exc}); the engine starts and keeps retrying")
    site.start()
    print(f"Secondary {config.secondary.name} replicating from {config.secondary.primary_url}; "
          f"site API on {site.url}", flush=True)
    try:
        _wait_for_signal()
    finally:
        site.stop()
    return 0


def _object_store_source(args):
    """Reads `[secondary.object_store.connection]` again, from the file and
    the environment, for a running engine whose credentials were refused."""
    def connection():
        return _config(args).require_secondary().object_store.connection
    return connection


def _secondary_status(config: Config, engine, types: list, health=None) -> dict:
    from backend.secondary.event_consumer import CursorStore
    from backend.secondary.status import secondary_type_status
    status = {"name": config.secondary.name, "role": "secondary",
              "sync_settings": "Selective" if config.secondary.selective_sync_type else "Full",
              "cursor_last_event_id": CursorStore(engine).get()}
    if health is not None:
        status.update(healthy=health.healthy,
                      health="Healthy" if health.healthy else "; ".join(health.problems),
                      health_status="Healthy" if health.healthy else "Unhealthy")
        for replicator in types:
            count = health.primary_counts.get(replicator.replicable_name)
            status[f"{replicator.plural_name}_primary_count"] = count
    for replicator in types:
        status.update(secondary_type_status(engine, replicator, config.flag(
            replicator.feature_flag)))
    status.update(_replica_removals(engine))
    return status


def _replica_removals(engine) -> dict:
    """Files of deleted records the engine could not remove yet."""
    from backend.secondary.replica_removals import ReplicaRemovals
    removals = ReplicaRemovals(engine)
    latest = removals.pending(1)
    return {"replicas_awaiting_removal": removals.count(),
            "replica_removal_failure": latest[0].last_failure if latest else None}


def _health(config: Config, engine, types: list):
    from backend.secondary.health import secondary_health
    return secondary_health(engine, config.secondary,
                            [r for r in types if config.flag(r.feature_flag)])


def _status(args) -> int:
    from backend.secondary.status import status_lines
    config, engine = _tracking(args, check=lambda: _types(args))
    types = _types(args)
    try:
        status = _secondary_status(config, engine, types, _health(config, engine, types))
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    label = 44
    print("Geo Site Information")
    print(f"{'Name:':>{label}} {status['name']}")
    print(f"{'Geo Role:':>{label}} Secondary")
    print(f"{'Health Status:':>{label}} {status['health_status']}")
    if not status["healthy"]:
        print(f"{'Health Status Summary:':>{label}} {status['health']}")
    print("Replication Information")
    print(f"{'Sync Settings:':>{label}} {status['sync_settings']}")
    cursor = status["cursor_last_event_id"]
    print(f"{'Last event ID processed:':>{label}} "
          f"{cursor if cursor is not None else 'Not applicable.'}")
    for line in status_lines(types, status):
        print(line)
    if status["replicas_awaiting_removal"]:
        print(f"{'Replicas of deleted records left:':>{label}} "
              f"{status['replicas_awaiting_removal']:,} ({status['replica_removal_failure']}; "
              "retried with backoff)")
    return 0


def _check(args) -> int:
    """Exit 0 only when the site is healthy, the primary answers, every record
    the primary has for us is registered, and every registry is synced and
    verified (GitLab's geo:check)."""
    from backend.secondary.status import status_lines
    config, engine = _tracking(args, check=lambda: _types(args))
    types = _types(args)
    try:
        health = _health(config, engine, types)
        status = _secondary_status(config, engine, types, health)
    finally:
        engine.dispose()
    for line in status_lines(types, status):
        print(line)
    errors = [f"ERROR - {problem[0].upper()}{problem[1:]}." for problem in health.problems]
    for replicator in types:
        p = replicator.plural_name
        total = status.get(f"{p}_registry_count")
        if total is None:
            continue  # replication of the type is off
        on_primary = health.primary_counts.get(replicator.replicable_name)
        if on_primary is not None and total < on_primary:
            errors.append(f"ERROR - {replicator.title_plural}: {total:,} of the primary's "
                          f"{on_primary:,} records are registered.")
        if status[f"{p}_synced_count"] != total or status[f"{p}_verified_count"] != total:
            errors.append(f"ERROR - {replicator.title_plural}: "
                          f"{total - status[f'{p}_verified_count']:,} registries are not "
                          "synced and verified.")
    if status["replicas_awaiting_removal"]:
        count = status["replicas_awaiting_removal"]
        print(f"WARNING - {count:,} {'replica' if count == 1 else 'replicas'} of deleted records "
              f"could not be removed and are retried with backoff: "
              f"{status['replica_removal_failure']}.")
    if not errors:
        print("SUCCESS - Replication is up-to-date.")
        return 0
    for line in errors:
        print(line)
    print("ERROR - Replication is not up-to-date.")
    return 1


def _registries(args) -> int:
    from backend.secondary.registry_query import stream
    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit must be at least 1")
    selection = _selection(args)
    config, engine = _tracking(args, check=lambda: _types(args))
    types = _types(args)
    try:
        if args.json:
            print("[", end="")
            count = 0
            for replicator in types:
                for row in stream(engine, replicator, selection, args.limit):
                    record = row.report(replicator.registry_fk)
                    print(("," if count else "") + "\n  " + json.dumps(record), end="")
                    count += 1
            print("\n]" if count else "]")
            return 0
        for replicator in types:
            _print_registries(replicator, stream(engine, replicator, selection, args.limit))
    finally:
        engine.dispose()
    return 0


def _print_registries(replicator, rows) -> None:
    fk = replicator.registry_fk
    print(replicator.title_plural)
    print(f"{'ID':>8} {fk.upper():>15} {'STATE':<8} {'VERIFICATION':<12} {'RETRIES':>7}  "
          f"{'LAST SYNCED':<20} FAILURE")
    for row in rows:
        synced = row.last_synced_at.strftime("%Y-%m-%d %H:%M:%S") if row.last_synced_at else "-"
        print(f"{row.registry_id:>8} {row.model_id:>15} {row.state.label:<8} "
              f"{row.verification_state.label:<12} {row.retry_count:>7}  {synced:<20} "
              f"{row.failure or ''}")


def check_action_arguments(args, action: str) -> None:
    """resync / reverify take registry ids or --all, and states narrow --all only."""
    if args.ids and args.all:
        raise CommandError("give registry ids or --all, not both")
    if not args.ids and not args.all:
        raise CommandError(f"{action} needs registry ids or --all")
    if args.ids and (args.replication_state or args.verification_state):
        raise CommandError("state filters only narrow --all")


def _admin_action(args, action: str) -> int:
    from backend.secondary.bulk_actions import BATCH, BulkActionRefused
    from backend.secondary.registry_actions import RegistryActions
    from backend.secondary.registry_query import existing_ids
    check_action_arguments(args, action)
    selection = _selection(args, args.ids)

    def types_of_the_action():
        return [_one_type(args, f"{action} by registry id")] if args.ids else _types(args)

    config, engine = _tracking(args, check=types_of_the_action)
    types = types_of_the_action()
    changed = {}
    try:
        if args.ids:
            missing = sorted(set(args.ids) - existing_ids(engine, types[0], args.ids))
            if missing:
                raise CommandError("no such registry: " + ", ".join(map(str, missing)))
        with _cancelled_by_ctrl_c() as cancelled:
            for replicator in types:
                result = RegistryActions(engine, replicator).run(
                    action, selection, progress=_ProgressLine(action, replicator, BATCH),
                    cancelled=cancelled.is_set)
                changed[replicator] = result.changed
                if result.cancelled:
                    break
    except BulkActionRefused as exc:
        raise CommandError(str(exc)) from None
    finally:
        engine.dispose()
    verb = "resync" if action == "resync" else "re-verification"
    for replicator, count in changed.items():
        print(f"Scheduled {count} {replicator.title_plural.lower()} for {verb}.")
    if cancelled.is_set():
        print("Cancelled: the registries not scheduled above are as they were.",
              file=sys.stderr)
        return 130
    return 0


class _ProgressLine:
    """A bulk action's progress on stderr, for those of more than one batch:
    a line every PROGRESS_EVERY seconds and one at the end."""

    def __init__(self, action: str, replicator, batch: int) -> None:
        self.what = f"{action} of {replicator.title_plural.lower()}"
        self.batch = batch
        self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if total <= self.batch:
            return
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY or done >= total:
            self.last = now
            print(f"{self.what}: {min(done, total):,} of {total:,} registries",
                  file=sys.stderr, flush=True)


@contextlib.contextmanager
def _cancelled_by_ctrl_c():
    """An event Ctrl+C sets instead of raising: a bulk action then stops
    after the batch it is in (each batch is a transaction of its own)."""
    cancelled = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancelled
        return
    previous = signal.signal(signal.SIGINT, lambda *_: cancelled.set())
    try:
        yield cancelled
    finally:
        signal.signal(signal.SIGINT, previous)


def _resync(args) -> int:
    return _admin_action(args, "resync")


def _reverify(args) -> int:
    return _admin_action(args, "reverify")


def _report(args) -> int:
    from backend import reports
    if args.format == "pdf":
        return _pdf_report(args)
    selection = _selection(args)
    output = pathlib.Path(args.output)

    def before_opening_anything():
        _one_type(args, "report")
        _check_output(output)

    config, engine = _tracking(args, check=before_opening_anything)
    replicator = _one_type(args, "report")
    try:
        summary = _secondary_status(config, engine, registered())
        count = reports.export(engine, replicator, selection, args.format, output,
                               summary=summary, site_name=config.secondary.name)
    finally:
        engine.dispose()
    print(f"Wrote {count} registries to {output}")
    return 0


def _check_output(output: pathlib.Path) -> None:
    if output.is_dir():
        raise CommandError(f"--output {output} is a folder; give a file name")
    if not output.absolute().parent.is_dir():
        raise CommandError(f"--output {output}: the folder {output.absolute().parent} "
                           "does not exist")


def _pdf_report(args) -> int:
    """The status of every type and the history of --type (or of every
    type) over --range, drawn by the console's exporter."""
    import datetime as dt

    from backend import reports
    output = pathlib.Path(args.output)

    def before_opening_anything():
        _types(args)
        check_pdf_report(args, output)

    config, engine = _tracking(args, check=before_opening_anything)
    end = dt.datetime.now(dt.timezone.utc)
    start = end - reports.HISTORY_RANGES[args.history_range]
    try:
        report = reports.status_report(engine, registered(), _types(args), start, end,
                                       _secondary_status(config, engine, registered()),
                                       config.secondary.name)
    finally:
        engine.dispose()
    return write_pdf(args, output, report)


def check_pdf_report(args, output: pathlib.Path) -> None:
    """What must hold before a PDF report is gathered."""
    if args.replication_state or args.verification_state:
        raise CommandError("a PDF report shows every registry's status; "
                           "--replication-state and --verification-state are for CSV and "
                           "JSON reports")
    if args.write_pdf is None:
        raise CommandError("PDF reports are drawn by the console, which is not installed "
                           "(pip install -e .[console]); CSV and JSON reports work "
                           "without it")
    _check_output(output)


def write_pdf(args, output: pathlib.Path, report) -> int:
    """Draw the report with the console's exporter (`args.write_pdf`)."""
    try:
        args.write_pdf(output, report)
    except OSError:
        raise  # said as the file system says it
    except Exception as exc:
        raise CommandError(f"the PDF report could not be drawn: {describe_error(exc)}") \
            from exc
    print(f"Wrote the status report to {output}")
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
