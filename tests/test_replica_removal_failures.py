"""A replica that cannot be removed never stops housekeeping: a real primary
and engine on loopback, on SQLite and PostgreSQL. The fault is real: a
directory (holding a file) where the replica was, which unlink refuses
even to root."""
import datetime as dt
import shutil

import pytest

from backend.framework.clock import clock
from backend.primary.events import last_event
from backend.replicables import replicator_for
from backend.secondary.event_consumer import CursorStore
from backend.secondary.local_storage import LocalStorage
from backend.secondary.registry_backfill import RegistryBackfill
from backend.secondary.replica_removals import ReplicaRemovals
from tests.support.fixtures_e2e import all_synced_and_verified, registries
from tests.support.sites import secondary_config, start_engine, wait_until

CoolWidgets = replicator_for("cool_widget")
pytestmark = pytest.mark.slow

INTERVALS = {"replica removals": 0.2}


@pytest.fixture
def reports():
    """What the engine reported (its `last_error`s, as the console gets them)."""
    return []


@pytest.fixture
def engine(primary, tracking_url, tmp_path, credentials, reports):
    config = secondary_config(primary.url, tracking_url, tmp_path / "secondary", credentials)
    engine = start_engine(config, housekeeping_intervals=INTERVALS, on_error=reports.append)
    yield engine
    engine.stop()


def test_an_undeletable_replica_is_kept_for_a_retry_and_the_event_log_goes_on(
        primary, engine, reports):
    catalog = primary.catalog()
    stuck, removable = catalog.add_bytes(b"stuck", "a.bin"), catalog.add_bytes(b"gone", "b.bin")
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, [stuck, removable]),
               timeout=30, message="both widgets replicated")
    path = engine.storage.path(CoolWidgets, stuck)
    path.unlink()
    path.mkdir()
    (path / "something an administrator put here").write_bytes(b"x")

    kept = catalog.add_bytes(b"kept", "c.bin")  # ids above: SQLite reuses the highest
    catalog.delete([stuck, removable])
    newer = catalog.add_bytes(b"new", "d.bin")
    newest_event = last_event(primary.engine)[0]

    # The cursor passes both deletions, the new widget replicates, the
    # removable replica and both registries go.
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, [kept, newer]), timeout=30,
               message="the new widget replicated after the failed removal")
    wait_until(lambda: (CursorStore(engine.engine).get() or 0) >= newest_event, timeout=10,
               message="the cursor past the deletions")
    assert not engine.storage.path(CoolWidgets, removable).exists()

    # The failure waits on its own record: readable, retried with backoff.
    removals = ReplicaRemovals(engine.engine)
    [pending] = removals.pending()
    assert (pending.replicable_name, pending.model_id) == ("cool_widget", stuck)
    assert pending.last_failure == f"Could not remove the replica: is a directory ({path})"
    assert pending.retry_count == 1
    assert pending.retry_at - clock.now() > dt.timedelta(seconds=10)  # 16 to 74 s
    assert "Error" not in pending.last_failure and "Traceback" not in pending.last_failure

    # Still refused when due: the next retry is later, the reason kept.
    clock.advance(dt.timedelta(minutes=2))
    wait_until(lambda: removals.pending()[0].retry_count == 2, timeout=10,
               message="the removal retried when due")
    assert removals.pending()[0].retry_at - clock.now() > dt.timedelta(seconds=10)
    assert reports == [
        "housekeeping (replica removals): 1 replica of deleted records could not be removed "
        f"yet; the latest: Could not remove the replica: is a directory ({path})"]

    # Once the file can be removed, the next retry removes it and forgets it.
    shutil.rmtree(path)
    path.write_bytes(b"stuck")
    clock.advance(dt.timedelta(minutes=5))
    wait_until(lambda: removals.count() == 0, timeout=10, message="the removal done")
    assert not path.exists()
    assert set(registries(engine, CoolWidgets)) == {kept, newer}


def test_a_removal_is_dropped_when_its_record_id_is_registered_again(tracking_engine, tmp_path):
    """SQLite may hand a deleted record's id out again: the file is then the
    replica of the new record and stays."""
    storage = LocalStorage(tmp_path / "secondary")
    path = storage.path(CoolWidgets, 7)
    path.mkdir(parents=True)
    removals = ReplicaRemovals(tracking_engine)
    assert removals.remove_files(storage, CoolWidgets, [7]) == 1
    path.rmdir()
    path.write_bytes(b"the replica of the new record 7")
    RegistryBackfill(tracking_engine, CoolWidgets).insert_pending([7])
    result = removals.retry_due(storage, [CoolWidgets], now=clock.now() + dt.timedelta(hours=1))
    assert (result.removed, result.failing, removals.count()) == (0, 0, 0)
    assert path.read_bytes() == b"the replica of the new record 7"
