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


def test_demo_data_syncs_verifies_and_shows_failures(tmp_path):
    demo = Demo(DemoSettings(tmp_path / "ws", seed_widgets=40, trickle_interval=60)).start()
    try:
        def settled():
            status = demo.secondary.status()
            done = (status["cool_widgets_verified_count"]
                    + status["cool_widgets_failed_count"])
            return status["cool_widgets_failed_count"] >= 4 and done >= 40 and status
        status = wait_until(settled, timeout=60, message="demo failures and verifications")
        assert status["cool_widgets_verified_count"] >= 30
    finally:
        demo.stop()
    # A second start reuses the workspace instead of seeding again.
    again = Demo(DemoSettings(tmp_path / "ws", seed_widgets=40, trickle_interval=60)).start()
    try:
        assert again.primary.catalog().count() == 40 + 3
    finally:
        again.stop()
