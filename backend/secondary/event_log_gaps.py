"""Event log ids the cursor jumped over, kept in the tracking DB and looked
for again (GitLab's Gitlab::Geo::EventGapTracking).

The primary's log ids come from a sequence that hands them out when a
transaction inserts, not when it commits: on PostgreSQL a create held open
in one transaction while a later one commits is invisible when the
secondary reads past it, and the cursor moves beyond its id. Every id
between the cursor and the events read (or between two events read) is a
gap, stored with the time it was seen. Each poll asks the primary for the
open gaps; the events found are handled like any other and their gaps
closed. A gap not found within GAP_LIFETIME is dropped: its transaction was
rolled back, or held so long that the consistency walk is the one to find
its record. At most MAX_OPEN_GAPS are kept (the highest ids, which are the
newest).
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection, Engine

from backend.db.engine import writing
from backend.db.tracking_schema import EventLogGap

log = logging.getLogger(__name__)

# GitLab starts looking 10 minutes after a gap was seen and gives up after an
# hour; an open transaction on our primary lasts milliseconds (a record and
# its event, or a checksum and its event), so we look on every poll from the
# first and give up after 10 minutes.
GAP_LIFETIME = dt.timedelta(minutes=10)
MAX_OPEN_GAPS = 10_000
RECHECK_BATCH = 1_000  # ids asked of the primary in one request (its MAX_READ)


def skipped_ids(previous: int, seen: list[int], room: int = MAX_OPEN_GAPS) -> list[int]:
    """The ids missing between `previous` and the ascending ids `seen`, at
    most `room` of them (the highest), without building a list of a jump
    of millions."""
    ranges = []
    last = previous
    for event_id in seen:
        if event_id > last + 1:
            ranges.append((last + 1, event_id))
        last = max(last, event_id)
    kept: list[int] = []
    for start, stop in reversed(ranges):
        if len(kept) >= room:
            break
        start = max(start, stop - (room - len(kept)))
        kept[:0] = range(start, stop)
    return kept


class EventLogGaps:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, connection: Connection, previous_cursor: int, ids: list[int],
               now: dt.datetime) -> None:
        """Store the gaps found above `previous_cursor`, in the caller's
        transaction (the one moving the cursor), then drop the lowest ids
        beyond MAX_OPEN_GAPS."""
        # Gaps above the old cursor can only be left from a cursor set back
        # by hand: none is real, and they would collide with the new ones.
        connection.execute(delete(EventLogGap).where(EventLogGap.event_id > previous_cursor))
        if not ids:
            return
        connection.execute(insert(EventLogGap),
                           [{"event_id": event_id, "seen_at": now} for event_id in ids])
        total = connection.execute(select(func.count()).select_from(EventLogGap)).scalar_one()
        if total > MAX_OPEN_GAPS:
            lowest_kept = connection.execute(
                select(EventLogGap.event_id).order_by(EventLogGap.event_id.desc())
                .offset(MAX_OPEN_GAPS - 1).limit(1)).scalar_one()
            dropped = connection.execute(
                delete(EventLogGap).where(EventLogGap.event_id < lowest_kept)).rowcount
            log.warning("more than %d event log gaps open: stopped looking for the %d "
                        "oldest; the consistency walk will find their records",
                        MAX_OPEN_GAPS, dropped)

    def open_after(self, after: int, limit: int = RECHECK_BATCH) -> list[tuple[int, dt.datetime]]:
        """(event id, seen at) of open gaps above `after`, lowest first."""
        with self.engine.connect() as connection:
            return [(row.event_id, row.seen_at) for row in connection.execute(
                select(EventLogGap.event_id, EventLogGap.seen_at)
                .where(EventLogGap.event_id > after)
                .order_by(EventLogGap.event_id).limit(limit))]

    def close(self, ids: list[int]) -> None:
        """The events were found (or given up on): forget their gaps."""
        if not ids:
            return
        with writing(self.engine) as connection:
            connection.execute(delete(EventLogGap).where(EventLogGap.event_id.in_(ids)))

    def summary(self) -> tuple[int, int | None]:
        """(open gaps, lowest open gap id or None)."""
        with self.engine.connect() as connection:
            row = connection.execute(select(func.count(), func.min(EventLogGap.event_id))
                                     .select_from(EventLogGap)).one()
        return int(row[0]), row[1]
