"""A machine clock 100 s fast while an engine records a failure, then set
right: the retry is due after its backoff by the tracking database's clock,
not 100 s later. Before, `retry_at` came from the machine's clock, and its
skew delayed the retry by as much once the clock was fixed."""
import datetime as dt

import pytest

from backend.db.engine import create_db_engine, database_time
from backend.framework.clock import Clock, clock
from backend.framework.states import SyncState
from backend.replicables import replicator_for
from tests.support.fixtures_e2e import registries
from tests.support.sites import (secondary_config, start_engine, start_primary,
                                 wait_for_checksums, wait_until)

CoolWidgets = replicator_for("cool_widget")
SKEW = dt.timedelta(seconds=100)
FIRST_BACKOFF = dt.timedelta(seconds=74)  # the longest delay of a first failure


@pytest.fixture
def fast_machine_clock(monkeypatch):
    """This process's machine clock 100 s fast (the databases' stay true)."""
    wall = Clock._wall
    monkeypatch.setattr(Clock, "_wall", staticmethod(lambda: wall() + SKEW))
    yield lambda: monkeypatch.setattr(Clock, "_wall", staticmethod(wall))
    clock.unfollow()


def test_a_retry_written_under_a_skewed_clock_is_due_after_its_backoff(
        primary_url, tracking_url, tmp_path, credentials, fast_machine_clock):
    primary = start_primary(primary_url, tmp_path / "primary", credentials)
    engine = None
    try:
        catalog = primary.catalog()
        model_id = catalog.add_bytes(b"comes back", "w")
        wait_for_checksums(primary)
        row = catalog.list()[0]
        path = primary.storage.path(row["file"])
        content = path.read_bytes()
        path.unlink()  # missing on the primary: a failure with its backoff
        config = secondary_config(primary.url, tracking_url, tmp_path / "secondary",
                                  credentials)
        engine = start_engine(config)
        wait_until(lambda: registries(engine, CoolWidgets).get(model_id, {}).get("state")
                   == SyncState.FAILED, timeout=20, message="the failure")
        tracking = create_db_engine(tracking_url)
        with tracking.connect() as connection:
            database_now = database_time(connection)
        tracking.dispose()
        retry_at = registries(engine, CoolWidgets)[model_id]["retry_at"]
        assert dt.timedelta(seconds=15) <= retry_at - database_now <= FIRST_BACKOFF, \
            (retry_at, database_now)

        fast_machine_clock()  # the machine's clock set right
        path.write_bytes(content)
        clock.advance(FIRST_BACKOFF)  # the backoff passes, and not a second more
        engine.wake()
        wait_until(lambda: registries(engine, CoolWidgets)[model_id]["state"]
                   == SyncState.SYNCED, timeout=10, message="the retry")
    finally:
        if engine is not None:
            engine.stop()
        primary.stop()
