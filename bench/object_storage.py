"""Object storage to object storage: from the primary's bucket into the
secondary's, synced and verified, against rclone between the same two
buckets.

    python bench/object_storage.py                   # both cases
    python bench/object_storage.py --case small      # 1,000 x 1 MiB
    python bench/object_storage.py --case large      # 4 x 256 MiB
    options: --tracking sqlite|postgresql|both (default both), --rounds N
             (default 2), --count N, --keep DIR, --progress

The S3 service is moto's standalone server (tests/support/s3_server.py),
its own process on loopback, started afresh for each case. Before any
clock: a bucket of it holds the blobs, seeded through the primary's own
catalog (`add_bytes`/`add_file` with file_store 2) on its database; the
primary (`main.py primary serve`, its own process, `[primary.object_store]`
on that bucket) has checksummed every one (SHA-256), and each object's
SHA-256, read back with GET, equals the primary's checksum. Then, each on
an empty destination bucket of the same server:
  - Geo Console: `main.py secondary run` with `sync_object_storage = true`
    and `[secondary.object_store]` on the empty bucket, on an empty
    tracking database (migrated before the clock starts), timed from its
    launch until every registry is synced and verified (the tracking
    database polled every 0.1 s). The primary answers each download with
    a redirect to a presigned URL of its bucket (GitLab's default), so the
    bytes go from moto to the secondary and back to moto. The engine marks
    a replica verified from the SHA-256 of the bytes it uploaded (checked
    against the primary's before the upload, and by the service on the
    PUT): moto's log shows it reading nothing back from its bucket, where
    rclone's check reads every object on both sides again;
  - rclone (Debian's package), two S3 remotes configured through
    RCLONE_CONFIG_SRC_* and RCLONE_CONFIG_DST_* (provider Other, both on
    the same moto endpoint), timed from the launch of `rclone copy
    src:<primary's bucket> dst:<empty bucket>` to the exit of `rclone check
    --download` between them (both sides read in full). Four ways: with
    its defaults (--transfers 4 --checkers 8) and with --transfers and
    --checkers equal to the engine's files_max_capacity (10), since the
    engine has that many downloads at once; each also with --fast-list.
    Without it rclone lists the buckets one "folder" at a time, and the
    primary's keys (`cool_widgets/<2 hex>/<uuid hex>/<name>`) make that
    over 2,500 listings of the source and 1,250 of the destination for the
    small case, each of which moto answers by walking the whole bucket;
    with it, one recursive listing of each (this roughly halved rclone's
    time on the small case). The ratio that counts is against the fastest
    variant. The destination remote has `no_head` set: moto answers
    rclone's HEAD after a multipart upload (asking for `versionId=null`,
    which moto's CompleteMultipartUpload announced in an unversioned
    bucket) with 400, failing every object of the large case; without that
    HEAD rclone is, if anything, faster (the engine sends none either),
    and its check still reads every object on both sides.
Two remote names, so rclone cannot do a server-side copy (a CopyObject of
one bucket into another of the same service), which the engine cannot do
either: the two sites are different deployments. Checked in every run, not
assumed: rclone's -v log must say "Copied (new)" for every object and
never "server-side copy" (which it says, with a single remote for both
buckets), and moto's request log must show a GET of every source object
and PUTs into the destination. A dry run (--count 3) showed, from moto's
log: the listing, one GET of each source object, one PUT of each into the
destination, then for the check one GET of each object on each side.

After each run the destination bucket's objects are compared with the
source's, SHA-256 by SHA-256 through GET (a run that copied wrong or
missing bytes is an error, not a result), then deleted with their bucket:
moto keeps objects in memory (and large ones in temporary files).

Contenders run in rounds, each round in the order of the one before
reversed (engine, rclone, rclone, engine, ...), so none always runs first;
each run's place is printed. Prints every run's seconds and MiB/s (with
the CPU seconds the contender, moto and the primary used meanwhile, and
moto's object requests by kind), each contender's mean, and Geo Console's
throughput as a ratio of each rclone variant's (mean against mean). Not a
test; nothing here runs in CI.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import hashlib
import os
import pathlib
import random
import re
import resource
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
from backend.framework.replicator import FileStore  # noqa: E402
from backend.framework.states import SyncState, VerificationState  # noqa: E402
from backend.secondary.local_storage import LocalStorage  # noqa: E402
from backend.sites.primary import PrimarySite  # noqa: E402
from bench.bare_loops import CAPACITY, SECRET  # noqa: E402
from bench.loopback import free_port  # noqa: E402
from bench.sync_and_verify import (CoolWidgets, SECONDARY_NAMES, access_key_of,  # noqa: E402
                                   peers_toml, start_primary, tracking_database,
                                   wait_for_checksums)
from tests.support.s3_server import (DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY,  # noqa: E402
                                     REGION, S3Server)

MIB = 1024 * 1024
CASES = {"small": (1000, MIB), "large": (4, 256 * MIB)}
HASH_THREADS = 8  # GETs at once when hashing a bucket's objects (outside the clocks)
ENGINE_TIMEOUT = 3600.0  # seconds


def clean_environment() -> dict[str, str]:
    """The environment for the processes started here, without what would
    change their S3 clients behind our back (AWS_*: rclone's SDK refuses
    AWS_CA_BUNDLE even for http; RCLONE_*; the engine's GEO_CONSOLE_*
    overrides of its configuration), and with the checkout on PYTHONPATH."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "RCLONE_", "GEO_CONSOLE_"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


