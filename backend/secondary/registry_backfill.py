"""Creating and removing registries, and the transitions the primary's
events ask for: the writes of the event consumer and of the consistency
walk (backfill)."""
from __future__ import annotations

import json
from typing import Iterable

from sqlalchemy import (ARRAY, BigInteger, String, bindparam, delete, func, select, true,
                        update)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from backend.db.engine import writing
from backend.framework import transitions as tr
from backend.framework.clock import utcnow
from backend.framework.states import SyncState, VerificationState
from backend.secondary.registry_table import CHUNK, RegistryTable

INSERT_CHUNK = 50_000


class RegistryBackfill(RegistryTable):
    # --- events ----------------------------------------------------------------

    def ensure_pending(self, model_id: int, *, reset_existing: bool) -> None:
        """`created`: create the registry pending, or set an existing one pending."""
        with writing(self.engine) as connection:
            inserted = connection.execute(self._insert_new().values(
                {self.fk.name: model_id, "created_at": utcnow()})).rowcount
            if not inserted and reset_existing:
                connection.execute(update(self.table).where(self.fk == model_id)
                                   .values(**tr.sync_pending()))

    def checksum_succeeded(self, model_id: int) -> bool:
        """`checksum_succeeded`: the primary has a (new) checksum; verify again."""
        t = self.table
        with writing(self.engine) as connection:
            row = connection.execute(select(t.c.verification_state)
                                     .where(self.fk == model_id)).first()
            if row is None:
                return False
            values = tr.verification_pending(
                from_failed=row[0] == VerificationState.FAILED, registry=True)
            connection.execute(update(t).where(self.fk == model_id).values(**values))
            return True

    def enable_verification(self, model_ids: Iterable[int]) -> int:
        """Synced registries with verification disabled become pending."""
        ids = list(model_ids)
        t = self.table
        changed = 0
        with writing(self.engine) as connection:
            for start in range(0, len(ids), CHUNK):
                changed += connection.execute(
                    update(t).where(self.fk.in_(ids[start:start + CHUNK]),
                                    t.c.state == SyncState.SYNCED,
                                    t.c.verification_state == VerificationState.DISABLED)
                    .values(**tr.verification_pending(from_failed=False, registry=True))
                ).rowcount
        return changed

    def delete_by_model_ids(self, model_ids: Iterable[int]) -> int:
        ids = list(model_ids)
        deleted = 0
        with writing(self.engine) as connection:
            for start in range(0, len(ids), CHUNK):
                deleted += connection.execute(
                    delete(self.table).where(self.fk.in_(ids[start:start + CHUNK]))).rowcount
        return deleted

    # --- the consistency walk -------------------------------------------------------

    def tracked_model_ids(self, first: int, last: int) -> set[int]:
        with self.engine.connect() as connection:
            return set(connection.execute(
                select(self.fk).where(self.fk.between(first, last))).scalars())

    def last_tracked_model_id(self, after: int, within: int) -> int | None:
        """The highest model id among the first `within` tracked after `after`."""
        window = (select(self.fk).where(self.fk > after).order_by(self.fk)
                  .limit(within).subquery())
        with self.engine.connect() as connection:
            return connection.execute(select(func.max(window.c[self.fk.name]))).scalar()

    def insert_pending(self, model_ids: Iterable[int]) -> int:
        """Create pending registries for model ids that have none yet.

        The ids travel as one array (PostgreSQL) or JSON text (SQLite) per
        chunk and are expanded by the database: a backfill of a million
        registries costs about what a COPY of them does.
        """
        ids = sorted(set(int(model_id) for model_id in model_ids))
        if not ids:
            return 0
        now = utcnow()
        if self.postgresql:
            expanded = select(func.unnest(bindparam("ids", type_=ARRAY(BigInteger))),
                              bindparam("now", type_=self.table.c.created_at.type))
        else:
            each = func.json_each(bindparam("ids", type_=String)).table_valued("value")
            expanded = select(each.c.value, bindparam(
                "now", type_=self.table.c.created_at.type)).where(true())
        statement = self._insert_new().from_select([self.fk.name, "created_at"], expanded)
        inserted = 0
        with writing(self.engine) as connection:
            for start in range(0, len(ids), INSERT_CHUNK):
                chunk = ids[start:start + INSERT_CHUNK]
                inserted += connection.execute(statement, {
                    "ids": chunk if self.postgresql else json.dumps(chunk), "now": now}).rowcount
        return inserted

    def refresh_statistics(self) -> None:
        """ANALYZE the registry table (PostgreSQL): after a bulk insert, so
        that claims are planned by index order (see consistency.py). SQLite
        needs none: its claims name their index."""
        if not self.postgresql:
            return
        with self.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                f'ANALYZE "{self.table.name}"')

    def _insert_new(self):
        """INSERT that skips model ids already tracked (another engine won)."""
        dialect_insert = pg_insert if self.postgresql else sqlite_insert
        return dialect_insert(self.table).on_conflict_do_nothing(index_elements=[self.fk.name])
