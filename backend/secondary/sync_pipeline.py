"""The sync pipeline: claim, download, write, check, record.

  - a scheduler thread keeps up to SYNC_CLAIM_AHEAD × `files_max_capacity`
    pending (then retry-due failed) registries claimed, claiming whenever
    half of that is free;
  - `files_max_capacity` sync workers, coroutines on one event loop thread
    (`sync_workers.py`), download what it claimed (`blob_client.py`);
  - a file writer thread writes, hashes, renames and records the small
    blobs the workers downloaded into memory, so that the loop makes no
    file system calls for them; larger blobs are streamed into their file
    on the loop (`downloader.py`).
Every download is hashed once, from disk, before its rename: that hash
checks it against the primary's checksum and, when the primary has
verified the blob, is its verification, recorded with the sync in one
UPDATE. A claim counts until its blob is written.

A download that fails as an outage of the primary would goes to the
circuit breaker (`primary_breaker.py`): while the primary is down, syncs
wait for it instead of failing one by one. Below the disk reserve
(`disk_reserve.py`) nothing is claimed either, and a download that ran out
of space goes back to its claim's state.
"""
from __future__ import annotations

import logging
import queue
import time
from dataclasses import replace
from typing import Callable

from backend.framework.clock import utcnow
from backend.secondary.claimed_work import ClaimedWork
from backend.secondary.disk_reserve import LOW_DISK
from backend.secondary.downloader import BlobDownloader, BufferedBlob
from backend.secondary.engine_control import EngineControl, TypeRegistry
from backend.secondary.engine_counters import EngineCounters
from backend.secondary.outcome_recorder import OutcomeRecorder
from backend.secondary.primary_breaker import PrimaryBreaker
from backend.secondary.sync_workers import SyncWorkers

log = logging.getLogger(__name__)

SYNC_CLAIM_AHEAD = 8  # sync rows claimed per sync worker, at most
PRIMARY_UNREACHABLE = "primary_unreachable"  # the sync hold of an open breaker