# --- buckets -------------------------------------------------------------------------

def toml_connection(server: S3Server) -> str:
    return f"""endpoint = "{server.endpoint}"
path_style = true
region = "{REGION}"
aws_access_key_id = "{DUMMY_ACCESS_KEY_ID}"
aws_secret_access_key = "{DUMMY_SECRET_ACCESS_KEY}"
"""


def object_sha256(s3, bucket: str, key: str) -> tuple[str, int]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    digest, size = hashlib.sha256(), 0
    try:
        while chunk := body.read(MIB):
            digest.update(chunk)
            size += len(chunk)
    finally:
        body.close()
    return digest.hexdigest(), size


def bucket_sha256s(s3, bucket: str, keys) -> dict[str, tuple[str, int]]:
    """{key: (SHA-256 hex, size)} of the objects, each read in full by GET."""
    keys = list(keys)
    with concurrent.futures.ThreadPoolExecutor(HASH_THREADS) as pool:
        return dict(zip(keys, pool.map(lambda key: object_sha256(s3, bucket, key), keys)))


def bucket_keys(s3, bucket: str) -> set[str]:
    keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return keys


def drop_bucket(s3, bucket: str) -> None:
    """Empty a bucket (objects, unfinished multipart uploads) and delete it,
    so moto frees what it held."""
    with contextlib.suppress(s3.exceptions.NoSuchBucket):
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                          UploadId=upload["UploadId"])
        keys = sorted(bucket_keys(s3, bucket))
        for start in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={
                "Objects": [{"Key": key} for key in keys[start:start + 1000]], "Quiet": True})
        s3.delete_bucket(Bucket=bucket)


def check_copy(s3, bucket: str, expected: dict[str, tuple[str, int]], who: str) -> None:
    """Every expected key in `bucket` with the expected SHA-256 and size, and
    nothing else; SystemExit otherwise (no result is printed for that run)."""
    keys = bucket_keys(s3, bucket)
    missing, extra = set(expected) - keys, keys - set(expected)
    if missing or extra:
        raise SystemExit(f"{who}: {len(missing)} objects missing from the destination "
                         f"(e.g. {sorted(missing)[:3]}), {len(extra)} unexpected "
                         f"(e.g. {sorted(extra)[:3]})")
    found = bucket_sha256s(s3, bucket, expected)
    wrong = [key for key in expected if found[key] != expected[key]]
    if wrong:
        raise SystemExit(f"{who}: {len(wrong)} objects differ from the source's, "
                         f"e.g. {wrong[0]}: {found[wrong[0]]} instead of {expected[wrong[0]]}")


