"""The verification pipeline: what the syncs did not verify as they wrote.

Blobs the primary had not verified at their sync (once its
`checksum_succeeded` arrives), re-verification, retries after a failed
verification, syncs recorded while paused. A scheduler keeps up to
10 × `verification_max_capacity` rows claimed (GitLab's capacity counts
verification jobs of up to 10 registries each), claiming the same way as
the syncs, and waiting up to half a second after a short claim so that
rows synced one by one are claimed together, but no longer than syncs are
in flight. One verification thread per job of capacity (at most 8, and two
per core) takes a batch, asks the primary for its checksums in one request
and has the files hashed by the checksum processes (`checksum_pool.py`).
"""
from __future__ import annotations

import math
import os
import threading
import time
from typing import Callable

from backend.secondary.claimed_work import ClaimedWork
from backend.secondary.engine_control import EngineControl, TypeRegistry
from backend.secondary.engine_counters import EngineCounters
from backend.secondary.outcome_recorder import OutcomeRecorder
from backend.secondary.registry_outcomes import write
from backend.secondary.verifier import Verifier

VERIFICATION_BATCH = 10  # GitLab's verification job size: rows per unit of capacity
HASH_BATCH = 100  # rows per verification batch: one states request, one hashing request
MAX_VERIFY_THREADS = 8


def verification_rows(capacity: int) -> int:
    """Registries in flight for `verification_max_capacity`: GitLab runs that
    many verification jobs, each taking up to 10 rows."""
    return max(1, capacity) * VERIFICATION_BATCH


def verification_threads(capacity: int) -> int:
    """One per job of capacity, at most two per core (and 8). The hashing
    runs in the checksum processes (one per core); a thread waits for the
    primary's checksums and for its batch, and two per core keep a batch
    queued for every process."""
    return max(1, min(MAX_VERIFY_THREADS, capacity, 2 * (os.cpu_count() or 1)))


class VerificationPipeline:
    def __init__(self, control: EngineControl, capacity: int, verifier: Verifier,
                 recorder: OutcomeRecorder, counters: EngineCounters,
                 enabled: Callable[[], list[TypeRegistry]], database,
                 syncs: ClaimedWork) -> None:
        self.control = control
        self.verifier = verifier
        self.recorder = recorder
        self.counters = counters
        self.enabled = enabled
        self.database = database
        self.syncs = syncs  # claims gather behind the syncs in flight
        self.work = ClaimedWork(verification_rows(capacity))
        self.threads = verification_threads(capacity)
        self._spawn = None
        self._alive: set[int] = set()  # indexes of the verification threads running
        self._lock = threading.Lock()

    def start(self, spawn) -> None:
        self._spawn = spawn
        spawn("geo-verify-scheduler", lambda: self.control.claim_loop(
            "verification", self.work, self.claim, gather_behind=self.syncs))
        self._spawn_threads()

    def _spawn_threads(self) -> None:
        with self._lock:
            for index in range(self.threads):
                if index not in self._alive:
                    self._alive.add(index)
                    self._spawn(f"geo-verify-{index}", lambda i=index: self._worker(i))

    def set_capacity(self, capacity: int) -> None:
        """`verification_max_capacity` while running: rows in flight and
        threads (those above the new count end after their batch)."""
        self.work.set_capacity(verification_rows(capacity))
        with self._lock:
            self.threads = verification_threads(capacity)
        if self._spawn is not None and not self.control.stop.is_set():
            self._spawn_threads()
        self.work.wake()

    def stop(self) -> None:
        self.work.wake()

    def signal(self) -> None:
        """Rows may be ready: an idle scheduler looks again now."""
        self.work.signal()

    def claim(self, limit: int) -> tuple[list, int]:
        """Up to `limit` verifications, in batches spread over the threads.
        A batch is one request for the primary's checksums and one request
        to the checksum processes, so batches are larger than GitLab's 10
        (small batches starve the processes; see docs/PERFORMANCE.md)."""
        batches: list[tuple[TypeRegistry, list]] = []
        units = 0
        for registry in self.enabled():
            wanted = limit - units
            if wanted <= 0:
                break
            claims = self.control.claim(registry.claims, lambda now: registry.claims
                                        .claim_verification_batch(wanted, now=now))
            size = max(1, min(HASH_BATCH, math.ceil(len(claims) / self.threads)))
            batches += [(registry, claims[i:i + size]) for i in range(0, len(claims), size)]
            units += len(claims)
        return batches, units

    def release_unstarted(self) -> None:
        """Claims no thread started before the stop go back to pending,
        written at once (the recorder has ended)."""
        for registry, claims in self.work.drain():
            write(self.database, registry.outcomes.verification_released(claims))

    def _worker(self, index: int) -> None:
        """Verify what the scheduler claimed. Claims already taken are
        finished even while paused: they are work in flight. A thread above
        the count (`set_capacity`) ends; the check and the end are one step
        under the lock, so that a count raised meanwhile is never missed."""
        control = self.control
        while True:
            with self._lock:
                if control.stop.is_set() or index >= self.threads:
                    self._alive.discard(index)
                    return
            item = self.work.take(control.poll_interval)
            if item is None:
                continue
            registry, claims = item
            try:
                self._verify(registry, claims)
            except Exception as exc:  # the primary away, a bug: the claim times out
                control.report("verification", exc)
            finally:
                self.work.done(len(claims))

    def _verify(self, registry: TypeRegistry, claims: list) -> None:
        started = time.monotonic()
        counts = self.verifier.verify_batch(self.database, registry.replicator, claims,
                                            record=self.recorder.submit)
        self.counters.verification_finished(registry.name, len(claims), counts["verified"],
                                            counts["failed"], time.monotonic() - started)
