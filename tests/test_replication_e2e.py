"""End to end: a real primary and a real secondary engine on loopback, both
databases on SQLite and again on PostgreSQL."""
import datetime as dt
import hashlib
import time

import pytest
from sqlalchemy import update

from backend.framework.clock import clock, utcnow
from backend.replicables import replicator_for
from backend.framework.states import SyncState, VerificationState
from backend.framework.failures import MISSING_ON_PRIMARY
from backend.secondary.downloader import BUFFER_LIMIT
from backend.secondary.registry_selection import RegistrySelection
from tests.support.registries import Registries
from tests.support.fixtures_e2e import all_synced_and_verified, registries, varied_blobs
from tests.support.sites import (secondary_config, start_engine, wait_for_checksums,
                                 wait_until)

CoolWidgets = replicator_for("cool_widget")
pytestmark = pytest.mark.slow


@pytest.fixture
def make_engine(primary, tracking_url, tmp_path, credentials):
    engines = []

    def make(**overrides):
        config = secondary_config(primary.url, tracking_url, tmp_path / "secondary",
                                  credentials, **overrides)
        engine = start_engine(config)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.stop()


def secondary_file(engine, model_id):
    return engine.storage.path(CoolWidgets, model_id)


def test_full_replication_deletion_corruption_and_missing_files(primary, make_engine):
    catalog = primary.catalog()
    blobs = varied_blobs(300)
    ids = [catalog.add_bytes(data, f"w{i}.bin") for i, data in enumerate(blobs)]
    engine = make_engine()

    # Everything arrives and verifies, byte for byte.
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=120,
               message="300 widgets synced and verified")
    for model_id, data in zip(ids, blobs):
        assert secondary_file(engine, model_id).read_bytes() == data
    assert engine.storage.temporary_files() == []

    # Deletions reach the secondary: files and registries go.
    gone = ids[:20]
    catalog.delete(gone)
    wait_until(lambda: not set(gone) & set(registries(engine, CoolWidgets)), timeout=30,
               message="deleted registries removed")
    assert not any(secondary_file(engine, model_id).exists() for model_id in gone)

    # A corrupted replica: re-verification records the mismatch, the file is
    # downloaded again after its backoff and verifies.
    victim = ids[50]
    store = Registries(engine.engine, CoolWidgets)
    registry_id = registries(engine, CoolWidgets)[victim]["id"]
    path = secondary_file(engine, victim)
    path.write_bytes(b"bit rot" + path.read_bytes()[7:])
    store.reverify(RegistrySelection(ids=(registry_id,)))
    row = wait_until(lambda: (r := registries(engine, CoolWidgets)[victim])["checksum_mismatch"]
                     and r, timeout=30, message="mismatch recorded")
    assert row["verification_state"] == VerificationState.FAILED
    assert row["state"] == SyncState.FAILED
    assert row["verification_failure"].startswith("Checksum does not match the primary checksum")
    assert row["verification_checksum_mismatched"].decode() == row["verification_failure"].split(
        "primary_checksum: ")[1].split(",")[0]
    assert row["last_sync_failure"].startswith("Verification failed with: Checksum does not match")
    clock.advance(dt.timedelta(minutes=2))  # past the backoff
    engine.wake()
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids[20:]), timeout=30,
               message="corrupted file re-downloaded and verified")
    assert path.read_bytes() == blobs[50]
    assert registries(engine, CoolWidgets)[victim]["checksum_mismatch"] is False

    # A file lost on the primary: "missing on the primary", retried up to 4 h apart.
    lost = ids[60]
    primary.blob_path(CoolWidgets, lost)[0].unlink()
    store.resync(RegistrySelection(model_ids=(lost,)))
    engine.wake()
    for attempt in range(1, 11):
        row = wait_until(lambda: (r := registries(engine, CoolWidgets)[lost])["retry_count"]
                         >= attempt and r["state"] == SyncState.FAILED and r, timeout=30,
                         message=f"failed attempt {attempt}")
        assert row["last_sync_failure"] == MISSING_ON_PRIMARY
        if attempt < 10:
            clock.advance(row["retry_at"] - utcnow() + dt.timedelta(seconds=1))
            engine.wake()
    # After 10 failures 10**4 s would be ~2.8 h: past the usual 1 h cap,
    # allowed by the 4 h cap for files missing on the primary.
    wait = row["retry_at"] - row["last_synced_at"]
    assert dt.timedelta(hours=1, seconds=75) < wait <= dt.timedelta(hours=4, seconds=75)