class RequestLog:
    """moto's request log (werkzeug's access lines in the server's output):
    requests on buckets' objects, and listings, by kind and bucket since a
    mark."""
    LINE = re.compile(r'"([A-Z]+) /([^/?\s]+)(/[^?\s]*)?(\?\S*)? HTTP/[\d.]+" (\d+)')

    def __init__(self, server: S3Server) -> None:
        self.path = server.log_path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def since_mark(self) -> collections.Counter:
        counts: collections.Counter = collections.Counter()
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            for line in log.read().decode(errors="replace").splitlines():
                match = self.LINE.search(line)
                if match:
                    method, bucket, key, query, _status = match.groups()
                    if not key or key == "/":
                        # A listing of objects (rclone's, with a delimiter,
                        # one per folder; boto3's list-type=2), or multipart
                        # uploads (?uploads); else the bucket's own (create, ...).
                        if method == "GET" and query and "uploads" in query:
                            counts[("LIST uploads", bucket)] += 1
                        elif method == "GET" and query:
                            counts[("LIST", bucket)] += 1
                        continue
                    part = query is not None and "partNumber=" in query
                    counts[(method + (" part" if part else ""), bucket)] += 1
        return counts


def describe_requests(counts: collections.Counter, source: str, destination: str) -> str:
    names = {source: "source", destination: "destination"}
    return ", ".join(f"{n} {method} {names.get(bucket, bucket)}"
                     for (method, bucket), n in sorted(counts.items(),
                                                       key=lambda item: (item[0][1] != source,
                                                                         item[0])))


# --- the primary -----------------------------------------------------------------------

def write_primary_config(folder: pathlib.Path, port: int, server: S3Server,
                         bucket: str) -> pathlib.Path:
    path = folder / "primary.toml"
    peers = peers_toml()
    path.write_text(f"""[primary]
database_url = "sqlite:///{folder / 'primary.db'}"
storage_path = "{folder / 'primary'}"
listen = "127.0.0.1:{port}"

[primary.object_store]
enabled = true
bucket = "{bucket}"

[primary.object_store.connection]
{toml_connection(server)}
{peers}""")
    return path


def fill_primary(config_path: pathlib.Path, count: int, size: int) -> None:
    """`count` blobs of `size` bytes into the primary's bucket, through its
    catalog, on its database, before it serves."""
    site = PrimarySite(load_config(config_path).require_primary())
    site.check_object_store()
    site.upgrade_database()
    catalog = site.catalog(CoolWidgets)
    rng = random.Random(1)
    block = rng.randbytes(min(size, MIB))
    with tempfile.TemporaryDirectory(dir=config_path.parent) as scratch:
        for index in range(count):
            if size <= MIB:
                catalog.add_bytes(rng.randbytes(size), f"blob-{index}",
                                  file_store=FileStore.REMOTE)
                continue
            source = pathlib.Path(scratch) / f"blob-{index}"
            with open(source, "wb") as handle:
                for offset in range(0, size, len(block)):
                    # Varied content, so no two blocks (nor blobs) hash alike.
                    handle.write((index * size + offset).to_bytes(8, "little") + block[8:])
            catalog.add_file(source, file_store=FileStore.REMOTE)
            source.unlink()
    site.engine.dispose()


