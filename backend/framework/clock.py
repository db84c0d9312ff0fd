"""Time for every state change.

All timestamps are computed here in Python (never by the database's NOW()
inside a statement), so SQLite and PostgreSQL agree and tests can move time
forward.

An engine makes its clock follow its tracking database's (`follow`): engines
on several machines compare each other's heartbeats, claims, leases and
retry times, and a skewed machine clock would make a live engine look dead
(its claims handed back) or a due retry look far away. The database's time
is read at every heartbeat, and between two readings the clock moves by
the monotonic clock, so a jump of the machine's clock changes nothing.
"""
from __future__ import annotations

import datetime as dt
import threading
import time

UTC = dt.timezone.utc


class Clock:
    """UTC clock with an adjustable offset (tests advance it)."""

    def __init__(self) -> None:
        self._offset = dt.timedelta(0)
        # (the database's time, time.monotonic() when it was read), or None:
        # the machine's clock.
        self._reference: tuple[dt.datetime, float] | None = None
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            offset, reference = self._offset, self._reference
        if reference is None:
            return self._wall() + offset
        at, monotonic_then = reference
        return at + dt.timedelta(seconds=time.monotonic() - monotonic_then) + offset

    @staticmethod
    def _wall() -> dt.datetime:
        return dt.datetime.now(UTC)

    def follow(self, reference_time: dt.datetime, monotonic_then: float) -> None:
        """From now on, time is `reference_time` (read at `monotonic_then`)
        plus the monotonic time since."""
        with self._lock:
            self._reference = (reference_time, monotonic_then)

    def unfollow(self) -> None:
        """Back to the machine's clock."""
        with self._lock:
            self._reference = None

    def machine_offset(self) -> dt.timedelta:
        """How far the machine's clock is from the followed one (zero when
        following none): what status and the log report as clock skew."""
        with self._lock:
            reference = self._reference
        if reference is None:
            return dt.timedelta(0)
        at, monotonic_then = reference
        return self._wall() - (at + dt.timedelta(seconds=time.monotonic() - monotonic_then))

    def advance(self, delta: dt.timedelta) -> None:
        with self._lock:
            self._offset += delta

    def reset(self) -> None:
        with self._lock:
            self._offset = dt.timedelta(0)


clock = Clock()


def utcnow() -> dt.datetime:
    return clock.now()