class SyncPipeline:
    def __init__(self, control: EngineControl, capacity: int, downloader: BlobDownloader,
                 recorder: OutcomeRecorder, counters: EngineCounters,
                 enabled: Callable[[], list[TypeRegistry]], *, open_resources,
                 close_resources) -> None:
        self.control = control
        self.downloader = downloader
        self.recorder = recorder
        self.counters = counters
        self.enabled = enabled
        # Claims run ahead of the workers: a worker done with a blob finds
        # the next one claimed, and a claim (a write transaction) takes many
        # rows. A claim also counts until its blob is written.
        self.work = ClaimedWork(SYNC_CLAIM_AHEAD * capacity)
        self.breaker = PrimaryBreaker(downloader.client.probe, on_open=self._primary_down,
                                      on_close=self._primary_back)

        async def close():
            self.breaker.close()
            await close_resources()

        self.workers = SyncWorkers(self.work, capacity, self._sync,
                                   on_error=lambda exc: control.report("sync", exc),
                                   open_resources=open_resources, close_resources=close)
        self.work.on_added = self.workers.claims_added
        self._to_write: queue.SimpleQueue = queue.SimpleQueue()  # for the file writer

    @property
    def running(self) -> bool:
        return self.workers.running

    def start(self, spawn) -> None:
        spawn("geo-file-writer", self._file_writer_loop)
        self.workers.start()
        spawn("geo-sync-scheduler", lambda: self.control.claim_loop(
            "sync", self.work, self.claim, held=self._held))

    def stop(self, timeout: float) -> None:
        """Downloads in flight finish until the deadline, then are cancelled
        (their claims are recovered like a crashed engine's); the file
        writer finishes what they handed it."""
        self.work.wake()
        self.workers.stop(timeout=timeout)
        self._to_write.put(None)  # after the downloads: the writer finishes them
        self.downloader.close()

    def set_capacity(self, capacity: int) -> None:
        """`files_max_capacity` while running: workers and claims ahead."""
        self.work.set_capacity(SYNC_CLAIM_AHEAD * capacity)
        self.workers.resize(capacity)

    def claim(self, limit: int) -> tuple[list, int]:
        """Up to `limit` syncs: pending registries, then retry-due failed ones."""
        claimed: list[tuple[TypeRegistry, object]] = []
        for registry in self.enabled():
            wanted = limit - len(claimed)
            if wanted <= 0:
                break
            claims = self.control.claim(registry.claims, lambda now: registry.claims
                                        .claim_sync_batch(wanted, now=now))
            claimed += [(registry, claim) for claim in claims]
        return claimed, len(claimed)

    def release_unstarted(self) -> None:
        """Claims no worker started before the stop go back to pending."""
        by_type: dict[str, tuple[TypeRegistry, list]] = {}
        for registry, claim in self.work.drain():
            by_type.setdefault(registry.name, (registry, []))[1].append(claim)
        for registry, claims in by_type.values():
            registry.claims.release_sync_claims(claims)

    # --- one blob ----------------------------------------------------------------

    async def _sync(self, registry: TypeRegistry, claim) -> bool:
        """On the sync workers' event loop. Returns True when the blob went
        on to the file writer, which finishes the claim."""
        if self.breaker.is_open and not await self.breaker.wait_until_closed(
                lambda: self.control.stopping):
            self.recorder.submit(registry.outcomes.sync_interrupted(claim))
            return False
        started = time.monotonic()
        try:
            result = await self.downloader.download(registry.replicator, claim.model_id)
        except Exception as exc:
            self._crashed(registry, claim, exc, started)
            return False
        if (not isinstance(result, BufferedBlob) and result.outage
                and await self.breaker.outage_confirmed(
                    result.reason.removeprefix("Error downloading file: "))):
            # The primary is down: the attempt does not count, and the claim
            # goes back for the first sync after the primary answers.
            self.recorder.submit(registry.outcomes.sync_interrupted(claim))
            return False
        if isinstance(result, BufferedBlob):
            self._to_write.put((registry, claim, result, started))
            return True
        self._record(registry, claim, result, started)
        return False

    def _file_writer_loop(self) -> None:
        """Write the small blobs the sync workers downloaded, record them, and
        only then count the claim as done. Ends at the None that stop()
        queues after the sync workers."""
        while (item := self._to_write.get()) is not None:
            registry, claim, blob, started = item
            try:
                result = self.downloader.write_buffered(blob)
                self._record(registry, claim, result, started)
            except Exception as exc:
                self._crashed(registry, claim, exc, started)
            finally:
                self.work.done(1)

    def _held(self) -> bool:
        """Asked before each claim: look at the disk, then at every hold."""
        self._low_disk()
        return bool(self.control.sync_holds)

    def _low_disk(self) -> bool:
        """Hold syncs while free space is under the reserve (or under what
        the last refused download needs), release the hold once it is not;
        True while held."""
        disk = self.downloader.disk
        if disk is None:
            return False
        try:
            reason = disk.low_space_reason()
        except OSError as exc:  # the storage folder is gone: the syncs will say so
            log.debug("cannot read the free disk space: %s", exc)
            reason = None
        if reason is None:
            if self.control.sync_holds.release(LOW_DISK):
                log.warning("disk space is above the reserve again: syncs resume")
            return False
        if LOW_DISK not in self.control.sync_holds:
            log.warning("syncs paused: %s", reason)
        self.control.sync_holds.hold(LOW_DISK, reason)
        return True

    def _ran_out(self, needs: int) -> bool:
        """A download failed for want of space: True if syncs now wait for
        it (always, unless the disk cannot be looked at)."""
        disk = self.downloader.disk
        if disk is None:
            return False
        try:
            disk.ran_out(needs)
        except OSError:
            return False
        return self._low_disk()

    def _primary_down(self, reason: str) -> None:
        self.control.sync_holds.hold(PRIMARY_UNREACHABLE,
                                     f"the primary cannot be reached ({reason})")

    def _primary_back(self, _seconds_down: float) -> None:
        self.control.sync_holds.release(PRIMARY_UNREACHABLE)
        self.work.signal()  # claim at once, not at the next poll

    def _crashed(self, registry: TypeRegistry, claim, exc: Exception, started: float) -> None:
        log.error("sync of %s %s crashed", registry.replicator.title, claim.model_id,
                  exc_info=exc)
        self.recorder.submit(registry.outcomes.sync_failed(
            claim, f"Error while attempting to sync: {exc}"))
        self.counters.sync_finished(registry.name, False, time.monotonic() - started)

    def _record(self, registry: TypeRegistry, claim, result, started: float) -> None:
        """Hand a sync's outcome to the recorder. A blob the primary has
        verified was verified by the hash that checked its download (the
        stored file, read back from disk): synced and verified in one write,
        unless the engine is paused, which starts no verification."""
        outcomes = registry.outcomes
        if not result.success and result.no_space and self._ran_out(result.needs):
            # The disk filled up: not the registry's failure. It waits, with
            # every other sync, until there is room again.
            self.recorder.submit(outcomes.sync_interrupted(claim))
            return
        if not result.success:
            self.recorder.submit(outcomes.sync_failed(claim, result.reason,
                                                      result.missing_on_primary))
        elif (result.primary_verified and result.local_checksum
                and result.local_checksum == result.primary_checksum
                and not self.control.paused):
            self.recorder.submit(replace(outcomes.synced_and_verified(
                claim, result.local_checksum, utcnow()), folder=result.folder))
            self.counters.verified_on_write(registry.name)
        else:
            # Verification pending (paused) or disabled (the primary has not
            # verified the blob): only the first leaves a row for the
            # verification scheduler to claim.
            self.recorder.submit(replace(outcomes.synced(claim, result.primary_verified),
                                         folder=result.folder))
        self.counters.sync_finished(registry.name, result.success,
                                    time.monotonic() - started, result.bytes)
