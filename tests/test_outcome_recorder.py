"""The outcome recorder writes what workers hand over, in groups, and a
broken outcome never holds back the others."""
import threading
import time

from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select

from backend.db.engine import create_db_engine
from backend.secondary.claimed_work import ClaimedWork
from backend.secondary.outcome_recorder import OutcomeRecorder
from backend.secondary.registry_outcomes import Outcome

metadata = MetaData()
outcomes = Table("outcomes", metadata, Column("id", Integer, primary_key=True))
INSERT = insert(outcomes)


def row(n: int, wakes: bool = False) -> Outcome:
    """An outcome that inserts row `n`."""
    return Outcome(((INSERT, {"id": n}),), wakes_verification=wakes)


def recorder_on(databases):
    engine = create_db_engine(databases.url("outcomes"))
    metadata.create_all(engine)
    written = threading.Event()
    recorder = OutcomeRecorder(engine, retry_interval=0.1, on_unreachable=lambda exc: None,
                               on_written=lambda wake: written.set())
    return engine, recorder, written


def count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(outcomes)).scalar_one()


def test_queued_outcomes_are_written_by_stop(databases):
    engine, recorder, written = recorder_on(databases)
    for n in range(1, 301):
        recorder.submit(row(n))
    recorder.start()
    recorder.stop(timeout=30)
    assert count(engine) == 300
    assert written.is_set()
    engine.dispose()


def test_a_broken_outcome_does_not_hold_back_the_others(databases):
    engine, recorder, _ = recorder_on(databases)

    recorder.submit(row(1))
    recorder.submit(row(1))  # cannot be written (its key is taken): a bug, skipped
    recorder.submit(row(2))
    recorder.start()
    recorder.stop(timeout=30)
    assert count(engine) == 2
    engine.dispose()


def test_a_group_that_wakes_verification_says_so_once_written(databases):
    engine = create_db_engine(databases.url("outcomes"))
    metadata.create_all(engine)
    handed = []
    recorder = OutcomeRecorder(engine, retry_interval=0.1, on_unreachable=lambda exc: None,
                               on_written=handed.append)
    recorder.submit(row(1))
    recorder.submit(row(1, wakes=True))  # a duplicate: fails, so it wakes nobody
    recorder.start()
    recorder.stop(timeout=30)
    assert count(engine) == 1 and handed == [False]
    recorder = OutcomeRecorder(engine, retry_interval=0.1, on_unreachable=lambda exc: None,
                               on_written=handed.append)
    recorder.submit(row(2))
    recorder.submit(row(3, wakes=True))
    recorder.start()
    recorder.stop(timeout=30)
    assert count(engine) == 3 and handed == [False, True]
    engine.dispose()


def test_claimed_work_refills_only_when_half_is_free():
    work = ClaimedWork(10)
    stop = threading.Event()
    assert work.wait_for_room(stop, 0.01) == 10
    work.add(list(range(8)), 8)
    waited = threading.Event()

    def scheduler():
        work.wait_for_room(stop, 5)
        waited.set()

    thread = threading.Thread(target=scheduler)
    thread.start()
    for _ in range(2):
        assert work.take(1) is not None
        work.done(1)
    assert not waited.wait(0.2)  # 6 claimed: more than half the capacity
    work.take(1)
    work.done(1)
    assert waited.wait(5)  # 5 claimed: half is free
    thread.join()
    assert len(work.drain()) == 5


def test_waiting_for_claimed_work_to_empty():
    work = ClaimedWork(10)
    stop = threading.Event()
    assert work.wait_until_empty(stop, 0.01)  # nothing claimed
    work.add([1, 2], 2)
    assert not work.wait_until_empty(stop, 0.05)  # two in flight: times out
    emptied = threading.Event()

    def verification_scheduler():
        if work.wait_until_empty(stop, 5):
            emptied.set()

    thread = threading.Thread(target=verification_scheduler)
    thread.start()
    work.take(1)
    work.done(1)
    assert not emptied.wait(0.2)  # one still in flight
    work.take(1)
    work.done(1)
    assert emptied.wait(5)  # the last one finished
    thread.join()

    work.add([3], 1)
    started = time.monotonic()
    threading.Timer(0.1, lambda: (stop.set(), work.wake())).start()
    assert work.wait_until_empty(stop, 5)  # a stop ends the wait too
    assert time.monotonic() - started < 2


def test_statements_of_a_group_run_as_one_executemany(databases):
    engine, recorder, _ = recorder_on(databases)
    for n in range(1, 101):
        recorder.submit(row(n))
    recorder.submit(Outcome(((insert(outcomes).values(id=1000), {}),)))
    executions = []
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def seen(conn, cursor, sql, parameters, context, executemany):
        if sql.startswith("INSERT"):
            executions.append(executemany)

    recorder.start()
    recorder.stop(timeout=30)
    assert count(engine) == 101
    assert executions.count(True) == 1  # the 100 statements, once
    engine.dispose()
