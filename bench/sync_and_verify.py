"""Sync + verify over loopback, from an empty secondary to all verified,
against rclone and against a bare download-and-hash loop.

    python bench/sync_and_verify.py --case small     # 10,000 x 16 KiB
    python bench/sync_and_verify.py --case large     # 8 x 256 MiB
    options: --tracking sqlite|postgresql (default both), --keep DIR, --skip-rclone

One primary (`main.py primary serve`, its own process) holds the blobs, all
checksummed before timing starts. Then, each on an empty destination:
  - rclone (Debian's package), twice: `rclone serve http` (started before
    the clock) on a folder of the primary's blobs, then, timed, `rclone copy`
    into an empty folder and `rclone check --download` (both sides read in
    full). Once on the primary's own blob folder, whose nested layout
    (`<plural>/<2 hex>/<uuid hex>/<name>`) makes rclone list one folder per
    blob: over ten thousand listings for the small case, rclone's worst
    case. Once on a flat folder holding the same files under unique names
    (hard links to the primary's, copies where linking fails), built before
    the clock: one listing, rclone's best case. A fair baseline lies
    between the two;
  - two bare loops in Python (bench/bare_loops.py) that download each blob
    from the primary's Geo API, hash it while writing it to disk and
    compare with the primary's checksum, `files_max_capacity` at a time; no
    database, no state: one with threads and urllib3, one with coroutines
    and aiohttp (the engine's own transport, so the ratio to it is the
    bookkeeping). Each runs as its own process, timed from its start to its
    exit like rclone and the engine;
  - Geo Console: `main.py secondary run` on an empty tracking database
    (migrated before the clock starts), timed from its start until every
    registry is synced and verified.
Prints times, throughput and Geo Console's throughput as a ratio of each
baseline. Not a test; nothing here runs in CI.

Many small copies stay until the end of the run (they go with the work
folder, or stay with --keep): ext4 skips inodes freed in the last minutes
when it allocates new ones, so a contender started right after another's
10,000 files were deleted paid several tenths of a millisecond more of
kernel time per file. A few large copies are deleted at once instead:
kept, their gigabytes of dirty pages would throttle the next contender's
writes. Dirty pages are flushed (sync) before each contender starts.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select  # noqa: E402

from backend.config import load_config  # noqa: E402
from backend.db.engine import create_db_engine  # noqa: E402
from backend.db.migrate import upgrade  # noqa: E402
from backend.replicables import replicator_for  # noqa: E402
from backend.framework.states import SyncState, VerificationState  # noqa: E402
from backend.sites.primary import PrimarySite  # noqa: E402
from bench.bare_loops import ACCESS_KEY, CAPACITY, SECRET  # noqa: E402
from bench.loopback import free_port, wait_for_port  # noqa: E402
from bench.status_at_scale import fresh_postgres_database  # noqa: E402

CoolWidgets = replicator_for("cool_widget")
CASES = {"small": (10_000, 16 * 1024), "large": (8, 256 * 1024 * 1024)}
POSTGRES_SERVER = os.environ.get("GEO_CONSOLE_BENCH_POSTGRES_URL",
                                 "postgresql://postgres@127.0.0.1:5432")
KEEP_COPIES_FROM = 1000  # blobs; see the module's docstring
keep_copies = False


def discard(copies: pathlib.Path) -> None:
    """A contender's copies, once timed: deleted unless they are many."""
    if not keep_copies:
        shutil.rmtree(copies, ignore_errors=True)


# --- the primary -------------------------------------------------------------------

# Secondaries the primary knows: a name for each run of bench/paired_engines.py
# (engines one after another under one name would be one secondary replaced
# by another while it still reports, which a primary refuses).
SECONDARY_NAMES = ("bench", *(f"bench-{n}" for n in range(1, 65)))


def access_key_of(name: str) -> str:
    return ACCESS_KEY if name == SECONDARY_NAMES[0] else f"{ACCESS_KEY}-{name}"


def peers_toml() -> str:
    """The primary's `[[primary.secondaries]]` tables, one per bench secondary."""
    return "\n".join(f"""[[primary.secondaries]]
name = "{peer}"
access_key = "{access_key_of(peer)}"
secret = "{SECRET}"
""" for peer in SECONDARY_NAMES)


def write_config(workdir: pathlib.Path, primary_port: int, tracking_url: str,
                 secondary_storage: pathlib.Path, name: str = SECONDARY_NAMES[0]) -> pathlib.Path:
    path = workdir / "geo.toml"
    peers = peers_toml()
    path.write_text(f"""[primary]
database_url = "sqlite:///{workdir / 'primary.db'}"
storage_path = "{workdir / 'primary'}"
listen = "127.0.0.1:{primary_port}"

{peers}
[secondary]
name = "{name}"
primary_url = "http://127.0.0.1:{primary_port}"
access_key = "{access_key_of(name)}"
secret = "{SECRET}"
tracking_database_url = "{tracking_url}"
storage_path = "{secondary_storage}"
listen = "127.0.0.1:{free_port()}"
files_max_capacity = {CAPACITY}
verification_max_capacity = 100
status_interval = 60
""")
    return path