@pytest.mark.parametrize("size", [4, BUFFER_LIMIT + 1], ids=["written", "streamed"])
def test_a_directory_in_the_destination_fails_the_sync_and_leaves_no_file(
        primary, make_engine, tmp_path, size):
    model_id = primary.catalog().add_bytes(b"b" * size, "w.bin")
    config_storage = tmp_path / "secondary"
    in_the_way = config_storage / CoolWidgets.plural_name / "0" / str(model_id)
    in_the_way.mkdir(parents=True)
    engine = make_engine()
    row = wait_until(lambda: (r := registries(engine, CoolWidgets).get(model_id))
                     and r["state"] == SyncState.FAILED and r, timeout=30,
                     message="sync failed")
    assert row["last_sync_failure"] == f"Destination {in_the_way.resolve()} is a directory"
    assert in_the_way.is_dir() and not any(in_the_way.iterdir())
    assert engine.storage.temporary_files() == []


def test_blobs_the_primary_verified_are_verified_by_the_hash_of_their_download(
        primary, make_engine, retrieve_log):
    """Each download, small or large, is hashed once from disk before its
    rename: the check against the primary's checksum, and the verification
    of the stored file, recorded with the sync in one write. The primary is
    never asked for its checksums, the checksum processes never start."""
    catalog = primary.catalog()
    blobs = varied_blobs(60)
    assert max(map(len, blobs)) > BUFFER_LIMIT >= min(map(len, blobs))  # both paths
    ids = [catalog.add_bytes(data, f"v{i}.bin") for i, data in enumerate(blobs)]
    wait_for_checksums(primary)
    engine = make_engine()
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=60,
               message="60 widgets synced and verified")
    assert retrieve_log.states_requests == 0
    assert engine.checksum_pool.worker_pids() == []
    rows = registries(engine, CoolWidgets)
    for model_id, data in zip(ids, blobs):
        row = rows[model_id]
        assert row["verification_checksum"].decode() == hashlib.sha256(data).hexdigest()
        assert row["verification_started_at"] == row["verified_at"]  # one write
    assert engine.counters.snapshot()["verifications_succeeded"] == 60

    # Re-verification has no download to go by: it asks the primary, and the
    # checksum processes hash the files.
    Registries(engine.engine, CoolWidgets).reverify(RegistrySelection())
    engine.wake()
    wait_until(lambda: retrieve_log.states_requests > 0
               and all_synced_and_verified(engine, CoolWidgets, ids), timeout=60,
               message="re-verified")
    assert engine.checksum_pool.worker_pids()


def test_a_paused_engine_leaves_the_verification_of_its_last_syncs_for_later(
        primary, make_engine):
    """Pausing starts no verification: syncs in flight are recorded with
    their verification pending, which the scheduler takes once resumed."""
    catalog = primary.catalog()
    ids = [catalog.add_bytes(b"paused %d" % i, "p") for i in range(200)]
    wait_for_checksums(primary)
    engine = make_engine()
    # Paused as soon as syncs are claimed: they are in flight, and finish
    # while paused (waiting for a finished sync could find them all done).
    wait_until(lambda: any(r["state"] == SyncState.STARTED
                           for r in registries(engine, CoolWidgets).values()),
               timeout=30, message="syncs claimed")
    engine.pause()
    wait_until(lambda: not any(r["state"] == SyncState.STARTED
                               for r in registries(engine, CoolWidgets).values()),
               timeout=30, message="syncs in flight finished")
    pending = [r for r in registries(engine, CoolWidgets).values()
               if r["state"] == SyncState.SYNCED
               and r["verification_state"] == VerificationState.PENDING]
    engine.resume()
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=60,
               message="all verified after resuming")
    assert pending, "no sync finished while paused"


def test_stopping_finishes_the_blobs_already_downloaded(primary, make_engine):
    """Downloads in flight and blobs waiting for the file writer are written
    and recorded before the engine stops; claims no worker took go back to
    pending. None is left started, and no temporary file behind."""
    catalog = primary.catalog()
    blobs = {catalog.add_bytes(b"stop %d" % i, "s"): b"stop %d" % i for i in range(400)}
    engine = make_engine()
    wait_until(lambda: any(r["state"] == SyncState.SYNCED
                           for r in registries(engine, CoolWidgets).values()),
               timeout=30, message="a first sync")
    engine.stop()
    rows = registries(engine, CoolWidgets)
    assert {row["state"] for row in rows.values()} <= {SyncState.PENDING, SyncState.SYNCED}
    synced = [model_id for model_id, row in rows.items() if row["state"] == SyncState.SYNCED]
    assert synced
    for model_id in synced:
        assert secondary_file(engine, model_id).read_bytes() == blobs[model_id]
    assert engine.storage.temporary_files() == []


