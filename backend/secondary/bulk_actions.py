"""Resync or reverify many registries in batches, as GitLab's bulk services
do it: at most BATCH rows per transaction, with progress, cancellable, and
never two bulk jobs on one registry table at once.

Before, resync of every registry was one UPDATE: 3.9 s of SQLite's only
write lock at 1,000,000 rows (the engine could neither claim nor record
meanwhile) and a million dead tuples at once on PostgreSQL. Now the rows
the selection picks are walked in id order, BATCH at a time (GitLab's
BulkMarkPendingBatchWorker takes 1,000), each batch picked and changed in
one short transaction, so the engine's claims and outcomes get the lock
between two batches.

One job per table and tracking database: a job holds the lease
`bulk <table>` (`lease.py`, renewed every batch) for as long as it runs, so
a second one, from this process or another (the CLI, the console, the
GraphQL API), is refused with who holds it; at most BATCH registries chosen
by id are one transaction, not a job, and never refused. A cancelled job
stops after the batch it is in: what was changed stays changed, the rest
untouched.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from backend.db.engine import writing
from backend.db.tracking_schema import EngineLease
from backend.framework import transitions as tr
from backend.framework.clock import utcnow
from backend.framework.states import SyncState, VerificationState
from backend.secondary.lease import Lease, new_holder_id
from backend.secondary.registry_selection import RegistrySelection
from backend.secondary.registry_table import CHUNK, RegistryTable

BATCH = 1000  # rows per transaction, GitLab's batch
LEASE_TTL = dt.timedelta(seconds=60)  # a job that died frees its table after this
ACTIONS = ("resync", "reverify")
DEADLOCK_RETRIES = 5


class BulkActionRefused(Exception):
    """Another bulk job holds the table; the message says whose."""


@dataclass(frozen=True)
class BulkResult:
    changed: int
    cancelled: bool = False


class BulkAction(RegistryTable):
    def __init__(self, engine, replicator, *, leased: bool = True) -> None:
        """`leased`: take the table's lease (this product's tracking
        databases); a GitLab tracking database has no lease table (GitLab
        keeps its leases in Redis), so its jobs run unleased."""
        super().__init__(engine, replicator)
        self.leased = leased

    def run(self, action: str, selection: RegistrySelection, *,
            progress: Callable[[int, int], None] = lambda done, total: None,
            cancelled: Callable[[], bool] = lambda: False) -> BulkResult:
        """Resync or reverify what `selection` picks, BATCH rows a
        transaction. `progress(done, total)` after each batch: rows looked
        at of those the selection picked at the start (rows that appear
        meanwhile may make `done` pass `total`). Raises BulkActionRefused
        while another job runs on the table."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; use resync or reverify")
        if one_batch(selection) or not self.leased:  # not a job of ours, or not leasable
            return self._batches(action, selection, None, progress, cancelled)
        lease = Lease(self.engine, f"bulk {self.table.name}", new_holder_id(), ttl=LEASE_TTL)
        if not lease.acquire():
            raise BulkActionRefused(self._refusal(action))
        try:
            return self._batches(action, selection, lease, progress, cancelled)
        finally:
            lease.release()

    def _batches(self, action, selection, lease, progress, cancelled) -> BulkResult:
        t = self.table
        clauses = self._picked(action, selection)
        with self.engine.connect() as connection:
            total = sum(connection.execute(select(func.count()).select_from(t).where(
                *part())).scalar_one() for part in clauses)
        done = changed = 0
        progress(0, total)
        for part in clauses:
            after = 0
            while True:
                if cancelled():
                    return BulkResult(changed, cancelled=True)
                last, count = self._batch(action, part, after)
                if last is None:
                    break
                changed += count
                after = last
                done += count
                progress(done, total)
                if lease is not None and not lease.acquire():  # renewed; lost only past its TTL
                    raise BulkActionRefused(self._refusal(action))
        return BulkResult(changed)

    def _batch(self, action: str, part, after: int) -> tuple[int | None, int]:
        """One batch in one transaction: the next BATCH rows the part picks
        above id `after` are changed, by their id range (as GitLab's
        each_batch: no list of a thousand ids for the database to parse).
        Returns (the batch's last id or None when there is none, how many
        changed). On PostgreSQL the rows are locked in id order first, as
        the engine's releases and outcomes lock theirs, so that none of
        them waits on another in a cycle; a deadlock the server still
        reports is retried."""
        t = self.table
        picked = select(t.c.id).where(*part(), t.c.id > after).order_by(t.c.id).limit(BATCH)
        if self.postgresql:
            picked = picked.with_for_update()
        attempts = 0
        while True:
            try:
                with writing(self.engine) as connection:
                    ids = connection.execute(picked).scalars().all()
                    if not ids:
                        return None, 0
                    within = [*part(), t.c.id > after, t.c.id <= ids[-1]]
                    return ids[-1], self._change(connection, action, within)
            except OperationalError as exc:
                attempts += 1
                if not _deadlock(exc) or attempts > DEADLOCK_RETRIES:
                    raise

    def _picked(self, action: str, selection: RegistrySelection) -> list[Callable[[], list]]:
        """The selection's WHERE clauses, as parts whose id lists stay under
        CHUNK parameters each (SQLite's limit): a million ids chosen in the
        console are walked a thousand at a time."""
        t = self.table
        details = self.replicator.details_table()
        extra = [t.c.state == SyncState.SYNCED] if action == "reverify" else []
        parts = [selection]
        for name in ("ids", "model_ids"):
            chosen = getattr(selection, name)
            if chosen is not None and len(chosen) > CHUNK:
                parts = [selection.narrowed(**{name: chosen[start:start + CHUNK]})
                         for start in range(0, len(chosen), CHUNK)]
                break
        return [lambda part=part: [*part.clauses(t, self.fk, details), *extra]
                for part in parts]

    def _change(self, connection, action: str, within: list) -> int:
        t = self.table
        if action == "resync":
            return connection.execute(update(t).where(*within)
                                      .values(**tr.sync_pending())).rowcount
        # Rows not failed first: afterwards they are pending, so the second
        # statement, for failed rows, cannot count them again.
        others = connection.execute(
            update(t).where(*within, t.c.verification_state != VerificationState.FAILED)
            .values(**tr.verification_pending(from_failed=False, registry=True))).rowcount
        failed = connection.execute(
            update(t).where(*within, t.c.verification_state == VerificationState.FAILED)
            .values(**tr.verification_pending(from_failed=True, registry=True))).rowcount
        return others + failed

    def _refusal(self, action: str) -> str:
        table = EngineLease.__table__
        with self.engine.connect() as connection:
            row = connection.execute(select(table.c.holder, table.c.expires_at).where(
                table.c.name == f"bulk {self.table.name}")).first()
        who = ""
        if row is not None and row.expires_at > utcnow():
            host, _, rest = row.holder.partition(":")
            who = f" (by process {rest.partition(':')[0]} on {host})"
        return (f"another resync or reverify of {self.replicator.title_plural.lower()} "
                f"registries is running{who}; wait until it is done or cancel it, "
                f"then {action} again")


def one_batch(selection: RegistrySelection) -> bool:
    """At most BATCH registries chosen by id: one transaction, not a job."""
    chosen = [c for c in (selection.ids, selection.model_ids) if c is not None]
    return bool(chosen) and min(len(c) for c in chosen) <= BATCH


def _deadlock(exc: OperationalError) -> bool:
    """PostgreSQL's deadlock_detected (40P01)."""
    return getattr(exc.orig, "pgcode", None) == "40P01"
