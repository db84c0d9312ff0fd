"""Guarded one-row UPDATEs that PostgreSQL runs for many rows in one statement.

An outcome is an UPDATE of one registry row, guarded by its claim. Run for a
group of outcomes as an executemany, each row is still a statement that the
driver renders and the server plans. On PostgreSQL the same UPDATE can take
every row's parameters as arrays instead:

    UPDATE t SET ... FROM unnest(CAST(:b_id AS BIGINT[]), ...) AS rows(b_id, ...)
    WHERE t.id = rows.b_id AND ...

one statement for the group, whatever its size. Elsewhere (SQLite) the
rows go to the driver's executemany as tuples, converted by the columns'
own bind processors: SQLAlchemy's executemany builds a parameter dict per
row through the compiler, which cost the recorder more than SQLite itself.

A statement is written once as `build(value)`, where `value(name, type)`
stands for a per-row parameter; `per_row_update` returns its one-row form
(bound parameters, any database) and remembers how to build the other
forms, which `execute_for_rows` uses. Each row's guard still decides alone
whether it changes.
"""
from __future__ import annotations

import threading
from typing import Callable

from sqlalchemy import bindparam, cast, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

Build = Callable[[Callable], object]  # build(value) -> an UPDATE statement

# one-row statement -> (its build, the names of its per-row parameters)
_builders: dict[object, tuple[Build, frozenset]] = {}
_many_rows: dict[object, tuple] = {}         # one-row statement -> (statement, names)
_driver_forms: dict[tuple, tuple] = {}       # (statement, dialect name) -> (sql, values)
_lock = threading.Lock()


def per_row_update(build: Build):
    """The one-row form of `build`, with a bound parameter per value."""
    names: set[str] = set()

    def value(name, type_):
        names.add(name)
        return bindparam(name, type_=type_)

    statement = build(value)
    with _lock:
        _builders[statement] = (build, frozenset(names))
    return statement


def execute_for_rows(connection: Connection, statement, rows: list[dict]) -> None:
    """Run `statement` once for each parameter set in `rows`: as one UPDATE
    over arrays on PostgreSQL when it came from `per_row_update`, otherwise
    as an executemany."""
    dialect = connection.dialect
    if dialect.name == "postgresql" and len(rows) > 1:
        many = _many_rows_form(statement)
        if many is not None:
            many_rows, names = many
            connection.execute(many_rows, {name: [row[name] for row in rows] for name in names})
            return
    if dialect.paramstyle == "qmark" and len(rows) > 1:
        driver = _driver_form(statement, dialect)
        if driver is not None:
            sql, values = driver
            connection.exec_driver_sql(sql, [
                tuple(value(row) for value in values) for row in rows])
            return
    connection.execute(statement, rows)


def _driver_form(statement, dialect) -> tuple | None:
    """The statement as SQL with `?` placeholders, and for each placeholder
    a function of a row giving the driver's value: the row's parameter
    through its type's bind processor, or the statement's own constant."""
    def make(build, per_row):
        compiled = statement.compile(dialect=dialect)
        values = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if name in per_row:
                values.append(_per_row(name, process))
            else:
                constant = bind.effective_value
                constant = process(constant) if process else constant
                values.append(lambda row, constant=constant: constant)
        return compiled.string, values

    return _form(_driver_forms, (statement, dialect.name), statement, make)


def _per_row(name: str, process):
    if process is None:
        return lambda row: row[name]
    return lambda row: process(row[name])


def _many_rows_form(statement) -> tuple | None:
    def make(build, per_row):
        types: dict[str, object] = {}

        def collect(name, type_):
            types[name] = type_
            return bindparam(name, type_=type_)

        build(collect)
        names = list(types)
        arrays = [cast(bindparam(name, type_=ARRAY(types[name])), ARRAY(types[name]))
                  for name in names]
        rows = func.unnest(*arrays).table_valued(*names).render_derived(name="rows")
        return build(lambda name, type_: rows.c[name]), names

    return _form(_many_rows, statement, statement, make)


def _form(cache: dict, key, statement, make) -> tuple | None:
    """The form of `statement` cached under `key`, made once from its build
    and per-row names by `make(build, names)`; None for a statement that
    did not come from `per_row_update`."""
    with _lock:
        found = cache.get(key)
        known = _builders.get(statement)
    if found is not None or known is None:
        return found
    found = make(*known)
    with _lock:
        cache[key] = found
    return found
