"""The secondary's sync and verify engine.

Threads, all stoppable and all working through the tracking database:
  - a sync scheduler that claims pending, then retry-due failed registries,
    up to eight times `files_max_capacity` (claims run ahead of the workers)
    in batches whenever half of that is free, and `files_max_capacity` sync
    workers that download what it claimed: coroutines on one event loop
    thread (`sync_workers.py`, `blob_client.py`);
  - a file writer thread that writes, hashes, renames and records the small
    blobs the sync workers downloaded into memory, so that the loop makes
    no file system calls for them. Every download is hashed once, from
    disk, before its rename: that hash checks it against the primary's
    checksum and, when the primary has verified the blob, is its
    verification, recorded with the sync in one UPDATE;
  - a verification scheduler and workers for everything else (blobs the
    primary had not verified at their sync, re-verification, retries):
    `verification_max_capacity` counts verification jobs of up to 10
    registries each, as in GitLab, so ten times as many rows may be in
    flight;
  - an outcome recorder that writes the workers' results in groups, one
    transaction for all that gathered meanwhile (`outcome_recorder.py`);
  - one housekeeping thread: event log, registry consistency, timeouts,
    status reports to the primary.
Claims live in the database, so engines in several processes (or machines)
can share one PostgreSQL tracking DB.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import sys
import threading
import time
from typing import Callable

import urllib3

from backend.config import SecondaryConfig
from backend.db import migrate
from backend.db.engine import create_db_engine, is_unreachable
from backend.framework.clock import utcnow
from backend.replicables import registered
from backend.secondary.blob_client import BlobClient
from backend.secondary.checksum_pool import ChecksumPool
from backend.secondary.claimed_work import ClaimedWork
from backend.secondary.consistency import RegistryConsistency
from backend.secondary.downloader import BlobDownloader, BufferedBlob
from backend.secondary.engine_counters import EngineCounters
from backend.secondary.event_consumer import EventConsumer
from backend.secondary.geo_client import GeoClient
from backend.secondary.heartbeat import BEAT_INTERVAL, Heartbeat, recover_orphaned_claims
from backend.secondary.lease import Lease, new_holder_id
from backend.secondary.local_storage import LocalStorage
from backend.secondary.outcome_recorder import OutcomeRecorder
from backend.secondary.registry_store import RegistryStore
from backend.secondary import status_history
from backend.secondary.status import secondary_type_status
from backend.secondary.sync_workers import SyncWorkers
from backend.secondary.verifier import Verifier

log = logging.getLogger(__name__)

VERIFICATION_BATCH = 10  # GitLab's verification job size: rows per unit of capacity
HASH_BATCH = 100  # rows per verification batch: one states request, one hashing request
VERIFICATION_GATHER = 0.5  # seconds to let verifications gather after a short claim
MAX_VERIFY_THREADS = 8
SYNC_CLAIM_AHEAD = 8  # sync rows claimed per sync worker, at most
TIMEOUT_CHECK_INTERVAL = 60.0
RECOVERY_INTERVAL = 10.0
# The sync workers' event loop waits for the GIL after every wake-up; at
# CPython's default of 5 ms a busy scheduler, recorder or verification
# thread holds it that long each time (docs/PERFORMANCE.md: 10,000 small
# blobs went from about 430 to 470-570 files/s with 0.5 ms).
SWITCH_INTERVAL = 0.0005


class SecondaryEngine:
    def __init__(self, config: SecondaryConfig, feature_flags: dict[str, bool] | None = None,
                 *, replicators: list | None = None, poll_interval: float = 1.0,
                 consistency_interval: float = 60.0,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.flags = dict(feature_flags or {})
        self.replicators = list(replicators or registered())
        self.poll_interval = poll_interval
        self.consistency_interval = consistency_interval
        self.on_error = on_error
        self.engine = create_db_engine(config.tracking_database_url,
                                       pool_size=config.files_max_capacity + 4)
        self.storage = LocalStorage(config.storage_path)
        self.client = GeoClient(config.primary_url, config.access_key, config.secret,
                                max_connections=config.files_max_capacity + 4,
                                timeout=urllib3.Timeout(connect=config.request_timeout,
                                                        read=config.request_timeout))
        self.scope = config.scope
        self.blob_client = BlobClient(config.primary_url, config.access_key, config.secret,
                                      max_connections=config.files_max_capacity + 4,
                                      timeout=config.request_timeout)
        self.downloader = BlobDownloader(self.blob_client, self.storage)
        self.checksum_pool = ChecksumPool()
        self.verifier = Verifier(self.client, self.storage, self.checksum_pool)
        self.events = EventConsumer(self.engine, self.client, self.storage,
                                    self.enabled_by_name, self.scope)
        self.consistency = RegistryConsistency(self.engine, self.client, self.storage,
                                               self.scope)
        self.counters = EngineCounters(config.name)
        self.holder_id = new_holder_id()
        self.coordination = Lease(self.engine, "housekeeping", self.holder_id)
        self.heartbeat = Heartbeat(self.engine, self.holder_id)
        self.last_error: str | None = None
        self.last_status_report: float | None = None
        self.latest_status: dict | None = None
        self._last_snapshot: float | None = None
        self._stop = threading.Event()
        self._resumed = threading.Event()
        self._resumed.set()
        self._threads: list[threading.Thread] = []
        self.recorder = OutcomeRecorder(
            self.engine, retry_interval=poll_interval,
            on_unreachable=lambda exc: self._report("recording outcomes", exc),
            on_written=self._outcomes_written)
        # Claims run ahead of the workers: a worker done with a blob finds
        # the next one claimed, and a claim (a write transaction) takes at
        # least four times as many rows as there are workers. A claim also
        # counts until its blob is written (the file writer marks it done).
        self._syncs = ClaimedWork(SYNC_CLAIM_AHEAD * config.files_max_capacity)
        self.sync_workers = SyncWorkers(
            self._syncs, config.files_max_capacity, self._sync_claim,
            on_error=lambda exc: self._report("sync", exc),
            open_resources=self.blob_client.open, close_resources=self.blob_client.close)
        self._syncs.on_added = self.sync_workers.claims_added
        self._to_write: queue.SimpleQueue = queue.SimpleQueue()  # for the file writer
        self._verifications = ClaimedWork(verification_rows(config.verification_max_capacity))
        self.verify_threads = verification_threads(config.verification_max_capacity)

    # --- feature flags and state ---------------------------------------------

    def replication_enabled(self, replicator) -> bool:
        return self.flags.get(replicator.feature_flag, True)

    def enabled(self) -> list:
        return [r for r in self.replicators if self.replication_enabled(r)]

    def enabled_by_name(self) -> dict:
        return {r.replicable_name: r for r in self.enabled()}

    @property
    def running(self) -> bool:
        return self.sync_workers.running or any(t.is_alive() for t in self._threads)

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    def pause(self) -> None:
        """Stop taking new work; syncs and verifications in flight finish."""
        self._resumed.clear()

    def resume(self) -> None:
        self._resumed.set()
        self._signal_work()

    def wake(self) -> None:
        self._signal_work()

    # --- lifecycle ---------------------------------------------------------------

    def upgrade_database(self) -> None:
        migrate.upgrade(self.engine, "tracking")

    def start(self) -> "SecondaryEngine":
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)  # process-wide; the console's too
        self.storage.root.mkdir(parents=True, exist_ok=True)
        # Downloads killed with their process leave temporary files behind.
        self.storage.remove_abandoned_temporary_files()
        self.heartbeat.beat()
        self._stop.clear()
        self.recorder.start()
        self._spawn("geo-file-writer", self._file_writer_loop)
        self.sync_workers.start()
        self._spawn("geo-housekeeping", self._housekeeping_loop)
        self._spawn("geo-heartbeat", self._heartbeat_loop)
        self._spawn("geo-sync-scheduler", lambda: self._scheduler_loop(
            "sync", self._syncs, self.claim_syncs))
        self._spawn("geo-verify-scheduler", lambda: self._scheduler_loop(
            "verification", self._verifications, self.claim_verifications,
            gather_behind=self._syncs))
        for index in range(self.verify_threads):
            self._spawn(f"geo-verify-{index}", lambda: self._worker(
                "verification", self._verifications, self._verify_batch))
        return self

    def _spawn(self, name: str, target) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        self._resumed.set()
        self._signal_work()
        deadline = time.monotonic() + timeout
        self._syncs.wake()
        self._verifications.wake()
        self.sync_workers.stop(timeout=max(0.1, deadline - time.monotonic()))
        self._to_write.put(None)  # after the downloads: the writer finishes them
        self.downloader.close()
        for thread in self._threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        self.recorder.stop(timeout=max(0.1, deadline - time.monotonic()))
        try:
            self._release_unstarted_claims()
            self.coordination.release()
            self.heartbeat.stop()
        except Exception as exc:  # the next engine recovers claims; lease and beat expire
            log.info("could not hand back claims or release the lease: %s", exc)
        self.checksum_pool.close()
        if not self._threads and not self.sync_workers.running:
            self.client.close()
            self.engine.dispose()

    def _claim(self, store: RegistryStore, claim):
        """Claim with a known token, so a claim whose answer was lost to a
        broken connection can be handed back once the database answers."""
        now = utcnow()
        try:
            return claim(now)
        except Exception as exc:
            if is_unreachable(exc) and not self._stop.is_set():
                self._retry_write("claim", lambda: store.release_claims_made_at(now))
            raise

    def _retry_write(self, what: str, write):
        """Write now, retrying while the tracking DB is unreachable. If the
        engine stops meanwhile, the next one recovers the claims from the
        heartbeats."""
        while True:
            try:
                return write()
            except Exception as exc:
                if not is_unreachable(exc) or self._stop.is_set():
                    raise
                self._report(what, exc)
                self._stop.wait(self.poll_interval)

    def _signal_work(self) -> None:
        self._syncs.signal()
        self._verifications.signal()

    def _report(self, where: str, exc: Exception) -> None:
        message = f"{where}: {exc.__class__.__name__}: {exc}".splitlines()[0][:500]
        if message != self.last_error:
            log.warning("%s", message)
        self.last_error = message
        if self.on_error:
            self.on_error(message)

    # --- scheduling ------------------------------------------------------------------

    def _scheduler_loop(self, what: str, work: ClaimedWork, claim,
                        gather_behind: ClaimedWork | None = None) -> None:
        """Claim rows for the workers whenever half the capacity is free.

        With `gather_behind` (the syncs, for verifications): after a claim
        that found less than there was room for, wait up to
        VERIFICATION_GATHER seconds so that rows becoming ready one by one
        are claimed many at a time rather than in a claim each; but only
        while that work is in flight: once the last sync has finished, its
        verification need not wait.
        """
        while not self._stop.is_set():
            self._resumed.wait()
            room = work.wait_for_room(self._stop, self.poll_interval)
            if self._stop.is_set():
                break
            if self.paused:
                continue
            try:
                items, units = claim(room)
            except Exception as exc:  # database down: wait, retry
                self._report(what, exc)
                self._stop.wait(self.poll_interval)
                continue
            if units:
                work.add(items, units)
                if gather_behind is not None and units < room:
                    gather_behind.wait_until_empty(self._stop, VERIFICATION_GATHER)
            else:
                work.wait_for_signal(self.poll_interval)

    def _worker(self, what: str, work: ClaimedWork, handle) -> None:
        """Work what the scheduler claimed. Claims already taken are
        finished even while paused: they are work in flight."""
        while not self._stop.is_set():
            item = work.take(self.poll_interval)
            if item is None:
                continue
            try:
                handle(*item)
            except Exception as exc:  # the primary away, a bug: the claim times out
                self._report(what, exc)
            finally:
                work.done(_units(item))

    def _release_unstarted_claims(self) -> None:
        """Claims no worker started before the stop go back to pending."""
        syncs: dict[str, tuple[RegistryStore, list]] = {}
        for store, claim in self._syncs.drain():
            syncs.setdefault(store.replicator.replicable_name, (store, []))[1].append(claim)
        for store, claims in syncs.values():
            store.release_sync_claims(claims)
        for store, claims in self._verifications.drain():
            store.release_verification_claims(claims)

    # --- sync ------------------------------------------------------------------------

    def claim_syncs(self, limit: int) -> tuple[list, int]:
        """Up to `limit` syncs: pending registries, then retry-due failed ones."""
        claimed: list[tuple[RegistryStore, object]] = []
        for replicator in self.enabled():
            wanted = limit - len(claimed)
            if wanted <= 0:
                break
            store = RegistryStore(self.engine, replicator)
            claims = self._claim(store, lambda now: store.claim_sync_batch(wanted, now=now))
            claimed += [(store, claim) for claim in claims]
        return claimed, len(claimed)

    async def _sync_claim(self, store: RegistryStore, claim) -> bool:
        """On the sync workers' event loop. Returns True when the blob went
        on to the file writer, which finishes the claim."""
        started = time.monotonic()
        try:
            result = await self.downloader.download(store.replicator, claim.model_id)
        except Exception as exc:
            self._sync_crashed(store, claim, exc, started)
            return False
        if isinstance(result, BufferedBlob):
            self._to_write.put((store, claim, result, started))
            return True
        self._record_sync(store, claim, result, started)
        return False

    def _file_writer_loop(self) -> None:
        """Write the small blobs the sync workers downloaded, record them, and
        only then count the claim as done. Ends at the None that stop()
        queues after the sync workers."""
        while (item := self._to_write.get()) is not None:
            store, claim, blob, started = item
            try:
                result = self.downloader.write_buffered(blob)
                self._record_sync(store, claim, result, started)
            except Exception as exc:
                self._sync_crashed(store, claim, exc, started)
            finally:
                self._syncs.done(1)

    def _sync_crashed(self, store: RegistryStore, claim, exc: Exception,
                      started: float) -> None:
        log.error("sync of %s %s crashed", store.replicator.title, claim.model_id,
                  exc_info=exc)
        reason = f"Error while attempting to sync: {exc}"
        self.recorder.submit(lambda connection: store.mark_sync_failed(
            claim, reason, connection=connection))
        self.counters.sync_finished(store.replicator.replicable_name, False,
                                    time.monotonic() - started)

    def _record_sync(self, store: RegistryStore, claim, result, started: float) -> None:
        """Hand a sync's outcome to the recorder. A blob the primary has
        verified was verified by the hash that checked its download (the
        stored file, read back from disk): synced and verified in one write,
        unless the engine is paused, which starts no verification."""
        name = store.replicator.replicable_name
        if result.success:
            if (result.primary_verified and result.local_checksum
                    and result.local_checksum == result.primary_checksum and not self.paused):
                self.recorder.submit_statements(store.synced_and_verified_statements(
                    claim, result.local_checksum, utcnow()))
                self.counters.verified_on_write(name)
            else:
                # Verification pending (paused) or disabled (the primary has
                # not verified the blob): only the first leaves a row for the
                # verification scheduler to claim once written.
                self.recorder.submit_statements(store.synced_statements(
                    claim, result.primary_verified),
                    then=store if result.primary_verified else None)
        else:
            self.recorder.submit(lambda connection: store.mark_sync_failed(
                claim, result.reason, result.missing_on_primary, connection))
        self.counters.sync_finished(name, result.success, time.monotonic() - started,
                                    result.bytes)

    def _outcomes_written(self, followups: list) -> None:
        """After each group of outcomes: a sync recorded without its
        verification wakes the verification scheduler, which otherwise looks
        every poll interval. Waking it for every group would cost an empty
        claim transaction each."""
        if followups:
            self._verifications.signal()

    # --- verification -------------------------------------------------------------------

    def claim_verifications(self, limit: int) -> tuple[list, int]:
        """Up to `limit` verifications, in batches spread over the workers.
        A batch is one request for the primary's checksums and one request
        to the checksum processes, so batches are larger than GitLab's 10
        (small batches starve the processes; see docs/PERFORMANCE.md)."""
        batches: list[tuple[RegistryStore, list]] = []
        units = 0
        for replicator in self.enabled():
            wanted = limit - units
            if wanted <= 0:
                break
            store = RegistryStore(self.engine, replicator)
            claims = self._claim(store, lambda now: store.claim_verification_batch(
                wanted, now=now))
            size = max(1, min(HASH_BATCH, math.ceil(len(claims) / self.verify_threads)))
            batches += [(store, claims[i:i + size]) for i in range(0, len(claims), size)]
            units += len(claims)
        return batches, units

    def _verify_batch(self, store: RegistryStore, claims: list) -> None:
        started = time.monotonic()
        outcome = self.verifier.verify_batch(
            store, claims, record=self.recorder.submit,
            record_statements=self.recorder.submit_statements)
        self.counters.verification_finished(
            store.replicator.replicable_name, len(claims), outcome["verified"],
            outcome["failed"], time.monotonic() - started)

    # --- housekeeping -----------------------------------------------------------------

    def _housekeeping_loop(self) -> None:
        next_consistency = 0.0
        next_timeouts = 0.0
        next_status = 0.0
        next_prune = 0.0
        next_recovery = 0.0
        while not self._stop.is_set():
            self._resumed.wait()
            if self._stop.is_set():
                break
            now = time.monotonic()
            more = False  # consistency changed a range: the next one follows at once
            try:
                # Of several engines on one tracking DB, one holds the lease and
                # consumes events, walks consistency and times out stuck rows.
                if self.coordination.acquire():
                    if self.enabled() and self.events.run_once():
                        self._signal_work()
                    if now >= next_consistency:
                        more = self.reconcile_once()
                        next_consistency = now if more else now + self.consistency_interval
                    if now >= next_timeouts:
                        self.fail_timed_out()
                        self.storage.remove_abandoned_temporary_files()
                    if now >= next_recovery:
                        self.recover_orphaned_claims()
                        next_recovery = now + RECOVERY_INTERVAL
                        next_timeouts = now + TIMEOUT_CHECK_INTERVAL
                if now >= next_status:
                    self.snapshot()
                    next_status = now + self.config.status_interval
                if now >= next_prune:
                    status_history.prune(self.engine)
                    next_prune = now + 3600
                self.last_error = None
            except Exception as exc:
                self._report("housekeeping", exc)
            if not more:
                self._stop.wait(self.poll_interval)

    def _heartbeat_loop(self) -> None:
        """Beats even while paused: in-flight work is still this engine's."""
        while not self._stop.wait(BEAT_INTERVAL):
            try:
                self.heartbeat.beat()
            except Exception as exc:
                self._report("heartbeat", exc)

    def reconcile_once(self) -> bool:
        changed = False
        for replicator in self.enabled():
            result = self.consistency.run_once(replicator)
            if result.changed:
                changed = True
                self._signal_work()
        return changed

    def recover_orphaned_claims(self) -> None:
        """Claims of engines that died are handed back now, not in 8 hours."""
        for replicator in self.enabled():
            syncs, verifications = recover_orphaned_claims(self.engine, replicator)
            if syncs or verifications:
                log.warning("recovered %d syncs and %d verifications of %s left by a "
                            "stopped engine", syncs, verifications, replicator.title_plural)
                self._signal_work()

    def fail_timed_out(self) -> None:
        for replicator in self.enabled():
            store = RegistryStore(self.engine, replicator)
            store.fail_timed_out_syncs()
            store.fail_timed_out_verifications()

    def status(self) -> dict:
        status = {"name": self.config.name, "replicable_types": [
            r.replicable_name for r in self.replicators]}
        for replicator in self.replicators:
            status.update(secondary_type_status(self.engine, replicator,
                                                self.replication_enabled(replicator)))
        cursor = self.events.cursor.get()
        status.update({
            "last_event_id": self.events.last_event_id,
            "last_event_timestamp": self.events.last_event_timestamp,
            "cursor_last_event_id": cursor,
            "engine": "paused" if self.paused else "running",
            "last_error": self.last_error,
        })
        return status

    def snapshot(self) -> dict:
        """Compute the status, keep it for metrics, store it as history and
        report it to the primary (GitLab: every minute)."""
        status = self.status()
        self.latest_status = status
        work = self.counters.take_interval()
        interval = time.monotonic() - self._last_snapshot if self._last_snapshot else \
            self.config.status_interval
        self._last_snapshot = time.monotonic()
        for replicator in self.enabled():
            p = replicator.plural_name
            counts = {name: status.get(f"{p}_{name}") for name in status_history.STATE_COUNTS}
            status_history.record(self.engine, replicator.replicable_name, counts,
                                  work.get(replicator.replicable_name, {}), interval)
        try:
            self.client.post_status(status)
            self.last_status_report = time.time()
        except Exception as exc:
            self._report("status report", exc)
        return status


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


def _units(item) -> int:
    """Rows in a claimed item: (store, claim) or (store, [claims])."""
    claims = item[1]
    return len(claims) if isinstance(claims, list) else 1
