"""Replicas of deleted records whose files could not be removed.

A `deleted` event (or the consistency walk finding a record gone) removes
the replica's file, then its registry. When the file cannot be removed
(no permission on its folder, a directory where the file was, a
read-only disk), the registry still goes, with its record, and the event
cursor moves on: the file waits in `replica_removals` with a readable
reason ("Could not remove the replica: permission denied (…path…)") and
a retry time by the backoff of failed syncs (`framework/backoff.py`).
The `replica removals` housekeeping job tries the due ones again and
forgets each once its file is gone. `status` lists how many wait and the
newest reason; `check` warns about them.

A record id the primary hands out again (SQLite may reuse the highest id
after its row was deleted) has a registry once more: its file is then a
new replica, and the removal is dropped instead of carried out.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from backend.db.engine import is_postgresql, writing
from backend.db.tracking_schema import ReplicaRemoval
from backend.framework.backoff import next_retry_time
from backend.framework.clock import utcnow
from backend.framework.failures import truncate_failure

log = logging.getLogger(__name__)

RETRY_BATCH = 100  # removals tried again per pass of the job


def removal_failure(exc: OSError, path) -> str:
    """'Could not remove the replica: permission denied (/srv/…/17)'."""
    reason = (exc.strerror or str(exc) or "the file system refused").strip()
    reason = reason[:1].lower() + reason[1:]
    return truncate_failure(f"Could not remove the replica: {reason} ({path})")


@dataclass(frozen=True)
class PendingRemoval:
    replicable_name: str
    model_id: int
    path: str
    retry_count: int
    retry_at: object
    last_failure: str


@dataclass
class RetryResult:
    removed: int = 0
    failing: int = 0
    last_failure: str | None = None


class ReplicaRemovals:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.table = ReplicaRemoval.__table__

    def remove_files(self, storage, replicator, model_ids: Iterable[int]) -> int:
        """Remove the replicas' files; each one that cannot be removed is
        kept here for a retry, and never stops the others. Returns how many
        are kept."""
        failures = {}
        for model_id in model_ids:
            try:
                storage.remove(replicator, model_id)
            except OSError as exc:
                path = storage.path_text(replicator, model_id)
                failures[model_id] = (path, removal_failure(exc, path))
                log.warning("%s", failures[model_id][1])
        if failures:
            self._record(replicator.replicable_name, failures)
        return len(failures)

    def _record(self, name: str, failures: dict[int, tuple[str, str]]) -> None:
        """A first failure, or a new one for a removal already waiting."""
        now = utcnow()
        dialect_insert = pg_insert if is_postgresql(self.engine) else sqlite_insert
        t = self.table
        with writing(self.engine) as connection:
            for model_id, (path, failure) in failures.items():
                statement = dialect_insert(t).values(
                    replicable_name=name, model_id=model_id, path=path, created_at=now,
                    retry_count=1, retry_at=next_retry_time(1, now=now), last_failure=failure)
                connection.execute(statement.on_conflict_do_update(
                    index_elements=["replicable_name", "model_id"],
                    set_={"last_failure": failure, "path": path}))

    def retry_due(self, storage, replicators: list, now=None) -> "RetryResult":
        """Try the due removals again, the longest due first."""
        now = now or utcnow()
        by_name = {r.replicable_name: r for r in replicators}
        t = self.table
        with self.engine.connect() as connection:
            due = connection.execute(
                select(t.c.id, t.c.replicable_name, t.c.model_id, t.c.retry_count)
                .where(t.c.retry_at <= now, t.c.replicable_name.in_(list(by_name)))
                .order_by(t.c.retry_at, t.c.id).limit(RETRY_BATCH)).all()
        result = RetryResult()
        for row_id, name, model_id, retry_count in due:
            replicator = by_name[name]
            if self._registered_again(replicator, model_id):
                self._forget(row_id)
                continue
            try:
                storage.remove(replicator, model_id)
            except OSError as exc:
                result.failing += 1
                result.last_failure = removal_failure(
                    exc, storage.path_text(replicator, model_id))
                self._failed_again(row_id, retry_count, result.last_failure, now)
                continue
            result.removed += 1
            self._forget(row_id)
        return result

    def _registered_again(self, replicator, model_id: int) -> bool:
        registry = replicator.registry_table()
        fk = registry.c[replicator.registry_fk]
        with self.engine.connect() as connection:
            return connection.execute(select(fk).where(fk == model_id)).first() is not None

    def _failed_again(self, row_id: int, retry_count: int, failure: str, now) -> None:
        count = min(retry_count + 1, 32767)
        with writing(self.engine) as connection:
            connection.execute(update(self.table).where(self.table.c.id == row_id).values(
                retry_count=count, retry_at=next_retry_time(count, now=now),
                last_failure=failure))

    def _forget(self, row_id: int) -> None:
        with writing(self.engine) as connection:
            connection.execute(delete(self.table).where(self.table.c.id == row_id))

    # --- reading ------------------------------------------------------------------

    def count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(self.table)).scalar()

    def pending(self, limit: int = 10) -> list[PendingRemoval]:
        """The removals waiting, the newest first."""
        t = self.table
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(t.c.replicable_name, t.c.model_id, t.c.path, t.c.retry_count,
                       t.c.retry_at, t.c.last_failure)
                .order_by(t.c.id.desc()).limit(limit)).all()
        return [PendingRemoval(*row) for row in rows]
