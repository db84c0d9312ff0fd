"""Column types that behave the same on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.sqltypes import NullType
from sqlalchemy.types import TypeDecorator

UTC = dt.timezone.utc
MAX_ID = 2**63 - 1  # ids are BIGINT; larger numbers overflow SQLite's INTEGER


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes in and out.

    PostgreSQL stores `timestamp with time zone`; SQLite stores naive UTC
    text in one fixed format, so string comparison orders times correctly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use backend.framework.clock")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class NullsFirst(ColumnElement):
    """An index column sorted NULLS FIRST on PostgreSQL.

    SQLite refuses NULLS FIRST in an index but already sorts NULLs first in
    ascending order, so there it is the bare column.
    """

    inherit_cache = True

    def __init__(self, column_name: str) -> None:
        self.column_name = column_name
        self.type = NullType()


@compiles(NullsFirst)
def _nulls_first_default(element, compiler, **kw):
    return f"{element.column_name} NULLS FIRST"


@compiles(NullsFirst, "sqlite")
def _nulls_first_sqlite(element, compiler, **kw):
    return element.column_name
