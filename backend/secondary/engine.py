"""The secondary's sync and verify engine: its parts and their lifecycle.

  - the sync pipeline (`sync_pipeline.py`): a scheduler claiming pending,
    then retry-due failed registries, sync workers downloading them on one
    event loop, a file writer for small blobs; every download is hashed
    once, and that hash is its verification when the primary has one;
  - the verification pipeline (`verification_pipeline.py`) for what the
    syncs did not verify;
  - an outcome recorder that writes the workers' results in groups, one
    transaction for all that gathered meanwhile (`outcome_recorder.py`);
  - housekeeping (`housekeeping.py`): event log, registry consistency,
    timeouts, recovery of dead engines' claims, re-verification, retried
    removals, status snapshots;
  - a heartbeat, so that engines sharing a tracking DB know who is alive.
Claims live in the database, so engines in several processes (or machines)
can share one PostgreSQL tracking DB. All threads stop with the engine, and
none dies of an outage: it is reported (`last_error`) and retried.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import sys
import threading
import time
from typing import Callable

import urllib3

from backend.config import SecondaryConfig
from backend.db import migrate
from backend.db.engine import create_db_engine
from backend.replicables import registered
from backend.object_store.bucket import open_bucket
from backend.secondary.abandoned_uploads import abort_abandoned_uploads
from backend.secondary.blob_client import BlobClient
from backend.secondary.checksum_pool import ChecksumPool
from backend.secondary.consistency import RegistryConsistency
from backend.secondary.disk_reserve import DiskReserve
from backend.secondary.downloader import BlobDownloader
from backend.secondary.engine_control import EngineControl, TypeRegistry
from backend.secondary.engine_counters import EngineCounters
from backend.secondary.event_consumer import EventConsumer
from backend.secondary.geo_client import GeoClient
from backend.secondary.heartbeat import BEAT_INTERVAL, Heartbeat
from backend.secondary.housekeeping import Housekeeping
from backend.secondary.lease import Lease, new_holder_id
from backend.secondary.local_storage import LocalStorage
from backend.secondary.outcome_recorder import OutcomeRecorder
from backend.secondary.status_snapshot import StatusSnapshots
from backend.secondary.sync_pipeline import SyncPipeline
from backend.secondary.verification_pipeline import VerificationPipeline
from backend.secondary.verifier import Verifier

log = logging.getLogger(__name__)

# The sync workers' event loop waits for the GIL after every wake-up; at
# CPython's default of 5 ms a busy scheduler, recorder or verification
# thread holds it that long each time (docs/PERFORMANCE.md, step 10).
SWITCH_INTERVAL = 0.0005


class SecondaryEngine:
    def __init__(self, config: SecondaryConfig, feature_flags: dict[str, bool] | None = None,
                 *, replicators: list | None = None, poll_interval: float = 1.0,
                 consistency_interval: float = 60.0,
                 housekeeping_intervals: dict[str, float] | None = None,
                 on_error: Callable[[str], None] | None = None,
                 object_store_source: Callable | None = None) -> None:
        """`object_store_source`: reads the object store's connection again
        (from the configuration file) when the service refuses the
        credentials, so that rotated keys are taken up while running."""
        self.config = config
        self.flags = dict(feature_flags or {})
        self.replicators = list(replicators or registered())
        self.poll_interval = poll_interval
        self.control = EngineControl(poll_interval, on_error)
        self.engine = create_db_engine(config.tracking_database_url,
                                       pool_size=config.files_max_capacity + 4)
        self.bucket = open_bucket(config.object_store, timeout=config.request_timeout,
                                  max_connections=config.files_max_capacity + 4,
                                  credentials_source=object_store_source)
        self.storage = LocalStorage(config.storage_path, self.bucket)
        self.client = GeoClient(config.primary_url, config.access_key, config.secret,
                                max_connections=config.files_max_capacity + 4,
                                timeout=urllib3.Timeout(connect=config.request_timeout,
                                                        read=config.request_timeout))
        self.scope = config.scope
        self.blob_client = BlobClient(config.primary_url, config.access_key, config.secret,
                                      max_connections=None, timeout=config.request_timeout)
        self.checksum_pool = ChecksumPool()
        self.events = EventConsumer(self.engine, self.client, self.storage,
                                    self.enabled_by_name, self.scope)
        self.consistency = RegistryConsistency(self.engine, self.client, self.storage,
                                               self.scope)
        self.counters = EngineCounters(config.name)
        self.holder_id = new_holder_id()
        self.heartbeat = Heartbeat(self.engine, self.holder_id)
        self._registries = {r.replicable_name: TypeRegistry.of(self.engine, r)
                            for r in self.replicators}
        self._threads: list[threading.Thread] = []
        self.recorder = OutcomeRecorder(
            self.engine, retry_interval=poll_interval,
            on_unreachable=lambda exc: self.control.report("recording outcomes", exc),
            on_written=self._outcomes_written)
        self.syncs = SyncPipeline(
            self.control, config.files_max_capacity,
            BlobDownloader(self.blob_client, self.storage, DiskReserve(
                config.storage_path, config.min_free_space_mb, config.min_free_space_percent)),
            self.recorder, self.counters,
            self._enabled_registries, open_resources=self.blob_client.open,
            close_resources=self.blob_client.close)
        self.verifications = VerificationPipeline(
            self.control, config.verification_max_capacity,
            Verifier(self.client, self.storage, self.checksum_pool), self.recorder,
            self.counters, self._enabled_registries, self.engine, self.syncs.work)
        self.snapshots = StatusSnapshots(
            self.control, name=config.name, engine=self.engine, replicators=self.replicators,
            replication_enabled=self.replication_enabled, events=self.events,
            counters=self.counters, client=self.client,
            status_interval=config.status_interval)
        self.housekeeping = Housekeeping(
            self.control, Lease(self.engine, "housekeeping", self.holder_id),
            engine=self.engine, events=self.events, consistency=self.consistency,
            storage=self.storage, enabled=self.enabled, signal_work=self._signal_work,
            snapshot=self.snapshot, consistency_interval=consistency_interval,
            abort_uploads=lambda: abort_abandoned_uploads(self.storage, self.engine,
                                                          self.enabled()),
            status_interval=config.status_interval,
            reverification_interval=dt.timedelta(days=config.minimum_reverification_interval),
            intervals=housekeeping_intervals)

    # --- feature flags and state ---------------------------------------------

    def replication_enabled(self, replicator) -> bool:
        return self.flags.get(replicator.feature_flag, True)

    def set_feature_flags(self, flags: dict[str, bool]) -> None:
        """Turn types' replication on or off while running: a type turned
        off claims nothing more (what is in flight finishes) and its events
        are skipped; one turned on is backfilled by the next consistency
        pass and claimed at once."""
        self.flags = {**self.flags, **flags}  # one assignment: readers see old or new
        self.housekeeping.run_soon("consistency")
        self._signal_work()

    def set_capacities(self, files: int, verification: int) -> None:
        """`files_max_capacity` and `verification_max_capacity` while
        running, as GitLab reads them on each scheduling pass: more work is
        claimed at once, or less until what is in flight is done."""
        self.config = dataclasses.replace(self.config, files_max_capacity=files,
                                          verification_max_capacity=verification)
        self.syncs.set_capacity(files)
        self.verifications.set_capacity(verification)
        self._signal_work()

    def enabled(self) -> list:
        return [r for r in self.replicators if self.replication_enabled(r)]

    def enabled_by_name(self) -> dict:
        return {r.replicable_name: r for r in self.enabled()}

    def _enabled_registries(self) -> list[TypeRegistry]:
        return [self._registries[r.replicable_name] for r in self.enabled()]

    @property
    def running(self) -> bool:
        return self.syncs.running or any(t.is_alive() for t in self._threads)

    @property
    def paused(self) -> bool:
        return self.control.paused

    @property
    def last_error(self) -> str | None:
        return self.control.last_error

    @property
    def sync_holds(self) -> dict[str, dict]:
        """Why syncs wait, by cause (the primary down, low disk space)."""
        return self.control.sync_holds.reasons()

    @property
    def latest_status(self) -> dict | None:
        return self.snapshots.latest

    @latest_status.setter
    def latest_status(self, status: dict | None) -> None:
        self.snapshots.latest = status

    @property
    def last_status_report(self) -> float | None:
        return self.snapshots.last_report

    def pause(self) -> None:
        """Stop taking new work; syncs and verifications in flight finish."""
        self.control.resumed.clear()

    def resume(self) -> None:
        self.control.resumed.set()
        self._signal_work()

    def wake(self) -> None:
        self._signal_work()

    # --- lifecycle ---------------------------------------------------------------

    def upgrade_database(self) -> None:
        migrate.upgrade(self.engine, "tracking")

    def check_object_store(self) -> None:
        """Before anything is written: the bucket of `[secondary.object_store]`
        exists and takes these credentials (ObjectStoreError otherwise)."""
        if self.bucket is not None:
            self.bucket.check()

    def start(self) -> "SecondaryEngine":
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)  # process-wide; the console's too
        self.storage.root.mkdir(parents=True, exist_ok=True)
        # Downloads killed with their process leave temporary files behind,
        # and uploads into the bucket parts of objects.
        self.storage.remove_abandoned_temporary_files()
        self.heartbeat.beat()
        try:
            abort_abandoned_uploads(self.storage, self.engine, self.enabled())
        except OSError as exc:  # the bucket is down: housekeeping tries again
            self.control.report("aborting abandoned uploads", exc)
        self.control.stop.clear()
        self.recorder.start()
        self.syncs.start(self._spawn)
        self._spawn("geo-housekeeping", self.housekeeping.run)
        self._spawn("geo-heartbeat", self._heartbeat_loop)
        self.verifications.start(self._spawn)
        return self

    def _spawn(self, name: str, target) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 60.0) -> None:
        self.control.stop.set()
        self.control.resumed.set()
        self._signal_work()
        deadline = time.monotonic() + timeout
        self.verifications.stop()
        self.syncs.stop(timeout=max(0.1, deadline - time.monotonic()))
        for thread in self._threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        self.recorder.stop(timeout=max(0.1, deadline - time.monotonic()))
        try:
            self.syncs.release_unstarted()
            self.verifications.release_unstarted()
            self.housekeeping.lease.release()
            self.heartbeat.stop()
        except Exception as exc:  # the next engine recovers claims; lease and beat expire
            log.info("could not hand back claims or release the lease: %s", exc)
        self.checksum_pool.close()
        if not self._threads and not self.syncs.running:
            self.client.close()
            self.engine.dispose()

    def _signal_work(self) -> None:
        self.syncs.work.signal()
        self.verifications.signal()

    def _outcomes_written(self, wakes_verification: bool) -> None:
        """After each group of outcomes: a sync recorded without its
        verification wakes the verification scheduler, which otherwise looks
        every poll interval. Waking it for every group would cost an empty
        claim transaction each."""
        if wakes_verification:
            self.verifications.signal()

    def _heartbeat_loop(self) -> None:
        """Beats even while paused: in-flight work is still this engine's."""
        while not self.control.stop.wait(BEAT_INTERVAL):
            try:
                self.heartbeat.beat()
            except Exception as exc:
                self.control.report("heartbeat", exc)

    # --- status ---------------------------------------------------------------------

    def status(self) -> dict:
        return self.snapshots.status()

    def snapshot(self) -> dict:
        return self.snapshots.snapshot()
