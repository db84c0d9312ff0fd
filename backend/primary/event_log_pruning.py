"""Pruning the primary's event log (GitLab's Geo::PruneEventLogWorker), so
that it stays bounded however long the sites run.

Every PRUNE_INTERVAL the primary deletes the log rows (and their events)
that every secondary is done with: up to the lowest id any configured
secondary may still ask for, which is its reported `cursor_last_event_id`,
or one below its `event_log_oldest_gap_id` when it still looks for ids
its cursor passed. Nothing is pruned while any configured secondary has
not reported, reports no cursor, or is unhealthy (its own word, or a
report older than 10 minutes), as GitLab does. With no secondary
configured every event goes: none is published then, and a secondary
added later starts at the newest event. A run deletes at most
MAX_ROWS_PER_RUN log rows, BATCH per transaction, lowest first; the newest
row always stays (`events.prune_through`: SQLite would reuse its id).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

from sqlalchemy.engine import Engine

from backend.primary import events

log = logging.getLogger(__name__)

PRUNE_INTERVAL = 300.0      # seconds (GitLab: every 5 minutes)
MAX_ROWS_PER_RUN = 50_000   # GitLab's limit per run
BATCH = 5_000               # rows per transaction


@dataclass(frozen=True)
class PruneDecision:
    through: int | None  # prune log ids up to this one; None: prune nothing
    reason: str


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def prune_decision(secondaries: list[str], reports: dict[str, dict],
                   newest_event_id: int | None) -> PruneDecision:
    """What may be pruned. `secondaries`: the configured names; `reports`:
    name -> the latest status as the primary judges it (health included)."""
    if not secondaries:
        if newest_event_id is None:
            return PruneDecision(None, "the event log is empty")
        return PruneDecision(newest_event_id, "no secondary is configured")
    limits = []
    for name in secondaries:
        status = reports.get(name)
        if status is None:
            return PruneDecision(None, f"secondary {name} has not reported its status")
        if not status.get("healthy"):
            return PruneDecision(None, f"secondary {name} is unhealthy "
                                       f"({status.get('health') or 'no reason given'})")
        cursor = status.get("cursor_last_event_id")
        if not _integer(cursor):
            return PruneDecision(None, f"secondary {name} has not reported an event cursor")
        oldest_gap = status.get("event_log_oldest_gap_id")
        limits.append(min(cursor, oldest_gap - 1) if _integer(oldest_gap) else cursor)
    through = min(limits)
    return PruneDecision(through, f"every secondary is done with the events up to {through}")


class EventLogPruner:
    """A thread running `run_once` every `interval` seconds."""

    def __init__(self, engine: Engine, decide: Callable[[], PruneDecision], *,
                 interval: float = PRUNE_INTERVAL, max_rows: int = MAX_ROWS_PER_RUN,
                 batch: int = BATCH) -> None:
        self.engine = engine
        self.decide = decide
        self.interval = interval
        self.max_rows = max_rows
        self.batch = batch
        self.last_error: str | None = None
        self.last_decision: PruneDecision | None = None
        self.pruned = 0  # log rows deleted since the start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "EventLogPruner":
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="event log pruning",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
                self.last_error = None
            except Exception as exc:  # database down: report, go on next time
                message = f"Event log pruning failed: {exc}".splitlines()[0][:300]
                if message != self.last_error:
                    log.warning("%s", message)
                self.last_error = message

    def run_once(self) -> int:
        """Prune what every secondary is done with; returns the log rows deleted."""
        decision = self.decide()
        if decision.reason != (self.last_decision and self.last_decision.reason):
            log.info("event log pruning: %s", decision.reason)
        self.last_decision = decision
        if decision.through is None:
            return 0
        pruned = events.prune_through(self.engine, decision.through, self.max_rows,
                                      self.batch)
        orphans = events.prune_orphaned_events(self.engine, self.batch)
        if pruned or orphans:
            log.info("pruned %d event log rows up to %d and %d orphaned events",
                     pruned, decision.through, orphans)
        self.pruned += pruned
        return pruned
