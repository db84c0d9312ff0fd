"""Reading registries: pages in a sort order with keyset cursors, capped and
exact counts, streams for reports, counts by state, failure groups. Used by
the GraphQL API, the console, the CLI and reports; rows come back as
`RegistryRow`s. Keyset pages stay correct while rows change state: a cursor
names a position in the sort order, not an offset.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field

from typing import Iterator, Sequence

from sqlalchemy import and_, case, func, literal, or_, select

from backend.db.types import MAX_ID
from backend.framework.states import SyncState
from backend.secondary.registry_row import RegistryRow
from backend.secondary.registry_selection import RegistrySelection
from backend.secondary.registry_table import CHUNK

DEFAULT_SORT = "ID_ASC"
SORTS = {
    "ID_ASC": ("id", False), "ID_DESC": ("id", True),
    "VERIFIED_AT_ASC": ("verified_at", False), "VERIFIED_AT_DESC": ("verified_at", True),
    "LAST_SYNCED_AT_ASC": ("last_synced_at", False),
    "LAST_SYNCED_AT_DESC": ("last_synced_at", True),
}
MAX_COUNT_LIMIT = 1000


class QueryError(ValueError):
    """A bad argument; the message is meant for the API client."""


@dataclass
class Page:
    rows: list[RegistryRow]
    has_next_page: bool
    has_previous_page: bool
    cursors: list[str] = field(default_factory=list)

    @property
    def start_cursor(self) -> str | None:
        return self.cursors[0] if self.cursors else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def check_sort(sort: str) -> str:
    if sort not in SORTS:
        raise QueryError(f"unknown sort {sort!r}")
    return sort


def _sort_value(row: RegistryRow, sort: str):
    column, _ = SORTS[sort]
    return row.registry_id if column == "id" else getattr(row, column)


def encode_cursor(row: RegistryRow, sort: str) -> str:
    value = _sort_value(row, sort)
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    raw = json.dumps({"id": row.registry_id, "v": value, "s": sort}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[int, object]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        registry_id, value = int(data["id"]), data["v"]
        if data.get("s") != sort or not 0 <= registry_id <= MAX_ID:
            raise ValueError
        column, _ = SORTS[sort]
        if column != "id" and value is not None:
            value = dt.datetime.fromisoformat(value)
            if value.tzinfo is None:  # encode_cursor writes aware times only
                raise ValueError
    except (ValueError, KeyError, TypeError):
        raise QueryError(f"invalid cursor {cursor!r} for sort {sort}") from None
    return registry_id, value


def _after(table, sort: str, cursor: tuple[int, object], descending: bool):
    """Rows strictly after the cursor in the (possibly reversed) sort order.

    Ascending order is (value IS NULL, value, id): NULLs last; descending is
    the exact reverse, so NULLs come first.
    """
    registry_id, value = cursor
    column_name, _ = SORTS[sort]
    if column_name == "id":
        return table.c.id < registry_id if descending else table.c.id > registry_id
    column = table.c[column_name]
    if not descending:
        if value is None:
            return and_(column.is_(None), table.c.id > registry_id)
        return or_(column > value, and_(column == value, table.c.id > registry_id),
                   column.is_(None))
    if value is None:
        return or_(and_(column.is_(None), table.c.id < registry_id), column.isnot(None))
    return and_(column.isnot(None),
                or_(column < value, and_(column == value, table.c.id < registry_id)))


def _order(table, sort: str, descending: bool) -> list:
    column_name, _ = SORTS[sort]
    if column_name == "id":
        return [table.c.id.desc() if descending else table.c.id.asc()]
    column = table.c[column_name]
    null_rank = case((column.is_(None), 1), else_=0)
    if descending:
        return [null_rank.desc(), column.desc(), table.c.id.desc()]
    return [null_rank.asc(), column.asc(), table.c.id.asc()]


def fetch_page(engine, replicator, selection: RegistrySelection, sort: str = DEFAULT_SORT, *,
               first: int | None = None, after: str | None = None, last: int | None = None,
               before: str | None = None, offset: int | None = None,
               max_page_size: int = 500) -> Page:
    """One Relay page: `first` rows after `after`, or `last` rows before `before`.

    `offset` (forward pages only) skips rows first: the console's table
    jumps to any row of a million with it.
    """
    check_sort(sort)
    if first is not None and last is not None:
        raise QueryError("give first or last, not both")
    if offset is not None and (offset < 0 or last is not None):
        raise QueryError("offset must be positive and goes with first")
    size = first if last is None else last
    if size is None:
        size = min(20, max_page_size)
    if size < 0:
        raise QueryError("first and last must not be negative")
    if size > max_page_size:
        raise QueryError(f"at most {max_page_size} rows per page")
    table, selected = _where(replicator, selection)
    _, descending = SORTS[sort]
    backwards = last is not None
    reverse = descending != backwards
    where = list(selected)
    if after:
        where.append(_after(table, sort, decode_cursor(after, sort), descending))
    if before:
        where.append(_after(table, sort, decode_cursor(before, sort), not descending))
    statement = (select(table).where(*where).order_by(*_order(table, sort, reverse))
                 .limit(size + 1).offset(offset or None))
    with engine.connect() as connection:
        rows = [RegistryRow.from_record(record, replicator)
                for record in connection.execute(statement).mappings()]
        more = len(rows) > size
        rows = rows[:size]
        if backwards:
            rows.reverse()
        # Is there anything on the other side of the page?
        beyond = None
        if rows:
            edge = rows[0] if not backwards else rows[-1]
            edge_cursor = (edge.registry_id, _sort_value(edge, sort))
            other = _after(table, sort, edge_cursor, not descending if not backwards
                           else descending)
            beyond = connection.execute(
                select(literal(1)).where(*selected, other).limit(1)).first() is not None
        elif after or before or offset:
            beyond = True
    if backwards:
        has_previous, has_next = more, bool(beyond)
    else:
        has_next, has_previous = more, bool(beyond)
    return Page(rows, has_next, has_previous, [encode_cursor(row, sort) for row in rows])


def _where(replicator, selection: RegistrySelection):
    table = replicator.registry_table()
    return table, selection.clauses(table, table.c[replicator.registry_fk])


def capped_count(engine, replicator, selection: RegistrySelection,
                 limit: int = MAX_COUNT_LIMIT) -> int:
    """Rows matching, but at most limit + 1 (GitLab's LimitedCountableConnection)."""
    if not 1 <= limit <= MAX_COUNT_LIMIT:
        raise QueryError(f"count limit must be between 1 and {MAX_COUNT_LIMIT}")
    table, where = _where(replicator, selection)
    limited = select(table.c.id).where(*where).limit(limit + 1).subquery()
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(limited)).scalar_one()