def test_new_widgets_replicate_from_events(primary, make_engine):
    engine = make_engine()
    wait_until(lambda: engine.events.cursor.get() is not None, message="cursor initialised")
    catalog = primary.catalog()
    ids = [catalog.add_bytes(b"fresh %d" % i, "f") for i in range(5)]
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=30,
               message="new widgets replicated")
    assert engine.events.processed >= 5


def test_replication_flag_off_stops_the_type(primary, tracking_url, tmp_path, credentials):
    catalog = primary.catalog()
    catalog.add_bytes(b"x", "x")
    config = secondary_config(primary.url, tracking_url, tmp_path / "secondary", credentials)
    engine = start_engine(config, flags={"geo_cool_widget_replication": False})
    try:
        catalog.add_bytes(b"y", "y")
        time.sleep(1.5)
        assert registries(engine, CoolWidgets) == {}
        status = engine.status()
        assert status["cool_widgets_synced_count"] is None
        assert status["cool_widgets_synced_in_percentage"] is None
        # Turning it on again replicates what was missed.
        engine.flags["geo_cool_widget_replication"] = True
        engine.wake()
        wait_until(lambda: len(registries(engine, CoolWidgets)) == 2, timeout=20,
                   message="registries after the flag is on")
    finally:
        engine.stop()


def test_pause_stops_new_work_and_resume_continues(primary, make_engine):
    engine = make_engine()
    engine.pause()
    time.sleep(0.5)  # work already claimed finishes; nothing new starts
    catalog = primary.catalog()
    ids = [catalog.add_bytes(b"p%d" % i, "p") for i in range(5)]
    time.sleep(1.0)
    assert not any(r["state"] == SyncState.SYNCED for r in registries(engine, CoolWidgets).values())
    # Paused, it still measures how far behind the primary it is.
    from backend.primary import events
    newest, _ = events.last_event(primary.engine)
    wait_until(lambda: engine.events.last_event_id == newest, timeout=10,
               message="the primary's newest event seen while paused")
    assert (engine.events.cursor.get() or 0) < newest  # but handled none of them
    engine.resume()
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=30,
               message="resumed engine catches up")


def test_status_report_reaches_the_primary(primary, make_engine):
    catalog = primary.catalog()
    ids = [catalog.add_bytes(b"s%d" % i, "s") for i in range(3)]
    engine = make_engine()
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=30,
               message="synced")
    wait_until(lambda: any(s["status"].get("cool_widgets_verified_count") == 3
                           for s in primary.secondary_statuses()), timeout=10,
               message="status report with 3 verified")
    status = engine.status()
    assert status["cool_widgets_synced_in_percentage"] == "100.00%"
    assert status["cool_widgets_registry_count"] == 3


def test_stuck_sync_times_out_and_is_retried(primary, make_engine):
    model_id = primary.catalog().add_bytes(b"stuck", "s")
    engine = make_engine()
    engine.pause()  # a paused engine creates no registries: the test makes it
    store = Registries(engine.engine, CoolWidgets)
    store.insert_pending([model_id])
    # Simulate a claim by a crashed engine.
    with engine.engine.begin() as connection:
        connection.execute(update(store.table).values(state=SyncState.STARTED,
                                                      last_synced_at=utcnow()))
    clock.advance(dt.timedelta(hours=8, minutes=1))
    assert store.fail_timed_out_syncs() == 1
    clock.advance(dt.timedelta(minutes=2))
    engine.resume()
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, [model_id]), timeout=30,
               message="timed-out sync retried")


def test_only_abandoned_temporary_files_are_removed(tmp_path):
    import os
    import subprocess
    import sys

    from backend.secondary.local_storage import LocalStorage, temporary_prefix
    storage = LocalStorage(tmp_path)
    folder = tmp_path / "cool_widgets" / "0"
    folder.mkdir(parents=True)
    mine = folder / (temporary_prefix() + "a")
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout.strip()
    dead = folder / temporary_prefix().replace(f"_{os.getpid()}_", f"_{dead_pid}_")
    foreign_fresh = folder / "tmp_otherhost_1_x"
    foreign_old = folder / "tmp_otherhost_2_y"
    for path in (mine, dead, foreign_fresh, foreign_old):
        path.write_bytes(b"partial")
    os.utime(foreign_old, (0, 0))
    assert storage.remove_abandoned_temporary_files() == 2
    assert mine.exists() and foreign_fresh.exists()
    assert not dead.exists() and not foreign_old.exists()


