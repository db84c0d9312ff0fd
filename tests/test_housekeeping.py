"""Housekeeping on a real schedule: every job runs at its interval, for as
long as the lease is held, and one job's failure never stops another."""
import datetime as dt
import os
import subprocess
import time

import pytest
from sqlalchemy import update

from backend.framework.clock import clock
from backend.framework.schedule import Job, Schedule
from backend.framework.states import SyncState
from backend.replicables import replicator_for
from backend.secondary.housekeeping import StepFailed
from backend.secondary.lease import Lease
from backend.secondary.local_storage import temporary_prefix
from tests.support.fixtures_e2e import all_synced_and_verified
from tests.support.registries import Registries
from tests.support.sites import secondary_config, start_engine, wait_until

CoolWidgets = replicator_for("cool_widget")


def schedule_of(*jobs, errors=None):
    return Schedule(list(jobs), on_error=lambda name, exc: errors.append(name)
                    if errors is not None else None, retry_after=1.0)


def test_each_job_runs_at_its_own_interval():
    runs = {"fast": 0, "slow": 0}
    fast = Job("fast", 1.0, lambda: runs.__setitem__("fast", runs["fast"] + 1))
    slow = Job("slow", 5.0, lambda: runs.__setitem__("slow", runs["slow"] + 1),
               first_delay=5.0)
    schedule = schedule_of(fast, slow)
    schedule.start(0.0)
    for tick in range(0, 100):  # 10 s in steps of 0.1 s
        schedule.run_due(tick / 10, lease_held=True)
    assert runs == {"fast": 10, "slow": 1}
    assert schedule.seconds_until_due(9.95, lease_held=True) == pytest.approx(0.05)


def test_lease_jobs_wait_for_the_lease_and_the_others_do_not():
    ran = []
    schedule = schedule_of(Job("events", 1.0, lambda: ran.append("events"), needs_lease=True),
                           Job("status", 1.0, lambda: ran.append("status")))
    schedule.start(0.0)
    schedule.run_due(0.0, lease_held=False)
    schedule.run_due(1.0, lease_held=False)
    assert ran == ["status", "status"]
    schedule.run_due(1.5, lease_held=True)  # due since 0: runs as soon as the lease is ours
    assert ran[-1] == "events"


def test_a_failing_job_is_retried_and_never_stops_the_others():
    errors, ran = [], []

    def broken():
        raise OSError("permission denied")

    schedule = schedule_of(Job("broken", 60.0, broken), Job("fine", 0.5, lambda: ran.append(1)),
                           errors=errors)
    schedule.start(0.0)
    for tick in range(0, 40):  # 4 s
        more, failed = schedule.run_due(tick / 10, lease_held=True)
    assert len(ran) == 8
    assert errors == ["broken"] * 4  # retried after retry_after (1 s), not after 60 s
    assert schedule.jobs["broken"].failures == 4


def test_a_job_with_more_to_do_runs_again_at_once():
    left = [3]

    def walk():
        left[0] -= 1
        return left[0] > 0

    schedule = schedule_of(Job("consistency", 60.0, walk))
    schedule.start(0.0)
    assert schedule.run_due(0.0, True) == (True, False)
    assert schedule.run_due(0.0, True) == (True, False)
    assert schedule.run_due(0.0, True) == (False, False)
    assert schedule.run_due(1.0, True) == (False, False)  # not due before 60 s
    assert schedule.jobs["consistency"].runs == 3


INTERVALS = {"timeouts": 0.4, "recovery": 0.3, "temporary files": 0.5,
             "history pruning": 0.6, "reverification": 0.4, "replica removals": 0.3}
STATUS_INTERVAL = 0.5
CONSISTENCY_INTERVAL = 0.4
LATE = 0.3  # seconds a run may start after it was due, on a busy machine


