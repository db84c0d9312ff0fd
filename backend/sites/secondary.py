"""A secondary site: the sync and verify engine plus the site API (GraphQL,
REST status, metrics) on its `listen` address."""
from __future__ import annotations

import datetime as dt
import logging
import time

from backend.api.metrics import site_registry
from backend.api.server import BackgroundServer
from backend.api.site_api import SiteApi
from backend.framework.status_fields import PER_TYPE_FIELDS, general_fields, site_id
from backend.config import Config, SecondaryConfig, parse_listen
from backend.secondary.engine import SecondaryEngine

log = logging.getLogger(__name__)
STALE_STATUS = 600  # seconds; GitLab flags a status older than 10 min


class SecondarySite:
    role = "secondary"

    def __init__(self, config: SecondaryConfig, feature_flags: dict | None = None, *,
                 replicators: list | None = None, **engine_options) -> None:
        self.config = config
        self.engine = SecondaryEngine(config, feature_flags, replicators=replicators,
                                      **engine_options)
        self.tracking_engine = self.engine.engine
        self.replicators = self.engine.replicators
        self.name = config.name
        self.api_token = config.api_token
        self.metrics_registry = site_registry(
            self.replicators, lambda: [(self.name, self.current_counts())],
            self.engine.counters.registry)
        self.server: BackgroundServer | None = None

    @classmethod
    def from_config(cls, config: Config, **options) -> "SecondarySite":
        return cls(config.require_secondary(), config.feature_flags, **options)

    @property
    def url(self) -> str:
        return self.server.url if self.server else ""

    # --- lifecycle ---------------------------------------------------------------

    def start(self, serve: bool = True, run_engine: bool = True) -> "SecondarySite":
        """Migrate, start the engine, serve the API; what started is stopped
        again if a later step fails (a port in use, say)."""
        self.engine.upgrade_database()
        if run_engine:
            self.engine.start()
        try:
            if serve:
                host, port = parse_listen(self.config.listen)
                app = _application(SiteApi(self).routes())
                self.server = BackgroundServer(app, host, port).start()
                log.info("secondary site API on %s", self.server.url)
        except BaseException:
            self.engine.stop()
            raise
        return self

    def stop(self) -> None:
        if self.server:
            self.server.stop()
            self.server = None
        self.engine.stop()

    def registries_changed(self) -> None:
        self.engine.wake()

    def set_capacities(self, files: int, verification: int) -> None:
        """New capacities while running; the API shows them at once."""
        self.engine.set_capacities(files, verification)
        self.config = self.engine.config

    # --- what the API shows ----------------------------------------------------------

    def geo_node(self, name: str | None) -> dict | None:
        if name not in (None, self.name):
            return None  # only the site queried knows its registries
        config = self.config
        return {
            "id": f"gid://gitlab/GeoNode/{site_id(self.name)}", "name": self.name,
            "url": self.url, "internalUrl": self.url, "primary": False, "enabled": True,
            "current": True, "filesMaxCapacity": config.files_max_capacity,
            "reposMaxCapacity": None,
            "verificationMaxCapacity": config.verification_max_capacity,
            "containerRepositoriesMaxCapacity": None,
            "syncObjectStorage": config.sync_object_storage,
            "selectiveSyncType": config.selective_sync_type or None,
            "selectiveSyncShards": list(config.selective_sync_shards),
            "minimumReverificationInterval": config.minimum_reverification_interval,
        }

    def current_counts(self) -> dict:
        """The latest status snapshot, computed now if there is none yet."""
        return self.engine.latest_status or self.engine.status()

    def health_problems(self) -> list[str]:
        problems = []
        engine = self.engine
        if not engine.running:
            problems.append("The sync engine is not running")
        if engine.last_error:
            problems.append(engine.last_error)
        if engine.last_status_report and time.time() - engine.last_status_report > STALE_STATUS:
            problems.append("Status reports to the primary have failed for over 10 minutes")
        return problems

    def rest_status(self) -> dict:
        engine = self.engine
        status = engine.status()
        engine.latest_status = status
        events = engine.events
        cursor_time = (dt.datetime.fromisoformat(events.cursor_event_time)
                       if events.cursor_event_time else None)
        fields = general_fields(
            name=self.name, url=self.url, primary=False,
            health_problems=self.health_problems(),
            last_event_id=events.last_event_id,
            last_event_timestamp=events.last_event_timestamp,
            cursor_last_event_id=status.get("cursor_last_event_id"),
            cursor_last_event_timestamp=cursor_time,
            last_status_check=engine.last_status_report,
            selective_sync_type=self.config.selective_sync_type,
            namespaces=self.config.selective_sync_namespace_ids)
        for replicator in self.replicators:
            for name in PER_TYPE_FIELDS:
                key = f"{replicator.plural_name}_{name}"
                fields[key] = status.get(key)
        fields["engine_state"] = "paused" if engine.paused else (
            "running" if engine.running else "stopped")
        fields["sync_settings"] = "Selective" if self.config.selective_sync_type else "Full"
        return fields

    def all_rest_statuses(self):
        return None  # only the primary knows every site


def _application(routes):
    from aiohttp import web
    app = web.Application(client_max_size=256 * 1024)
    app.add_routes(routes)
    return app
