"""The embedded demo: a primary and a secondary on loopback, in one process.

A workspace (by default in the user data folder) holds a seeded primary,
namespaces, projects on two shards, a few hundred widgets of varied sizes,
some with missing or corrupted files so failures show, and the secondary's
SQLite tracking DB. A trickle of new and deleted widgets keeps it moving.
"""
from __future__ import annotations

import json
import logging
import os
import pathlib
import random
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select

from backend.config import PeerConfig, PrimaryConfig, SecondaryConfig
from backend.framework.replicator import FileStore
from backend.replicables import registered
from backend.framework.states import VerificationState
from backend.sites.primary import PrimarySite
from backend.secondary.engine import SecondaryEngine
from backend.sites.secondary import SecondarySite

log = logging.getLogger(__name__)

SEED_WIDGETS = 300
MISSING = 4
CORRUPTED = 4
PROJECTS = (("acme/platform", "api", "default"), ("acme/platform", "workers", "ssd"),
            ("acme/web", "site", "default"), ("community", "plugins", "ssd"))


@dataclass
class DemoSettings:
    workspace: pathlib.Path
    seed_widgets: int = SEED_WIDGETS
    trickle_interval: float = 4.0
    status_interval: float = 5.0


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
                                    credentials["secret"]),))

    def secondary_config(self, primary_url: str) -> SecondaryConfig:
        credentials = self._credentials()
        return SecondaryConfig(
            name="demo-secondary", primary_url=primary_url,
            access_key=credentials["access_key"], secret=credentials["secret"],
            tracking_database_url=f"sqlite:///{self.workspace / 'tracking.db'}",
            storage_path=str(self.workspace / "secondary-blobs"),
            listen="127.0.0.1:0", api_token=credentials["api_token"],
            status_interval=self.settings.status_interval)

    def start(self) -> "Demo":
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.primary = PrimarySite(self.primary_config())
        self.primary.upgrade_database()
        fresh = self.primary.catalog().count() == 0
        self.primary.start()
        if fresh:
            self.seed()
        self.site = SecondarySite(self.secondary_config(self.primary.url),
                                  poll_interval=0.3, consistency_interval=10.0).start()
        self.secondary = self.site.engine
        self._trickle = threading.Thread(target=self._trickle_loop, name="demo-trickle",
                                         daemon=True)
        self._trickle.start()
        return self

    def seed(self) -> None:
        catalog = self.primary.catalog()
        projects = [catalog.add_project(name, namespace, shard)
                    for namespace, name, shard in PROJECTS]
        ids = []
        for index in range(self.settings.seed_widgets):
            ids.append(catalog.add_bytes(self._blob(), f"widget-{index:04d}.bin",
                                         project_id=self._random.choice(projects)))
        for index in range(3):
            catalog.add_bytes(self._blob(), f"archived-{index}.bin", project_id=projects[0],
                              file_store=FileStore.REMOTE)
        chosen = self._random.sample(ids, MISSING + CORRUPTED)
        self._remove_files(chosen[:MISSING])
        # Before the secondary starts, so its downloads meet the damage.
        self._corrupt_when_checksummed(chosen[MISSING:])

    def _blob(self) -> bytes:
        # Mostly small blobs, now and then a large one, like real uploads.
        size = int(self._random.lognormvariate(9.5, 1.6))
        return os.urandom(max(16, min(size, 4 * 1024 * 1024)))

    def _located(self, model_id: int):
        replicator = registered()[0]
        return self.primary.blob_path(replicator, model_id)

    def _remove_files(self, ids) -> None:
        for model_id in ids:
            located = self._located(model_id)
            if located:
                located[0].unlink(missing_ok=True)

    def _corrupt_when_checksummed(self, ids) -> None:
        """Flip bytes after the primary checksummed the file: the secondary's
        download then fails its checksum check, as on real bit rot."""
        replicator = registered()[0]
        state = replicator.verification.table
        key = state.c[replicator.verification.key]
        deadline = time.monotonic() + 30
        remaining = set(ids)
        while remaining and time.monotonic() < deadline and not self._stop.is_set():
            with self.primary.engine.connect() as connection:
                done = set(connection.execute(select(key).where(
                    key.in_(remaining),
                    state.c.verification_state == VerificationState.SUCCEEDED)).scalars())
            for model_id in done:
                located = self._located(model_id)
                if located and located[0].exists():
                    data = bytearray(located[0].read_bytes())
                    data[0] ^= 0xFF
                    located[0].write_bytes(bytes(data))
            remaining -= done
            self._stop.wait(0.2)

    # --- running --------------------------------------------------------------------

    def _trickle_loop(self) -> None:
        catalog = self.primary.catalog()
        while not self._stop.wait(self.settings.trickle_interval):
            try:
                for _ in range(self._random.randint(1, 3)):
                    catalog.add_bytes(self._blob(), "trickle.bin")
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
        p = registered()[0].plural_name
        return (f"{registered()[0].title_plural}: registry {status[f'{p}_registry_count']}, "
                f"synced {status[f'{p}_synced_count']} ({status[f'{p}_synced_in_percentage']}), "
                f"verified {status[f'{p}_verified_count']} "
                f"({status[f'{p}_verified_in_percentage']}), "
                f"failed {status[f'{p}_failed_count']}")


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
