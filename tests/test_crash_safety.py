"""Crash safety: `secondary run` killed with SIGKILL at random moments, again
and again, during a sync; afterwards every blob is on the secondary, byte for
byte, verified, with no temporary file left and no registry missing."""
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from backend.db.engine import create_db_engine
from backend.replicables import replicator_for
from backend.secondary.local_storage import LocalStorage
from tests.support.fixtures_e2e import all_synced_and_verified
from tests.support.sites import start_primary, wait_for_checksums, wait_until

CoolWidgets = replicator_for("cool_widget")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOBS = 1500
KILLS = 6
pytestmark = pytest.mark.slow


def test_sigkill_at_random_moments_loses_nothing(primary_url, tracking_url, tmp_path,
                                                 credentials):
    rng = random.Random(20261127)
    primary = start_primary(primary_url, tmp_path / "primary", credentials)
    try:
        catalog = primary.catalog()
        blobs = {catalog.add_bytes(rng.randbytes(rng.randint(1, 64 * 1024)), "b"): None
                 for _ in range(BLOBS)}
        wait_for_checksums(primary, timeout=120)
        config = tmp_path / "secondary.toml"
        config.write_text(f"""[secondary]
name = "secondary-1"
primary_url = "{primary.url}"
access_key = "{credentials['access_key']}"
secret = "{credentials['secret']}"
tracking_database_url = "{tracking_url}"
storage_path = "{tmp_path / 'secondary'}"
listen = "127.0.0.1:0"
files_max_capacity = 8
status_interval = 2
""")
        command = [sys.executable, "main.py", "secondary", "run", "--config", str(config)]
        for _ in range(KILLS):
            process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
            time.sleep(rng.uniform(1.0, 3.0))
            assert process.poll() is None, process.stderr.read().decode()
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        # The last run is left to finish; claims of the killed runs must come
        # back within seconds, not after the 8-hour timeout.
        final = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        try:
            tracking = create_db_engine(tracking_url)
            wait_until(lambda: all_synced_and_verified(tracking, CoolWidgets, blobs),
                       timeout=240, interval=0.5, message="every blob synced and verified")
            tracking.dispose()
        finally:
            final.send_signal(signal.SIGTERM)
            final.wait(timeout=60)
        assert b"Traceback" not in final.stderr.read()
        storage = LocalStorage(tmp_path / "secondary")
        for model_id in blobs:
            original = primary.blob_path(CoolWidgets, model_id)[0].read_bytes()
            assert storage.path(CoolWidgets, model_id).read_bytes() == original, model_id
        assert storage.temporary_files() == []
        stored = {int(p.name) for p in (tmp_path / "secondary" / "cool_widgets").rglob("*")
                  if p.is_file()}
        assert stored == set(blobs)
    finally:
        primary.stop()
