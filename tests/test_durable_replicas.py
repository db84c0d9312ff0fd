"""What is recorded as stored is on disk (issue "Reliability and security,
second round", item 3), observed in the system calls of the real
processes with strace: on the primary, each blob's data is fsynced before
its rename and its folder after; on a secondary, each replica is renamed
and then its filesystem synced (syncfs, once for a group of outcomes)
before the transaction that records it as synced commits. The tracking
database runs SQLite's synchronous=FULL."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from backend.db.engine import create_db_engine
from backend.framework.durable import HAVE_SYNCFS

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s" * 40
BLOBS = 8
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    shutil.which("strace") is None, reason="strace is not installed")]

TRACED = re.compile(
    r'^\d+\s+(?P<call>fsync|fdatasync|syncfs|rename|renameat2?)\((?P<args>.*)\)\s+= 0$')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def traced(command: list[str], log: Path, **options) -> subprocess.Popen:
    return subprocess.Popen(["strace", "-f", "--seccomp-bpf", "-y", "-qq", "-o", str(log), "-e",
                             "trace=fsync,fdatasync,syncfs,rename,renameat,renameat2", *command],
                            cwd=ROOT, **options)


def interrupt(tracer: subprocess.Popen) -> list[int]:
    """Ctrl+C for the traced program (strace itself would only detach);
    returns its pid."""
    with open(f"/proc/{tracer.pid}/task/{tracer.pid}/children") as children:
        kids = [int(child) for child in children.read().split()]
    for child in kids:
        os.kill(child, signal.SIGINT)
    return kids


def calls(log: Path) -> list[tuple[str, list[str]]]:
    """(call, its path arguments) of each successful traced call, in order."""
    found, pending = [], {}
    for line in log.read_text().splitlines():
        pid, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        # A call another thread interrupted is logged in two halves.
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest.removesuffix("<unfinished ...>")
            continue
        resumed = re.match(r"<\.\.\. \w+ resumed>(.*)$", rest)
        if resumed and pid in pending:
            rest = pending.pop(pid) + resumed.group(1)
        match = TRACED.match(f"{pid} {rest}")
        if match is None:
            continue
        paths = re.findall(r'<([^>]*)>|"([^"]*)"', match["args"])
        found.append((match["call"], [a or b for a, b in paths]))
    return found


def assert_synced_before_recorded(trace: list, root: Path, wal: str) -> int:
    """Every rename into `root` is followed by a syncfs of that filesystem
    and then by a commit of the tracking DB's log (which records it)."""
    checked = 0
    for position, (call, paths) in enumerate(trace):
        if not call.startswith("rename") or not paths[-1].startswith(str(root)):
            continue
        later = trace[position + 1:]
        synced = next((n for n, (c, ps) in enumerate(later)
                       if c == "syncfs" and ps and ps[0].startswith(str(root))), None)
        assert synced is not None, f"{paths[-1]} renamed, never synced"
        assert any(c in ("fsync", "fdatasync") and ps and ps[0] == wal
                   for c, ps in later[synced + 1:]), f"{paths[-1]}: no commit after the sync"
        checked += 1
    return checked


def assert_durable(trace: list, root: Path) -> int:
    """Every rename into `root`: its source fsynced before, its folder after."""
    checked = 0
    for position, (call, paths) in enumerate(trace):
        if not call.startswith("rename"):
            continue
        source, destination = paths[-2], paths[-1]
        if not destination.startswith(str(root)):
            continue
        before = [p for c, ps in trace[:position] if c in ("fsync", "fdatasync") for p in ps]
        after = [p for c, ps in trace[position + 1:] if c == "fsync" for p in ps]
        assert source in before, f"{source} renamed before it was fsynced"
        assert os.path.dirname(destination) in after, f"folder of {destination} not fsynced"
        checked += 1
    return checked


def test_blobs_and_replicas_are_fsynced_then_renamed_then_their_folder(tmp_path):
    """Files, not the database: one run on SQLite (the SQLite log's own
    fdatasync calls show in the trace too)."""
    port = free_port()
    config = tmp_path / "geo.toml"
    tracking = f"sqlite:///{tmp_path / 'tracking.db'}"
    config.write_text(f"""
[primary]
database_url = "sqlite:///{tmp_path / 'primary.db'}"
storage_path = "{tmp_path / 'primary-blobs'}"
listen = "127.0.0.1:{port}"

[[primary.secondaries]]
name = "durable"
access_key = "durable-key"
secret = "{SECRET}"

[secondary]
name = "durable"
primary_url = "http://127.0.0.1:{port}"
access_key = "durable-key"
secret = "{SECRET}"
tracking_database_url = "{tracking}"
storage_path = "{tmp_path / 'secondary-blobs'}"
listen = "127.0.0.1:{free_port()}"
status_interval = 1
""")
    cli = [sys.executable, "main.py"]
    subprocess.run(cli + ["db", "upgrade", "--config", str(config)], cwd=ROOT, check=True,
                   capture_output=True, timeout=120)
    files = []
    for index in range(BLOBS):
        files.append(tmp_path / f"blob-{index}.bin")
        files[-1].write_bytes(os.urandom(4096))
    added = traced(cli + ["primary", "add", *map(str, files), "--config", str(config)],
                   tmp_path / "primary-add.trace", stdout=subprocess.DEVNULL)
    assert added.wait(120) == 0
    assert assert_durable(calls(tmp_path / "primary-add.trace"),
                          tmp_path / "primary-blobs") == BLOBS

    primary = subprocess.Popen(cli + ["primary", "serve", "--config", str(config)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    secondary = traced(cli + ["secondary", "run", "--config", str(config)],
                       tmp_path / "secondary.trace", stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    engine = create_db_engine(tracking)
    try:
        deadline = time.monotonic() + 120
        synced = 0
        while synced < BLOBS and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                with engine.connect() as connection:
                    synced = connection.execute(text(
                        "SELECT count(*) FROM cool_widget_registry WHERE state = 2")).scalar()
            except Exception:  # the tables are being created
                synced = 0
        assert synced == BLOBS
    finally:
        engine.dispose()
        traced_secondary = interrupt(secondary)
        primary.send_signal(signal.SIGINT)
        for process in (secondary, primary):
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        for pid in traced_secondary:  # never left running, detached
            if os.path.exists(f"/proc/{pid}"):
                os.kill(pid, signal.SIGKILL)
    trace = calls(tmp_path / "secondary.trace")
    if HAVE_SYNCFS:
        assert assert_synced_before_recorded(trace, tmp_path / "secondary-blobs",
                                             str(tmp_path / "tracking.db-wal")) == BLOBS
    else:
        assert assert_durable(trace, tmp_path / "secondary-blobs") == BLOBS


def test_the_sqlite_tracking_database_keeps_every_commit(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'tracking.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()
