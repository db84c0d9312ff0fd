"""A secondary whose disk fills up: below the reserve it starts no download,
says why (status, health, metrics), and resumes by itself once there is
room, with nothing corrupt and no registry's backoff grown. A blob larger
than the space above the reserve is not started and fails with the sizes.

The replicas live on a real 20 MiB tmpfs (`mount -t tmpfs -o size=20m`):
the suite runs as root in CI. Before, a full disk failed registries one
by one ("No space left on device"), each backing off on its own, while
the site said "Healthy".
"""
import hashlib
import os
import re
import subprocess
import time

import pytest

from backend.framework.states import SyncState
from backend.replicables import replicator_for
from tests.support.fixtures_e2e import counted, registries
from tests.support.sites import (secondary_config, start_engine, start_primary,
                                 wait_for_checksums, wait_until)

CoolWidgets = replicator_for("cool_widget")
MiB = 1024 * 1024
pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path):
    """A 20 MiB file system of its own."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs",
                             str(mount_point)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)



def test_a_full_disk_pauses_syncs_and_they_resume_when_space_returns(
        primary_url, tracking_url, tmp_path, credentials, small_disk):
    primary = start_primary(primary_url, tmp_path / "primary", credentials)
    engine = None
    try:
        catalog = primary.catalog()
        blobs = {catalog.add_bytes(os.urandom(MiB), "w"): None for _ in range(12)}
        huge = catalog.add_bytes(os.urandom(19 * MiB), "huge")  # above the reserve: never fits
        wait_for_checksums(primary)
        originals = {row["id"]: row for row in catalog.list()}
        filler = small_disk / "someone-elses-file"
        filler.write_bytes(b"\0" * (10 * MiB))  # 8 MiB left above the reserve
        config = secondary_config(primary.url, tracking_url, small_disk / "replicas",
                                  credentials, files_max_capacity=2,
                                  min_free_space_mb=2, min_free_space_percent=0.0)
        engine = start_engine(config)
        t = CoolWidgets.registry_table()

        wait_until(lambda: "low_disk" in engine.sync_holds, timeout=30,
                   message="syncs paused for low disk space")
        reason = engine.sync_holds["low_disk"]["reason"]
        assert re.fullmatch(r"low disk space \(\d+\.\d (KiB|MiB) free, 3\.0 MiB needed\)",
                            reason), reason
        wait_until(lambda: counted(engine, CoolWidgets, t.c.state == SyncState.STARTED) == 0,
                   timeout=10,
                   message="downloads in flight to end")
        held_at = counted(engine, CoolWidgets, t.c.state == SyncState.SYNCED)
        assert 4 <= held_at < len(blobs)
        rows = registries(engine, CoolWidgets)
        # Only the huge blob failed, with the sizes; every other registry is
        # synced or waits as pending, its retry count untouched.
        assert rows[huge]["state"] == SyncState.FAILED
        assert rows[huge]["last_sync_failure"] == (
            "Not enough disk space for this file: it needs 19.0 MiB, and the file system "
            "holds at most 18.0 MiB above the reserve of 2.0 MiB"), rows[huge]
        others = [rows[model_id] for model_id in blobs]
        assert {r["state"] for r in others} <= {SyncState.SYNCED, SyncState.PENDING}
        assert all(r["retry_count"] == 0 and r["last_sync_failure"] is None for r in others)
        status = engine.status()
        # The free space in the reason is read live (a download ending frees
        # its temporary file): the same hold, whatever the figure now.
        assert re.fullmatch(r"low disk space \(\d+\.\d (KiB|MiB) free, 3\.0 MiB needed\)",
                            status["sync_holds"]["low_disk"]["reason"]), status["sync_holds"]
        assert engine.running
        # Held: nothing more is synced while the disk stays full.
        time.sleep(1.0)
        assert counted(engine, CoolWidgets, t.c.state == SyncState.SYNCED) == held_at

        filler.unlink()  # space returns
        wait_until(lambda: counted(engine, CoolWidgets,
                                   t.c.state == SyncState.SYNCED) == len(blobs),
                   timeout=20, message="the rest synced once there was room")
        assert "low_disk" not in engine.sync_holds
        storage = engine.storage
        for model_id in blobs:
            replica = storage.path(CoolWidgets, model_id)
            original = primary.storage.path(originals[model_id]["file"])
            assert hashlib.sha256(replica.read_bytes()).digest() == \
                hashlib.sha256(original.read_bytes()).digest(), model_id
        assert not storage.path(CoolWidgets, huge).exists()
        leftovers = [name for _, _, names in os.walk(small_disk) for name in names
                     if name.startswith("tmp_")]
        assert leftovers == []
    finally:
        if engine is not None:
            engine.stop()
        primary.stop()


def test_the_reserve_is_configured_and_checked(tmp_path):
    from backend.config import ConfigError, parse_config
    section = {"name": "s", "primary_url": "http://p", "access_key": "k", "secret": "s" * 40,
               "tracking_database_url": "sqlite:///t.db", "storage_path": str(tmp_path)}
    config = parse_config({"secondary": section}, "geo.toml", {}).secondary
    assert (config.min_free_space_mb, config.min_free_space_percent) == (0, 1.0)
    config = parse_config({"secondary": section}, "geo.toml", {
        "GEO_CONSOLE_SECONDARY_MIN_FREE_SPACE_MB": "512"}).secondary
    assert config.min_free_space_mb == 512
    for key, value, said in (("min_free_space_percent", 60, "must be between 0 and 50"),
                             ("min_free_space_mb", -1, "must be between 0 and 1000000000"),
                             ("min_free_space_percent", "lots", "must be a number")):
        with pytest.raises(ConfigError) as error:
            parse_config({"secondary": {**section, key: value}}, "geo.toml", {})
        assert str(error.value).startswith(f"geo.toml: secondary.{key} {said}"), error.value
