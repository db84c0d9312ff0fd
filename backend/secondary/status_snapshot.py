"""The engine's status: computed from the tracking DB, kept as the latest
snapshot for metrics, stored as history for the charts and reported to
the primary (GitLab: every minute)."""
from __future__ import annotations

import time
from typing import Callable

from backend.secondary import status_history
from backend.secondary.engine_control import EngineControl
from backend.secondary.status import secondary_type_status


class StatusSnapshots:
    def __init__(self, control: EngineControl, *, name: str, engine, replicators: list,
                 replication_enabled: Callable, events, counters, client,
                 status_interval: float) -> None:
        self.control = control
        self.name = name
        self.engine = engine
        self.replicators = replicators
        self.replication_enabled = replication_enabled
        self.events = events
        self.counters = counters
        self.client = client
        self.status_interval = status_interval
        self.latest: dict | None = None
        # What is posted to the primary, made from the status; the site sets
        # it to its REST status document (health, URL, cursor time).
        self.report: Callable[[dict], dict] = dict
        self.last_report: float | None = None  # time.time() of the last report accepted
        self._last_snapshot: float | None = None

    def status(self) -> dict:
        status = {"name": self.name, "replicable_types": [
            r.replicable_name for r in self.replicators]}
        for replicator in self.replicators:
            status.update(secondary_type_status(self.engine, replicator,
                                                self.replication_enabled(replicator)))
        # The cursor before the gaps: a gap opened between the two reads is
        # above the cursor reported, so the primary never prunes its event.
        cursor = self.events.cursor.get()
        gap_count, oldest_gap = self.events.gaps.summary()
        status.update({
            "last_event_id": self.events.last_event_id,
            "last_event_timestamp": self.events.last_event_timestamp,
            "cursor_last_event_id": cursor,
            "event_log_gap_count": gap_count,
            "event_log_oldest_gap_id": oldest_gap,
            "engine": "paused" if self.control.paused else "running",
            "last_error": self.control.last_error,
            "sync_holds": self.control.sync_holds.reasons(),
        })
        return status

    def snapshot(self) -> dict:
        """Compute the status, keep it, store it as history and report it."""
        status = self.status()
        self.latest = status
        work = self.counters.take_interval()
        now = time.monotonic()
        interval = now - self._last_snapshot if self._last_snapshot else self.status_interval
        self._last_snapshot = now
        try:  # the charts' history; its failure never stops the report
            for replicator in self.replicators:
                if not self.replication_enabled(replicator):
                    continue
                p = replicator.plural_name
                counts = {name: status.get(f"{p}_{name}")
                          for name in status_history.STATE_COUNTS}
                status_history.record(self.engine, replicator.replicable_name, counts,
                                      work.get(replicator.replicable_name, {}), interval)
        except Exception as exc:
            self.control.report("status history", exc)
        try:
            self.client.post_status(self.report(status))
            self.last_report = time.time()
        except Exception as exc:
            self.control.report("status report", exc)
        return status
