"""What the primary stores: namespaces, projects and replicable blobs.

Creating a blob writes its row and file, publishes `created` and marks it
pending checksumming; deleting one publishes `deleted` with the blob path
and removes the file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine

from backend.db.engine import writing
from backend.db.primary_schema import DEFAULT_SHARD, Namespace, Project
from backend.framework.clock import utcnow
from backend.framework.replicator import FileStore
from backend.primary import events
from backend.primary.storage import BlobStorage
from backend.primary.verification_store import PrimaryVerificationStore

DEFAULT_NAMESPACE = "default"
DEFAULT_PROJECT = "default"


class CatalogError(ValueError):
    """Bad input to a catalog operation; nothing was changed."""


@dataclass
class Catalog:
    engine: Engine
    storage: BlobStorage
    replicator: type
    # Events are published only while replication is on and a secondary exists.
    publish_events: bool = True
    _verification: PrimaryVerificationStore = field(init=False)

    def __post_init__(self) -> None:
        self._verification = PrimaryVerificationStore(self.engine, self.replicator)

    # --- namespaces and projects ---------------------------------------------

    def ensure_namespace_path(self, path: str) -> int:
        """Create `group/sub/...` as a tree; returns the id of the last part."""
        parts = [part.strip() for part in path.strip("/").split("/")]
        if not path.strip("/") or any(not part for part in parts):
            raise CatalogError(f"invalid namespace path {path!r}")
        parent_id = None
        with writing(self.engine) as connection:
            for part in parts:
                parent_clause = (Namespace.parent_id.is_(None) if parent_id is None
                                 else Namespace.parent_id == parent_id)
                found = connection.execute(select(Namespace.id).where(
                    Namespace.name == part, parent_clause)).scalar()
                if found is None:
                    found = connection.execute(insert(Namespace).values(
                        name=part, parent_id=parent_id).returning(Namespace.id)).scalar_one()
                parent_id = found
        return parent_id

    def add_project(self, name: str, namespace_path: str, shard: str = DEFAULT_SHARD) -> int:
        if not name.strip():
            raise CatalogError("a project needs a name")
        if not shard.strip():
            raise CatalogError("a shard name cannot be empty")
        namespace_id = self.ensure_namespace_path(namespace_path)
        with writing(self.engine) as connection:
            return connection.execute(insert(Project).values(
                name=name.strip(), namespace_id=namespace_id,
                repository_storage=shard.strip()).returning(Project.id)).scalar_one()

    def default_project_id(self) -> int:
        with self.engine.connect() as connection:
            found = connection.execute(select(Project.id).order_by(Project.id).limit(1)).scalar()
        return found if found is not None else self.add_project(DEFAULT_PROJECT, DEFAULT_NAMESPACE)

    def project_exists(self, project_id: int) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(
                select(Project.id).where(Project.id == project_id)).first() is not None

    # --- blobs -------------------------------------------------------------------

    def add_file(self, source: str | os.PathLike, project_id: int | None = None,
                 file_store: int = FileStore.LOCAL) -> int:
        if not os.path.isfile(source):
            raise CatalogError(f"not a readable file: {source}")
        project_id = self._checked_project(project_id)
        relative = self.storage.new_relative_path(self.replicator.plural_name,
                                                  os.path.basename(source))
        size = self.storage.store_copy(source, relative, file_store)
        return self._insert(project_id, relative, file_store, size)

    def add_bytes(self, data: bytes, filename: str, project_id: int | None = None,
                  file_store: int = FileStore.LOCAL) -> int:
        project_id = self._checked_project(project_id)
        relative = self.storage.new_relative_path(self.replicator.plural_name, filename)
        size = self.storage.store_bytes(data, relative, file_store)
        return self._insert(project_id, relative, file_store, size)

    def _checked_project(self, project_id: int | None) -> int:
        if project_id is None:
            return self.default_project_id()
        if not self.project_exists(project_id):
            raise CatalogError(f"project {project_id} does not exist")
        return project_id

    def _insert(self, project_id: int, relative: str, file_store: int, size: int) -> int:
        model = self.replicator.model_table()
        now = utcnow()
        try:
            with writing(self.engine) as connection:
                model_id = connection.execute(insert(model).values(
                    project_id=project_id, file=relative, file_store=file_store, size=size,
                    created_at=now, updated_at=now).returning(model.c.id)).scalar_one()
                self._verification.mark_pending(connection, model_id)
                if self.publish_events:
                    events.publish(connection, self.replicator.replicable_name,
                                   events.CREATED, {"model_record_id": model_id})
        except BaseException:
            self.storage.delete(relative, file_store)
            raise
        return model_id

    def delete(self, model_ids: list[int]) -> list[int]:
        """Delete blobs; refuses the whole call if any id is unknown."""
        model = self.replicator.model_table()
        with writing(self.engine) as connection:
            rows = connection.execute(select(model.c.id, model.c.file, model.c.file_store)
                                      .where(model.c.id.in_(model_ids))).all()
            missing = sorted(set(model_ids) - {row.id for row in rows})
            if missing:
                raise CatalogError("no such " + self.replicator.title.lower() + ": "
                                   + ", ".join(map(str, missing)))
            if any(row.file_store == FileStore.REMOTE for row in rows):
                self.storage.object_bucket()  # refuses at once when there is none
            for row in rows:
                if self.replicator.verification.separate:
                    key = self.replicator.verification.table.c[self.replicator.verification.key]
                    connection.execute(delete(self.replicator.verification.table)
                                       .where(key == row.id))
                connection.execute(delete(model).where(model.c.id == row.id))
                if self.publish_events:
                    events.publish(connection, self.replicator.replicable_name, events.DELETED,
                                   {"model_record_id": row.id, "blob_path": row.file,
                                    "uploader_class": self.replicator.uploader_class})
        for row in rows:
            self.storage.delete(row.file, row.file_store)
        return [row.id for row in rows]

    def list(self, limit: int | None = None, newest_first: bool = False) -> list[dict]:
        model = self.replicator.model_table()
        state = self.replicator.verification.table
        key = state.c[self.replicator.verification.key]
        statement = select(model.c.id, model.c.project_id, model.c.file, model.c.file_store,
                           model.c.size, model.c.created_at, state.c.verification_state,
                           state.c.verification_checksum)
        if self.replicator.verification.separate:
            statement = statement.outerjoin(state, key == model.c.id)
        statement = statement.order_by(model.c.id.desc() if newest_first else model.c.id)
        if limit:
            statement = statement.limit(limit)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(statement)]

    def count(self, file_store: int | None = None) -> int:
        """Records of the type; those of one file_store when given."""
        model = self.replicator.model_table()
        statement = select(func.count()).select_from(model)
        if file_store is not None:
            statement = statement.where(model.c.file_store == file_store)
        with self.engine.connect() as connection:
            return connection.execute(statement).scalar_one()