def exact_count(engine, replicator, selection: RegistrySelection) -> int:
    table, where = _where(replicator, selection)
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)
                                  .where(*where)).scalar_one()


def stream(engine, replicator, selection: RegistrySelection, limit: int | None = None,
           chunk: int = 5000) -> Iterator[RegistryRow]:
    """Every matching row in id order, `chunk` at a time (keyset): a million
    rows in bounded memory."""
    table, where = _where(replicator, selection)
    last_id = 0
    remaining = limit
    while remaining is None or remaining > 0:
        size = chunk if remaining is None else min(chunk, remaining)
        statement = (select(table).where(*where, table.c.id > last_id)
                     .order_by(table.c.id).limit(size))
        with engine.connect() as connection:
            rows = [RegistryRow.from_record(record, replicator)
                    for record in connection.execute(statement).mappings()]
        if not rows:
            return
        yield from rows
        last_id = rows[-1].registry_id
        if remaining is not None:
            remaining -= len(rows)
        if len(rows) < size:
            return


def existing_ids(engine, replicator, ids: Sequence[int]) -> set[int]:
    """Which of these registry ids exist."""
    table = replicator.registry_table()
    found: set[int] = set()
    with engine.connect() as connection:
        for start in range(0, len(ids), CHUNK):
            found |= set(connection.execute(
                select(table.c.id).where(table.c.id.in_(list(ids[start:start + CHUNK]))))
                .scalars())
    return found


def state_groups(engine, replicator) -> list[tuple[int, int, int]]:
    """(state, verification state, registries) for every pair present: one
    GROUP BY that the (state, verification_state) index answers with an
    index-only scan. Status counts and the console's sidebar come from it."""
    table = replicator.registry_table()
    statement = (select(table.c.state, table.c.verification_state, func.count())
                 .group_by(table.c.state, table.c.verification_state))
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(statement)]


def failure_groups(engine, replicator, limit: int = 100) -> list[dict]:
    """Failed registries grouped by message, most recent failure first."""
    table = replicator.registry_table()
    message = func.coalesce(table.c.last_sync_failure, table.c.verification_failure)
    statement = (select(message.label("message"), func.count().label("count"),
                        func.max(table.c.last_synced_at).label("last_seen_at"))
                 .where(table.c.state == SyncState.FAILED)
                 .group_by(message)
                 .order_by(func.max(table.c.last_synced_at).desc(), func.count().desc())
                 .limit(limit))
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(statement).mappings()]


def failure_group_ids(engine, replicator, message: str | None) -> list[int]:
    """Registry ids of the failed registries with exactly this message."""
    table = replicator.registry_table()
    text = func.coalesce(table.c.last_sync_failure, table.c.verification_failure)
    condition = text.is_(None) if message is None else text == message
    with engine.connect() as connection:
        return list(connection.execute(select(table.c.id).where(
            table.c.state == SyncState.FAILED, condition).order_by(table.c.id)).scalars())


def failed_ids(engine, replicator, limit: int) -> list[int]:
    """Registry ids of failed registries, at most `limit` (newest ids first)."""
    table = replicator.registry_table()
    statement = (select(table.c.id).where(table.c.state == SyncState.FAILED)
                 .order_by(table.c.id.desc()).limit(limit))
    with engine.connect() as connection:
        return list(connection.execute(statement).scalars())
