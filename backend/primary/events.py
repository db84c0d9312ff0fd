"""The Geo event log on the primary: publishing, reading after a cursor, pruning."""
from __future__ import annotations

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection, Engine

from backend.db.engine import writing
from backend.db.primary_schema import GeoEvent, GeoEventLog
from backend.framework.clock import utcnow

CREATED = "created"
DELETED = "deleted"
CHECKSUM_SUCCEEDED = "checksum_succeeded"
EVENT_NAMES = (CREATED, DELETED, CHECKSUM_SUCCEEDED)

MAX_READ = 1000


def publish(connection: Connection, replicable_name: str, event_name: str,
            payload: dict) -> int:
    """Insert the event and its log row in the caller's transaction."""
    now = utcnow()
    event_id = connection.execute(insert(GeoEvent).values(
        replicable_name=replicable_name, event_name=event_name, payload=payload,
        created_at=now).returning(GeoEvent.id)).scalar_one()
    return connection.execute(insert(GeoEventLog).values(
        created_at=now, geo_event_id=event_id).returning(GeoEventLog.id)).scalar_one()


def read_after(engine: Engine, cursor: int, limit: int = 100) -> list[dict]:
    limit = max(1, min(int(limit), MAX_READ))
    statement = (select(GeoEventLog.id, GeoEventLog.created_at, GeoEvent.replicable_name,
                        GeoEvent.event_name, GeoEvent.payload)
                 .join(GeoEvent, GeoEvent.id == GeoEventLog.geo_event_id)
                 .where(GeoEventLog.id > cursor).order_by(GeoEventLog.id).limit(limit))
    with engine.connect() as connection:
        return [{"id": row.id, "created_at": row.created_at.isoformat(),
                 "replicable_name": row.replicable_name, "event_name": row.event_name,
                 "payload": row.payload}
                for row in connection.execute(statement)]


def last_event(engine: Engine) -> tuple[int | None, object]:
    """(id, created_at) of the newest event log row, or (None, None)."""
    with engine.connect() as connection:
        row = connection.execute(select(GeoEventLog.id, GeoEventLog.created_at)
                                 .order_by(GeoEventLog.id.desc()).limit(1)).first()
    return (row.id, row.created_at) if row else (None, None)


def prune_before(engine: Engine, event_log_id: int) -> int:
    """Delete log rows (and their events) below `event_log_id`."""
    with writing(engine) as connection:
        event_ids = select(GeoEventLog.geo_event_id).where(GeoEventLog.id < event_log_id)
        connection.execute(delete(GeoEvent).where(GeoEvent.id.in_(event_ids)))
        return connection.execute(
            delete(GeoEventLog).where(GeoEventLog.id < event_log_id)).rowcount


def count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(GeoEventLog)).scalar_one()