def fill_primary(config_path: pathlib.Path, count: int, size: int) -> None:
    site = PrimarySite(load_config(config_path).require_primary())
    site.upgrade_database()
    catalog = site.catalog()
    rng = random.Random(1)
    block = rng.randbytes(min(size, 1 << 20))
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(count):
            if size <= 1 << 20:
                catalog.add_bytes(rng.randbytes(size), f"blob-{index}")
                continue
            source = pathlib.Path(scratch) / f"blob-{index}"
            with open(source, "wb") as handle:
                for offset in range(0, size, len(block)):
                    # Varied content, so no two blocks hash alike.
                    handle.write(offset.to_bytes(8, "little") + block[8:])
            catalog.add_file(source)
            source.unlink()
    site.engine.dispose()


def primary_checksums(workdir: pathlib.Path) -> dict[int, str]:
    engine = create_engine(f"sqlite:///{workdir / 'primary.db'}")
    storage = CoolWidgets.verification
    table = storage.table
    with engine.connect() as connection:
        rows = connection.execute(select(table.c[storage.key], table.c.verification_checksum))
        checksums = {row[0]: row[1].decode() if isinstance(row[1], bytes) else row[1]
                     for row in rows}
    engine.dispose()
    return checksums


def wait_for_checksums(workdir: pathlib.Path, count: int, timeout: float = 1800) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        checksums = primary_checksums(workdir)
        if len(checksums) == count and all(checksums.values()):
            return checksums
        time.sleep(0.5)
    raise SystemExit("the primary did not checksum every blob in time")


# --- baselines -----------------------------------------------------------------------

def flat_folder(source: pathlib.Path, folder: pathlib.Path) -> pathlib.Path:
    """Every file under `source` in one folder, `folder`, built afresh (a
    --keep folder may hold an earlier run's): hard links, so the bytes are
    the very ones the primary serves (and the same cached pages), or copies
    where the file system refuses a link. Names are numbered, since two
    blobs may share a file name in their own folders."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    files = sorted(path for path in source.rglob("*") if path.is_file())
    for number, path in enumerate(files):
        target = folder / f"{number:06d}-{path.name}"
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
    return folder


def run_rclone(workdir: pathlib.Path, served: pathlib.Path) -> float:
    """`rclone copy` then `rclone check --download` from `rclone serve http`
    on `served`, timed from the copy's launch to the check's exit; the
    server starts before the clock."""
    port = free_port()
    destination = workdir / f"rclone-{uuid.uuid4().hex[:6]}"
    remote = [":http:", "--http-url", f"http://127.0.0.1:{port}"]
    server = subprocess.Popen(["rclone", "serve", "http", str(served),
                               "--addr", f"127.0.0.1:{port}", "--read-only"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        started = time.perf_counter()
        subprocess.run(["rclone", "copy", *remote, str(destination)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["rclone", "check", "--download", *remote, str(destination)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
        discard(destination)
    return elapsed


def run_bare_loop(kind: str, workdir: pathlib.Path, port: int,
                  listing: pathlib.Path) -> float:
    """One of bench/bare_loops.py's loops, timed from its start to its exit;
    `listing` holds the primary's checksums as JSON."""
    destination = workdir / f"bare-{kind}-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bare_loops.py"), kind,
                           str(port), str(destination), str(listing)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bare loop ({kind}) failed: {done.stderr.decode().strip()}")
    discard(destination)
    return elapsed


# --- Geo Console -----------------------------------------------------------------------

@contextlib.contextmanager
def tracking_database(kind: str, workdir: pathlib.Path):
    """The URL of an empty tracking database, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'tracking-{uuid.uuid4().hex[:6]}.db'}"
        return
    with fresh_postgres_database(POSTGRES_SERVER) as url:
        yield url


def run_engine(workdir: pathlib.Path, primary_port: int, kind: str, count: int,
               profile: str | None, progress: bool) -> float:
    with tracking_database(kind, workdir) as tracking_url:
        return time_engine(workdir, primary_port, tracking_url, count, profile, progress)


def time_engine(workdir: pathlib.Path, primary_port: int, tracking_url: str, count: int,
                profile: str | None, progress: bool) -> float:
    storage = workdir / f"secondary-{uuid.uuid4().hex[:6]}"
    config = write_config(workdir, primary_port, tracking_url, storage)
    upgrade(tracking_url, "tracking")
    engine = create_db_engine(tracking_url)
    registry = CoolWidgets.registry_table()
    done = select(func.count()).select_from(registry).where(
        registry.c.state == SyncState.SYNCED,
        registry.c.verification_state == VerificationState.SUCCEEDED)
    by_state = select(registry.c.state, registry.c.verification_state, func.count()).group_by(
        registry.c.state, registry.c.verification_state)
    next_progress = 0.0
    command = [sys.executable, str(ROOT / "main.py"), "secondary", "run", "--config", str(config)]
    if profile:
        command = ["py-spy", "record", "--rate", "200", "--format", "raw", "--gil",
                   "--output", profile, "--", *command]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            with engine.connect() as connection:
                if connection.execute(done).scalar_one() == count:
                    break
                if progress and time.perf_counter() >= next_progress:
                    next_progress = time.perf_counter() + 1
                    states = {f"{SyncState(a).label}/{VerificationState(b).label}": n
                              for a, b, n in connection.execute(by_state)}
                    print(f"  {time.perf_counter() - started:5.1f} s {states}", flush=True)
            if process.poll() is not None:
                raise SystemExit("secondary run stopped: " + process.stderr.read().decode())
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        engine.dispose()
        discard(storage)
    return elapsed


# --- the run --------------------------------------------------------------------------------

def checkout_environment(checkout: pathlib.Path) -> dict[str, str]:
    """The environment for a process of `checkout`'s main.py: the checkout
    alone on PYTHONPATH, so that it imports its own `backend` whatever
    checkout the virtualenv's editable install points at."""
    return {**os.environ, "PYTHONPATH": str(checkout)}


