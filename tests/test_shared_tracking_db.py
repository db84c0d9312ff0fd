"""Scale-out: engine processes sharing one tracking DB (PostgreSQL, and SQLite
on one machine) never work the same registry at once, so no blob is
downloaded twice."""
import os
import subprocess
import sys

import pytest

from backend.db.engine import create_db_engine
from backend.replicables import replicator_for
from tests.support.fixtures_e2e import all_synced_and_verified
from tests.support.sites import start_primary, wait_for_checksums, wait_until

CoolWidgets = replicator_for("cool_widget")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


def write_config(path, primary_url, tracking_url, storage, credentials, name, key):
    path.write_text(f"""
[secondary]
name = "{name}"
primary_url = "{primary_url}"
access_key = "{key}"
secret = "{credentials['secret']}"
tracking_database_url = "{tracking_url}"
storage_path = "{storage}"
listen = "127.0.0.1:0"
files_max_capacity = 4
verification_max_capacity = 20
status_interval = 2
""")


def test_two_engine_processes_never_download_a_blob_twice(
        db_kind, primary_url, tracking_url, tmp_path, credentials, retrieve_log):
    # 400 blobs take one engine about 4 s: the other, whatever its start-up
    # time and idle poll, joins in (checked at the end).
    run_two_engines(primary_url, tracking_url, tmp_path, credentials, retrieve_log,
                    blobs=400, delay=0.01, skews=(0, 0))


def test_engines_whose_clocks_disagree_never_take_each_others_live_claims(
        postgres_only, primary_url, tracking_url, tmp_path, credentials, retrieve_log):
    """Two machines, one ten minutes slow, one ten minutes fast. Judged by
    their own clocks, each would see the other's heartbeat as ten minutes
    old or twenty ahead, its claims as a dead engine's, its lease as
    expired. Both follow the tracking database's clock instead. PostgreSQL
    only: engines sharing an SQLite file share one machine and its clock
    (the same code runs there; 90 of 240 blobs went twice before on both)."""
    run_two_engines(primary_url, tracking_url, tmp_path, credentials, retrieve_log,
                    blobs=200, delay=0.12, skews=(-600, 600))


def run_two_engines(primary_url, tracking_url, tmp_path, credentials, retrieve_log, *,
                    blobs, delay, skews):
    """One logical secondary run as two processes; each signs with its own
    key so the primary's access log tells them apart. Every blob must be
    downloaded exactly once, and both must have downloaded."""
    primary = start_primary(primary_url, tmp_path / "primary", credentials,
                            secondaries=("engine-a", "engine-b"))
    retrieve_log.delay = delay
    processes = []
    try:
        catalog = primary.catalog()
        ids = [catalog.add_bytes(os.urandom(2048 + i), "w") for i in range(blobs)]
        wait_for_checksums(primary)
        for index, skew in enumerate(skews):
            config = tmp_path / f"engine{index}.toml"
            write_config(config, primary.url, tracking_url, tmp_path / "shared", credentials,
                         "secondary-1", credentials["access_key"] + ("" if index == 0 else "1"))
            command = ["main.py", "secondary", "run", "--config", str(config)]
            if skew:
                command = ["-m", "tests.support.skewed_clock", str(skew), *command]
            processes.append(subprocess.Popen(
                [sys.executable, *command],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE))

        tracking = create_db_engine(tracking_url)
        wait_until(lambda: all_synced_and_verified(tracking, CoolWidgets, ids), timeout=120,
                   message="both engines finished")
        tracking.dispose()
        assert sorted(retrieve_log.hits) == ids
        doubles = {i: n for i, n in retrieve_log.hits.items() if n > 1}
        assert doubles == {}, f"downloaded more than once: {doubles}"
        for process in processes:
            assert process.poll() is None, process.stderr.read().decode()
    finally:
        for process in processes:
            process.terminate()
        outputs = [process.communicate(timeout=60) for process in processes]
        primary.stop()
    for out, err in outputs:
        assert b"Traceback" not in err, err.decode()
    # Both processes did part of the work.
    assert set(retrieve_log.peers) == {"engine-a", "engine-b"}, retrieve_log.peers
