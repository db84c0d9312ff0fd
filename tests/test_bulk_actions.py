"""Bulk resync and reverify in batches of at most 1,000 rows a transaction,
with progress, cancellable, one job per registry table, while the engine
keeps claiming (SQLite and PostgreSQL).

Before, resync of every registry was one UPDATE: 3.9 s of SQLite's only
write lock at 1,000,000 rows, and on PostgreSQL it deadlocked with a claim
being handed back (found by bench/bulk_resync_claims.py).
"""
import datetime as dt
import threading
import time

import pytest
from sqlalchemy import event, insert, select

from backend.db.engine import create_db_engine
from backend.framework.states import SyncState, VerificationState
from backend.replicables import replicator_for
from backend.secondary.bulk_actions import BATCH, BulkAction, BulkActionRefused
from backend.secondary.bulk_jobs import BulkJobs
from backend.secondary.registry_claims import RegistryClaims
from backend.secondary.registry_selection import RegistrySelection

CoolWidgets = replicator_for("cool_widget")
ROWS = 3_500
CREATED = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def tracking(tracking_url):
    engine = create_db_engine(tracking_url)
    t = CoolWidgets.registry_table()
    with engine.begin() as connection:
        connection.execute(insert(t), [
            {"cool_widget_id": n, "state": SyncState.SYNCED if n % 10 else SyncState.FAILED,
             "verification_state": VerificationState.SUCCEEDED if n % 10
             else VerificationState.DISABLED, "retry_count": 0 if n % 10 else 3,
             "created_at": CREATED}
            for n in range(1, ROWS + 1)])
    yield engine
    engine.dispose()


def states(engine) -> dict[int, int]:
    t = CoolWidgets.registry_table()
    with engine.connect() as connection:
        return dict(connection.execute(select(t.c.cool_widget_id, t.c.state)).all())


def updates_seen(engine):
    """Every UPDATE of the registry table the engine runs, with the rows it
    changed (an observer on the real engine, not a stand-in)."""
    seen = []

    def after(_conn, cursor, statement, _params, _context, _many):
        if statement.lstrip().upper().startswith("UPDATE COOL_WIDGET_REGISTRY"):
            seen.append(cursor.rowcount)
    event.listen(engine, "after_cursor_execute", after)
    return seen


def test_a_resync_of_everything_changes_at_most_a_batch_per_transaction(tracking):
    seen = updates_seen(tracking)
    steps = []
    result = BulkAction(tracking, CoolWidgets).run(
        "resync", RegistrySelection(), progress=lambda done, total: steps.append((done, total)))
    assert result.changed == ROWS and not result.cancelled
    assert set(states(tracking).values()) == {SyncState.PENDING}
    assert seen and max(seen) <= BATCH and sum(seen) == ROWS
    assert steps == [(0, ROWS), (1000, ROWS), (2000, ROWS), (3000, ROWS), (3500, ROWS)]


def test_a_filtered_reverify_touches_exactly_what_it_picks(tracking):
    failed = RegistrySelection(replication_state=SyncState.FAILED)
    assert BulkAction(tracking, CoolWidgets).run("reverify", failed).changed == 0  # none synced
    synced = RegistrySelection(replication_state=SyncState.SYNCED)
    assert BulkAction(tracking, CoolWidgets).run("reverify", synced).changed == ROWS - ROWS // 10
    t = CoolWidgets.registry_table()
    with tracking.connect() as connection:
        rows = connection.execute(select(t.c.cool_widget_id, t.c.verification_state)).all()
    assert all((state == VerificationState.PENDING) == bool(n % 10) for n, state in rows)


def test_a_million_ids_chosen_in_the_console_go_a_thousand_at_a_time(tracking):
    seen = updates_seen(tracking)
    chosen = RegistrySelection(ids=tuple(range(1, 2_501)) + (10**9,))  # one id that is gone
    assert BulkAction(tracking, CoolWidgets).run("resync", chosen).changed == 2_500
    assert max(seen) <= BATCH
    assert sum(1 for state in states(tracking).values() if state == SyncState.PENDING) == 2_500


