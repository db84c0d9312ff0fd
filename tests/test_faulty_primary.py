"""A faulty network between the sites: a proxy process on loopback answers
with 5xx, resets connections, truncates and corrupts bodies and stalls.

The engine must keep running; affected registries fail with a readable
reason and back off; a corrupted body is never taken for a blob; once the
faults stop, everything ends synced, verified and byte-identical.
"""
import datetime as dt
import hashlib
import os
import random
import re
import time

import pytest

from backend.framework.clock import clock
from backend.replicables import replicator_for
from backend.framework.states import SyncState
from tests.support.fault_proxy import FaultProxyProcess
from tests.support.fixtures_e2e import all_synced_and_verified, registries
from tests.support.sites import (secondary_config, start_engine, start_primary,
                                 wait_for_checksums, wait_until)

CoolWidgets = replicator_for("cool_widget")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOBS = 300
FAULTY_SECONDS = 12
READABLE_REASONS = re.compile("|".join((
    r"Non-success HTTP response status code 50[0234]",
    r"Error downloading file: Connection reset by peer",
    r"Error downloading file: truncated body: \d+ of \d+ bytes received",
    r"Error downloading file: read timed out",
    r"Error downloading file: the primary closed the connection without answering",
    r"Downloaded file checksum mismatch",
)))
pytestmark = pytest.mark.slow


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_engine_survives_a_faulty_primary(db_kind, primary_url, tracking_url, tmp_path,
                                          credentials):
    rng = random.Random(11)
    primary = start_primary(primary_url, tmp_path / "primary", credentials)
    proxy = FaultProxyProcess(primary.url, seed=3, stall=2.0)
    errors: list[str] = []
    engine = None
    try:
        catalog = primary.catalog()
        ids = [catalog.add_bytes(rng.randbytes(rng.randint(1, 256 * 1024)), "b")
               for _ in range(BLOBS)]
        wait_for_checksums(primary, timeout=60)
        originals = {i: sha256(primary.blob_path(CoolWidgets, i)[0]) for i in ids}
        proxy.send("on")
        config = secondary_config(proxy.url, tracking_url, tmp_path / "secondary", credentials,
                                  files_max_capacity=6, request_timeout=0.5)
        engine = start_engine(config, on_error=errors.append, poll_interval=0.2)

        # While the faults last: a synced registry always holds the primary's
        # bytes, and every failure says why in words.
        reasons: set[str] = set()
        deadline = time.monotonic() + FAULTY_SECONDS
        while time.monotonic() < deadline:
            for model_id, row in registries(engine, CoolWidgets).items():
                if row["state"] == SyncState.SYNCED:
                    assert sha256(engine.storage.path(CoolWidgets, model_id)) == \
                        originals[model_id], f"corrupted blob {model_id} marked synced"
                elif row["state"] == SyncState.FAILED:
                    reasons.add(row["last_sync_failure"])
                    # Backed off: not retried before 15 s (GitLab's delay for a first failure).
                    assert row["retry_at"] is not None
                    assert row["retry_at"] - row["last_synced_at"] >= dt.timedelta(seconds=15)
            time.sleep(0.5)
        treated = proxy.stats()
        proxy.send("off")

        assert all(treated.get(kind, 0) > 0 for kind in
                   ("pass", "error", "reset", "truncate", "flip", "stall")), treated
        assert reasons, "no registry failed while the faults lasted"
        for reason in reasons:
            assert READABLE_REASONS.fullmatch(reason), reason
        assert any(r.startswith("Downloaded file checksum mismatch") for r in reasons), reasons
        assert engine.running
        assert all(thread.is_alive() for thread in engine._threads)
        assert engine.syncs.running  # the sync workers' event loop

        # The faults are over; once the backoff has passed, every registry
        # is retried and ends synced and verified, byte for byte.
        clock.advance(dt.timedelta(hours=2))
        engine.wake()
        wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=120,
                   message="every blob synced and verified after the faults")
        for model_id in ids:
            assert sha256(engine.storage.path(CoolWidgets, model_id)) == originals[model_id]
        leftovers = [p.name for p in engine.storage.root.rglob("tmp_*")]
        assert not leftovers, leftovers
    finally:
        if engine is not None:
            engine.stop()
        proxy.stop()
        primary.stop()
