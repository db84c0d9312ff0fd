"""Status computation at 1,000,000 registries, against GitLab's batch count.

    python bench/status_at_scale.py [--rows N] [--postgres URL] [--skip-sqlite]

Fills a fresh tracking DB (PostgreSQL, then SQLite) with N registries in
realistic states (90% synced, 5% pending, 3% failed, 2% started; most
synced ones verified), then times, in the same run:
  - Geo Console's status (one GROUP BY on the (state, verification_state)
    index, plus the oldest unsynced time),
  - the baseline: GitLab's batch counting, 1,000 id-range COUNTs for each of
    the six counts a status needs,
and prints both and their ratio. Not a test; nothing here runs in CI.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from backend.db.engine import create_db_engine, normalize_url  # noqa: E402
from backend.db.migrate import upgrade  # noqa: E402
from backend.replicables import replicator_for  # noqa: E402
from backend.secondary.status import registry_counts  # noqa: E402

CoolWidgets = replicator_for("cool_widget")

# state, verification_state by position in each block of 100 rows
STATE_SQL = """CASE WHEN n % 100 < 90 THEN 2 WHEN n % 100 < 95 THEN 0
                    WHEN n % 100 < 98 THEN 3 ELSE 1 END"""
VSTATE_SQL = """CASE WHEN n % 100 < 85 THEN 2 WHEN n % 100 < 88 THEN 0
                     WHEN n % 100 < 89 THEN 3 WHEN n % 100 < 90 THEN 4 ELSE 0 END"""


def fill_postgres(engine, rows: int) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"""
            INSERT INTO cool_widget_registry (cool_widget_id, created_at, state,
                                              verification_state)
            SELECT n, now() - (n || ' seconds')::interval, {STATE_SQL}, {VSTATE_SQL}
            FROM generate_series(1, :rows) AS n"""), {"rows": rows})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE cool_widget_registry"))


def fill_sqlite(engine, rows: int) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"""
            WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :rows)
            INSERT INTO cool_widget_registry (cool_widget_id, created_at, state,
                                              verification_state)
            SELECT n, '2026-01-01 00:00:00.000000', {STATE_SQL}, {VSTATE_SQL} FROM seq"""),
            {"rows": rows})
        connection.execute(text("ANALYZE"))


def gitlab_batch_counts(engine, batches: int = 1000) -> dict:
    """GitLab's Gitlab::Database::BatchCount: MAX(id), then COUNTs per id range."""
    t = CoolWidgets.registry_table()
    synced = t.c.state == 2
    conditions = {
        "registry_count": [], "synced_count": [synced], "failed_count": [t.c.state == 3],
        "verification_total_count": [synced, t.c.verification_state != 4],
        "verified_count": [synced, t.c.verification_state == 2],
        "verification_failed_count": [synced, t.c.verification_state == 3],
    }
    counts = {}
    with engine.connect() as connection:
        top = connection.execute(select(func.max(t.c.id))).scalar() or 0
        step = max(1, -(-top // batches))
        for name, where in conditions.items():
            total = 0
            for start in range(1, top + 1, step):
                total += connection.execute(
                    select(func.count()).select_from(t).where(
                        t.c.id >= start, t.c.id < start + step, *where)).scalar()
            counts[name] = total
    return counts


def timed(function, repeat: int = 3):
    results, seconds = None, []
    for _ in range(repeat):
        started = time.perf_counter()
        results = function()
        seconds.append(time.perf_counter() - started)
    return results, statistics.median(seconds)


def run(label: str, url: str, filler, rows: int) -> None:
    engine = create_db_engine(url)
    upgrade(engine, "tracking")
    started = time.perf_counter()
    filler(engine, rows)
    print(f"[{label}] filled {rows:,} registries in {time.perf_counter() - started:.1f} s")
    ours, ours_seconds = timed(lambda: registry_counts(engine, CoolWidgets))
    theirs, their_seconds = timed(lambda: gitlab_batch_counts(engine), repeat=1)
    for name in theirs:
        assert ours[name] == theirs[name], (name, ours[name], theirs[name])
    print(f"[{label}] Geo Console status:        {ours_seconds * 1000:8.1f} ms")
    print(f"[{label}] GitLab batch counts (base): {their_seconds * 1000:8.1f} ms")
    print(f"[{label}] ratio ours / baseline:      {ours_seconds / their_seconds:8.3f}")
    engine.dispose()


@contextlib.contextmanager
def fresh_postgres_database(server: str):
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    database = f"geo_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(f"{server}/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        yield f"{server}/{database}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    with fresh_postgres_database(args.postgres) as url:
        run("postgresql", url, fill_postgres, args.rows)
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            run("sqlite", f"sqlite:///{os.path.join(folder, 'tracking.db')}", fill_sqlite,
                args.rows)


if __name__ == "__main__":
    main()
