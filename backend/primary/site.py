"""A primary site: its database, blob storage, catalog, checksummer and
Geo API server, put together from a PrimaryConfig."""
from __future__ import annotations

import logging
import pathlib

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from backend.api.geo_auth import GeoAuthenticator, Peer
from backend.api.server import BackgroundServer, parse_listen
from backend.config import Config, PrimaryConfig
from backend.db import migrate
from backend.db.engine import create_db_engine, is_postgresql, writing
from backend.db.primary_schema import GeoNodeStatus
from backend.framework.clock import utcnow
from backend.framework.paths import UnsafePathError
from backend.framework.replicator import registered
from backend.primary.catalog import Catalog
from backend.primary.checksummer import Checksummer
from backend.primary.geo_api import GeoApi
from backend.primary.storage import BlobStorage

log = logging.getLogger(__name__)


class PrimarySite:
    def __init__(self, config: PrimaryConfig, feature_flags: dict[str, bool] | None = None,
                 replicators: list | None = None) -> None:
        self.config = config
        self.flags = dict(feature_flags or {})
        self.engine = create_db_engine(config.database_url)
        self.storage = BlobStorage(config.storage_path)
        self.replicators = {r.replicable_name: r for r in (replicators or registered())}
        self.minimum_reverification_interval = config.minimum_reverification_interval
        self.authenticator = GeoAuthenticator(
            [Peer(p.name, p.access_key, p.secret) for p in config.secondaries])
        self.server: BackgroundServer | None = None
        self.checksummer: Checksummer | None = None

    @classmethod
    def from_config(cls, config: Config) -> "PrimarySite":
        return cls(config.require_primary(), config.feature_flags)

    # --- feature flags ----------------------------------------------------------

    def replication_enabled(self, replicator) -> bool:
        return self.flags.get(replicator.feature_flag, True)

    def verification_enabled(self) -> list:
        """Primary: the replication flag or the force-checksumming flag."""
        return [r for r in self.replicators.values()
                if self.replication_enabled(r)
                or self.flags.get(f"geo_{r.replicable_name}_force_primary_checksumming", False)]

    def publishes_events(self, replicator) -> bool:
        return self.replication_enabled(replicator) and bool(self.config.secondaries)

    # --- parts ------------------------------------------------------------------

    def upgrade_database(self) -> None:
        migrate.upgrade(self.engine, "primary")

    def catalog(self, replicator=None) -> Catalog:
        replicator = replicator or next(iter(self.replicators.values()))
        return Catalog(self.engine, self.storage, replicator,
                       publish_events=self.publishes_events(replicator))

    def blob_path(self, replicator, model_id: int, with_store: bool = False):
        """(absolute path, relative path[, file_store]) of a record, or None."""
        model = replicator.model_table()
        with self.engine.connect() as connection:
            row = connection.execute(select(model.c.file, model.c.file_store)
                                     .where(model.c.id == model_id)).first()
        if row is None:
            return None
        try:
            path = self.storage.path(row.file, row.file_store)
        except UnsafePathError:
            log.error("%s %s has an unsafe path; refusing to serve it",
                      replicator.title, model_id)
            return None
        return (path, row.file, row.file_store) if with_store else (path, row.file)

    def store_secondary_status(self, site_name: str, status: dict) -> None:
        values = {"site_name": site_name, "status": status, "updated_at": utcnow()}
        dialect_insert = pg_insert if is_postgresql(self.engine) else sqlite_insert
        statement = dialect_insert(GeoNodeStatus).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["site_name"],
            set_={"status": statement.excluded.status,
                  "updated_at": statement.excluded.updated_at})
        with writing(self.engine) as connection:
            connection.execute(statement)

    def secondary_statuses(self) -> list[dict]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(GeoNodeStatus).order_by(GeoNodeStatus.site_name))
            return [{"site_name": row.site_name, "status": row.status,
                     "updated_at": row.updated_at} for row in rows.mappings()]

    # --- running ------------------------------------------------------------------

    def start(self, checksum_workers: int = 2) -> "PrimarySite":
        pathlib.Path(self.storage.root).mkdir(parents=True, exist_ok=True)
        host, port = parse_listen(self.config.listen)
        self.server = BackgroundServer(GeoApi(self).application(), host, port).start()
        self.checksummer = Checksummer(self, workers=checksum_workers)
        self.checksummer.start()
        log.info("primary serving the Geo API on %s", self.server.url)
        return self

    @property
    def url(self) -> str:
        return self.server.url if self.server else ""

    def stop(self) -> None:
        if self.checksummer:
            self.checksummer.stop()
            self.checksummer = None
        if self.server:
            self.server.stop()
            self.server = None
        self.engine.dispose()
