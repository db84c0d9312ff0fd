"""The engine's housekeeping: one thread running periodic jobs.

Of several engines sharing a tracking DB, the one holding the
`housekeeping` lease consumes the event log, walks registry consistency,
fails timed-out rows, hands back a dead engine's claims and removes
abandoned temporary files; every engine stores its status snapshots and
prunes the history. Each job runs at its own interval for as long as its
condition holds (`framework/schedule.py`), and a job that fails is reported
and retried without holding up the others.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from backend.framework.schedule import Job, Schedule
from backend.secondary import status_history
from backend.secondary.engine_control import EngineControl
from backend.secondary.heartbeat import recover_orphaned_claims
from backend.secondary.lease import Lease
from backend.secondary.registry_claims import RegistryClaims

log = logging.getLogger(__name__)

# Seconds between runs of each job (`events`: the poll interval;
# `consistency`: the engine's consistency interval; `status`: the
# configuration's status_interval).
INTERVALS = {
    "timeouts": 60.0,            # started syncs and verifications older than 8 h
    "recovery": 10.0,            # claims of engines that died
    "temporary files": 3600.0,   # a walk of the whole storage: hourly
    "history pruning": 3600.0,
}


class Housekeeping:
    def __init__(self, control: EngineControl, lease: Lease, *, engine, events,
                 consistency, storage, enabled: Callable[[], list],
                 signal_work: Callable[[], None], snapshot: Callable[[], object],
                 consistency_interval: float, status_interval: float,
                 intervals: dict[str, float] | None = None) -> None:
        self.control = control
        self.lease = lease
        self.engine = engine
        self.events = events
        self.consistency = consistency
        self.storage = storage
        self.enabled = enabled
        self.signal_work = signal_work
        every = {**INTERVALS, "events": control.poll_interval,
                 "consistency": consistency_interval, "status": status_interval,
                 **(intervals or {})}
        self.schedule = Schedule([
            Job("events", every["events"], self.consume_events, needs_lease=True),
            Job("consistency", every["consistency"], self.reconcile_once, needs_lease=True),
            Job("timeouts", every["timeouts"], self.fail_timed_out, needs_lease=True),
            Job("recovery", every["recovery"], self.recover_orphaned_claims, needs_lease=True),
            # The engine's start has just swept them.
            Job("temporary files", every["temporary files"],
                storage.remove_abandoned_temporary_files, needs_lease=True,
                first_delay=every["temporary files"]),
            Job("status", every["status"], snapshot),
            Job("history pruning", every["history pruning"],
                lambda: status_history.prune(engine)),
        ], on_error=self._failed, retry_after=control.poll_interval)

    def run(self) -> None:
        """The housekeeping thread. It goes on while the engine is paused:
        a paused engine takes no new work (no events handled, no registries
        created), but still measures how far behind the primary it is,
        reports its status and hands back dead engines' claims."""
        control = self.control
        self.schedule.start(time.monotonic())
        while not control.stop.is_set():
            held = self._hold_lease()
            more, failed = self.schedule.run_due(time.monotonic(), bool(held))
            if held is not None and not failed:
                control.last_error = None  # every part of the pass went well
            if not more:
                control.stop.wait(min(control.poll_interval,
                                      self.schedule.seconds_until_due(time.monotonic(),
                                                                      bool(held))))

    def run_soon(self, job: str) -> None:
        """Run `job` on the next pass, within a poll interval."""
        self.schedule.run_soon(job)

    def _hold_lease(self) -> bool | None:
        """Take or renew the lease: whether this engine holds it, or None
        when the database could not be asked."""
        try:
            return self.lease.acquire()
        except Exception as exc:
            self.control.report("housekeeping", exc)
            return None

    def _failed(self, job: str, exc: Exception) -> None:
        self.control.report(f"housekeeping ({job})", exc)

    # --- the jobs -----------------------------------------------------------------

    def consume_events(self) -> None:
        if self.control.paused:
            self.events.measure()
        elif self.enabled() and self.events.run_once():
            self.signal_work()

    def reconcile_once(self) -> bool:
        """One range of every type; True while a range changed something, so
        that the next one follows at once. None while paused."""
        if self.control.paused:
            return False
        changed = False
        for replicator in self.enabled():
            if self.consistency.run_once(replicator).changed:
                changed = True
                self.signal_work()
        return changed

    def fail_timed_out(self) -> None:
        for replicator in self.enabled():
            claims = RegistryClaims(self.engine, replicator)
            claims.fail_timed_out_syncs()
            claims.fail_timed_out_verifications()

    def recover_orphaned_claims(self) -> None:
        """Claims of engines that died are handed back now, not in 8 hours."""
        for replicator in self.enabled():
            syncs, verifications = recover_orphaned_claims(self.engine, replicator)
            if syncs or verifications:
                log.warning("recovered %d syncs and %d verifications of %s left by a "
                            "stopped engine", syncs, verifications, replicator.title_plural)
                self.signal_work()
