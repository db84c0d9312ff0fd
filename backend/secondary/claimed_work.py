"""Claimed registries waiting for the engine's workers.

One scheduler thread claims rows in the database and puts them here;
workers take them. The scheduler refills only once half of the capacity is
free, so a claim takes many rows at once instead of one per blob, and the
rows claimed never exceed the capacity (eight times `files_max_capacity` for
syncs, ten times `verification_max_capacity` for verifications; see
engine.py). A unit is one registry row; an item may hold several (a
verification batch).
"""
from __future__ import annotations

import queue
import threading
from typing import Callable


class ClaimedWork:
    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._claimed = 0  # units claimed and not finished
        self._room = threading.Condition()
        # Its own condition on the same lock: waking the verification
        # scheduler for every finished sync would hand it the GIL per blob.
        self._empty = threading.Condition(self._room)
        self._queue: queue.Queue = queue.Queue()
        self._signal = threading.Event()
        self.on_added: Callable[[], None] | None = None  # consumers not blocked in take()

    def set_capacity(self, capacity: int) -> None:
        """A new bound, at once: a larger one lets the scheduler claim
        more now; a smaller one lets it claim nothing until the work in
        flight has gone below it."""
        with self._room:
            self.capacity = max(1, capacity)
            self._room.notify_all()

    def wait_for_room(self, stop: threading.Event, timeout: float) -> int:
        """Block until half the capacity is free (or `stop`); returns the room."""
        with self._room:
            while self._claimed > self.capacity // 2 and not stop.is_set():
                self._room.wait(timeout)
            return self.capacity - self._claimed

    def wait_until_empty(self, stop: threading.Event, timeout: float) -> bool:
        """Block until no unit is claimed (or `stop`), at most `timeout` s."""
        with self._room:
            return self._empty.wait_for(lambda: self._claimed == 0 or stop.is_set(), timeout)

    def add(self, items: list, units: int) -> None:
        with self._room:
            self._claimed += units
        for item in items:
            self._queue.put(item)
        if self.on_added is not None:
            self.on_added()

    def take(self, timeout: float):
        """The next item, or None after `timeout`."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def take_nowait(self):
        """The next item, or None if there is none."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def done(self, units: int) -> None:
        with self._room:
            self._claimed -= units
            if self._claimed <= self.capacity // 2:  # what wait_for_room waits for
                self._room.notify_all()
                if self._claimed == 0:  # what wait_until_empty waits for
                    self._empty.notify_all()

    def wake(self) -> None:
        with self._room:
            self._room.notify_all()
            self._empty.notify_all()

    def signal(self) -> None:
        """New rows may be claimable: an idle scheduler looks again."""
        self._signal.set()

    def wait_for_signal(self, timeout: float) -> None:
        self._signal.wait(timeout)
        self._signal.clear()

    def drain(self) -> list:
        """Items no worker took (the engine is stopping)."""
        items = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items
