"""Consumes the primary's event log from a cursor persisted in the tracking DB.

  created             -> registry pending (created if missing), if in scope
  deleted             -> local file and registry removed (even out of scope)
  checksum_succeeded  -> verification pending, if the registry exists
Without a stored cursor it starts at the primary's newest event: history is
the registry consistency worker's job. After each batch, what the primary
says the created and re-checksummed records are is asked for in one request
per type and kept (registry_details.py); if that request fails the
consistency walk brings the details later, and the cursor moves on anyway.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from backend.db.engine import writing
from backend.db.tracking_schema import EventLogState
from backend.secondary.geo_client import GeoApiError, PrimaryUnreachable
from backend.secondary.registry_backfill import RegistryBackfill
from backend.secondary.registry_details import RegistryDetails
from backend.secondary.replica_removals import ReplicaRemovals

log = logging.getLogger(__name__)

BATCH = 500


class CursorStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self) -> int | None:
        with self.engine.connect() as connection:
            return connection.execute(select(EventLogState.event_id)
                                      .order_by(EventLogState.event_id.desc()).limit(1)).scalar()

    def set(self, event_id: int) -> None:
        with writing(self.engine) as connection:
            connection.execute(delete(EventLogState))
            connection.execute(insert(EventLogState).values(event_id=event_id))


class EventConsumer:
    def __init__(self, engine: Engine, client, storage, replicators_enabled, scope) -> None:
        self.engine = engine
        self.client = client
        self.storage = storage
        self.replicators_enabled = replicators_enabled  # () -> {name: replicator}
        self.scope = scope
        self.cursor = CursorStore(engine)
        self.last_event_id: int | None = None
        self.last_event_timestamp: int | None = None
        self.cursor_event_time: str | None = None  # created_at of the last processed event
        self.processed = 0

    def measure(self) -> None:
        """Learn the primary's newest event without handling any (a paused
        engine still shows how far behind it is)."""
        page = self.client.events(after=self.cursor.get() or 0, limit=1,
                                  scope_params=self.scope.to_params())
        self.last_event_id = page.get("last_event_id")
        self.last_event_timestamp = page.get("last_event_timestamp")

    def run_once(self) -> int:
        """Process one batch; returns how many events were handled."""
        cursor = self.cursor.get()
        if cursor is None:
            head = self.client.events(after=0, limit=1, scope_params=self.scope.to_params())
            cursor = head.get("last_event_id") or 0
            self.cursor.set(cursor)
            # The cursor starts at the newest event: it is as recent as that.
            if head.get("last_event_timestamp") is not None:
                self.cursor_event_time = dt.datetime.fromtimestamp(
                    head["last_event_timestamp"], dt.timezone.utc).isoformat()
        page = self.client.events(after=cursor, limit=BATCH,
                                  scope_params=self.scope.to_params())
        self.last_event_id = page.get("last_event_id")
        self.last_event_timestamp = page.get("last_event_timestamp")
        rows = page.get("events", [])
        enabled = self.replicators_enabled()
        described: dict[str, set[int]] = {}
        for row in rows:
            replicator = enabled.get(row.get("replicable_name"))
            if replicator is not None and self.handle(replicator, row):
                described.setdefault(replicator.replicable_name, set()).add(
                    row["payload"]["model_record_id"])
        for name, model_ids in described.items():
            self.describe(enabled[name], sorted(model_ids))
        if rows:
            self.cursor.set(rows[-1]["id"])
            self.cursor_event_time = rows[-1].get("created_at")
            self.processed += len(rows)
        return len(rows)

    def handle(self, replicator, row: dict) -> bool:
        """Carry out one event; True when its record has a registry whose
        details the primary should now be asked for."""
        payload = row.get("payload") or {}
        model_id = payload.get("model_record_id")
        if not isinstance(model_id, int):
            log.warning("ignoring event %s without a record id", row.get("id"))
            return False
        store = RegistryBackfill(self.engine, replicator)
        event = row.get("event_name")
        if event == "created":
            if row.get("in_scope", True):
                store.ensure_pending(model_id, reset_existing=replicator.mutable)
                return True
        elif event == "deleted":
            remove_replicas(store, self.storage, replicator, [model_id])
        elif event == "checksum_succeeded":
            return store.checksum_succeeded(model_id)
        else:
            log.warning("ignoring unknown event %r", event)
        return False

    def describe(self, replicator, model_ids: list[int]) -> None:
        """Keep what the primary says these records are (one request)."""
        try:
            described = self.client.states(replicator.replicable_name, model_ids)
        except (GeoApiError, PrimaryUnreachable) as exc:  # the walk brings them later
            log.warning("could not describe %d %s: %s", len(model_ids),
                        replicator.title_plural, exc)
            return
        RegistryDetails(self.engine, replicator).record(described.values())


def remove_replicas(store: RegistryBackfill, storage, replicator, model_ids: list[int]) -> int:
    """Delete the local files, then the registries (GitLab's removal service).

    A file that cannot be removed never holds up the others, the registry's
    deletion or the event cursor: it waits in `replica_removals` with its
    reason and is tried again with backoff (replica_removals.py)."""
    ReplicaRemovals(store.engine).remove_files(storage, replicator, model_ids)
    return store.delete_by_model_ids(model_ids)
