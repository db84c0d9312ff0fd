"""Paired runs: the old and the new checkout's engine, alternated on one primary.

    python bench/paired_engines.py --old /work/old --new /work/main --case small
    options: --count N, --rounds R (default 4), --tracking sqlite|postgresql|both
             (default both)

For measuring a code change on a noisy machine. On the machines of these
rounds the same engine moved by up to 40% between full runs of
bench/sync_and_verify.py minutes apart (docs/PERFORMANCE.md): one such run
per checkout compares the machine's moods as much as the code. Here one
primary is filled once and serves every run, and each round runs the old
and the new checkout's `main.py secondary run` back to back, the old first
in odd rounds and the new first in even ones, so that a drift of the
machine, and whatever a run leaves to the next (cached pages, the
primary's warmed state), falls on both alike. The per-round ratios show
how much of the difference stands out of the noise; the ratio of the
medians is the figure to quote. An even number of rounds gives each order
as often.

Each run starts on a fresh, empty tracking database (migrated before the
clock by the checkout's own code: the two may differ in their migrations)
and a fresh storage folder. The engine runs with this python (the new
checkout's virtualenv), from its checkout, with only that checkout on
PYTHONPATH, so that each imports its own `backend` and not the one the
virtualenv's editable install points at. It is timed from its launch
until `cool_widget_registry` holds a synced and verified row for every
blob: only Cool Widgets exist on the primary, so a checkout that
replicates more types has nothing else left to do. The rows are counted
by the table's name and the states' stored values (2, 2), not through
this checkout's models, which the old checkout's database need not match.

The primary runs the new checkout's code, and is filled by it in this
process: run the bench from the new checkout. Its Geo API is the one both
engines speak, and the one configuration file (sync_and_verify's
write_config, read whole by each engine, [primary] included) names the one
secondary both authenticate as.

As in bench/sync_and_verify.py, many small copies stay until the end of the
run (ext4 charges whoever creates files right after a mass deletion), a few
large ones are deleted at once, and dirty pages are flushed before each run.
Not a test; nothing here runs in CI.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from backend.db.engine import create_db_engine  # noqa: E402
from bench import sync_and_verify  # noqa: E402
from bench.loopback import free_port  # noqa: E402
from bench.sync_and_verify import (CASES, KEEP_COPIES_FROM, checkout_environment,  # noqa: E402
                                   discard, fill_primary, start_primary, stop_primary,
                                   tracking_database, wait_for_checksums, write_config)

# The stored values of SyncState.SYNCED and VerificationState.SUCCEEDED.
DONE = text("SELECT count(*) FROM cool_widget_registry "
            "WHERE state = 2 AND verification_state = 2")
# Each checkout's own migrations, run in its own process.
MIGRATE = "import sys; from backend.db.migrate import upgrade; upgrade(sys.argv[1], 'tracking')"
RUN_TIMEOUT = 1800  # seconds


def describe(checkout: pathlib.Path) -> str:
    """The checkout's commit, and whether it has changes on top of it."""
    done = subprocess.run(["git", "--no-optional-locks", "-C", str(checkout), "describe",
                           "--always", "--dirty=+changes"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "not a git checkout"


def migrate(checkout: pathlib.Path, tracking_url: str) -> None:
    done = subprocess.run([sys.executable, "-c", MIGRATE, tracking_url], cwd=checkout,
                          env=checkout_environment(checkout), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"migrating with {checkout} failed: {done.stderr.strip()}")


def run_checkout(checkout: pathlib.Path, workdir: pathlib.Path, primary_port: int,
                 kind: str, count: int, name: str = "bench") -> float:
    with tracking_database(kind, workdir) as tracking_url:
        return time_checkout(checkout, workdir, primary_port, tracking_url, count, name)


def time_checkout(checkout: pathlib.Path, workdir: pathlib.Path, primary_port: int,
                  tracking_url: str, count: int, name: str = "bench") -> float:
    """`checkout`'s engine from its launch until every blob is synced and
    verified. Its stderr goes to a file: a pipe nobody reads during the run
    would stall an engine that logs more than the pipe holds."""
    run = uuid.uuid4().hex[:6]
    storage = workdir / f"secondary-{run}"
    config = write_config(workdir, primary_port, tracking_url, storage, name)
    migrate(checkout, tracking_url)
    engine = create_db_engine(tracking_url)
    log = workdir / f"engine-{run}.log"
    # The earlier runs' writes on disk now, not flushed by the kernel on the
    # same two cores while this one runs.
    os.sync()
    with open(log, "wb") as errors:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, str(checkout / "main.py"), "secondary",
                                    "run", "--config", str(config)],
                                   cwd=checkout, env=checkout_environment(checkout),
                                   stdout=subprocess.DEVNULL, stderr=errors)
        try:
            while True:
                with engine.connect() as connection:
                    if connection.execute(DONE).scalar_one() == count:
                        break
                if process.poll() is not None:
                    raise SystemExit(f"secondary run of {checkout} stopped: "
                                     + log.read_text(errors="replace").strip()[-2000:])
                if time.perf_counter() - started > RUN_TIMEOUT:
                    raise SystemExit(f"secondary run of {checkout} did not finish in "
                                     f"{RUN_TIMEOUT} s; its log: {log}")
                time.sleep(0.1)
            elapsed = time.perf_counter() - started
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            engine.dispose()
            discard(storage)
    return elapsed


