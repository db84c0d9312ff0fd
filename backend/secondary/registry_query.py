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

from sqlalchemy import and_, func, literal, or_, select

from backend.db.types import MAX_ID
from backend.framework.states import SyncState, VerificationState
from backend.secondary.registry_row import RegistryRow
from backend.secondary.registry_selection import RegistrySelection, table_clauses
from backend.secondary.registry_table import CHUNK

DEFAULT_SORT = "ID_ASC"
MAX_COUNT_LIMIT = 1000


@dataclass(frozen=True)
class SortKey:
    """One column a page can be sorted by, and how its index orders it.

    `details`: the column is in the registry's details table, and a page
    is read from the details index, joined to its registries; else from
    the registry table, its details joined to the page afterwards.
    `nullable` columns sort as their index does, (column IS NULL, column,
    tie): NULLs last going up. `kind` is what a cursor holds ("id",
    "time", "int", "text").
    """
    column: str
    details: bool = False
    nullable: bool = True
    kind: str = "time"


SORT_KEYS = {
    "ID": SortKey("id", nullable=False, kind="id"),
    "MODEL_RECORD_ID": SortKey("model_id", nullable=False, kind="id"),
    "LAST_SYNCED_AT": SortKey("last_synced_at"),
    "VERIFIED_AT": SortKey("verified_at"),
    "FILE_NAME": SortKey("file_name", details=True, kind="text"),
    "SIZE": SortKey("size", details=True, kind="int"),
    "PROJECT_PATH": SortKey("project_path", details=True, kind="text"),
}
# GitLab's GeoRegistrySort has ID, VERIFIED_AT and LAST_SYNCED_AT; the others
# are this API's extensions (docs/API.md).
SORTS = {f"{name}_{way}": (key, way == "DESC")
         for name, key in SORT_KEYS.items() for way in ("ASC", "DESC")}


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


class _Ordering:
    """A sort of one type's registries: the columns it orders by, and the
    FROM clause it reads them from."""

    def __init__(self, replicator, sort: str) -> None:
        self.key, self.descending = SORTS[check_sort(sort)]
        self.sort = sort
        self.registry = replicator.registry_table()
        self.details = replicator.details_table()
        self.fk = self.registry.c[replicator.registry_fk]
        self.details_key = self.details.c[replicator.registry_fk]
        if self.key.details:
            self.value, self.tie = self.details.c[self.key.column], self.details_key
        elif self.key.column == "model_id":
            self.value, self.tie = self.fk, None
        else:
            self.value = self.registry.c[self.key.column]
            self.tie = self.registry.c.id if self.key.nullable else None

    def row_values(self, row: RegistryRow) -> tuple[object, object]:
        """(value, tie) of a row, as a cursor holds them."""
        column = self.key.column
        value = row.registry_id if column == "id" else getattr(row, column)
        tie = row.model_id if self.key.details else row.registry_id
        return value, tie

    def order(self, descending: bool, value=None, tie=None) -> list:
        value = self.value if value is None else value
        tie = self.tie if tie is None else tie
        columns = [value.is_(None), value] if self.key.nullable else [value]
        if tie is not None:
            columns.append(tie)
        return [column.desc() if descending else column.asc() for column in columns]

    def after(self, cursor: tuple[object, object], descending: bool):
        """Rows strictly after the cursor in the (possibly reversed) order.

        Ascending order is (value IS NULL, value, tie): NULLs last;
        descending is the exact reverse, so NULLs come first.
        """
        value, tie = cursor
        column = self.value
        if not self.key.nullable:
            return column < value if descending else column > value
        if not descending:
            if value is None:
                return and_(column.is_(None), self.tie > tie)
            return or_(column > value, and_(column == value, self.tie > tie), column.is_(None))
        if value is None:
            return or_(and_(column.is_(None), self.tie < tie), column.isnot(None))
        return and_(column.isnot(None), or_(column < value, and_(column == value, self.tie < tie)))


