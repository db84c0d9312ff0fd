"""The engine's claim latency while every one of 1,000,000 registries is resynced.

    python bench/bulk_resync_claims.py [--rows N] [--postgres URL] [--skip-sqlite]

For an SQLite and then a PostgreSQL tracking database holding N registries
(90 % synced, the rest pending, failed or started, as bench/status_at_scale.py
fills them), a thread does what the engine's sync scheduler does: claims 50
syncs (RegistryClaims.claim_sync_batch, the refill of files_max_capacity =
100) and hands them back (release_sync_claims, a write as the recorder's
outcomes are), again and again, timing each round from the claim's start to
the release's commit. Meanwhile the main thread resyncs every
registry:

  - baseline: the code before, one UPDATE of every row (RegistryActions.resync
    of b0b28a4 and earlier);
  - batched: BulkAction.run, 1,000 rows a transaction (bulk_actions.py).

Both start from the same rows (the table is filled again in between, and
each run starts from launch of its resync). Reported: how long the resync
took, and the rounds' median, 99th percentile and longest latency during it,
next to their latency with no resync (the idle figure, measured first).
Not a test; nothing here runs in CI.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text, update  # noqa: E402

from backend.db.engine import create_db_engine, is_postgresql, writing  # noqa: E402
from backend.db.migrate import upgrade  # noqa: E402
from backend.framework import transitions as tr  # noqa: E402
from backend.replicables import replicator_for  # noqa: E402
from backend.secondary.bulk_actions import BulkAction  # noqa: E402
from backend.secondary.registry_claims import RegistryClaims  # noqa: E402
from backend.secondary.registry_selection import RegistrySelection  # noqa: E402
from bench.status_at_scale import fill_postgres, fill_sqlite, fresh_postgres_database  # noqa: E402

CoolWidgets = replicator_for("cool_widget")
CLAIM = 50
IDLE_SECONDS = 3.0


class Claimer(threading.Thread):
    """The sync scheduler's claims, timed, until stopped."""

    def __init__(self, engine) -> None:
        super().__init__(daemon=True)
        self.claims = RegistryClaims(engine, CoolWidgets)
        self.latencies: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        # A round is a claim and the write that ends it (here a release, as
        # the recorder's outcomes would): both wait for the write lock.
        while not self.stopping.is_set():
            started = time.perf_counter()
            claimed = self.claims.claim_sync_batch(CLAIM)
            self.claims.release_sync_claims(claimed)
            self.latencies.append(time.perf_counter() - started)


def one_update(engine) -> None:
    t = CoolWidgets.registry_table()
    with writing(engine) as connection:
        connection.execute(update(t).values(**tr.sync_pending()))


def batched(engine) -> None:
    BulkAction(engine, CoolWidgets).run("resync", RegistrySelection())


def refill(engine, rows: int) -> None:
    t = CoolWidgets.registry_table()
    with engine.begin() as connection:
        connection.execute(t.delete())
    (fill_postgres if is_postgresql(engine) else fill_sqlite)(engine, rows)


def timed(engine, resync) -> tuple[float, list[float]]:
    claimer = Claimer(engine)
    claimer.start()
    time.sleep(0.5)  # claiming before the resync begins
    before = len(claimer.latencies)
    started = time.perf_counter()
    resync(engine)
    took = time.perf_counter() - started
    claimer.stopping.set()
    claimer.join()
    return took, claimer.latencies[before:]


def idle(engine) -> list[float]:
    claimer = Claimer(engine)
    claimer.start()
    time.sleep(IDLE_SECONDS)
    claimer.stopping.set()
    claimer.join()
    return claimer.latencies


def describe(latencies: list[float]) -> str:
    if not latencies:
        return "no claim answered during it"
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"{len(ordered):6,} claims, median {statistics.median(ordered) * 1000:7.1f} ms, "
            f"p99 {p99 * 1000:7.1f} ms, longest {ordered[-1] * 1000:7.1f} ms")


def run(label: str, url: str, rows: int) -> None:
    upgrade(url, "tracking")
    engine = create_db_engine(url)
    refill(engine, rows)
    print(f"[{label}] {rows:,} registries")
    print(f"[{label}] idle claims:     {describe(idle(engine))}")
    results = {}
    for name, resync in (("baseline", one_update), ("batched", batched)):
        refill(engine, rows)
        if is_postgresql(engine):
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE cool_widget_registry"))
        took, latencies = timed(engine, resync)
        results[name] = (took, latencies)
        print(f"[{label}] {name:8}: resync {took:6.2f} s; claims during it: "
              f"{describe(latencies)}")
    (base_took, base), (new_took, new) = results["baseline"], results["batched"]
    if base and new:
        print(f"[{label}] longest claim, batched / baseline: {max(new) / max(base):.3f}")
    print(f"[{label}] resync time, batched / baseline: {new_took / base_took:.2f}")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            run("sqlite", f"sqlite:///{os.path.join(folder, 'tracking.db')}", args.rows)
    with fresh_postgres_database(args.postgres) as url:
        run("postgresql", url, args.rows)


if __name__ == "__main__":
    main()
