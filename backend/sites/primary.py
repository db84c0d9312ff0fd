"""A primary site: its database, blob storage, catalog, checksummer and
Geo API server, put together from a PrimaryConfig."""
from __future__ import annotations

import logging
import pathlib

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from backend.framework.geo_auth import GeoAuthenticator, Peer
from backend.api.metrics import site_registry
from backend.api.site_api import SiteApi
from backend.framework.status_fields import (OUTDATED_AFTER, empty_type_fields,
                                             general_fields, site_id)
from backend.api.server import BackgroundServer
from backend.config import Config, PrimaryConfig, parse_listen
from backend.db import migrate
from backend.db.engine import create_db_engine, is_postgresql, writing
from backend.db.primary_schema import GeoNodeStatus
from backend.framework.clock import utcnow
from backend.framework.paths import UnsafePathError
from backend.framework.site_identity import SiteNameTaken, name_taken_message
from backend.replicables import registered
from backend.primary import events, replicables_query
from backend.primary.catalog import Catalog
from backend.primary.event_log_pruning import (PRUNE_INTERVAL, EventLogPruner, PruneDecision,
                                               prune_decision)
from backend.primary.checksummer import Checksummer
from backend.primary.geo_api import GeoApi
from backend.primary.storage import BlobStorage
from backend.object_store.bucket import open_bucket
from backend.framework.replicator import FileStore
from backend.primary.verification_store import PrimaryVerificationStore

log = logging.getLogger(__name__)


