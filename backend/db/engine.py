"""Creating SQLAlchemy engines for either database, SQLite or PostgreSQL."""
from __future__ import annotations

import contextlib
import datetime as dt
import pathlib
import threading
from typing import Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.pool import QueuePool


class DatabaseUrlError(ValueError):
    pass


def normalize_url(url: str) -> str:
    """Accept `postgresql://` and `sqlite:///path`; pick psycopg2 for PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUrlError(f"malformed database URL {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    elif backend != "sqlite":
        raise DatabaseUrlError(
            f"unsupported database {backend!r} in {parsed.render_as_string()}; "
            "use sqlite:///PATH or postgresql://USER@HOST/DB")
    return parsed.render_as_string(hide_password=False)


def create_db_engine(url: str, *, pool_size: int = 10) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            pathlib.Path(database).parent.mkdir(parents=True, exist_ok=True)
        # A pool of long-lived connections: opening one (and setting its
        # pragmas) per transaction would dominate small claims and updates.
        engine = create_engine(
            url,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"timeout": 30, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # UPDATE executemany in pages (psycopg2's execute_batch), not a round
        # trip per row: the engine writes outcomes that way.
        executemany_mode="values_plus_batch",
        connect_args={"connect_timeout": 10},
    )


def is_unreachable(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection, as
    opposed to refusing the statement: worth retrying once it is back."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def database_time(connection: Connection) -> dt.datetime:
    """The database server's clock now (UTC; SQLite's is this machine's)."""
    if connection.dialect.name == "postgresql":
        return connection.execute(text("SELECT clock_timestamp()")).scalar_one()
    value = connection.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.timezone.utc)


# How long an SQLite write waits for another writer before it gives up with
# "database is locked" (the API then says the tracking database is busy).
BUSY_TIMEOUT_MS = 30_000


def _sqlite_on_connect(dbapi_connection, _record):
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_on_begin) so that every
    # write transaction takes the database lock up front.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: with WAL, each commit fsyncs the log, so a power loss keeps every
    # transaction that committed (NORMAL keeps the database intact but may
    # lose the last ones: a registry said synced, then forgotten).
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_on_begin(connection):
    # Writes (see writing()) take the lock up front with BEGIN IMMEDIATE, so a
    # transaction that reads and then updates never meets a stale snapshot
    # (SQLITE_BUSY_SNAPSHOT, which no busy timeout retries) and claims
    # cannot interleave. Reads stay deferred and never wait for writers.
    if connection.get_execution_options().get(_IMMEDIATE):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


_IMMEDIATE = "geo_console_immediate"


class PreparedRead:
    """One SELECT compiled once for an engine's dialect and run straight on a
    pooled DBAPI connection, outside any transaction (no BEGIN, no ROLLBACK):
    for a lookup that runs once per blob served, where SQLAlchemy's
    per-execution work and the statement's construction cost more than the
    query (docs/PERFORMANCE.md, step 9). Parameters are plain values
    (no type processing); rows come back as dicts of the selected columns,
    with binary values as bytes."""

    def __init__(self, engine: Engine, statement) -> None:
        # No reference to the engine: a cache keyed by engine may hold this.
        self._compiled = statement.compile(dialect=engine.dialect)
        self._sql = str(self._compiled)
        self._columns = [column.key for column in statement.selected_columns]
        self._autocommit = engine.dialect.name != "sqlite"  # SQLite: isolation_level None

    def first(self, engine: Engine, **values) -> dict | None:
        params = self._compiled.construct_params(values)
        if self._compiled.positional:
            params = tuple(params[name] for name in self._compiled.positiontup)
        connection = engine.raw_connection()
        try:
            if self._autocommit:
                connection.driver_connection.autocommit = True
            cursor = connection.cursor()
            try:
                cursor.execute(self._sql, params)
                row = cursor.fetchone()
            finally:
                cursor.close()
            if self._autocommit:
                connection.driver_connection.autocommit = False
        except Exception:
            connection.invalidate()  # in an unknown state: never reuse it
            raise
        finally:
            connection.close()
        if row is None:
            return None
        return {name: bytes(value) if isinstance(value, memoryview) else value
                for name, value in zip(self._columns, row)}


_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()


def _write_lock(engine: Engine) -> threading.Lock:
    key = str(engine.url.database)
    with _write_locks_guard:
        return _write_locks.setdefault(key, threading.Lock())


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction: like engine.begin(), but on SQLite it takes the
    write lock at BEGIN.

    SQLite allows one writer; threads of this process queue on a lock of
    ours instead of SQLite's busy handler, which sleeps in steps of up to
    100 ms and would stall a busy engine. Other processes still meet the
    busy timeout.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            yield connection
        return
    with _write_lock(engine), engine.connect() as connection:
        connection.execution_options(**{_IMMEDIATE: True})
        with connection.begin():
            yield connection
