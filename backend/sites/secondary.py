"""A secondary site: the sync and verify engine plus the site API (GraphQL,
REST status, metrics) on its `listen` address."""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import urllib3

from backend.api.metrics import site_registry
from backend.api.server import BackgroundServer
from backend.api.site_api import SiteApi, UpstreamUnavailable
from backend.framework.status_fields import (EVENT_LOG_GAP_FIELDS, OUTDATED_AFTER,
                                             PER_TYPE_FIELDS, general_fields, site_id)
from backend.config import Config, SecondaryConfig, parse_listen
from backend.framework.site_identity import SiteNameTaken, host_name, instance_id
from backend.secondary.bulk_jobs import BulkJobs
from backend.secondary.engine import SecondaryEngine
from backend.secondary.geo_client import GeoApiError, GeoClient, PrimaryUnreachable

log = logging.getLogger(__name__)
STALE_STATUS = OUTDATED_AFTER  # seconds; GitLab flags a status older than 10 min
PRIMARY_TIMEOUT = 10.0  # seconds to wait for the primary's list of sites
NAME_CHECK_TIMEOUT = 3.0  # seconds the first report may take before the engine starts anyway


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
        self.read_token = config.read_token
        self.metrics_registry = site_registry(
            self.replicators, lambda: [(self.name, self.current_counts())],
            self.engine.counters.registry)
        self.server: BackgroundServer | None = None
        # The status posted to the primary is the REST document, as GitLab's
        # secondaries report theirs: health, URL and cursor time included.
        self.engine.snapshots.report = self.status_document
        self._primary_client: GeoClient | None = None  # made on the first list of sites
        self._primary_client_lock = threading.Lock()
        self.instance_id = instance_id(config.listen)
        self.bulk_jobs = BulkJobs(self.tracking_engine, on_progress=self.registries_changed)

    @classmethod
    def from_config(cls, config: Config, **options) -> "SecondarySite":
        return cls(config.require_secondary(), config.feature_flags, **options)

    @property
    def url(self) -> str:
        return self.server.url if self.server else ""

    # --- lifecycle ---------------------------------------------------------------

    def start(self, serve: bool = True, run_engine: bool = True) -> "SecondarySite":
        """Check the object store, migrate, serve the API, start the engine;
        what started is stopped again if a later step fails."""
        self.engine.check_object_store()  # a wrong bucket or key: nothing written
        self.engine.upgrade_database()
        # The port first: a site that cannot listen stops before its engine
        # has registered a heartbeat or taken the lease.
        if serve:
            host, port = parse_listen(self.config.listen)
            app = _application(SiteApi(self).routes())
            self.server = BackgroundServer(app, host, port).start()
            log.info("secondary site API on %s", self.server.url)
        try:
            if run_engine:
                self._check_name_is_ours()
                self.engine.start()
        except BaseException:
            if self.server:
                self.server.stop()
                self.server = None
            raise
        return self

    def _check_name_is_ours(self) -> None:
        """Report once before the engine starts: a primary that has another
        secondary of this name refuses, and this one stops with its reason.
        A primary that cannot be reached changes nothing (the engine keeps
        reporting, and says so)."""
        try:
            self._report_once(engine_state="starting")
        except GeoApiError as exc:
            if exc.geo_code == "SITE_NAME_TAKEN":
                raise SiteNameTaken(f"secondary {self.name!r} cannot start: {exc}") from None
        except PrimaryUnreachable:
            pass

    def _report_once(self, engine_state: str | None = None) -> None:
        """Post this site's status now (its engine's state said as
        `engine_state` when given), waiting NAME_CHECK_TIMEOUT at most."""
        client = GeoClient(self.config.primary_url, self.config.access_key, self.config.secret,
                           max_connections=1,
                           timeout=urllib3.Timeout(connect=NAME_CHECK_TIMEOUT,
                                                   read=NAME_CHECK_TIMEOUT))
        document = self.status_document(self.engine.status())
        if engine_state is not None:
            document["engine_state"] = engine_state
        try:
            client.post_status(document)
        finally:
            client.close()

    def stop(self) -> None:
        if self.server:
            self.server.stop()
            self.server = None
        self.bulk_jobs.stop()
        was_running = self.engine.running
        self.engine.stop()
        if was_running:
            # Tell the primary this one stopped: its name is free at once.
            try:
                self._report_once()
            except (GeoApiError, PrimaryUnreachable) as exc:
                log.info("could not tell the primary that %s stopped: %s", self.name, exc)
        if self._primary_client is not None:
            self._primary_client.close()

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
        for hold in engine.sync_holds.values():
            problems.append(f"Syncs paused: {hold['reason']}")
        if engine.last_status_report and time.time() - engine.last_status_report > STALE_STATUS:
            problems.append("Status reports to the primary have failed for over 10 minutes")
        return problems

    def rest_status(self) -> dict:
        status = self.engine.status()
        self.engine.latest_status = status
        return self.status_document(status)

    def status_document(self, status: dict) -> dict:
        """GitLab's status fields of this site, from an engine status."""
        engine = self.engine
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
        for name in EVENT_LOG_GAP_FIELDS:
            fields[name] = status.get(name)
        for replicator in self.replicators:
            for name in PER_TYPE_FIELDS:
                key = f"{replicator.plural_name}_{name}"
                fields[key] = status.get(key)
        fields["engine_state"] = "paused" if engine.paused else (
            "running" if engine.running else "stopped")
        fields["sync_holds"] = status.get("sync_holds") or {}
        fields["bulk_actions"] = self.bulk_jobs.summaries()
        fields["sync_settings"] = "Selective" if self.config.selective_sync_type else "Full"
        fields["instance_id"], fields["instance_host"] = self.instance_id, host_name()
        fields["status_interval"] = self.config.status_interval
        return fields

    def all_rest_statuses(self) -> list[dict]:
        """Every site's status, asked of the primary, as GitLab's secondaries
        pass API requests on to their primary. Raises UpstreamUnavailable
        with the reason when the primary does not answer."""
        with self._primary_client_lock:
            if self._primary_client is None:
                timeout = urllib3.Timeout(connect=PRIMARY_TIMEOUT, read=PRIMARY_TIMEOUT)
                self._primary_client = GeoClient(
                    self.config.primary_url, self.config.access_key, self.config.secret,
                    max_connections=2, timeout=timeout)
        primary = self.config.primary_url
        try:
            statuses = self._primary_client.site_statuses()
        except PrimaryUnreachable as exc:
            raise UpstreamUnavailable(f"cannot reach the primary at {primary}: {exc}") \
                from None
        except GeoApiError as exc:
            raise UpstreamUnavailable(f"the primary at {primary} answered HTTP "
                                      f"{exc.status}: {exc}") from None
        if not isinstance(statuses, list):
            raise UpstreamUnavailable(f"the primary at {primary} did not answer with a "
                                      "list of sites")
        return statuses


def _application(routes):
    from aiohttp import web
    app = web.Application(client_max_size=256 * 1024)
    app.add_routes(routes)
    return app
