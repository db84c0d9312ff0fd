"""In-scope replicables of an id range, as the Geo API lists them."""
from __future__ import annotations

import weakref
from pathlib import PurePosixPath

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased

from backend.db.engine import PreparedRead
from backend.db.primary_schema import Namespace, Project
from backend.framework.replicator import FileStore
from backend.framework.scope import SyncScope

MAX_BATCH = 10_000
MAX_NAMESPACE_DEPTH = 20  # GitLab's limit on nested groups


def scope_clauses(replicator, scope: SyncScope) -> list:
    """WHERE clauses on the model table for a secondary's scope."""
    model = replicator.model_table()
    clauses = []
    if replicator.object_storable and not scope.sync_object_storage:
        clauses.append(model.c.file_store == FileStore.LOCAL)
    if scope.selective_sync_type == "namespaces":
        clauses.append(model.c.project_id.in_(
            select(Project.id).where(Project.namespace_id.in_(
                _namespace_tree(scope.namespace_ids)))))
    elif scope.selective_sync_type == "shards":
        clauses.append(model.c.project_id.in_(
            select(Project.id).where(Project.repository_storage.in_(scope.shards))))
    return clauses


def _namespace_tree(namespace_ids):
    """The selected namespaces and all their descendants (recursive CTE)."""
    tree = (select(Namespace.id).where(Namespace.id.in_(list(namespace_ids)))
            .cte("namespace_tree", recursive=True))
    child = aliased(Namespace)
    # UNION (not UNION ALL) stops on a cycle instead of looping forever.
    tree = tree.union(select(child.id).where(child.parent_id == tree.c.id))
    return select(tree.c.id)


def list_range(engine: Engine, replicator, scope: SyncScope, after_id: int,
               batch_size: int = MAX_BATCH) -> dict:
    """The next `batch_size` model ids after `after_id`, and those in scope.

    `range_end` is the last model id of the range whatever the scope (None
    when the table has no ids past `after_id`), so the secondary can drop
    registries of out-of-scope records in it.
    """
    batch_size = max(1, min(int(batch_size), MAX_BATCH))
    model = replicator.model_table()
    window = (select(model.c.id).where(model.c.id > after_id)
              .order_by(model.c.id).limit(batch_size).subquery())
    with engine.connect() as connection:
        range_end = connection.execute(select(func.max(window.c.id))).scalar()
        if range_end is None:
            return {"range_start": after_id + 1, "range_end": None, "replicables": []}
        statement = (_described(replicator)
                     .where(model.c.id > after_id, model.c.id <= range_end,
                            *scope_clauses(replicator, scope))
                     .order_by(model.c.id))
        rows = connection.execute(statement).mappings().all()
        paths = project_paths(connection, rows)
    return {"range_start": after_id + 1, "range_end": range_end,
            "replicables": [describe(row, paths) for row in rows]}


def describe(row, paths: dict[int, str] | None = None) -> dict:
    """A replicable as the Geo API shows it, from a row mapping: its state
    and checksum, and, when the row has them, what the record is (file
    name, project and its full path, shard) for the secondaries' views."""
    checksum = row["verification_checksum"]
    described = {"id": row["id"], "file_store": row["file_store"], "size": row["size"],
                 "verification_state": row["verification_state"],
                 "checksum": checksum.decode("ascii") if checksum else None}
    if paths is not None:
        described.update(file_name=PurePosixPath(row["file"]).name,
                         project_id=row["project_id"],
                         project_path=paths.get(row["project_id"]),
                         shard=row["repository_storage"])
    return described


def _state_query(replicator, *extra):
    model = replicator.model_table()
    state = replicator.verification.table
    key = state.c[replicator.verification.key]
    statement = select(model.c.id, model.c.file_store, model.c.size,
                       state.c.verification_state, state.c.verification_checksum, *extra)
    if replicator.verification.separate:
        statement = statement.outerjoin(state, key == model.c.id)
    return statement


def _described(replicator):
    """The state query with what describes the record: its file and project."""
    model = replicator.model_table()
    projects = Project.__table__
    return (_state_query(replicator, model.c.file, model.c.project_id,
                         projects.c.repository_storage)
            .outerjoin(projects, projects.c.id == model.c.project_id))


def project_paths(connection, rows) -> dict[int, str]:
    """`namespace/…/project` of the rows' projects: their namespaces and
    ancestors are read a level at a time (a few queries for any batch)."""
    project_ids = {row["project_id"] for row in rows if row["project_id"] is not None}
    if not project_ids:
        return {}
    projects = Project.__table__
    namespaces = Namespace.__table__
    found = connection.execute(select(projects.c.id, projects.c.name, projects.c.namespace_id)
                               .where(projects.c.id.in_(project_ids))).all()
    known: dict[int, tuple[str, int | None]] = {}
    wanted = {namespace_id for _, _, namespace_id in found}
    for _ in range(MAX_NAMESPACE_DEPTH):
        wanted -= known.keys()
        if not wanted:
            break
        for namespace_id, name, parent_id in connection.execute(
                select(namespaces.c.id, namespaces.c.name, namespaces.c.parent_id)
                .where(namespaces.c.id.in_(wanted))):
            known[namespace_id] = (name, parent_id)
        wanted = {parent for _, parent in known.values() if parent is not None}

    def path(namespace_id: int | None) -> list[str]:
        parts, seen = [], set()
        while namespace_id in known and namespace_id not in seen:  # a cycle stops
            seen.add(namespace_id)
            name, namespace_id = known[namespace_id]
            parts.append(name)
        return parts[::-1]

    return {project_id: "/".join([*path(namespace_id), name])
            for project_id, name, namespace_id in found}


def states(engine: Engine, replicator, model_ids: list[int]) -> dict[int, dict]:
    """Primary state of specific records, and what they are (for
    verification and the views on a secondary)."""
    model = replicator.model_table()
    with engine.connect() as connection:
        rows = connection.execute(_described(replicator)
                                  .where(model.c.id.in_(model_ids))).mappings().all()
        paths = project_paths(connection, rows)
    return {row["id"]: describe(row, paths) for row in rows}


_blob_lookups: weakref.WeakKeyDictionary[Engine, dict[str, PreparedRead]] = \
    weakref.WeakKeyDictionary()


def blob(engine: Engine, replicator, model_id: int) -> dict | None:
    """State and stored (relative) path of one record, for a download: one
    query per blob served, compiled once per engine and replicator."""
    lookups = _blob_lookups.setdefault(engine, {})
    lookup = lookups.get(replicator.replicable_name)
    if lookup is None:
        model = replicator.model_table()
        lookup = lookups[replicator.replicable_name] = PreparedRead(engine, _state_query(
            replicator, model.c.file).where(model.c.id == bindparam("model_id")))
    row = lookup.first(engine, model_id=int(model_id))
    return None if row is None else {**describe(row), "file": row["file"]}


def in_scope_ids(engine: Engine, replicator, scope: SyncScope, model_ids: list[int]) -> set[int]:
    """Which of these records a secondary with `scope` replicates."""
    if not model_ids:
        return set()
    model = replicator.model_table()
    statement = select(model.c.id).where(model.c.id.in_(model_ids),
                                         *scope_clauses(replicator, scope))
    with engine.connect() as connection:
        return set(connection.execute(statement).scalars())


def count_in_scope(engine: Engine, replicator, scope: SyncScope) -> int:
    """Records of the type that a secondary with `scope` replicates."""
    model = replicator.model_table()
    statement = select(func.count()).select_from(model).where(
        *scope_clauses(replicator, scope))
    with engine.connect() as connection:
        return connection.execute(statement).scalar_one()