def primary_keys(folder: pathlib.Path) -> dict[int, str]:
    """{model id: its key in the primary's bucket}."""
    engine = create_engine(f"sqlite:///{folder / 'primary.db'}")
    model = CoolWidgets.model_table()
    with engine.connect() as connection:
        keys = {row.id: row.file for row in connection.execute(
            select(model.c.id, model.c.file).where(model.c.file_store == FileStore.REMOTE))}
    engine.dispose()
    return keys


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live descendants, in
    seconds (0 once it is gone)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            stat = pathlib.Path(f"/proc/{current}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in pathlib.Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def reaped_children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stop_process(process: subprocess.Popen | None, timeout: float = 60) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- Geo Console -------------------------------------------------------------------------

def write_secondary_config(folder: pathlib.Path, name: str, primary_port: int,
                           tracking_url: str, storage: pathlib.Path, server: S3Server,
                           bucket: str) -> pathlib.Path:
    path = folder / f"secondary-{name}.toml"
    path.write_text(f"""[secondary]
name = "{name}"
primary_url = "http://127.0.0.1:{primary_port}"
access_key = "{access_key_of(name)}"
secret = "{SECRET}"
tracking_database_url = "{tracking_url}"
storage_path = "{storage}"
listen = "127.0.0.1:{free_port()}"
files_max_capacity = {CAPACITY}
verification_max_capacity = 100
status_interval = 60
sync_object_storage = true

[secondary.object_store]
enabled = true
bucket = "{bucket}"

[secondary.object_store.connection]
{toml_connection(server)}""")
    return path


def time_engine(config: pathlib.Path, tracking_url: str, count: int,
                progress: bool) -> tuple[float, float]:
    """`main.py secondary run` from its launch until all `count` registries
    are synced and verified; its tracking database migrated before.
    (seconds, the CPU seconds it had used by then)."""
    upgrade(tracking_url, "tracking")
    engine = create_db_engine(tracking_url)
    registry = CoolWidgets.registry_table()
    done = select(func.count()).select_from(registry).where(
        registry.c.state == SyncState.SYNCED,
        registry.c.verification_state == VerificationState.SUCCEEDED)
    by_state = select(registry.c.state, registry.c.verification_state, func.count()).group_by(
        registry.c.state, registry.c.verification_state)

    def states(connection) -> dict:
        return {f"{SyncState(a).label}/{VerificationState(b).label}": n
                for a, b, n in connection.execute(by_state)}

    next_progress = 0.0
    errors = tempfile.TemporaryFile()
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "secondary", "run",
                                "--config", str(config)], cwd=ROOT, env=clean_environment(),
                               stdout=subprocess.DEVNULL, stderr=errors)
    try:
        while True:
            with engine.connect() as connection:
                if connection.execute(done).scalar_one() == count:
                    cpu = cpu_seconds(process.pid)
                    break
                now = time.perf_counter()
                if progress and now >= next_progress:
                    next_progress = now + 1
                    print(f"    {now - started:6.1f} s {states(connection)}", flush=True)
                if now - started > ENGINE_TIMEOUT:
                    raise SystemExit(f"secondary run: not all synced and verified after "
                                     f"{ENGINE_TIMEOUT:.0f} s: {states(connection)}")
            if process.poll() is not None:
                errors.seek(0)
                raise SystemExit("secondary run stopped: " + errors.read().decode()[-4000:])
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
    finally:
        stop_process(process)
        engine.dispose()
        errors.close()
    return elapsed, cpu


# --- rclone --------------------------------------------------------------------------------

def rclone_environment(server: S3Server, folder: pathlib.Path) -> dict[str, str]:
    """Two S3 remotes, `src` and `dst`, on the same moto endpoint, from the
    environment alone (the config file named does not exist)."""
    env = clean_environment()
    env["RCLONE_CONFIG"] = str(folder / "no-rclone.conf")
    for remote in ("SRC", "DST"):
        prefix = f"RCLONE_CONFIG_{remote}_"
        env.update({prefix + "TYPE": "s3", prefix + "PROVIDER": "Other",
                    prefix + "ENDPOINT": server.endpoint,
                    prefix + "ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
                    prefix + "SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
                    prefix + "REGION": REGION})
    # moto answers a CompleteMultipartUpload in an unversioned bucket with
    # `x-amz-version-id: null`, and the HEAD ?versionId=null that rclone
    # then sends to read the new object back with 400 Bad Request, which
    # fails every multipart upload: no HEAD after an upload (the engine
    # sends none either; `rclone check --download` reads every object).
    env["RCLONE_CONFIG_DST_NO_HEAD"] = "true"
    return env


def time_rclone(server: S3Server, folder: pathlib.Path, source: str, destination: str,
                options: list[str]) -> tuple[float, float, str]:
    """`rclone copy` then `rclone check --download`, from the copy's launch
    to the check's exit; (seconds, their CPU seconds, the copy's -v log)."""
    env = rclone_environment(server, folder)
    copy_log = folder / f"rclone-copy-{destination}.log"
    check_log = folder / f"rclone-check-{destination}.log"
    remotes = [f"src:{source}", f"dst:{destination}"]
    with open(copy_log, "wb") as copy_errors, open(check_log, "wb") as check_errors:
        cpu = reaped_children_cpu()
        started = time.perf_counter()
        copied = subprocess.run(["rclone", "copy", "-v", *options, *remotes], env=env,
                                stdout=subprocess.DEVNULL, stderr=copy_errors)
        checked = copied.returncode == 0 and subprocess.run(
            ["rclone", "check", "--download", *options, *remotes], env=env,
            stdout=subprocess.DEVNULL, stderr=check_errors)
        elapsed = time.perf_counter() - started
        cpu = reaped_children_cpu() - cpu
    for done, log, what in ((copied, copy_log, "copy"), (checked, check_log, "check")):
        if done is False or done.returncode != 0:
            raise SystemExit(f"rclone {what} failed:\n{log.read_text(errors='replace')[-4000:]}")
    return elapsed, cpu, copy_log.read_text(errors="replace")


