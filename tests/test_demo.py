"""`demo --headless`: a seeded primary and a secondary engine in one process."""
import io
import re

import pytest

from backend.demo import Demo, DemoSettings, run_headless
from tests.support.sites import wait_until

pytestmark = pytest.mark.slow


def test_headless_demo_prints_progress(tmp_path):
    out = io.StringIO()
    settings = DemoSettings(tmp_path / "ws", seed_widgets=40, trickle_interval=0.5,
                            status_interval=1.0)
    assert run_headless(settings, duration=6.0, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == f"Demo workspace: {tmp_path / 'ws'}"
    progress = [line for line in lines if line.startswith("Cool Widgets: registry")]
    assert progress and re.search(r"synced \d+ \(\d+\.\d\d%\)", progress[-1])
    assert re.search(r" \| Package Files: registry \d+, synced \d+", progress[-1])


def test_demo_data_syncs_verifies_and_shows_failures(tmp_path):
    """Both types are seeded, each with missing and corrupted files of its own."""
    demo = Demo(DemoSettings(tmp_path / "ws", seed_widgets=40, trickle_interval=60)).start()
    try:
        def settled():
            status = demo.secondary.status()
            for p, seeded, damaged in (("cool_widgets", 40, 8), ("package_files", 16, 5)):
                done = status[f"{p}_verified_count"] + status[f"{p}_failed_count"]
                if status[f"{p}_failed_count"] < damaged or done < seeded:
                    return False
            return status
        status = wait_until(settled, timeout=60, message="demo failures and verifications")
        assert status["cool_widgets_verified_count"] >= 30
        assert status["package_files_verified_count"] >= 10
    finally:
        demo.stop()
    # A second start reuses the workspace instead of seeding again.
    again = Demo(DemoSettings(tmp_path / "ws", seed_widgets=40, trickle_interval=60)).start()
    try:
        counts = {r.replicable_name: again.primary.catalog(r).count()
                  for r in again.primary.replicators}
        assert counts == {"cool_widget": 40, "package_file": 16}
    finally:
        again.stop()


def test_a_workspace_seeded_with_other_object_storage_starts_afresh(tmp_path, s3_server):
    """Its records would name objects of a bucket the demo no longer uses;
    started again the same way, it keeps them."""
    from backend.framework.replicator import FileStore
    from tests.support.sites import object_store

    def started(**stores):
        return Demo(DemoSettings(tmp_path / "ws", seed_widgets=10, trickle_interval=600,
                                 **stores)).start()

    def records(demo) -> dict[str, int]:
        """The first type's files (unique paths or keys) and where each is."""
        catalog = demo.primary.catalog(demo.primary.replicators[0])
        return {row["file"]: row["file_store"] for row in catalog.list()}

    demo = started()
    plain = records(demo)
    demo.stop()
    assert len(plain) == 10 and set(plain.values()) == {FileStore.LOCAL}
    store = object_store(s3_server)
    demo = started(primary_object_store=store)
    seeded = records(demo)
    demo.stop()
    # Seeded again (none of the files before), one blob in ten in the bucket.
    assert len(seeded) == 10 and not set(seeded) & set(plain)
    assert list(seeded.values()).count(FileStore.REMOTE) == 1
    demo = started(primary_object_store=store)
    assert records(demo) == seeded  # the same buckets: the same records
    demo.stop()
