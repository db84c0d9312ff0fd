"""The engine's sync workers: coroutines on one event loop thread taking
claims from a ClaimedWork, and the blob client's reasons for a failure."""
import asyncio
import socket
import threading
import time

import pytest

from backend.secondary.blob_client import BlobClient
from backend.secondary.claimed_work import ClaimedWork
from backend.secondary.geo_client import PrimaryUnreachable
from backend.secondary.sync_workers import SyncWorkers
from tests.support.sites import wait_until


class Recorder:
    """A handle coroutine that records what it ran and how many at once."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.handled: list = []
        self.cancelled: list = []
        self.running = 0
        self.most_at_once = 0
        self.loop_threads: set = set()
        self.opened = self.closed = 0

    async def handle(self, store, claim) -> None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        self.loop_threads.add(threading.get_ident())
        try:
            await asyncio.sleep(self.seconds)
            self.handled.append(claim)
        except asyncio.CancelledError:
            self.cancelled.append(claim)
            raise
        finally:
            self.running -= 1

    async def open(self) -> None:
        self.opened += 1

    async def close(self) -> None:
        self.closed += 1


def workers_for(work: ClaimedWork, recorder: Recorder, count: int, errors: list,
                handle=None) -> SyncWorkers:
    """Workers running `handle` (the recorder's by default), opening and
    closing through the recorder."""
    workers = SyncWorkers(work, count, handle or recorder.handle, on_error=errors.append,
                          open_resources=recorder.open, close_resources=recorder.close)
    work.on_added = workers.claims_added
    return workers


def test_every_claim_is_handled_at_most_count_at_a_time():
    work, recorder, errors = ClaimedWork(100), Recorder(0.002), []
    workers = workers_for(work, recorder, 4, errors)
    workers.start()
    try:
        for batch in range(5):  # claims arriving while the workers run
            work.add([("store", batch * 20 + i) for i in range(20)], 20)
            time.sleep(0.01)
        wait_until(lambda: len(recorder.handled) == 100)
    finally:
        workers.stop(timeout=5)
    assert sorted(recorder.handled) == list(range(100))
    assert recorder.most_at_once == 4
    assert len(recorder.loop_threads) == 1 and threading.get_ident() not in recorder.loop_threads
    assert work.wait_for_room(threading.Event(), 0.1) == 100  # every unit given back
    assert (recorder.opened, recorder.closed, errors) == (1, 1, [])
    assert not workers.running


def busy_workers(count: int, claims: int, seconds: float):
    """(work, recorder, workers): `count` workers started on `claims` claims
    that take `seconds` each, returned once every worker is in one."""
    work, recorder = ClaimedWork(10), Recorder(seconds)
    workers = workers_for(work, recorder, count, [])
    workers.start()
    work.add([("store", i) for i in range(claims)], claims)
    wait_until(lambda: recorder.running == count)
    return work, recorder, workers


def test_resizing_changes_how_many_run_at_once_while_running():
    work, recorder = ClaimedWork(10), Recorder(0.05)
    workers = workers_for(work, recorder, 2, [])
    workers.start()
    try:
        work.add([("store", 0), ("store", 1)], 2)
        wait_until(lambda: len(recorder.handled) == 2)
        assert recorder.most_at_once == 2
        workers.resize(6)  # more workers start at once
        recorder.most_at_once = 0
        work.add([("store", i) for i in range(2, 62)], 60)
        wait_until(lambda: len(recorder.handled) == 62)
        assert recorder.most_at_once == 6

        workers.resize(1)  # the ones above 1 end after their download
        wait_until(lambda: recorder.running == 0)
        recorder.most_at_once = 0
        work.add([("store", i) for i in range(62, 72)], 10)
        wait_until(lambda: len(recorder.handled) == 72)
        assert recorder.most_at_once == 1

        workers.resize(3)  # and those that ended start again
        recorder.most_at_once = 0
        work.add([("store", i) for i in range(72, 102)], 30)
        wait_until(lambda: len(recorder.handled) == 102)
        assert recorder.most_at_once == 3
    finally:
        workers.stop(timeout=5)
    assert sorted(recorder.handled) == list(range(102)) and not workers.running
    assert work.wait_for_room(threading.Event(), 0.1) == 10  # every unit given back


def test_stop_finishes_downloads_in_flight_and_leaves_the_rest_claimed():
    work, recorder, workers = busy_workers(2, claims=6, seconds=0.3)
    workers.stop(timeout=10)
    assert sorted(recorder.handled) == [0, 1] and recorder.cancelled == []
    assert sorted(claim for _, claim in work.drain()) == [2, 3, 4, 5]
    assert recorder.closed == 1


def test_stop_cancels_what_outlives_the_deadline():
    _, recorder, workers = busy_workers(3, claims=3, seconds=30.0)
    started = time.monotonic()
    workers.stop(timeout=0.2)
    assert time.monotonic() - started < 3
    assert sorted(recorder.cancelled) == [0, 1, 2] and recorder.handled == []
    assert not workers.running and recorder.closed == 1


def test_a_failing_handle_is_reported_and_the_worker_goes_on():
    work, errors = ClaimedWork(10), []

    async def handle(store, claim):
        if claim == 0:
            raise RuntimeError("boom")
        handled.append(claim)

    handled: list = []
    workers = workers_for(work, Recorder(), 1, errors, handle=handle)
    workers.start()
    try:
        work.add([("store", 0), ("store", 1)], 2)
        wait_until(lambda: handled == [1])
    finally:
        workers.stop(timeout=5)
    assert [str(exc) for exc in errors] == ["boom"]


def test_a_failure_to_open_reaches_start():
    async def refuse():
        raise OSError("no sockets today")

    recorder = Recorder()
    recorder.open = refuse
    workers = workers_for(ClaimedWork(1), recorder, 1, [])
    with pytest.raises(OSError, match="no sockets today"):
        workers.start()
    assert not workers.running


def test_an_unreachable_primary_is_one_readable_line():
    closed = socket.socket()  # bound and never listening: connections are refused
    closed.bind(("127.0.0.1", 0))

    async def fetch():
        async with BlobClient(f"http://127.0.0.1:{closed.getsockname()[1]}", "key", "s" * 32,
                              timeout=5) as client:
            async def consume(piece):
                raise AssertionError("nothing to consume")
            await client.download("cool_widget", 1, consume)

    try:
        with pytest.raises(PrimaryUnreachable, match="^cannot connect: Connection refused$"):
            asyncio.run(fetch())
    finally:
        closed.close()