def start_primary(config: pathlib.Path, port: int,
                  checkout: pathlib.Path = ROOT) -> subprocess.Popen:
    """`main.py primary serve` of `checkout` in its own process, run from
    the checkout; returns once it listens on `port`."""
    primary = subprocess.Popen([sys.executable, str(checkout / "main.py"), "primary", "serve",
                                "--config", str(config)],
                               cwd=checkout, env=checkout_environment(checkout),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process=primary)
    except BaseException:
        stop_primary(primary)
        raise
    return primary


def stop_primary(primary: subprocess.Popen) -> None:
    primary.send_signal(signal.SIGINT)
    primary.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="small")
    parser.add_argument("--count", type=int, help="number of blobs (default: the case's)")
    parser.add_argument("--tracking", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--skip-rclone", action="store_true", help="skip both rclone runs")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it")
    parser.add_argument("--progress", action="store_true",
                        help="print the engine's registry states every second")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="record the engine with py-spy into PREFIX-<db>.txt")
    args = parser.parse_args()
    if not args.skip_rclone and not shutil.which("rclone"):
        raise SystemExit("rclone is not installed (Debian: apt install rclone), or pass "
                         "--skip-rclone")
    count, size = CASES[args.case]
    count = args.count or count
    global keep_copies
    keep_copies = count >= KEEP_COPIES_FROM
    # Absolute: the primary runs from the checkout, not from here.
    workdir = pathlib.Path(args.keep or tempfile.mkdtemp(prefix="geo-bench-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    kinds = ("sqlite", "postgresql") if args.tracking == "both" else (args.tracking,)
    port = free_port()
    config = write_config(workdir, port, "sqlite:///unused.db", workdir / "unused")
    print(f"{count} blobs of {size:,} bytes in {workdir}", flush=True)
    started = time.perf_counter()
    fill_primary(config, count, size)
    primary = start_primary(config, port)
    try:
        checksums = wait_for_checksums(workdir, count)
        print(f"primary ready in {time.perf_counter() - started:.1f} s", flush=True)
        total = count * size
        # Written afresh: a --keep folder may hold an earlier run's listing.
        listing = workdir / "checksums.json"
        listing.write_text(json.dumps(checksums))
        contenders = []
        if not args.skip_rclone:
            nested = workdir / "primary" / "local"
            flat = flat_folder(nested, workdir / "rclone-flat-source")
            contenders.append(("rclone copy + check --download",
                               lambda: run_rclone(workdir, nested)))
            contenders.append(("rclone copy + check --download, flat folder",
                               lambda: run_rclone(workdir, flat)))
        for loop, title in (("threads", "threads + urllib3"), ("asyncio", "asyncio + aiohttp")):
            contenders.append((f"bare loop, {title}", lambda loop=loop: run_bare_loop(
                loop, workdir, port, listing)))
        for kind in kinds:
            profile = f"{args.profile}-{kind}.txt" if args.profile else None
            contenders.append((f"Geo Console ({kind} tracking DB)",
                               lambda kind=kind, profile=profile: run_engine(
                                   workdir, port, kind, count, profile, args.progress)))
        results: dict[str, float] = {}
        for name, run in contenders:
            # Each contender starts with the earlier ones' writes on disk:
            # otherwise the kernel flushes them on the same two cores while
            # the later contenders run.
            os.sync()
            results[name] = run()
    finally:
        stop_primary(primary)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{'':44} {'seconds':>8} {'files/s':>9} {'MB/s':>8}")
    for name, seconds in results.items():
        print(f"{name:44} {seconds:8.2f} {count / seconds:9.0f} {total / seconds / 1e6:8.1f}")
    baselines = {name: s for name, s in results.items() if not name.startswith("Geo Console")}
    print()
    for name, seconds in results.items():
        if name.startswith("Geo Console"):
            for baseline, base_seconds in baselines.items():
                print(f"{name} / {baseline}: {base_seconds / seconds:.2f}x throughput")


if __name__ == "__main__":
    main()