def check_rclone_transfers(log: str, requests: collections.Counter, source: str,
                           destination: str, count: int) -> None:
    """rclone downloaded and uploaded each object, no server-side copy."""
    new = log.count("Copied (new)")
    server_side = log.count("server-side copy")
    gets = requests[("GET", source)]
    puts = requests[("PUT", destination)] + requests[("PUT part", destination)]
    if server_side or new != count or gets < count or puts < count:
        raise SystemExit(f"rclone did not download and upload every object: {new} copied "
                         f"(new), {server_side} server-side copies, {gets} GETs of source "
                         f"objects, {puts} PUTs into the destination, of {count} objects")


# --- the run ---------------------------------------------------------------------------------

def contenders(kinds: tuple[str, ...]) -> list[tuple[str, str, object]]:
    """(name, kind of contender, its option) in the first round's order:
    engines and rclones alternating."""
    engines = [(f"Geo Console ({kind} tracking DB)", "engine", kind) for kind in kinds]
    capacity = ["--transfers", str(CAPACITY), "--checkers", str(CAPACITY)]
    rclones = [(f"rclone {' '.join(options) or 'defaults (--transfers 4 --checkers 8)'}",
                "rclone", options)
               for options in ([], ["--fast-list"], capacity, [*capacity, "--fast-list"])]
    order = []
    for index in range(max(len(engines), len(rclones))):
        order += engines[index:index + 1] + rclones[index:index + 1]
    return order


def run_case(case: str, count: int, size: int, kinds: tuple[str, ...], rounds: int,
             workdir: pathlib.Path, progress: bool) -> list[tuple[int, str, float, str]]:
    """Every run of the case: (place in the order, contender, seconds, note)."""
    folder = workdir / case
    shutil.rmtree(folder, ignore_errors=True)  # a --keep folder may hold an earlier run's
    folder.mkdir(parents=True)
    total = count * size
    print(f"\n== {case}: {count:,} x {size // MIB} MiB = {total // MIB:,} MiB", flush=True)
    results = []
    with S3Server() as server:
        s3 = server.client()
        requests = RequestLog(server)
        moto_pid = server._process.pid  # S3Server tells no other way
        source = server.make_bucket(f"geo-primary-{case}")
        port = free_port()
        config = write_primary_config(folder, port, server, source)
        started = time.perf_counter()
        fill_primary(config, count, size)
        seeded = time.perf_counter() - started
        primary = start_primary(config, port)
        try:
            checksums = wait_for_checksums(folder, count)
            keys = primary_keys(folder)
            source_objects = bucket_sha256s(s3, source, keys.values())
            wrong = [model_id for model_id, key in keys.items()
                     if source_objects[key] != (checksums[model_id], size)]
            if len(keys) != count or wrong:
                raise SystemExit(f"the primary's checksums do not match its bucket: {wrong[:5]}")
            print(f"primary ready in {time.perf_counter() - started:.1f} s (seeded in "
                  f"{seeded:.1f} s), every object's SHA-256 checked", flush=True)
            replica_keys = LocalStorage(folder / "unused")
            engine_expected = {replica_keys.object_key(CoolWidgets, model_id):
                               source_objects[key] for model_id, key in keys.items()}
            first = contenders(kinds)
            order = []
            for round_number in range(rounds):
                order += first if round_number % 2 == 0 else first[::-1]
            print("order: " + ", ".join(f"{place}. {name}"
                                        for place, (name, _, _) in enumerate(order, 1)),
                  flush=True)
            names = iter(SECONDARY_NAMES[1:])  # a new secondary for each engine run
            for place, (name, kind, option) in enumerate(order, 1):
                destination = server.make_bucket(f"geo-copy-{place}-{uuid.uuid4().hex[:8]}")
                try:
                    # Earlier runs' writes (moto's temporary files) on disk first.
                    os.sync()
                    requests.mark()
                    moto_cpu = cpu_seconds(moto_pid)
                    primary_cpu = cpu_seconds(primary.pid)
                    if kind == "engine":
                        with tracking_database(option, folder) as tracking_url:
                            storage = folder / f"secondary-{place}"
                            secondary = write_secondary_config(
                                folder, next(names), port, tracking_url, storage, server,
                                destination)
                            seconds, cpu = time_engine(secondary, tracking_url, count,
                                                       progress)
                            shutil.rmtree(storage, ignore_errors=True)
                        made = requests.since_mark()
                        moto_cpu = cpu_seconds(moto_pid) - moto_cpu
                        primary_cpu = cpu_seconds(primary.pid) - primary_cpu
                        check_copy(s3, destination, engine_expected, name)
                    else:
                        seconds, cpu, log = time_rclone(server, folder, source, destination,
                                                        option)
                        made = requests.since_mark()
                        moto_cpu = cpu_seconds(moto_pid) - moto_cpu
                        primary_cpu = cpu_seconds(primary.pid) - primary_cpu
                        check_rclone_transfers(log, made, source, destination, count)
                        check_copy(s3, destination, source_objects, name)
                finally:
                    drop_bucket(s3, destination)
                note = (f"CPU s: {cpu:.1f} itself, {moto_cpu:.1f} moto, {primary_cpu:.1f} the "
                        f"primary; moto's requests: "
                        f"{describe_requests(made, source, destination)}")
                print(f"{place:2}. {name:46} {seconds:8.2f} s {total / MIB / seconds:8.1f} MiB/s"
                      f"\n      {note}", flush=True)
                results.append((place, name, seconds, note))
        finally:
            stop_process(primary)
    return results