class PrimarySite:
    def __init__(self, config: PrimaryConfig, feature_flags: dict[str, bool] | None = None,
                 replicators: list | None = None,
                 prune_interval: float = PRUNE_INTERVAL) -> None:
        self.config = config
        self.flags = dict(feature_flags or {})
        self.engine = create_db_engine(config.database_url)
        self.bucket = open_bucket(config.object_store)
        self.storage = BlobStorage(config.storage_path, self.bucket)
        self.object_storage_verification = config.object_storage_verification
        self.replicators = list(replicators or registered())
        self.replicators_by_name = {r.replicable_name: r for r in self.replicators}
        self.minimum_reverification_interval = config.minimum_reverification_interval
        self.authenticator = GeoAuthenticator(
            [Peer(p.name, p.access_key, p.secret) for p in config.secondaries])
        self.server: BackgroundServer | None = None
        self.checksummer: Checksummer | None = None
        self.pruner = EventLogPruner(self.engine, self.pruning_decision,
                                     interval=prune_interval)
        # Site API: a primary has no registries and accepts no mutations.
        self.name = config.name
        self.tracking_engine = None
        self.api_token = config.api_token
        self.read_token = config.read_token
        self.metrics_registry = site_registry(self.replicators,
                                              self._metric_statuses)

    @classmethod
    def from_config(cls, config: Config) -> "PrimarySite":
        return cls(config.require_primary(), config.feature_flags)

    # --- feature flags ----------------------------------------------------------

    def replication_enabled(self, replicator) -> bool:
        return self.flags.get(replicator.feature_flag, True)

    def verification_enabled(self) -> list:
        """Primary: the replication flag or the force-checksumming flag."""
        return [r for r in self.replicators
                if self.replication_enabled(r)
                or self.flags.get(f"geo_{r.replicable_name}_force_primary_checksumming", False)]

    def publishes_events(self, replicator) -> bool:
        return self.replication_enabled(replicator) and bool(self.config.secondaries)

    # --- parts ------------------------------------------------------------------

    def upgrade_database(self) -> None:
        migrate.upgrade(self.engine, "primary")

    def catalog(self, replicator=None) -> Catalog:
        replicator = replicator or self.replicators[0]
        return Catalog(self.engine, self.storage, replicator,
                       publish_events=self.publishes_events(replicator))

    def check_object_store(self) -> None:
        """At start: the bucket of `[primary.object_store]` exists and takes
        these credentials (ObjectStoreError with the reason otherwise)."""
        if self.bucket is not None:
            self.bucket.check()

    def blob_location(self, replicator, model_id: int):
        """(relative path or key, file_store) of a record, or None."""
        model = replicator.model_table()
        with self.engine.connect() as connection:
            row = connection.execute(select(model.c.file, model.c.file_store)
                                     .where(model.c.id == model_id)).first()
        return None if row is None else (row.file, row.file_store)

    def blob_path(self, replicator, model_id: int):
        """(absolute path, relative path) of a local record, or None (gone,
        in object storage, or an unsafe path)."""
        located = self.blob_location(replicator, model_id)
        if located is None or located[1] == FileStore.REMOTE:
            return None
        try:
            return self.storage.path(located[0]), located[0]
        except UnsafePathError:
            log.error("%s %s has an unsafe path; refusing to serve it",
                      replicator.title, model_id)
            return None

    def blob_for_download(self, replicator, model_id: int):
        """(state row, absolute path or None) of a record, or None. An
        object-stored record has no path: its `file` is the bucket's key."""
        row = replicables_query.blob(self.engine, replicator, model_id)
        if row is None:
            return None
        if row["file_store"] == FileStore.REMOTE:
            return row, None
        try:
            return row, self.storage.path(row["file"])
        except UnsafePathError:
            log.error("%s %s has an unsafe path; refusing to serve it",
                      replicator.title, model_id)
            return row, None

    def store_secondary_status(self, site_name: str, status: dict) -> None:
        """Keep a secondary's latest status; SiteNameTaken when another
        secondary that still runs reports under this name
        (framework/site_identity.py)."""
        now = utcnow()
        values = {"site_name": site_name, "status": status, "updated_at": now}
        dialect_insert = pg_insert if is_postgresql(self.engine) else sqlite_insert
        statement = dialect_insert(GeoNodeStatus).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["site_name"],
            set_={"status": statement.excluded.status,
                  "updated_at": statement.excluded.updated_at})
        with writing(self.engine) as connection:
            before = connection.execute(select(GeoNodeStatus.status, GeoNodeStatus.updated_at)
                                        .where(GeoNodeStatus.site_name == site_name)).first()
            if before is not None:
                reported = before.status or {}
                ago = (now - before.updated_at).total_seconds()
                if _another_live_instance(reported, status, ago):
                    raise SiteNameTaken(name_taken_message(
                        site_name, reported.get("instance_host"), ago,
                        _free_after(reported) - ago))
            connection.execute(statement)

    def secondary_statuses(self) -> list[dict]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(GeoNodeStatus).order_by(GeoNodeStatus.site_name))
            return [{"site_name": row.site_name, "status": row.status,
                     "updated_at": row.updated_at} for row in rows.mappings()]

    def pruning_decision(self) -> PruneDecision:
        """How far the event log may be pruned, from the configured
        secondaries' latest reports as this site judges them."""
        now = utcnow()
        reports = {stored["site_name"]: reported_status(stored, now)
                   for stored in self.secondary_statuses()}
        newest, _ = events.last_event(self.engine)
        return prune_decision([peer.name for peer in self.config.secondaries], reports,
                              newest)

    # --- site API ------------------------------------------------------------------

    def geo_node(self, name: str | None) -> dict | None:
        if name not in (None, self.name):
            statuses = {s["site_name"] for s in self.secondary_statuses()}
            if name not in statuses and name not in {p.name for p in self.config.secondaries}:
                return None
            return {"id": f"gid://gitlab/GeoNode/{site_id(name)}", "name": name,
                    "url": None, "internalUrl": None, "primary": False, "enabled": True,
                    "current": False}
        return {"id": f"gid://gitlab/GeoNode/{site_id(self.name)}", "name": self.name,
                "url": self.url, "internalUrl": self.url, "primary": True, "enabled": True,
                "current": True, "minimumReverificationInterval":
                    self.minimum_reverification_interval}

    def registries_changed(self) -> None:
        pass

    def rest_status(self) -> dict:
        last_id, last_at = events.last_event(self.engine)
        fields = general_fields(
            name=self.name, url=self.url, primary=True, health_problems=self._problems(),
            last_event_id=last_id, last_event_timestamp=last_at, cursor_last_event_id=None,
            cursor_last_event_timestamp=None, last_status_check=utcnow(),
            selective_sync_type="", namespaces=())
        for replicator in self.replicators:
            fields.update(empty_type_fields(replicator))
            if replicator not in self.verification_enabled():
                continue
            p = replicator.plural_name
            counts = PrimaryVerificationStore(self.engine, replicator).counts()
            fields[f"{p}_count"] = self.catalog(replicator).count()
            fields[f"{p}_object_storage_count"] = self.catalog(replicator).count(
                FileStore.REMOTE)
            fields[f"{p}_checksum_total_count"] = counts["checksum_total"]
            fields[f"{p}_checksummed_count"] = counts["checksummed"]
            fields[f"{p}_checksum_failed_count"] = counts["checksum_failed"]
        return fields

    def _problems(self) -> list[str]:
        errors = [self.checksummer.last_error if self.checksummer else None,
                  self.pruner.last_error]
        return [error for error in errors if error]

    def all_rest_statuses(self) -> list[dict]:
        """This site, then every secondary as it last reported itself; a
        report older than OUTDATED_AFTER makes its site unhealthy."""
        now = utcnow()
        return [self.rest_status()] + [reported_status(stored, now)
                                       for stored in self.secondary_statuses()]

    def _metric_statuses(self) -> list:
        own = [(self.name, self.rest_status())]
        return own + [(s["site_name"], s["status"]) for s in self.secondary_statuses()]

    # --- running ------------------------------------------------------------------

    def start(self, checksum_workers: int = 2) -> "PrimarySite":
        self.check_object_store()
        pathlib.Path(self.storage.root).mkdir(parents=True, exist_ok=True)
        host, port = parse_listen(self.config.listen)
        app = GeoApi(self).application()
        app.add_routes(SiteApi(self).routes())
        self.server = BackgroundServer(app, host, port).start()
        self.checksummer = Checksummer(self, workers=checksum_workers)
        self.checksummer.start()
        self.pruner.start()
        log.info("primary serving the Geo API on %s", self.server.url)
        return self

    @property
    def url(self) -> str:
        return self.server.url if self.server else ""

    def stop(self) -> None:
        self.pruner.stop()
        if self.checksummer:
            self.checksummer.stop()
            self.checksummer = None
        if self.server:
            self.server.stop()
            self.server = None
        self.engine.dispose()


