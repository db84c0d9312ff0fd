"""Running blocking calls (database, network) off the GUI thread.

`TaskRunner.submit(key, fn, on_done)` runs `fn` on a thread pool and calls
`on_done(result)` back on the GUI thread. Per key at most one task runs: a
task submitted while another of its key is in flight waits for it, and
replaces any task already waiting (the newest request wins; an old page or
the count of a filter no longer shown is never delivered). Tasks never pile
up behind a slow site.

`poll(key, fn, on_done)` is for periodic reads: while one is in flight it
does nothing, so the answer in flight is the one delivered, however late
(a slow link still shows the site). `in_flight_since(key)` says how long
it has been waiting, for "no answer since" displays.

Errors arrive as one line. Closing delivers nothing more and never waits.
"""
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from typing import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)


class _Signals(QObject):
    done = Signal(int, object)
    failed = Signal(int, str)


class _Task(QRunnable):
    def __init__(self, token: int, fn: Callable, signals: _Signals) -> None:
        super().__init__()
        self.token = token
        self.fn = fn
        self.signals = signals
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # reported on the GUI thread, never raised there
            log.debug("background task failed", exc_info=True)
            self.signals.failed.emit(self.token, describe(exc))
            return
        self.signals.done.emit(self.token, result)


def describe(exc: BaseException) -> str:
    from backend.commands import describe_error
    return describe_error(exc)


@dataclass
class _Request:
    token: int
    fn: Callable
    on_done: Callable | None
    on_error: Callable | None
    started: float | None = None  # monotonic, once running


class TaskRunner(QObject):
    errorOccurred = Signal(str)

    def __init__(self, parent: QObject | None = None, threads: int = 6) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        # Threads that never expire keep their connections to the site (the
        # remote client keeps one per thread) instead of opening new ones.
        self.pool.setExpiryTimeout(-1)
        self._tokens = itertools.count(1)
        self._running: dict[str, _Request] = {}   # key -> the task in flight
        self._waiting: dict[str, _Request] = {}   # key -> the newest task asked for since
        self._keys: dict[int, str] = {}           # token -> key, while in flight
        self._closed = False
        self._signals = _Signals(self)
        self._signals.done.connect(self._finished)
        self._signals.failed.connect(self._failed)

    def submit(self, key: str, fn: Callable, on_done: Callable | None = None,
               on_error: Callable[[str], None] | None = None) -> int:
        """Run `fn` now, or once the task in flight under `key` is done; its
        answer then goes to `on_done`, the other's nowhere."""
        request = _Request(next(self._tokens), fn, on_done, on_error)
        if self._closed:
            return request.token
        if key in self._running:
            self._waiting[key] = request
        else:
            self._start(key, request)
        return request.token

    def poll(self, key: str, fn: Callable, on_done: Callable | None = None,
             on_error: Callable[[str], None] | None = None) -> bool:
        """Run `fn` unless a task of `key` is in flight or waiting; False
        when it did not (the answer on its way is the one to wait for)."""
        if self._closed or key in self._running or key in self._waiting:
            return False
        self.submit(key, fn, on_done, on_error)
        return True

    def in_flight_since(self, key: str) -> float | None:
        """When the task in flight under `key` started (monotonic), or None."""
        request = self._running.get(key)
        return request.started if request else None

    def is_current(self, key: str, token: int) -> bool:
        request = self._waiting.get(key) or self._running.get(key)
        return request is not None and request.token == token

    def _start(self, key: str, request: _Request) -> None:
        request.started = time.monotonic()
        self._running[key] = request
        self._keys[request.token] = key
        self.pool.start(_Task(request.token, request.fn, self._signals))

    def _settle(self, token: int) -> _Request | None:
        """The finished task's request if its answer is to be delivered;
        starts the task waiting under its key."""
        key = self._keys.pop(token, None)
        if key is None:
            return None
        request = self._running.pop(key)
        waiting = self._waiting.pop(key, None)
        if waiting is not None and not self._closed:
            self._start(key, waiting)
            return None  # superseded: a newer request is on its way
        return None if self._closed else request

    @Slot(int, object)
    def _finished(self, token: int, result) -> None:
        request = self._settle(token)
        if request is not None and request.on_done:
            request.on_done(result)

    @Slot(int, str)
    def _failed(self, token: int, message: str) -> None:
        request = self._settle(token)
        if request is None:
            return
        if request.on_error:
            request.on_error(message)
        else:
            self.errorOccurred.emit(message)

    def wait(self, msecs: int = 30000) -> bool:
        """Block until every task has run (tests; never the window)."""
        return self.pool.waitForDone(msecs)

    def close(self) -> None:
        """Deliver no more answers and start nothing more: the widgets they
        would update are going away. Tasks in flight end on their own (each
        call is bounded by its own timeout); nothing waits for them."""
        self._closed = True
        self._waiting.clear()
        self.pool.clear()  # tasks queued and not yet started never start
