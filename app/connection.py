"""The console's connection to its site, and the truth about it.

`SiteConnection` opens the data source off the GUI thread and then asks
the site for its status every POLL_INTERVAL, one request at a time: a poll
in flight is waited for, however slow the link, and never replaced. What
it says is one of:

  connecting    the source is being opened
  connected     the last poll answered (the site may still be unhealthy)
  no answer     a poll has waited more than NO_ANSWER_AFTER seconds; the
                data shown is that of the last answer, and says when it was
  unreachable   opening the source or the last poll failed, with the reason

A source that cannot be opened leaves the console open on that state, with
Retry (`open()` again) and Settings within reach. A connection given up
(`abandon()`: closing, or reconnecting with new settings) hands over the
stop of its source, and a source still opening then stops itself.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal

CONNECTING, CONNECTED, NO_ANSWER, UNREACHABLE = "connecting", "connected", "no answer", \
    "unreachable"
POLL_INTERVAL = 2000   # ms between polls (after the last answer)
NO_ANSWER_AFTER = 10.0  # seconds a poll may take before the site counts as silent


def clock_time(at: dt.datetime) -> str:
    """HH:MM:SS in the local time zone."""
    return at.astimezone().strftime("%H:%M:%S")


class SiteConnection(QObject):
    opened = Signal(object)         # the source, once open
    stateChanged = Signal(str, str)  # state, what to tell the administrator
    statusArrived = Signal(dict)    # every answered poll

    def __init__(self, runner, opener: Callable | None = None, source=None,
                 poll_interval: int = POLL_INTERVAL,
                 no_answer_after: float = NO_ANSWER_AFTER, parent=None) -> None:
        """`opener()` returns (source, stop) and may block; or give an open
        `source`."""
        super().__init__(parent)
        self.runner = runner
        self.opener = opener
        self.source = source
        self._stop: Callable | None = None  # the open source's stop, once known
        self._abandoned = False
        self._lock = threading.Lock()
        self.settled = threading.Event()  # no open in flight
        self.settled.set()
        self.no_answer_after = no_answer_after
        self.state = CONNECTED if source is not None else CONNECTING
        self.detail = ""
        self.last_status: dict = {}
        self.last_answer_at: dt.datetime | None = None  # wall clock, for people
        self.timer = QTimer(self)
        self.timer.setInterval(poll_interval)
        self.timer.timeout.connect(self.poll)
        self.watch = QTimer(self)  # notices a poll that takes too long
        self.watch.setInterval(500)
        self.watch.timeout.connect(self._check_silence)

    # --- opening ---------------------------------------------------------------

    def open(self) -> None:
        """Open the source (again, after a failure: Retry)."""
        if self.opener is None or self.source is not None:
            return
        self._set(CONNECTING, "Connecting…")
        self.settled.clear()
        self.runner.submit("open-source", self._attempt, self._opened, self._open_failed)

    def _attempt(self):
        """On a worker: open the source, unless given up meanwhile."""
        try:
            source, stop = self.opener()
            with self._lock:
                abandoned = self._abandoned
                if not abandoned:
                    self._stop = stop
            if abandoned:  # nobody will show it or stop it: stop it now
                stop()
                raise RuntimeError("the connection was given up while it opened")
            return source, stop
        finally:
            self.settled.set()

    @property
    def stop_source(self) -> Callable | None:
        return self._stop

    def abandon(self) -> Callable | None:
        """Give the connection up: the stop of its source, if one opened. A
        source opening now stops itself; `settled` is set once it has."""
        self.stop()
        with self._lock:
            self._abandoned = True
            return self._stop

    def retry(self) -> None:
        """Open the source if it never opened, else ask the site again now."""
        if self.source is None:
            self.open()
        else:
            self.poll()

    def _opened(self, result) -> None:
        self.source = result[0]
        self._set(CONNECTED, "")
        self.opened.emit(self.source)
        self.start()

    def _open_failed(self, message: str) -> None:
        self._set(UNREACHABLE, message)

    # --- polling ------------------------------------------------------------------

    def start(self) -> None:
        if self.source is None:
            return
        self.timer.start()
        self.watch.start()
        self.poll()

    def stop(self) -> None:
        self.timer.stop()
        self.watch.stop()

    def poll(self) -> None:
        if self.source is not None:
            self.runner.poll("site-status", self.source.overview, self._answered,
                             self._poll_failed)

    def _answered(self, status: dict) -> None:
        self.last_status = status
        self.last_answer_at = dt.datetime.now(dt.timezone.utc)
        self._set(CONNECTED, "")
        self.statusArrived.emit(status)

    def _poll_failed(self, message: str) -> None:
        self._set(UNREACHABLE, message)

    def _check_silence(self) -> None:
        started = self.runner.in_flight_since("site-status")
        if started is None or time.monotonic() - started < self.no_answer_after:
            return
        since = self.last_answer_at or (dt.datetime.now(dt.timezone.utc)
                                        - dt.timedelta(seconds=time.monotonic() - started))
        self._set(NO_ANSWER, f"No answer since {clock_time(since)}")

    def age(self) -> float | None:
        """Seconds since the last answer."""
        if self.last_answer_at is None:
            return None
        return (dt.datetime.now(dt.timezone.utc) - self.last_answer_at).total_seconds()

    @property
    def stale(self) -> bool:
        """What the console shows is older than the site's state."""
        return self.state in (NO_ANSWER, UNREACHABLE)

    def _set(self, state: str, detail: str) -> None:
        if (state, detail) != (self.state, self.detail):
            self.state, self.detail = state, detail
            self.stateChanged.emit(state, detail)
