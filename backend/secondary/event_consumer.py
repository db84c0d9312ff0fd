"""Consumes the primary's event log from a cursor persisted in the tracking DB.

  created             -> registry pending (created if missing), if in scope
  deleted             -> local file and registry removed (even out of scope)
  checksum_succeeded  -> verification pending, if the registry exists
Without a stored cursor it starts at the primary's newest event: history is
the registry consistency worker's job. After each batch, what the primary
says the created and re-checksummed records are is asked for in one request
per type and kept (registry_details.py); if that request fails the
consistency walk brings the details later, and the cursor moves on anyway.

Ids the cursor passes without seeing are gaps (event_log_gaps.py): stored
with the cursor's move, asked for again on every poll, and their events
handled when they appear.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from backend.db.engine import writing
from backend.db.tracking_schema import EventLogState
from backend.framework.clock import utcnow
from backend.secondary.event_log_gaps import (GAP_LIFETIME, RECHECK_BATCH, EventLogGaps,
                                              skipped_ids)
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
            self._store(connection, event_id)

    def advance(self, previous: int, event_id: int, gaps: list[int]) -> None:
        """Move the cursor from `previous` to `event_id` and record the ids
        skipped on the way, in one transaction: a crash loses neither."""
        with writing(self.engine) as connection:
            self._store(connection, event_id)
            EventLogGaps(self.engine).record(connection, previous, gaps, utcnow())

    @staticmethod
    def _store(connection, event_id: int) -> None:
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
        self.gaps = EventLogGaps(engine)
        self._gap_position = 0  # gaps above this id are asked for next
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
        """Look for the open gaps, then process one batch; returns how many
        events were handled."""
        cursor = self.cursor.get()
        if cursor is None:
            head = self.client.events(after=0, limit=1, scope_params=self.scope.to_params())
            cursor = head.get("last_event_id") or 0
            self.cursor.set(cursor)
            # The cursor starts at the newest event: it is as recent as that.
            if head.get("last_event_timestamp") is not None:
                self.cursor_event_time = dt.datetime.fromtimestamp(
                    head["last_event_timestamp"], dt.timezone.utc).isoformat()
        found = self.recheck_gaps()
        page = self.client.events(after=cursor, limit=BATCH,
                                  scope_params=self.scope.to_params())
        self.last_event_id = page.get("last_event_id")
        self.last_event_timestamp = page.get("last_event_timestamp")
        rows = page.get("events", [])
        self.handle_all(rows)
        if rows:
            self.cursor.advance(cursor, rows[-1]["id"],
                                skipped_ids(cursor, [row["id"] for row in rows]))
            self.cursor_event_time = rows[-1].get("created_at")
            self.processed += len(rows)
        return found + len(rows)

    def recheck_gaps(self) -> int:
        """Ask the primary for up to RECHECK_BATCH open gaps (the next ones
        in id order, round robin when there are more), handle the events
        that now exist and close their gaps; gaps still missing after
        GAP_LIFETIME are given up. Returns how many events were found."""
        gaps = self.gaps.open_after(self._gap_position)
        if not gaps and self._gap_position:
            self._gap_position = 0
            gaps = self.gaps.open_after(0)
        if not gaps:
            return 0
        self._gap_position = gaps[-1][0] if len(gaps) == RECHECK_BATCH else 0
        rows = self.client.find_events([event_id for event_id, _ in gaps],
                                       scope_params=self.scope.to_params())
        self.handle_all(rows)
        found = {row["id"] for row in rows}
        expired_before = utcnow() - GAP_LIFETIME
        expired = [event_id for event_id, seen_at in gaps
                   if event_id not in found and seen_at < expired_before]
        if expired:
            log.info("gave up on %d event log ids not found within %d minutes (rolled "
                     "back on the primary, or the consistency walk finds their records)",
                     len(expired), GAP_LIFETIME.total_seconds() // 60)
        self.gaps.close(sorted(found) + expired)
        self.processed += len(rows)
        return len(rows)

    def handle_all(self, rows: list[dict]) -> None:
        """Carry out the events, then describe the records they concern."""
        enabled = self.replicators_enabled()
        described: dict[str, set[int]] = {}
        for row in rows:
            replicator = enabled.get(row.get("replicable_name"))
            if replicator is not None and self.handle(replicator, row):
                described.setdefault(replicator.replicable_name, set()).add(
                    row["payload"]["model_record_id"])
        for name, model_ids in described.items():
            self.describe(enabled[name], sorted(model_ids))

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
