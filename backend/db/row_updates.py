"""Guarded one-row UPDATEs that PostgreSQL runs for many rows in one statement.

An outcome is an UPDATE of one registry row, guarded by its claim. Run for a
group of outcomes as an executemany, each row is still a statement that the
driver renders and the server plans. On PostgreSQL the same UPDATE can take
every row's parameters as arrays instead:

    UPDATE t SET ... FROM unnest(CAST(:b_id AS BIGINT[]), ...) AS rows(b_id, ...)
    WHERE t.id = rows.b_id AND ...

one statement for the group, whatever its size. A statement is written once
as `build(value)`, where `value(name, type)` stands for a per-row parameter;
`per_row_update` returns its one-row form (bound parameters, any database)
and remembers how to build the many-row form, which `execute_for_rows` uses
on PostgreSQL. Each row's guard still decides alone whether it changes.
"""
from __future__ import annotations

import threading
from typing import Callable

from sqlalchemy import bindparam, cast, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

Build = Callable[[Callable], object]  # build(value) -> an UPDATE statement

_builders: dict[object, Build] = {}          # one-row statement -> its build
_many_rows: dict[object, tuple] = {}         # one-row statement -> (statement, names)
_lock = threading.Lock()


def per_row_update(build: Build):
    """The one-row form of `build`, with a bound parameter per value."""
    statement = build(lambda name, type_: bindparam(name, type_=type_))
    with _lock:
        _builders[statement] = build
    return statement


def execute_for_rows(connection: Connection, statement, rows: list[dict]) -> None:
    """Run `statement` once for each parameter set in `rows`: as one UPDATE
    over arrays on PostgreSQL when it came from `per_row_update`, otherwise
    as an executemany."""
    if connection.dialect.name == "postgresql" and len(rows) > 1:
        many = _many_rows_form(statement)
        if many is not None:
            many_rows, names = many
            connection.execute(many_rows, {name: [row[name] for row in rows] for name in names})
            return
    connection.execute(statement, rows)


def _many_rows_form(statement) -> tuple | None:
    with _lock:
        found = _many_rows.get(statement)
        build = _builders.get(statement)
    if found is not None or build is None:
        return found
    types: dict[str, object] = {}

    def collect(name, type_):
        types[name] = type_
        return bindparam(name, type_=type_)

    build(collect)
    names = list(types)
    arrays = [cast(bindparam(name, type_=ARRAY(types[name])), ARRAY(types[name]))
              for name in names]
    rows = func.unnest(*arrays).table_valued(*names).render_derived(name="rows")
    found = (build(lambda name, type_: rows.c[name]), names)
    with _lock:
        _many_rows[statement] = found
    return found
