"""Primary checksumming: claims pending and retry-due rows in batches,
hashes them on a small thread pool, records the outcome and publishes
`checksum_succeeded`; also re-verifies old checksums, times out stuck ones
and creates missing state rows."""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from backend.db.engine import writing
from backend.framework.checksum import file_checksum, size_checksum
from backend.framework.replicator import FileStore
from backend.primary import events
from backend.primary.verification_store import ChecksumClaim, PrimaryVerificationStore

log = logging.getLogger(__name__)

BATCH = 10
HOUSEKEEPING_INTERVAL = 60.0


class Checksummer:
    def __init__(self, site, workers: int = 2, idle_sleep: float = 0.5) -> None:
        self.site = site
        self.workers = workers
        self.idle_sleep = idle_sleep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._last_housekeeping = 0.0
        self.last_error: str | None = None

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="checksum")
        self._thread = threading.Thread(target=self._run, name="checksummer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        if self._pool:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
                self.last_error = None
            except Exception as exc:  # database down: report, wait, go on
                message = f"Checksumming failed: {exc}".splitlines()[0][:300]
                if message != self.last_error:
                    log.warning("%s", message)
                self.last_error = message
                worked = False
            if not worked:
                self._stop.wait(self.idle_sleep)

    def run_once(self) -> bool:
        """One pass over every type; True when any row was checksummed."""
        worked = False
        housekeeping = time.monotonic() - self._last_housekeeping >= HOUSEKEEPING_INTERVAL
        for replicator in self.site.verification_enabled():
            store = PrimaryVerificationStore(self.site.engine, replicator)
            if housekeeping:
                store.backfill_state_rows()
                store.fail_timed_out()
                store.request_reverification(self.site.minimum_reverification_interval)
            claims = store.claim_batch(BATCH * self.workers)
            if claims:
                worked = True
                list(self._map(lambda claim: self._checksum(store, replicator, claim), claims))
        if housekeeping:
            self._last_housekeeping = time.monotonic()
        return worked

    def _map(self, fn, items):
        if self._pool is None:
            return map(fn, items)
        return self._pool.map(fn, items)

    def _checksum(self, store: PrimaryVerificationStore, replicator, claim: ChecksumClaim):
        try:
            checksum = self.calculate(replicator, claim.model_id)
        except Exception as exc:
            store.mark_failed(claim, str(exc) or exc.__class__.__name__)
            return
        with writing(self.site.engine) as connection:
            landed = store.mark_succeeded(connection, claim, checksum)
            if landed and self.site.publishes_events(replicator):
                events.publish(connection, replicator.replicable_name,
                               events.CHECKSUM_SUCCEEDED, {"model_record_id": claim.model_id})

    def calculate(self, replicator, model_id: int) -> str:
        """Local blobs: SHA-256 of the bytes. Object-stored blobs: their
        SHA-256 too (the checksum the service stored with the object, else
        the object read through the hash), or with
        `object_storage_verification = "size"` GitLab's formatted size."""
        located = self.site.blob_location(replicator, model_id)
        if located is None:
            raise FileNotFoundError("File is not checksummable: record is gone")
        relative, file_store = located
        if file_store == FileStore.REMOTE:
            bucket = self.site.storage.object_bucket()
            if self.site.object_storage_verification == "size":
                return size_checksum(bucket.head(relative).size)
            return bucket.sha256(relative)[0]
        path = self.site.blob_path(replicator, model_id)
        if path is None or not path[0].is_file():
            name = path[0].name if path else relative.rsplit("/", 1)[-1]
            raise FileNotFoundError(f"File is not checksummable: {name} does not exist")
        return file_checksum(path[0])
