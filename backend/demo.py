"""The embedded demo: a primary and a secondary on loopback, in one process.

A workspace (by default in the user data folder) holds a seeded primary,
namespaces, projects on two shards, and for every replicable type a few
hundred blobs (Cool Widgets) or a hundred or so (Package Files) of varied
sizes, each type with some missing and some corrupted files of its own so
failures show, and the secondary's SQLite tracking DB. A trickle of new and
deleted blobs of every type keeps it moving.

With object storage (DemoSettings.primary_object_store: a bucket of any
S3-compatible service), the primary keeps about one blob in OBJECT_STORED
of each type in its bucket (file_store 2) and the secondary replicates
them (`sync_object_storage`), into its own bucket when one is given, else
onto its disk. A workspace seeded with other buckets, or with none, starts
afresh: its records would name objects the demo no longer reaches.
"""
from __future__ import annotations

import json
import logging
import os
import pathlib
import random
import secrets
import shutil
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select

from backend.config import ObjectStoreConfig, PeerConfig, PrimaryConfig, SecondaryConfig
from backend.db.primary_schema import Project
from backend.framework.replicator import FileStore
from backend.framework.states import VerificationState
from backend.object_store.bucket import Bucket
from backend.sites.primary import PrimarySite
from backend.secondary.engine import SecondaryEngine
from backend.sites.secondary import SecondarySite

log = logging.getLogger(__name__)

SEED_WIDGETS = 300
# Per type: its share of SEED_WIDGETS, and how many of its seeded files go
# missing and get corrupted. A type not listed seeds like Package Files.
SEEDING = {"cool_widget": (1.0, 4, 4), "package_file": (0.4, 3, 2)}
OBJECT_STORED = 10  # with object storage, one blob in this many is kept there
CHECK_TIMEOUT = 10.0  # seconds a bucket may take to answer at start
# What a workspace holds besides its credentials, made again when it starts afresh.
SEEDED_FILES = ("primary.db", "tracking.db", "primary-blobs", "secondary-blobs")
STORAGE_RECORD = "object-storage.json"  # the buckets a workspace was seeded with
PROJECTS = (("acme/platform", "api", "default"), ("acme/platform", "workers", "ssd"),
            ("acme/web", "site", "default"), ("community", "plugins", "ssd"))


@dataclass
class DemoSettings:
    workspace: pathlib.Path
    seed_widgets: int = SEED_WIDGETS
    trickle_interval: float = 4.0
    status_interval: float = 5.0
    # Optional object storage: the primary's bucket, and the secondary's own
    # (used only with the primary's; without it replicas go to its disk).
    primary_object_store: ObjectStoreConfig = ObjectStoreConfig()
    secondary_object_store: ObjectStoreConfig = ObjectStoreConfig()

    @property
    def object_storage(self) -> bool:
        return self.primary_object_store.enabled

    def stores(self) -> list[ObjectStoreConfig]:
        """The enabled object stores, the primary's first."""
        if not self.object_storage:
            return []
        return [store for store in (self.primary_object_store, self.secondary_object_store)
                if store.enabled]