def test_a_cancelled_job_stops_after_its_batch_and_leaves_the_rest(tracking):
    steps = []

    def progress(done, total):
        steps.append(done)

    result = BulkAction(tracking, CoolWidgets).run(
        "resync", RegistrySelection(), progress=progress, cancelled=lambda: len(steps) > 2)
    assert result.cancelled and result.changed == 2 * BATCH
    pending = sorted(n for n, state in states(tracking).items() if state == SyncState.PENDING)
    assert pending == list(range(1, 2 * BATCH + 1))  # in id order, the rest as it was


def test_one_job_per_table_and_the_engine_claims_between_batches(tracking):
    """While a job waits between two batches, a second job on the table is
    refused with a reason, a resync of a few registries by id is not, and
    a claim gets the rows at once."""
    between = threading.Event()
    go_on = threading.Event()
    outcome = {}

    def progress(done, _total):
        if done == BATCH:
            between.set()
            go_on.wait(30)

    def first():
        outcome["first"] = BulkAction(tracking, CoolWidgets).run(
            "resync", RegistrySelection(), progress=progress)

    worker = threading.Thread(target=first)
    worker.start()
    try:
        assert between.wait(30)
        with pytest.raises(BulkActionRefused) as refused:
            BulkAction(tracking, CoolWidgets).run(
                "reverify", RegistrySelection(replication_state=SyncState.SYNCED))
        message = str(refused.value)
        assert message.startswith("another resync or reverify of cool widgets registries "
                                  "is running (by process "), message
        assert message.endswith("; wait until it is done or cancel it, then reverify again")
        few = RegistrySelection(ids=(3_400, 3_401))
        assert BulkAction(tracking, CoolWidgets).run("resync", few).changed == 2
        started = time.monotonic()
        claimed = RegistryClaims(tracking, CoolWidgets).claim_sync_batch(50)
        assert len(claimed) == 50 and time.monotonic() - started < 1.0
    finally:
        go_on.set()
        worker.join(60)
    assert outcome["first"].changed == ROWS
    assert sum(1 for state in states(tracking).values() if state == SyncState.STARTED) == 50


def test_a_sites_jobs_run_in_the_background_and_list_their_progress(tracking):
    changed = []
    jobs = BulkJobs(tracking, on_progress=lambda: changed.append(1))
    job = jobs.start(CoolWidgets, "resync", RegistrySelection(
        replication_state=SyncState.FAILED))
    assert job.total == ROWS // 10
    assert job.ended.wait(30)
    assert jobs.summaries() == [{
        "id": 1, "type": "cool_widget", "action": "resync", "state": "finished",
        "done": ROWS // 10, "total": ROWS // 10, "changed": ROWS // 10,
        "started_at": job.started_at, "error": None}]
    assert changed  # the engine was woken for the registries changed


def test_a_resync_of_a_million_registries_goes_a_thousand_a_transaction(tmp_path):
    """The issue's case at its size, on SQLite in memory-backed storage
    (/dev/shm: its fsyncs cost nothing, so the suite pays for the batching,
    not for a thousand flushes of a disk; bench/bulk_resync_claims.py times
    it on disk, and on PostgreSQL, beside the engine's claims)."""
    import os
    import tempfile

    from sqlalchemy import func, text

    from backend.db.migrate import upgrade
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm here")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as folder:
        url = f"sqlite:///{folder}/tracking.db"
        upgrade(url, "tracking")
        engine = create_db_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(text("""
                    WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq
                                              WHERE n < 1000000)
                    INSERT INTO cool_widget_registry (cool_widget_id, created_at, state,
                                                      verification_state)
                    SELECT n, '2026-11-01 00:00:00.000000', 2, 2 FROM seq"""))
            seen = updates_seen(engine)
            steps = []
            result = BulkAction(engine, CoolWidgets).run(
                "resync", RegistrySelection(), progress=lambda done, total: steps.append(done))
            assert result.changed == 1_000_000
            assert len(seen) == 1000 and max(seen) == BATCH and sum(seen) == 1_000_000
            assert steps == list(range(0, 1_000_001, 1000))
            t = CoolWidgets.registry_table()
            with engine.connect() as connection:
                assert connection.execute(select(func.count()).select_from(t).where(
                    t.c.state != SyncState.PENDING)).scalar() == 0
        finally:
            engine.dispose()