def encode_cursor(row: RegistryRow, sort: str, replicator) -> str:
    value, tie = _Ordering(replicator, sort).row_values(row)
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    raw = json.dumps({"id": tie, "v": value, "s": sort}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


_CURSOR_TYPES = {"id": int, "int": int, "text": str, "time": str}


def decode_cursor(cursor: str, sort: str) -> tuple[object, int]:
    """(value, tie) of a cursor made by encode_cursor for `sort`."""
    key, _ = SORTS[check_sort(sort)]
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        tie, value = data["id"], data["v"]
        if data.get("s") != sort or type(tie) is not int or not 0 <= tie <= MAX_ID:
            raise ValueError
        if value is None:
            if not key.nullable:
                raise ValueError
        elif type(value) is not _CURSOR_TYPES[key.kind]:
            raise ValueError
        elif key.kind in ("id", "int") and not -MAX_ID <= value <= MAX_ID:
            raise ValueError
        elif key.kind == "time":
            value = dt.datetime.fromisoformat(value)
            if value.tzinfo is None:  # encode_cursor writes aware times only
                raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise QueryError(f"invalid cursor {cursor!r} for sort {sort}") from None
    return value, tie


def fetch_page(engine, replicator, selection: RegistrySelection, sort: str = DEFAULT_SORT, *,
               first: int | None = None, after: str | None = None, last: int | None = None,
               before: str | None = None, offset: int | None = None,
               max_page_size: int = 500) -> Page:
    """One Relay page: `first` rows after `after`, or `last` rows before `before`.

    `offset` (forward pages only) skips rows first: the console's table
    jumps to any row of a million with it.

    A page in a registry column's order is read from the registry table
    alone and its details joined to those rows only, so an offset of a
    million costs what it costs without details. A page in a detail's order
    is read from the details' index joined to the registries.
    """
    ordering = _Ordering(replicator, sort)
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
    selected = table_clauses(replicator, selection)
    descending = ordering.descending
    backwards = last is not None
    reverse = descending != backwards
    where = list(selected)
    if after:
        where.append(ordering.after(decode_cursor(after, sort), descending))
    if before:
        where.append(ordering.after(decode_cursor(before, sort), not descending))
    registry, details = ordering.registry, ordering.details
    joined = details.join(registry, ordering.fk == ordering.details_key)
    detail_columns = [c for c in details.c if c is not ordering.details_key]
    if ordering.key.details:
        statement = (select(registry, *detail_columns).select_from(joined).where(*where)
                     .order_by(*ordering.order(reverse)).limit(size + 1).offset(offset or None))
    else:
        page = (select(registry).where(*where).order_by(*ordering.order(reverse))
                .limit(size + 1).offset(offset or None).subquery())
        statement = (select(page, *detail_columns)
                     .select_from(page.outerjoin(details, details_key_of(ordering, page)))
                     .order_by(*_page_order(ordering, page, reverse)))
    with engine.connect() as connection:
        rows = [RegistryRow.from_record(record, replicator)
                for record in connection.execute(statement).mappings()]
        more = len(rows) > size
        rows = rows[:size]
        if backwards:
            rows.reverse()
        # Is there anything on the other side of the page? Without a cursor
        # on that side the page starts at the first row (or `offset` rows
        # after it), so only a cursor needs a look.
        beyond = None
        if rows and not (before if backwards else after):
            beyond = bool(offset)
        elif rows:
            edge = rows[0] if not backwards else rows[-1]
            other = ordering.after(ordering.row_values(edge),
                                   not descending if not backwards else descending)
            probe = select(literal(1))
            if ordering.key.details:
                probe = probe.select_from(joined)
            beyond = connection.execute(probe.where(*selected, other).limit(1)).first() is not None
        elif after or before or offset:
            beyond = True
    if backwards:
        has_previous, has_next = more, bool(beyond)
    else:
        has_next, has_previous = more, bool(beyond)
    return Page(rows, has_next, has_previous,
                [encode_cursor(row, sort, replicator) for row in rows])


def details_key_of(ordering: _Ordering, page):
    return ordering.details_key == page.c[ordering.fk.name]


def _page_order(ordering: _Ordering, page, descending: bool) -> list:
    """The order again, on the columns of a page read as a subquery."""
    value = page.c[ordering.fk.name if ordering.key.column == "model_id" else ordering.key.column]
    tie = page.c.id if ordering.tie is not None else None
    return ordering.order(descending, value, tie)


def capped_count(engine, replicator, selection: RegistrySelection,
                 limit: int = MAX_COUNT_LIMIT) -> int:
    """Rows matching, but at most limit + 1 (GitLab's LimitedCountableConnection)."""
    if not 1 <= limit <= MAX_COUNT_LIMIT:
        raise QueryError(f"count limit must be between 1 and {MAX_COUNT_LIMIT}")
    table, where = replicator.registry_table(), table_clauses(replicator, selection)
    limited = select(table.c.id).where(*where).limit(limit + 1).subquery()
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(limited)).scalar_one()


