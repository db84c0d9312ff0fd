"""Running blocking calls (database, network) off the GUI thread.

`TaskRunner.submit(key, fn, on_done)` runs `fn` on a thread pool and calls
`on_done(result)` back on the GUI thread, but only if no newer task was
submitted under the same key meanwhile: a stale answer (an old page, the
count of a filter no longer shown) is dropped. Errors arrive as one line.
"""
from __future__ import annotations

import itertools
import logging
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


class TaskRunner(QObject):
    errorOccurred = Signal(str)

    def __init__(self, parent: QObject | None = None, threads: int = 4) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._tokens = itertools.count(1)
        self._latest: dict[str, int] = {}
        self._callbacks: dict[int, tuple] = {}
        self._signals = _Signals(self)
        self._signals.done.connect(self._finished)
        self._signals.failed.connect(self._failed)

    def submit(self, key: str, fn: Callable, on_done: Callable | None = None,
               on_error: Callable[[str], None] | None = None) -> int:
        token = next(self._tokens)
        self._latest[key] = token
        self._callbacks[token] = (key, on_done, on_error)
        self.pool.start(_Task(token, fn, self._signals))
        return token

    def is_current(self, key: str, token: int) -> bool:
        return self._latest.get(key) == token

    @Slot(int, object)
    def _finished(self, token: int, result) -> None:
        key, on_done, _ = self._callbacks.pop(token, (None, None, None))
        if key is None or self._latest.get(key) != token:
            return  # stale: a newer task under this key superseded it
        if on_done:
            on_done(result)

    @Slot(int, str)
    def _failed(self, token: int, message: str) -> None:
        key, _, on_error = self._callbacks.pop(token, (None, None, None))
        if key is None or self._latest.get(key) != token:
            return
        if on_error:
            on_error(message)
        else:
            self.errorOccurred.emit(message)

    def wait(self, msecs: int = 30000) -> bool:
        return self.pool.waitForDone(msecs)

    def close(self, msecs: int = 60000) -> bool:
        """Let running tasks finish, but deliver none of their answers: the
        widgets they would update are going away."""
        self._latest.clear()
        self._callbacks.clear()
        return self.pool.waitForDone(msecs)