def test_claims_of_a_dead_engine_are_recovered_without_the_timeout(primary, tracking_url,
                                                                    tmp_path, credentials):
    """Registries left started by a killed engine are synced again promptly."""
    from backend.db.engine import create_db_engine
    from backend.db.migrate import upgrade
    ids = [primary.catalog().add_bytes(b"orphan %d" % i, "o") for i in range(5)]
    upgrade(tracking_url, "tracking")
    engine = create_db_engine(tracking_url)
    store = Registries(engine, CoolWidgets)
    store.insert_pending(ids)
    claims = store.claim_sync_batch(3)  # a previous engine's claims
    engine.dispose()
    clock.advance(dt.timedelta(seconds=1))  # then it died; a new engine starts
    secondary = start_engine(secondary_config(primary.url, tracking_url, tmp_path / "s",
                                              credentials))
    try:
        wait_until(lambda: all_synced_and_verified(secondary, CoolWidgets, ids), timeout=30,
                   message="orphaned claims recovered and synced")
        assert all(r["retry_count"] == 0 for r in registries(secondary, CoolWidgets).values())
        assert len(claims) == 3
    finally:
        secondary.stop()


def test_only_claims_of_engines_that_stopped_are_recovered(tracking_url):
    from backend.db.engine import create_db_engine
    from backend.db.migrate import upgrade
    from backend.secondary.heartbeat import Heartbeat, recover_orphaned_claims
    upgrade(tracking_url, "tracking")
    engine = create_db_engine(tracking_url)
    store = Registries(engine, CoolWidgets)
    store.insert_pending([1, 2])
    older = Heartbeat(engine, "older")
    older.beat()
    clock.advance(dt.timedelta(seconds=5))
    store.claim_sync_batch(1)               # the older engine claims registry 1
    with engine.begin() as connection:      # and starts verifying registry 2
        connection.execute(update(store.table).where(store.fk == 2).values(
            state=SyncState.SYNCED, verification_state=VerificationState.STARTED,
            verification_started_at=utcnow(), verification_retry_count=2))
    clock.advance(dt.timedelta(seconds=5))
    newer = Heartbeat(engine, "newer")
    newer.beat()
    # The older engine is alive: its claim is its own business.
    assert recover_orphaned_claims(engine, CoolWidgets) == (0, 0)
    clock.advance(dt.timedelta(minutes=2))  # it stops beating; the newer one goes on
    newer.beat()
    assert recover_orphaned_claims(engine, CoolWidgets) == (1, 1)
    assert store.claim_sync_batch(5)[0].model_id == 1
    verification = store.claim_verification_batch(5)[0]
    assert verification.model_id == 2 and verification.verification_retry_count == 2
    # A claim made after the newest engine started is never taken away.
    assert recover_orphaned_claims(engine, CoolWidgets) == (0, 0)
    engine.dispose()


def test_the_heartbeat_of_a_dead_local_process_is_dropped_at_once(tracking_url):
    import socket
    import subprocess
    import sys

    from sqlalchemy import insert, select

    from backend.db.engine import create_db_engine
    from backend.db.migrate import upgrade
    from backend.db.tracking_schema import EngineHeartbeat
    from backend.secondary.heartbeat import Heartbeat
    upgrade(tracking_url, "tracking")
    engine = create_db_engine(tracking_url)
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout.strip()
    table = EngineHeartbeat.__table__
    with engine.begin() as connection:
        connection.execute(insert(table), [
            {"holder": f"{socket.gethostname()}:{dead_pid}:x", "started_at": utcnow(),
             "seen_at": utcnow()},
            {"holder": "elsewhere:1:y", "started_at": utcnow(), "seen_at": utcnow()}])
    Heartbeat(engine, f"{socket.gethostname()}:{__import__('os').getpid()}:me").beat()
    with engine.connect() as connection:
        holders = set(connection.execute(select(table.c.holder)).scalars())
    assert f"{socket.gethostname()}:{dead_pid}:x" not in holders
    assert "elsewhere:1:y" in holders  # another machine's: only its silence counts
    engine.dispose()
