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
MAX_ID = 2**63 - 1  # BIGINT; larger numbers overflow SQLite's driver


def publish(connection: Connection, replicable_name: str, event_name: str,
            payload: dict) -> int:
    """Insert the event and its log row in the caller's transaction."""
    now = utcnow()
    event_id = connection.execute(insert(GeoEvent).values(
        replicable_name=replicable_name, event_name=event_name, payload=payload,
        created_at=now).returning(GeoEvent.id)).scalar_one()
    return connection.execute(insert(GeoEventLog).values(
        created_at=now, geo_event_id=event_id).returning(GeoEventLog.id)).scalar_one()


def _rows(engine: Engine, statement) -> list[dict]:
    with engine.connect() as connection:
        return [{"id": row.id, "created_at": row.created_at.isoformat(),
                 "replicable_name": row.replicable_name, "event_name": row.event_name,
                 "payload": row.payload}
                for row in connection.execute(statement)]


def _events():
    return (select(GeoEventLog.id, GeoEventLog.created_at, GeoEvent.replicable_name,
                   GeoEvent.event_name, GeoEvent.payload)
            .join(GeoEvent, GeoEvent.id == GeoEventLog.geo_event_id))


def read_after(engine: Engine, cursor: int, limit: int = 100) -> list[dict]:
    limit = max(1, min(int(limit), MAX_READ))
    return _rows(engine, _events().where(GeoEventLog.id > cursor)
                 .order_by(GeoEventLog.id).limit(limit))


def find(engine: Engine, event_log_ids: list[int]) -> list[dict]:
    """The log rows of these ids that exist (a secondary's gaps), by id."""
    if len(event_log_ids) > MAX_READ:
        raise ValueError(f"at most {MAX_READ} event ids per request")
    possible = sorted({i for i in event_log_ids if 0 < i <= MAX_ID})  # others cannot exist
    if not possible:
        return []
    return _rows(engine, _events().where(GeoEventLog.id.in_(possible))
                 .order_by(GeoEventLog.id))


def last_event(engine: Engine) -> tuple[int | None, object]:
    """(id, created_at) of the newest event log row, or (None, None)."""
    with engine.connect() as connection:
        row = connection.execute(select(GeoEventLog.id, GeoEventLog.created_at)
                                 .order_by(GeoEventLog.id.desc()).limit(1)).first()
    return (row.id, row.created_at) if row else (None, None)


def prune_through(engine: Engine, last_id: int, limit: int, batch: int) -> int:
    """Delete log rows with ids up to `last_id` and their events, lowest
    first, at most `limit` rows in transactions of `batch` (short ones: on
    SQLite they hold the only write lock). Returns how many rows went.

    The newest row always stays: SQLite numbers a new row one above the
    highest id in the table, so an emptied log would hand out ids from 1
    again, below every secondary's cursor, and those events would never
    be read."""
    newest, _ = last_event(engine)
    if newest is None:
        return 0
    last_id = min(last_id, newest - 1)
    pruned = 0
    while pruned < limit:
        with writing(engine) as connection:
            rows = connection.execute(
                select(GeoEventLog.id, GeoEventLog.geo_event_id)
                .where(GeoEventLog.id <= last_id).order_by(GeoEventLog.id)
                .limit(min(batch, limit - pruned))).all()
            if not rows:
                break
            connection.execute(delete(GeoEventLog).where(
                GeoEventLog.id.in_([row.id for row in rows])))
            event_ids = [row.geo_event_id for row in rows]
            connection.execute(delete(GeoEvent).where(GeoEvent.id.in_(event_ids)))
        pruned += len(rows)
    return pruned


def prune_orphaned_events(engine: Engine, limit: int) -> int:
    """Delete up to `limit` events no log row refers to (left by a log row
    deleted on its own). An event and its log row are written in one
    transaction, so an event without one is never on its way."""
    with writing(engine) as connection:
        referenced = select(GeoEventLog.id).where(GeoEventLog.geo_event_id == GeoEvent.id)
        orphans = (select(GeoEvent.id).where(~referenced.exists())
                   .order_by(GeoEvent.id).limit(limit))
        ids = list(connection.execute(orphans).scalars())
        if ids:
            connection.execute(delete(GeoEvent).where(GeoEvent.id.in_(ids)))
    return len(ids)


def count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(GeoEventLog)).scalar_one()