class Demo:
    def __init__(self, settings: DemoSettings) -> None:
        self.settings = settings
        self.workspace = pathlib.Path(settings.workspace)
        self.primary: PrimarySite | None = None
        self.site: SecondarySite | None = None
        self.secondary: SecondaryEngine | None = None
        self._stop = threading.Event()
        self._trickle: threading.Thread | None = None
        self._random = random.Random()

    # --- set-up ------------------------------------------------------------------

    def _credentials(self) -> dict:
        path = self.workspace / "credentials.json"
        if path.exists():
            return json.loads(path.read_text())
        credentials = {"access_key": secrets.token_hex(10), "secret": secrets.token_hex(24),
                       "api_token": secrets.token_hex(16)}
        self.workspace.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(credentials))
        os.chmod(path, 0o600)
        return credentials

    def primary_config(self) -> PrimaryConfig:
        credentials = self._credentials()
        return PrimaryConfig(
            database_url=f"sqlite:///{self.workspace / 'primary.db'}",
            storage_path=str(self.workspace / "primary-blobs"),
            listen="127.0.0.1:0",
            secondaries=(PeerConfig("demo-secondary", "", credentials["access_key"],
                                    credentials["secret"]),),
            object_store=self.settings.primary_object_store if self.settings.object_storage
            else ObjectStoreConfig())

    def secondary_config(self, primary_url: str) -> SecondaryConfig:
        credentials = self._credentials()
        return SecondaryConfig(
            name="demo-secondary", primary_url=primary_url,
            access_key=credentials["access_key"], secret=credentials["secret"],
            tracking_database_url=f"sqlite:///{self.workspace / 'tracking.db'}",
            storage_path=str(self.workspace / "secondary-blobs"),
            listen="127.0.0.1:0", api_token=credentials["api_token"],
            status_interval=self.settings.status_interval,
            sync_object_storage=self.settings.object_storage,
            object_store=self.settings.secondary_object_store if self.settings.object_storage
            else ObjectStoreConfig())

    def start(self) -> "Demo":
        """Check the buckets, then start both sites; a failure stops what
        started and raises (an ObjectStoreError says why in one line)."""
        for store in self.settings.stores():  # before the workspace is touched
            Bucket(store, timeout=CHECK_TIMEOUT).check()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.workspace.mkdir(parents=True, exist_ok=True)
        self._match_storage()
        self.primary = PrimarySite(self.primary_config())
        self.primary.upgrade_database()
        # Seeded per type, so a workspace from before a type existed gets it.
        unseeded = [r for r in self.primary.replicators
                    if self.primary.catalog(r).count() == 0]
        self.primary.start()
        if unseeded:
            self.seed(unseeded)
        self.site = SecondarySite(self.secondary_config(self.primary.url),
                                  poll_interval=0.3, consistency_interval=10.0).start()
        self.secondary = self.site.engine
        self._trickle = threading.Thread(target=self._trickle_loop, name="demo-trickle",
                                         daemon=True)
        self._trickle.start()

    def _match_storage(self) -> None:
        """Start afresh when the workspace was seeded with other buckets (or
        none): its object-stored records and replicas would be out of reach."""
        record = self.workspace / STORAGE_RECORD
        wanted = [[store.connection.endpoint, store.bucket] for store in self.settings.stores()]
        try:
            had = json.loads(record.read_text()) if record.exists() else []
        except (OSError, ValueError):
            had = None
        if had != wanted and (self.workspace / "primary.db").exists():
            log.info("the demo's object storage changed: starting it afresh")
            for name in SEEDED_FILES:
                path = self.workspace / name
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    for companion in self.workspace.glob(name + "*"):  # -wal, -journal
                        companion.unlink()
        if wanted:
            record.write_text(json.dumps(wanted))
        else:
            record.unlink(missing_ok=True)

    def seed(self, replicators) -> None:
        projects = self._projects()
        damaged = {}
        for replicator in replicators:
            share, missing, corrupted = SEEDING.get(replicator.replicable_name,
                                                    SEEDING["package_file"])
            catalog = self.primary.catalog(replicator)
            stem = replicator.replicable_name.replace("_", "-")
            count = max(1, round(self.settings.seed_widgets * share))
            stored = [self._file_store(index) for index in range(count)]
            ids = [catalog.add_bytes(self._blob(), f"{stem}-{index:04d}.bin",
                                     project_id=self._random.choice(projects),
                                     file_store=stored[index])
                   for index in range(count)]
            # Damage on the primary's disk only: the bucket keeps what it was given.
            local = [i for i, where in zip(ids, stored) if where == FileStore.LOCAL]
            chosen = self._random.sample(local, min(len(local), missing + corrupted))
            self._remove_files(replicator, chosen[:missing])
            damaged[replicator] = chosen[missing:]
        # Before the secondary starts, so its downloads meet the damage.
        self._corrupt_when_checksummed(damaged)

    def _file_store(self, index: int) -> int:
        """Where the index-th seeded blob of a type goes: every OBJECT_STORED-th
        (the first included, so each type has one) into the bucket."""
        if self.settings.object_storage and index % OBJECT_STORED == 0:
            return FileStore.REMOTE
        return FileStore.LOCAL

    def _projects(self) -> list[int]:
        """The demo's projects, made on the first start."""
        catalog = self.primary.catalog(self.primary.replicators[0])
        with self.primary.engine.connect() as connection:
            existing = list(connection.execute(select(Project.id).order_by(Project.id))
                            .scalars())
        return existing or [catalog.add_project(name, namespace, shard)
                            for namespace, name, shard in PROJECTS]

    def _blob(self) -> bytes:
        # Mostly small blobs, now and then a large one, like real uploads.
        size = int(self._random.lognormvariate(9.5, 1.6))
        return os.urandom(max(16, min(size, 4 * 1024 * 1024)))

    def _remove_files(self, replicator, ids) -> None:
        for model_id in ids:
            located = self.primary.blob_path(replicator, model_id)
            if located:
                located[0].unlink(missing_ok=True)

    def _corrupt_when_checksummed(self, damaged: dict) -> None:
        """Flip bytes after the primary checksummed the file: the secondary's
        download then fails its checksum check, as on real bit rot."""
        deadline = time.monotonic() + 30
        remaining = {replicator: set(ids) for replicator, ids in damaged.items() if ids}
        while remaining and time.monotonic() < deadline and not self._stop.is_set():
            for replicator, ids in list(remaining.items()):
                for model_id in self._checksummed(replicator, ids):
                    located = self.primary.blob_path(replicator, model_id)
                    if located and located[0].exists():
                        data = bytearray(located[0].read_bytes())
                        data[0] ^= 0xFF
                        located[0].write_bytes(bytes(data))
                    ids.discard(model_id)
                if not ids:
                    del remaining[replicator]
            self._stop.wait(0.2)

    def _checksummed(self, replicator, ids) -> set[int]:
        state = replicator.verification.table
        key = state.c[replicator.verification.key]
        with self.primary.engine.connect() as connection:
            return set(connection.execute(select(key).where(
                key.in_(ids), state.c.verification_state == VerificationState.SUCCEEDED))
                .scalars())

    # --- running --------------------------------------------------------------------

    def _trickle_loop(self) -> None:
        catalogs = [self.primary.catalog(r) for r in self.primary.replicators]
        while not self._stop.wait(self.settings.trickle_interval):
            try:
                catalog = self._random.choice(catalogs)
                stem = catalog.replicator.replicable_name.replace("_", "-")
                for _ in range(self._random.randint(1, 3)):
                    catalog.add_bytes(self._blob(), f"{stem}-new.bin",
                                      file_store=self._file_store(
                                          self._random.randrange(OBJECT_STORED)))
                if self._random.random() < 0.4:
                    newest = catalog.list(limit=50, newest_first=True)
                    if newest:
                        catalog.delete([self._random.choice(newest)["id"]])
            except Exception as exc:  # the demo keeps going
                log.warning("demo trickle: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._trickle:
            self._trickle.join(timeout=10)
        if self.site:
            self.site.stop()
        if self.primary:
            self.primary.stop()

    def progress_line(self) -> str:
        status = self.secondary.status()
        parts = []
        for replicator in self.secondary.replicators:
            p = replicator.plural_name
            if status.get(f"{p}_registry_count") is None:
                parts.append(f"{replicator.title_plural}: replication off")
                continue
            parts.append(
                f"{replicator.title_plural}: registry {status[f'{p}_registry_count']}, "
                f"synced {status[f'{p}_synced_count']} ({status[f'{p}_synced_in_percentage']}), "
                f"verified {status[f'{p}_verified_count']} "
                f"({status[f'{p}_verified_in_percentage']}), "
                f"failed {status[f'{p}_failed_count']}")
        return " | ".join(parts)


def run_headless(settings: DemoSettings, duration: float | None, out) -> int:
    demo = Demo(settings).start()
    print(f"Demo workspace: {demo.workspace}", file=out, flush=True)
    print(f"Primary Geo API: {demo.primary.url}", file=out, flush=True)
    print(f"Secondary site API: {demo.site.url} (GraphQL at /api/graphql, token in "
          f"{demo.workspace / 'credentials.json'})", file=out, flush=True)
    started = time.monotonic()
    try:
        while duration is None or time.monotonic() - started < duration:
            time.sleep(min(2.0, duration) if duration else 2.0)
            print(demo.progress_line(), file=out, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        demo.stop()
    return 0