def runs(engine) -> dict[str, int]:
    return {name: job.runs for name, job in engine.housekeeping.schedule.jobs.items()}


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.slow
def test_every_housekeeping_job_runs_at_its_interval_while_the_lease_is_held(
        primary, tracking_url, tmp_path, credentials):
    storage = tmp_path / "secondary"
    config = secondary_config(primary.url, tracking_url, storage, credentials,
                              status_interval=STATUS_INTERVAL)
    from backend.db.engine import create_db_engine
    database = create_db_engine(tracking_url)
    other = Lease(database, "housekeeping", "another-engine", ttl=dt.timedelta(seconds=60))
    assert other.acquire()  # another engine does the housekeeping at first
    model_id = primary.catalog().add_bytes(b"widget", "w.bin")
    registries = Registries(database, CoolWidgets)
    engine = start_engine(config, poll_interval=0.1, consistency_interval=CONSISTENCY_INTERVAL,
                          housekeeping_intervals=INTERVALS)
    try:
        time.sleep(1.0)
        before = runs(engine)
        lease_jobs = ("events", "consistency", "timeouts", "recovery", "temporary files",
                      "reverification", "replica removals")
        assert all(before[name] == 0 for name in lease_jobs), before
        assert before["status"] >= 2 and before["history pruning"] >= 1  # each engine's own

        other.release()
        wait_until(lambda: all_synced_and_verified(database, CoolWidgets, [model_id]),
                   timeout=30, message="lease taken over and the widget replicated")
        start, started = runs(engine), time.monotonic()
        # Work for the jobs, made while they run: a sync of this engine's
        # stuck for 8 hours (claimed after the engine started, so not a dead
        # engine's), and a download file abandoned by a process that is gone.
        with database.begin() as connection:
            connection.execute(update(registries.table).values(
                state=SyncState.STARTED,
                last_synced_at=engine.heartbeat.started_at + dt.timedelta(seconds=1)))
        clock.advance(dt.timedelta(hours=9))
        ours = temporary_prefix()
        host = ours[:-len(f"{os.getpid()}_")]
        abandoned = storage / "cool_widgets" / "0" / f"{host}{dead_pid()}_{model_id}_1"
        abandoned.write_bytes(b"partial")
        time.sleep(3.0)
        elapsed = time.monotonic() - started
        done = {name: count - start[name] for name, count in runs(engine).items()}
        every = {**INTERVALS, "status": STATUS_INTERVAL, "consistency": CONSISTENCY_INTERVAL,
                 "events": 0.1}
        for name, interval in every.items():
            # Never faster than the interval. A run starts once the jobs before
            # it in the pass are done, so each may start up to LATE after it
            # was due (a pass with the 9-hour jump has work in every job).
            fastest, slowest = elapsed / interval, elapsed / (interval + LATE)
            assert int(slowest) - 1 <= done[name] <= fastest + 1.5, (name, done, elapsed)
        with database.connect() as connection:
            row = connection.execute(registries.table.select()).mappings().one()
        assert row["state"] == SyncState.FAILED
        assert row["last_sync_failure"] == "Sync timed out after 8 hours"
        assert not abandoned.exists()
    finally:
        engine.stop()
        database.dispose()


@pytest.mark.slow
def test_a_failing_housekeeping_step_never_stops_the_others(
        primary, tracking_url, tmp_path, credentials):
    """The charts' history table is gone (a real database error): storing
    the history fails on every snapshot, and still the status reaches the
    primary, the event log is consumed, new widgets replicate and every
    other job keeps its schedule; the failure is reported readably."""
    reports = []
    config = secondary_config(primary.url, tracking_url, tmp_path / "secondary", credentials,
                              status_interval=STATUS_INTERVAL)
    engine = start_engine(config, poll_interval=0.1, consistency_interval=CONSISTENCY_INTERVAL,
                          housekeeping_intervals=INTERVALS, on_error=reports.append)
    try:
        first = primary.catalog().add_bytes(b"before", "a.bin")
        wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, [first]), timeout=30,
                   message="replicating")
        with engine.engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE status_history")
        reported = engine.last_status_report
        start = runs(engine)
        later = primary.catalog().add_bytes(b"after", "b.bin")
        wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, [first, later]),
                   timeout=30, message="a new widget replicated while a step fails")
        wait_until(lambda: engine.last_status_report != reported, timeout=10,
                   message="the status still reported to the primary")
        time.sleep(1.0)
        done = {name: count - start[name] for name, count in runs(engine).items()}
        assert all(done[name] >= 1 for name in done), done
        failures = [r for r in reports if r.startswith("status history: ")]
        assert failures and all("status_history" in r for r in failures), reports
        assert not any(word in r for r in reports
                       for word in ("Traceback", "OperationalError", "ProgrammingError"))
        assert any(s["site_name"] == "secondary-1" for s in primary.secondary_statuses())
    finally:
        engine.stop()


def test_one_types_failing_step_never_stops_the_other_types(
        primary, tracking_url, tmp_path, credentials):
    """Within a job each type is a step of its own: the first type's failure
    is reported with its name after the next type's step has run."""
    config = secondary_config(primary.url, tracking_url, tmp_path / "secondary", credentials)
    engine = start_engine(config)
    try:
        ran = []

        def step(replicator):
            if replicator is CoolWidgets:
                raise OSError(13, "Permission denied", "/srv/geo/cool_widgets")
            ran.append(replicator)
            return replicator.replicable_name

        with pytest.raises(StepFailed) as failed:
            engine.housekeeping._each_type(step)
        assert ran == [r for r in engine.enabled() if r is not CoolWidgets]
        assert str(failed.value) == "Cool Widgets: Permission denied: /srv/geo/cool_widgets"
    finally:
        engine.stop()
