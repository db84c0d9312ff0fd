"""What each registry is: the file name, size, storage, project, shard and
checksum of its record, as the primary describes it, kept beside the
registry (`<name>_registry_details`, one row per registry, made by a trigger
when the registry is).

The primary's descriptions arrive in batches, never per row: with every
range of the consistency walk (`replicables`), and for the records named by
a batch of events (`states`). Only rows whose description changed are
written.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import bindparam, select, update

from backend.db.engine import writing
from backend.framework.clock import utcnow
from backend.secondary.registry_table import CHUNK, RegistryTable

# A detail column and the field of the primary's description it comes from.
FIELDS = {"file_name": "file_name", "size": "size", "file_store": "file_store",
          "project_id": "project_id", "project_path": "project_path", "shard": "shard",
          "primary_checksum": "checksum"}


def _details_of(described: dict) -> dict:
    return {column: described.get(field) for column, field in FIELDS.items()}


class RegistryDetails(RegistryTable):
    def __init__(self, engine, replicator) -> None:
        super().__init__(engine, replicator)
        self.details = replicator.details_table()
        self.key = self.details.c[replicator.registry_fk]

    def record(self, described: Iterable[dict]) -> int:
        """Keep the primary's descriptions (its `replicables` or `states`
        rows) of records that have a registry; returns how many changed."""
        wanted = {int(row["id"]): _details_of(row) for row in described if "file_name" in row}
        if not wanted:
            return 0
        current = self.current(wanted)
        changed = [{"b_key": model_id, **{f"b_{k}": v for k, v in details.items()}}
                   for model_id, details in wanted.items()
                   if model_id in current and current[model_id] != details]
        if not changed:
            return 0
        now = utcnow()
        for row in changed:
            row["b_described_at"] = now
        d = self.details
        statement = (update(d).where(self.key == bindparam("b_key"))
                     .values({column: bindparam(f"b_{column}")
                              for column in (*FIELDS, "described_at")}))
        with writing(self.engine) as connection:
            for start in range(0, len(changed), CHUNK):
                connection.execute(statement, changed[start:start + CHUNK])
        return len(changed)

    def current(self, model_ids: Iterable[int]) -> dict[int, dict]:
        """The details kept now for these model ids (those with a registry)."""
        ids = sorted(model_ids)
        d = self.details
        found: dict[int, dict] = {}
        if not ids:
            return found
        columns = [self.key, *(d.c[column] for column in FIELDS)]
        with self.engine.connect() as connection:
            if ids[-1] - ids[0] < 4 * len(ids):  # a range: one BETWEEN reads it
                rows = connection.execute(select(*columns)
                                          .where(self.key.between(ids[0], ids[-1])))
                rows = list(rows)
            else:
                rows = []
                for start in range(0, len(ids), CHUNK):
                    rows += connection.execute(select(*columns).where(
                        self.key.in_(ids[start:start + CHUNK]))).all()
        for row in rows:
            found[row[0]] = dict(zip(FIELDS, row[1:]))
        return found
