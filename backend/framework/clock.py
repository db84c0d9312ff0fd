"""Wall-clock time for every state change.

All timestamps are computed here in Python (never by the database's NOW()),
so SQLite and PostgreSQL agree and tests can move time forward.
"""
from __future__ import annotations

import datetime as dt
import threading

UTC = dt.timezone.utc


class Clock:
    """UTC clock with an adjustable offset (tests advance it)."""

    def __init__(self) -> None:
        self._offset = dt.timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            offset = self._offset
        return dt.datetime.now(UTC) + offset

    def advance(self, delta: dt.timedelta) -> None:
        with self._lock:
            self._offset += delta

    def reset(self) -> None:
        with self._lock:
            self._offset = dt.timedelta(0)


clock = Clock()


def utcnow() -> dt.datetime:
    return clock.now()
