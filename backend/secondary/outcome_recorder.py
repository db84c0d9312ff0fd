"""Writing sync and verification outcomes to the tracking DB in groups.

Workers hand each `Outcome` (guarded statements with parameters,
`registry_outcomes.py`) over and go on with their next blob; one thread
writes whatever has gathered in a single transaction, running each
statement once for all its parameter sets (on PostgreSQL as one UPDATE
over arrays, `db/row_updates.py`). Writes are guarded by the claim's start
time, so writing one twice (after a connection broke at commit) changes
nothing.

Before a group is written, the replicas it records as synced are made
durable, once for the whole group (framework/durable.py): a registry says
synced only of a replica whose data and name are on disk.

Once a group has committed the recorder calls `on_written(wake)`, `wake`
true when an outcome of the group left a row for the verification
scheduler (`Outcome.wakes_verification`).

While the database is unreachable the group is retried until it answers:
the work is done, and dropping its outcome would leave the rows claimed by
a live engine. An outcome that fails for another reason is a bug; it is
logged and skipped without holding back the others.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Callable

from sqlalchemy.engine import Engine

from backend.db.engine import is_unreachable, writing
from backend.framework.durable import sync_filesystems
from backend.secondary.registry_outcomes import Outcome, apply

log = logging.getLogger(__name__)

GROUP_LIMIT = 500     # outcomes per transaction
GATHER = 0.05         # seconds a group may wait for more outcomes after its first
BACKLOG_LIMIT = 5000  # workers wait when this many outcomes are unwritten


def make_durable(folders: set[str]) -> None:
    """Put the replicas renamed into these folders on disk before their
    registries say synced (framework/durable.py: one syncfs a group)."""
    present = {folder for folder in folders if os.path.isdir(folder)}  # not since removed
    if not present:
        return
    try:
        sync_filesystems(present)
    except OSError as exc:
        log.warning("could not make replicas durable in %s: %s", sorted(present)[0],
                    exc.strerror or exc)


class OutcomeRecorder:
    def __init__(self, engine: Engine, *, retry_interval: float,
                 on_unreachable: Callable[[Exception], None],
                 on_written: Callable[[bool], None]) -> None:
        self.engine = engine
        self.retry_interval = retry_interval
        self.on_unreachable = on_unreachable
        self.on_written = on_written  # after every group: does it wake verification?
        self._queue: queue.Queue[Outcome | None] = queue.Queue(BACKLOG_LIMIT)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="geo-outcomes", daemon=True)
        self._thread.start()

    def submit(self, outcome: Outcome) -> None:
        """Queue an outcome; blocks while BACKLOG_LIMIT are unwritten."""
        self._queue.put(outcome)

    def stop(self, timeout: float) -> None:
        """Write what is queued (while the database answers), then end."""
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the writing thread -------------------------------------------------

    def _run(self) -> None:
        while True:
            group = self._next_group()
            if group:
                self._write(group)
            elif self._stop.is_set():
                return

    def _next_group(self) -> list[Outcome]:
        """The outcomes that arrive within GATHER seconds of the first: a
        transaction costs about as much for one outcome as for fifty. The
        thread sleeps through the gathering rather than waking for each
        outcome, which would cost a hand-over of the GIL per blob."""
        try:
            first = self._queue.get(timeout=0.5)
        except queue.Empty:
            return []
        if first is None:
            return []
        if self._queue.qsize() < GROUP_LIMIT:
            self._stop.wait(GATHER)
        group = [first]
        while len(group) < GROUP_LIMIT:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:  # stopping: write what we have now
                break
            group.append(item)
        return group

    def _write(self, group: list[Outcome]) -> None:
        make_durable({outcome.folder for outcome in group if outcome.folder})
        while True:
            try:
                with writing(self.engine) as connection:
                    apply(connection, group)
                written = group
                break
            except Exception as exc:
                if not is_unreachable(exc):
                    written = self._write_one_by_one(group)
                    break
                if self._stop.is_set():
                    # Stopping with the database away: the next engine hands
                    # these claims back (see heartbeat.py).
                    log.warning("%d outcomes not written: %s", len(group), exc)
                    return
                self.on_unreachable(exc)
                self._stop.wait(self.retry_interval)
        self.on_written(any(outcome.wakes_verification for outcome in written))

    def _write_one_by_one(self, group: list[Outcome]) -> list:
        """Those written: an outcome that fails alone is a bug, and skipped."""
        written = []
        for item in group:
            try:
                with writing(self.engine) as connection:
                    apply(connection, [item])
                written.append(item)
            except Exception:
                log.exception("could not record an outcome")
        return written

