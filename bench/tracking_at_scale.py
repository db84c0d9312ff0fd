"""The tracking database at 1,000,000 registries: backfill, bulk resync and
claim throughput, each against a baseline measured in the same run.

    python bench/tracking_at_scale.py [--rows N] [--postgres URL] [--skip-sqlite]

A primary (`main.py primary serve`, PostgreSQL) holds N checksummed widgets.
For a PostgreSQL and then an SQLite tracking DB:
  - backfill: the engine's registry consistency walk lists the primary over
    the Geo API (10,000 ids a request) and creates N pending registries.
    Reported: the whole walk, and its insertion step against a plain COPY
    of the same rows into the same, emptied table (SQLite has no COPY: the
    baseline there is one executemany of the rows in one transaction);
  - bulk resync: 3% of the registries failed, `resync --all
    --replication-state failed` (RegistryActions.resync) against the bare
    `UPDATE ... SET state = 0 WHERE state = 3` (which leaves the retry
    columns as they were);
  - claims: the engine's claim query (RegistryClaims.claim_sync_batch) on
    pending rows, by one scheduler claiming 50 at a time (the refill of
    `files_max_capacity = 100`), by one claiming 5 (the default capacity of
    10), and by 4 schedulers claiming 50 (engines sharing the database),
    for 5 s or until every row is claimed. Target: 10,000 registries/s on
    PostgreSQL.
The full status at this size is measured by bench/status_at_scale.py.
Not a test; nothing here runs in CI.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from backend.db.engine import create_db_engine, normalize_url  # noqa: E402
from backend.db.migrate import upgrade  # noqa: E402
from backend.replicables import replicator_for  # noqa: E402
from backend.framework.scope import SyncScope  # noqa: E402
from backend.framework.states import SyncState  # noqa: E402
from backend.secondary.consistency import RegistryConsistency  # noqa: E402
from backend.secondary.geo_client import GeoClient  # noqa: E402
from backend.secondary.local_storage import LocalStorage  # noqa: E402
from backend.secondary.registry_actions import RegistryActions  # noqa: E402
from backend.secondary.registry_backfill import RegistryBackfill  # noqa: E402
from backend.secondary.registry_claims import RegistryClaims  # noqa: E402
from backend.secondary.registry_selection import RegistrySelection  # noqa: E402
from bench.loopback import free_port, wait_for_port  # noqa: E402
from bench.status_at_scale import fresh_postgres_database  # noqa: E402

CoolWidgets = replicator_for("cool_widget")
ACCESS_KEY = "bench-key"
SECRET = "bench-secret-" + "x" * 32
CLAIM_SECONDS = 5.0


# --- the primary --------------------------------------------------------------------

def fill_primary(url: str, rows: int) -> None:
    upgrade(url, "primary")
    engine = create_db_engine(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO namespaces (id, name) VALUES (1, 'n')"))
        connection.execute(text("""INSERT INTO projects (id, name, namespace_id, repository_storage)
                                   VALUES (1, 'p', 1, 'default')"""))
        connection.execute(text("""
            INSERT INTO cool_widgets (id, project_id, file, file_store, size, created_at, updated_at)
            SELECT n, 1, 'cool_widgets/' || n || '/blob', 1, 16384, now(), now()
            FROM generate_series(1, :rows) AS n"""), {"rows": rows})
        connection.execute(text("""
            INSERT INTO cool_widget_states (cool_widget_id, verification_state,
                                            verification_retry_count, verified_at,
                                            verification_checksum)
            SELECT n, 2, 0, now(), convert_to(md5(n::text) || md5(n::text), 'UTF8')
            FROM generate_series(1, :rows) AS n"""), {"rows": rows})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()


@contextlib.contextmanager
def running_primary(url: str, workdir: pathlib.Path):
    port = free_port()
    config = workdir / "primary.toml"
    config.write_text(f"""[primary]
database_url = "{url}"
storage_path = "{workdir / 'primary'}"
listen = "127.0.0.1:{port}"

