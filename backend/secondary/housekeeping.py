"""The engine's housekeeping: one thread running periodic jobs.

Of several engines sharing a tracking DB, the one holding the
`housekeeping` lease consumes the event log, walks registry consistency,
fails timed-out rows, hands back a dead engine's claims, sets replicas
verified longer ago than `minimum_reverification_interval` back to
verification pending, retries the removal of files it could not remove
and removes abandoned temporary files; every engine stores its status
snapshots and prunes the history. Each job runs at its own interval for as
long as its condition holds (`framework/schedule.py`), and a job that fails
is reported and retried without holding up the others. Within a job each
type is a step of its own: one type's failure is reported with its name
and the other types' steps still run.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Callable

from backend.framework.schedule import Job, Schedule
from backend.secondary import status_history
from backend.secondary.engine_control import EngineControl
from backend.secondary.errors import describe
from backend.secondary.heartbeat import recover_orphaned_claims
from backend.secondary.lease import Lease
from backend.secondary.registry_claims import RegistryClaims
from backend.secondary.replica_removals import ReplicaRemovals

log = logging.getLogger(__name__)

# Seconds between runs of each job (`events`: the poll interval;
# `consistency`: the engine's consistency interval; `status`: the
# configuration's status_interval).
INTERVALS = {
    "timeouts": 60.0,            # started syncs and verifications older than 8 h
    "recovery": 10.0,            # claims of engines that died
    "reverification": 60.0,      # a batch of verifications due again (GitLab: every minute)
    "replica removals": 10.0,    # files of deleted records whose removal is due again
    "temporary files": 3600.0,   # a walk of the whole storage: hourly
    "history pruning": 3600.0,
}


class Housekeeping:
    def __init__(self, control: EngineControl, lease: Lease, *, engine, events,
                 consistency, storage, enabled: Callable[[], list],
                 signal_work: Callable[[], None], snapshot: Callable[[], object],
                 consistency_interval: float, status_interval: float,
                 reverification_interval: dt.timedelta = dt.timedelta(days=7),
                 intervals: dict[str, float] | None = None,
                 abort_uploads: Callable[[], int] | None = None) -> None:
        self.control = control
        self.abort_uploads = abort_uploads
        self.lease = lease
        self.engine = engine
        self.events = events
        self.consistency = consistency
        self.storage = storage
        self.enabled = enabled
        self.signal_work = signal_work
        self.reverification_interval = reverification_interval
        self.removals = ReplicaRemovals(engine)
        every = {**INTERVALS, "events": control.poll_interval,
                 "consistency": consistency_interval, "status": status_interval,
                 **(intervals or {})}
        self.schedule = Schedule([
            Job("events", every["events"], self.consume_events, needs_lease=True),
            Job("consistency", every["consistency"], self.reconcile_once, needs_lease=True),
            Job("timeouts", every["timeouts"], self.fail_timed_out, needs_lease=True),
            Job("recovery", every["recovery"], self.recover_orphaned_claims, needs_lease=True),
            Job("reverification", every["reverification"], self.request_reverification,
                needs_lease=True),
            Job("replica removals", every["replica removals"], self.retry_replica_removals,
                needs_lease=True),
            # The engine's start has just swept them.
            Job("temporary files", every["temporary files"],
                self.remove_abandoned_temporary_files, needs_lease=True,
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

    def _each_type(self, step: Callable[[object], object]) -> list:
        """`step(replicator)` for every enabled type, each on its own: one
        type's failure is logged with its name and the next type's step
        still runs; then the job fails with the first reason, naming its
        type. Returns the steps' results."""
        results, failures = [], []
        for replicator in self.enabled():
            try:
                results.append(step(replicator))
            except Exception as exc:
                failures.append(f"{replicator.title_plural}: {describe(exc)}")
                log.warning("housekeeping of %s failed: %s", replicator.title_plural,
                            failures[-1])
        if failures:
            more = f" (and {len(failures) - 1} more types)" if len(failures) > 1 else ""
            raise StepFailed(failures[0] + more)
        return results

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
        def reconcile(replicator) -> bool:
            changed = self.consistency.run_once(replicator).changed
            if changed:
                self.signal_work()
            return changed
        return any(self._each_type(reconcile))

    def fail_timed_out(self) -> None:
        def fail(replicator) -> None:
            claims = RegistryClaims(self.engine, replicator)
            claims.fail_timed_out_syncs()
            claims.fail_timed_out_verifications()
        self._each_type(fail)

    def recover_orphaned_claims(self) -> None:
        """Claims of engines that died are handed back now, not in 8 hours."""
        def recover(replicator) -> None:
            syncs, verifications = recover_orphaned_claims(self.engine, replicator)
            if syncs or verifications:
                log.warning("recovered %d syncs and %d verifications of %s left by a "
                            "stopped engine", syncs, verifications, replicator.title_plural)
                self.signal_work()
        self._each_type(recover)

    def request_reverification(self) -> None:
        """A batch per type of replicas verified longer ago than
        `minimum_reverification_interval` goes back to verification
        pending (GitLab's reverification batch); not while paused."""
        if self.control.paused:
            return
        def request(replicator) -> int:
            return RegistryClaims(self.engine, replicator).request_reverification(
                self.reverification_interval)
        if any(self._each_type(request)):
            self.signal_work()

    def retry_replica_removals(self) -> None:
        """Files of deleted records whose removal failed, tried again when
        due; not while paused (nothing is removed then)."""
        if self.control.paused:
            return
        result = self.removals.retry_due(self.storage, self.enabled())
        if result.removed:
            log.info("removed %d replicas of deleted records on a retry", result.removed)
        if result.failing:  # recorded on each removal, with its next retry
            self.control.report("housekeeping (replica removals)", StepFailed(
                f"{result.failing} {'replica' if result.failing == 1 else 'replicas'} of "
                f"deleted records could not be removed yet; "
                f"the latest: {result.last_failure}"))

    def remove_abandoned_temporary_files(self) -> None:
        """Every file is tried; one that cannot be removed is reported and
        the walk goes on (the next walk tries it again). Then the bucket's
        abandoned multipart uploads, if there is a bucket."""
        self.storage.remove_abandoned_temporary_files(
            on_error=lambda exc: self.control.report(
                "housekeeping (temporary files)", exc))
        if self.abort_uploads is not None:
            try:
                self.abort_uploads()
            except OSError as exc:
                self.control.report("housekeeping (abandoned uploads)", exc)


class StepFailed(Exception):
    """A job's step for one type failed; the message is already readable."""
