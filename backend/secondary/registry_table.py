"""A type's registry table in one tracking database: what the modules that
read and write it share (the table, its model id column, the dialect, a
transaction).

The SQL on registries is split by job: claims and timeouts
(`registry_claims.py`), the outcomes of syncs and verifications
(`registry_outcomes.py`), administrator actions (`registry_actions.py`),
creating and removing registries (`registry_backfill.py`) and reading
(`registry_query.py`).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from sqlalchemy import literal_column
from sqlalchemy.engine import Connection, Engine

from backend.db.engine import is_postgresql, writing

CHUNK = 1000  # ids per IN list, rows per write transaction of a bulk change


def is_(column, state: int):
    """`column = <number>` with the number in the SQL text, not bound: SQLite
    uses a partial index (WHERE state = 0) only for a literal it can match."""
    return column == literal_column(str(int(state)))


class RegistryTable:
    def __init__(self, engine: Engine, replicator) -> None:
        self.engine = engine
        self.replicator = replicator
        self.table = replicator.registry_table()
        self.fk = self.table.c[replicator.registry_fk]
        self.postgresql = is_postgresql(engine)

    @contextlib.contextmanager
    def transaction(self, connection: Connection | None = None) -> Iterator[Connection]:
        """The caller's transaction if given, else a write transaction of our own."""
        if connection is not None:
            yield connection
        else:
            with writing(self.engine) as connection:
                yield connection

    def nulls_first(self, column):
        """Ascending with NULLs first. SQLite sorts so by default, and with
        NULLS FIRST spelt out its planner no longer reads the index in order."""
        return column.asc().nulls_first() if self.postgresql else column.asc()
