"""Status snapshots over time, for the console's charts.

Every status interval the engine stores, per type, the counts of that
moment and the work done since the previous snapshot. Reading buckets a
time range in SQL (integer division of `recorded_epoch`), so a month of
one-minute snapshots comes back as a few hundred points at once.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, insert, select

from backend.db.engine import writing
from backend.db.tracking_schema import HISTORY_COUNTS, StatusHistory
from backend.framework.clock import utcnow

RETENTION = dt.timedelta(days=90)
MAX_BUCKETS = 2000
STATE_COUNTS = HISTORY_COUNTS[:6]
WORK_COUNTS = HISTORY_COUNTS[6:]


def record(engine, replicable_name: str, counts: dict, work: dict,
           interval_seconds: float, now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    values = {"replicable_name": replicable_name, "recorded_at": now,
              "recorded_epoch": int(now.timestamp()), "interval_seconds": interval_seconds}
    values.update({name: int(counts.get(name) or 0) for name in STATE_COUNTS})
    values.update({name: int(work.get(name) or 0) for name in WORK_COUNTS})
    with writing(engine) as connection:
        connection.execute(insert(StatusHistory.__table__).values(**values))


def prune(engine, older_than: dt.timedelta = RETENTION) -> int:
    cutoff = int((utcnow() - older_than).timestamp())
    table = StatusHistory.__table__
    with writing(engine) as connection:
        return connection.execute(delete(table).where(table.c.recorded_epoch < cutoff)).rowcount


def read(engine, replicable_name: str, start: dt.datetime, end: dt.datetime,
         buckets: int = 200) -> list[dict]:
    """Points for [start, end]: per bucket, the counts of its newest snapshot
    and the work done in it as rates."""
    if end <= start:
        raise ValueError("the end of the range must be after its start")
    buckets = max(1, min(int(buckets), MAX_BUCKETS))
    first, last = int(start.timestamp()), int(end.timestamp())
    width = max(1, -(-(last - first) // buckets))  # ceiling division
    table = StatusHistory.__table__
    in_range = (table.c.replicable_name == replicable_name,
                table.c.recorded_epoch >= first, table.c.recorded_epoch <= last)
    bucket = (table.c.recorded_epoch - first) // width  # floor: epochs are >= first
    # Work is summed per bucket. The seconds it covers are its span of
    # snapshots plus one interval (not the sum of intervals: engines sharing
    # a tracking DB each record their own work, and their rows overlap).
    work = (select(bucket.label("bucket"),
                   func.max(table.c.recorded_epoch).label("epoch"),
                   (func.max(table.c.recorded_epoch) - func.min(table.c.recorded_epoch)
                    + func.max(table.c.interval_seconds)).label("seconds"),
                   *[func.sum(table.c[name]).label(name) for name in WORK_COUNTS])
            .where(*in_range).group_by(bucket).subquery())
    # Counts are those of the bucket's newest snapshot, so the last point is
    # the current state rather than an average over the bucket.
    newest = table.alias("newest")
    statement = (select(work, *[func.max(newest.c[name]).label(name) for name in STATE_COUNTS])
                 .join(newest, (newest.c.replicable_name == replicable_name)
                       & (newest.c.recorded_epoch == work.c.epoch))
                 .group_by(*work.c).order_by(work.c.bucket))
    with engine.connect() as connection:
        rows = connection.execute(statement).mappings().all()
    points = []
    for row in rows:
        registry = float(row["registry_count"] or 0)
        seconds = float(row["seconds"] or 0) or float(width)
        point = {"time": dt.datetime.fromtimestamp(row["epoch"], dt.timezone.utc)}
        point.update({name: round(float(row[name] or 0)) for name in STATE_COUNTS})
        point["synced_percentage"] = _percent(row["synced_count"], registry)
        point["verified_percentage"] = _percent(row["verified_count"], registry)
        for name in ("syncs_succeeded", "syncs_failed", "verifications_succeeded",
                     "verifications_failed"):
            point[f"{name}_per_minute"] = float(row[name] or 0) * 60.0 / seconds
        point["bytes_per_second"] = float(row["bytes_downloaded"] or 0) / seconds
        points.append(point)
    return points


def _percent(part, whole: float) -> float:
    """Rounded down to hundredths: 100 only when every registry is there."""
    whole = int(whole)
    return (int(part or 0) * 10_000 // whole) / 100 if whole else 0.0