[[primary.secondaries]]
name = "bench"
access_key = "{ACCESS_KEY}"
secret = "{SECRET}"
""")
    process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "primary", "serve",
                                "--config", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, 60, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


# --- measurements --------------------------------------------------------------------------

def backfill(tracking_url: str, primary: str, storage: pathlib.Path) -> tuple[float, float, int]:
    """The consistency walk from an empty registry: (total s, insertion s, rows)."""
    engine = create_db_engine(tracking_url)
    client = GeoClient(primary, ACCESS_KEY, SECRET)
    walk = RegistryConsistency(engine, client, LocalStorage(storage), SyncScope())
    inserting = [0.0]
    original = RegistryBackfill.insert_pending

    def timed_insert(self, model_ids):
        started = time.perf_counter()
        try:
            return original(self, model_ids)
        finally:
            inserting[0] += time.perf_counter() - started

    RegistryBackfill.insert_pending = timed_insert
    try:
        started = time.perf_counter()
        result = walk.run_full_pass(CoolWidgets)
        total = time.perf_counter() - started
    finally:
        RegistryBackfill.insert_pending = original
        client.close()
        engine.dispose()
    return total, inserting[0], result.created


def copy_baseline(tracking_url: str, rows: int) -> float:
    """The same rows (model id, created_at) into the emptied registry table."""
    engine = create_db_engine(tracking_url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM cool_widget_registry"))
    engine.dispose()
    stamp = "2026-11-27 12:00:00+00"
    if tracking_url.startswith("postgresql"):
        import psycopg2
        url = make_url(normalize_url(tracking_url))
        connection = psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username,
                                      dbname=url.database)
        data = io.StringIO("".join(f"{n}\t{stamp}\n" for n in range(1, rows + 1)))
        started = time.perf_counter()
        with connection, connection.cursor() as cursor:
            cursor.copy_expert("COPY cool_widget_registry (cool_widget_id, created_at) "
                               "FROM STDIN", data)
        elapsed = time.perf_counter() - started
        connection.close()
        return elapsed
    path = make_url(tracking_url).database
    connection = sqlite3.connect(path)
    values = [(n, "2026-11-27 12:00:00.000000") for n in range(1, rows + 1)]
    started = time.perf_counter()
    with connection:
        connection.executemany("INSERT INTO cool_widget_registry (cool_widget_id, created_at) "
                               "VALUES (?, ?)", values)
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def fail_three_percent(engine) -> int:
    with engine.begin() as connection:
        return connection.execute(text(
            "UPDATE cool_widget_registry SET state = 3, retry_count = 2, "
            "last_sync_failure = 'Error downloading file: read timed out' "
            "WHERE id % 100 < 3")).rowcount


def bulk_resync(tracking_url: str) -> tuple[float, float, int]:
    engine = create_db_engine(tracking_url)
    actions = RegistryActions(engine, CoolWidgets)
    failed = fail_three_percent(engine)
    started = time.perf_counter()
    resynced = actions.resync(RegistrySelection(replication_state=SyncState.FAILED))
    ours = time.perf_counter() - started
    assert resynced == failed, (resynced, failed)
    fail_three_percent(engine)
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text("UPDATE cool_widget_registry SET state = 0 WHERE state = 3"))
    bare = time.perf_counter() - started
    engine.dispose()
    return ours, bare, failed


def claim_rate(tracking_url: str, threads: int, batch: int) -> float:
    """Registries claimed per second by `threads` schedulers claiming `batch`."""
    engine = create_db_engine(tracking_url, pool_size=threads + 2)
    with engine.begin() as connection:
        connection.execute(text("UPDATE cool_widget_registry SET state = 0, last_synced_at = NULL"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE cool_widget_registry"))
    store = RegistryClaims(engine, CoolWidgets)
    claimed = [0] * threads
    stop = threading.Event()

    def scheduler(index: int) -> None:
        while not stop.is_set():
            got = len(store.claim_sync_batch(batch))
            claimed[index] += got
            if not got:  # every row claimed
                stop.set()

    workers = [threading.Thread(target=scheduler, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    stop.wait(CLAIM_SECONDS)
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    with engine.connect() as connection:
        started_rows = connection.execute(select(func.count()).select_from(
            CoolWidgets.registry_table()).where(
            CoolWidgets.registry_table().c.state == SyncState.STARTED)).scalar_one()
    engine.dispose()
    assert started_rows == sum(claimed), (started_rows, sum(claimed))  # no row claimed twice
    return sum(claimed) / elapsed


def run(kind: str, tracking_url: str, primary: str, rows: int, workdir: pathlib.Path) -> None:
    upgrade(tracking_url, "tracking")
    print(f"\n{kind} tracking DB, {rows:,} registries", flush=True)
    total, inserting, created = backfill(tracking_url, primary, workdir / f"storage-{kind}")
    assert created == rows, (created, rows)
    copy = copy_baseline(tracking_url, rows)
    baseline = "COPY" if kind == "postgresql" else "executemany"
    print(f"  backfill over the Geo API        {total:7.2f} s ({rows / total:,.0f} registries/s)")
    print(f"    of which insertion             {inserting:7.2f} s")
    print(f"    plain {baseline:<24} {copy:7.2f} s")
    print(f"    insertion / {baseline:<19} {inserting / copy:7.2f}x the time (target <= 2)")
    ours, bare, failed = bulk_resync(tracking_url)
    print(f"  bulk resync of {failed:,} failed     {ours:7.2f} s")
    print(f"    bare UPDATE ... WHERE state=3  {bare:7.2f} s  ({ours / bare:.2f}x the time)")
    for threads, batch in ((1, 50), (1, 5), (4, 50)):
        rate = claim_rate(tracking_url, threads, batch)
        print(f"  claims, {threads} x batch {batch:<3}            {rate:9,.0f} registries/s",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, \
            fresh_postgres_database(args.postgres) as primary_url:
        workdir = pathlib.Path(folder)
        started = time.perf_counter()
        fill_primary(primary_url, args.rows)
        print(f"primary with {args.rows:,} widgets ready in {time.perf_counter() - started:.1f} s")
        with running_primary(primary_url, workdir) as primary:
            with fresh_postgres_database(args.postgres) as tracking_url:
                run("postgresql", tracking_url, primary, args.rows, workdir)
            if not args.skip_sqlite:
                run("sqlite", f"sqlite:///{os.path.join(folder, 'tracking.db')}", primary,
                    args.rows, workdir)


if __name__ == "__main__":
    main()