def exact_count(engine, replicator, selection: RegistrySelection) -> int:
    table, where = replicator.registry_table(), table_clauses(replicator, selection)
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)
                                  .where(*where)).scalar_one()


def stream(engine, replicator, selection: RegistrySelection, limit: int | None = None,
           chunk: int = 5000) -> Iterator[RegistryRow]:
    """Every matching row in id order, `chunk` at a time (keyset): a million
    rows in bounded memory."""
    table, where = replicator.registry_table(), table_clauses(replicator, selection)
    details = replicator.details_table()
    fk = replicator.registry_fk
    key = details.c[fk]
    detail_columns = [c for c in details.c if c is not key]
    last_id = 0
    remaining = limit
    while remaining is None or remaining > 0:
        size = chunk if remaining is None else min(chunk, remaining)
        page = (select(table).where(*where, table.c.id > last_id)
                .order_by(table.c.id).limit(size).subquery())
        statement = (select(page, *detail_columns)
                     .select_from(page.outerjoin(details, key == page.c[fk]))
                     .order_by(page.c.id))
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
    """Failed registries grouped by kind and message, most recent first.

    "sync": downloads that failed (replication failed, verification not);
    "verification": replicas whose checksum could not be verified or did
    not match (verification failed; GitLab fails their sync too, so they
    are downloaded again). A group's registries are the selection
    `group_selection(group)`. A failure without a message is "".
    """
    table = replicator.registry_table()
    groups = []
    for kind, message, seen, where in (
            ("sync", table.c.last_sync_failure, table.c.last_synced_at,
             [table.c.state == int(SyncState.FAILED),
              table.c.verification_state != int(VerificationState.FAILED)]),
            ("verification", table.c.verification_failure, table.c.verified_at,
             [table.c.verification_state == int(VerificationState.FAILED)])):
        text = func.coalesce(message, "")
        statement = (select(text.label("message"), func.count().label("count"),
                            func.max(seen).label("last_seen_at"))
                     .where(*where).group_by(text)
                     .order_by(func.max(seen).desc(), func.count().desc()).limit(limit))
        with engine.connect() as connection:
            groups += [{"kind": kind, **row} for row in connection.execute(statement).mappings()]
    newest = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    groups.sort(key=lambda g: (g["last_seen_at"] or newest, g["count"]), reverse=True)
    return groups[:limit]


def group_selection(group: dict) -> RegistrySelection:
    """The registries of a failure group of `failure_groups`."""
    if group["kind"] == "verification":
        return RegistrySelection(verification_failure=group["message"] or "")
    return RegistrySelection(sync_failure=group["message"] or "")


def failed_ids(engine, replicator, limit: int) -> list[int]:
    """Registry ids of failed registries, at most `limit` (newest ids first)."""
    table = replicator.registry_table()
    statement = (select(table.c.id).where(table.c.state == SyncState.FAILED)
                 .order_by(table.c.id.desc()).limit(limit))
    with engine.connect() as connection:
        return list(connection.execute(statement).scalars())