def report(case: str, count: int, size: int, results) -> None:
    total_mib = count * size / MIB
    print(f"\n{case}: {count:,} x {size // MIB} MiB, from launch until all copied and "
          "verified")
    print(f"{'':4}{'':48} {'seconds':>8} {'MiB/s':>8}")
    for place, name, seconds, _ in results:
        print(f"{place:2}. {name:48} {seconds:8.2f} {total_mib / seconds:8.1f}")
    means: dict[str, float] = {}
    for _, name, seconds, _ in results:
        means.setdefault(name, [])
        means[name].append(seconds)
    means = {name: sum(runs) / len(runs) for name, runs in means.items()}
    print("    mean of each")
    for name, seconds in means.items():
        print(f"    {name:48} {seconds:8.2f} {total_mib / seconds:8.1f}")
    baselines = {name: s for name, s in means.items() if name.startswith("rclone")}
    fastest = min(baselines, key=baselines.get)
    for name, seconds in means.items():
        if name.startswith("Geo Console"):
            for baseline, base_seconds in baselines.items():
                marker = "   <- the fastest rclone" if baseline == fastest else ""
                print(f"{name} / {baseline}: {base_seconds / seconds:.2f}x throughput"
                      f"{marker}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=(*sorted(CASES), "both"), default="both")
    parser.add_argument("--count", type=int, help="number of blobs (default: the case's)")
    parser.add_argument("--tracking", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of all contenders, each in the reverse order of the "
                             "one before (default 2)")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it")
    parser.add_argument("--progress", action="store_true",
                        help="print the engine's registry states every second")
    args = parser.parse_args()
    if not shutil.which("rclone"):
        raise SystemExit("rclone is not installed (Debian: apt install rclone)")
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    # Ctrl-C raises KeyboardInterrupt (even when started in the background
    # of a shell, which ignores SIGINT for it); a SIGTERM unwinds the same
    # way: every process started here is stopped, the work folder removed.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cases = sorted(CASES, reverse=True) if args.case == "both" else [args.case]
    kinds = ("sqlite", "postgresql") if args.tracking == "both" else (args.tracking,)
    # Absolute: the primary runs from the checkout, not from here.
    workdir = pathlib.Path(args.keep or tempfile.mkdtemp(prefix="geo-bench-s3-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"work folder {workdir}; files_max_capacity {CAPACITY}", flush=True)
    reports = []
    try:
        for case in cases:
            count, size = CASES[case]
            count = args.count or count
            reports.append((case, count, size,
                            run_case(case, count, size, kinds, args.rounds, workdir,
                                     args.progress)))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    for report_args in reports:
        report(*report_args)


if __name__ == "__main__":
    main()