def _free_after(reported: dict) -> float:
    """Seconds after its last report a silent secondary's name is free: two
    of its reports missed, and a little more."""
    interval = reported.get("status_interval")
    if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval <= 0:
        interval = 60.0
    return min(2 * interval + 5, OUTDATED_AFTER)


def _another_live_instance(reported: dict, status: dict, ago: float) -> bool:
    """Whether `status` comes from another secondary than the one that made
    the stored report, while that one still reports (it has not said it
    stopped, and has missed fewer than two reports)."""
    theirs, ours = reported.get("instance_id"), status.get("instance_id")
    if not theirs or not ours or theirs == ours:
        return False
    return reported.get("engine_state") != "stopped" and ago < _free_after(reported)


def reported_status(stored: dict, now) -> dict:
    """A secondary's status as the primary lists it: what it reported, its
    last status check the time of that report, and its health as GitLab
    judges it (a report older than 10 minutes is out of date, so the site
    is unhealthy). A report without health fields (an older secondary) is
    judged by its `last_error`."""
    status = dict(stored["status"])
    status.setdefault("name", stored["site_name"])
    status["primary"] = False
    checked = stored["updated_at"]
    status["last_successful_status_check_timestamp"] = int(checked.timestamp())
    if "health" not in status:
        error = status.get("last_error")
        status.update(healthy=not error, health=error or "Healthy",
                      health_status="Unhealthy" if error else "Healthy")
    age = (now - checked).total_seconds()
    if age > OUTDATED_AFTER:
        silent = f"No status report for {int(age // 60)} minutes (more than " \
                 f"{OUTDATED_AFTER // 60} is out of date)"
        said = status.get("health")
        status.update(healthy=False, health_status="Unhealthy",
                      health=silent if not said or said == "Healthy" else f"{silent}; {said}")
    return status