def order(round_number: int, old: pathlib.Path, new: pathlib.Path):
    """Old first in odd rounds, new first in even ones."""
    pairs = (("old", old), ("new", new))
    return pairs if round_number % 2 else pairs[::-1]


def print_summary(times: dict[str, dict[str, list[float]]], count: int) -> None:
    for kind, by_checkout in times.items():
        old, new = by_checkout["old"], by_checkout["new"]
        print(f"\n{kind} tracking DB, {len(old)} rounds of {count} blobs:")
        for label, seconds in (("old", old), ("new", new)):
            median = statistics.median(seconds)
            print(f"  {label}: median {median:7.2f} s ({count / median:6.0f} files/s); "
                  f"rounds: {' '.join(f'{s:.2f}' for s in seconds)}")
        ratio = statistics.median(new) / statistics.median(old)
        print(f"  new/old time, of the medians: {ratio:.3f}")
        print(f"  new/old time, per round: {' '.join(f'{n / o:.3f}' for o, n in zip(old, new))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=pathlib.Path, required=True,
                        help="the checkout to compare against (a git worktree)")
    parser.add_argument("--new", type=pathlib.Path, default=ROOT,
                        help="the checkout under test; this bench's own (the default)")
    parser.add_argument("--case", choices=sorted(CASES), default="small")
    parser.add_argument("--count", type=int, help="number of blobs (default: the case's)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="pairs of runs per tracking DB (default 4; even, for each order)")
    parser.add_argument("--tracking", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    old, new = args.old.resolve(), args.new.resolve()
    if new != ROOT:
        raise SystemExit(f"run the bench from the new checkout ({new}/bench/paired_engines.py):"
                         " it fills the primary with its own code")
    if old == new or not (old / "main.py").is_file():
        raise SystemExit(f"--old must be another checkout, with a main.py: {old}")
    count, size = CASES[args.case]
    count = args.count or count
    sync_and_verify.keep_copies = count >= KEEP_COPIES_FROM
    kinds = ("sqlite", "postgresql") if args.tracking == "both" else (args.tracking,)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="geo-paired-")).resolve()
    port = free_port()
    config = write_config(workdir, port, "sqlite:///unused.db", workdir / "unused")
    print(f"old: {old} ({describe(old)})\nnew: {new} ({describe(new)})", flush=True)
    print(f"{count} blobs of {size:,} bytes in {workdir}", flush=True)
    times = {kind: {"old": [], "new": []} for kind in kinds}
    started = time.perf_counter()
    try:
        fill_primary(config, count, size)
        primary = start_primary(config, port, checkout=new)
        try:
            wait_for_checksums(workdir, count)
            print(f"primary ready in {time.perf_counter() - started:.1f} s", flush=True)
            runs = 0
            for round_number in range(1, args.rounds + 1):
                for kind in kinds:
                    line = []
                    for label, checkout in order(round_number, old, new):
                        # Each run is a secondary of its own to the primary.
                        runs += 1
                        seconds = run_checkout(checkout, workdir, port, kind, count,
                                               f"bench-{runs}")
                        times[kind][label].append(seconds)
                        line.append(f"{label} {seconds:6.2f} s")
                    ratio = times[kind]["new"][-1] / times[kind]["old"][-1]
                    print(f"round {round_number}, {kind:10} {', '.join(line)}; "
                          f"new/old {ratio:.3f}", flush=True)
        finally:
            stop_primary(primary)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_summary(times, count)


if __name__ == "__main__":
    main()
