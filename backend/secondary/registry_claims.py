"""Claiming registries for work, handing claims back, the 8-hour timeouts,
and re-verification of replicas verified too long ago.

A claim is a single UPDATE of rows picked with FOR UPDATE SKIP LOCKED
(PostgreSQL) or inside a BEGIN IMMEDIATE transaction (SQLite), so engines
in several threads or processes sharing a tracking DB never take the same
row. The rows it took carry its time (`last_synced_at` for a sync,
`verification_started_at` for a verification): every later write of the
claim's outcome is guarded by it (`registry_outcomes.py`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Sequence

from sqlalchemy import column, or_, select, text, update

from backend.db.engine import writing
from backend.framework import transitions as tr
from backend.framework.clock import utcnow
from backend.framework.states import SyncState, VerificationState
from backend.secondary.registry_table import RegistryTable, is_

# Registries set back to verification pending per re-verification pass and
# type: GitLab's ReverificationBatchWorker takes 1,000.
REVERIFICATION_BATCH = 1000


@dataclass(frozen=True)
class SyncClaim:
    registry_id: int
    model_id: int
    claimed_at: dt.datetime
    retry_count: int = 0  # before this attempt: the backoff of a failure grows from it


@dataclass(frozen=True)
class VerificationClaim:
    registry_id: int
    model_id: int
    claimed_at: dt.datetime
    verification_retry_count: int


class _Unqualified:
    """A table's columns, rendered without the table name (for a FROM that
    SQLAlchemy only knows as text)."""

    def __init__(self, table) -> None:
        self._table = table

    def __getattr__(self, name: str):
        return column(name, self._table.c[name].type)


class RegistryClaims(RegistryTable):
    def _claim(self, candidates, values: dict, returning: Sequence, limit: int):
        """UPDATE the first `limit` candidate rows in one statement."""
        if limit <= 0:
            return []
        t = self.table
        picked = candidates.limit(limit)
        if self.postgresql:
            picked = picked.with_for_update(skip_locked=True)
        statement = (update(t).where(t.c.id.in_(picked.scalar_subquery()))
                     .values(**values).returning(*returning))
        with writing(self.engine) as connection:
            return connection.execute(statement).all()

    def _candidates(self, index: str, where, order_by):
        """SELECT id of claimable rows. `where` and `order_by` take the
        table's columns. On SQLite the query names its partial index
        (INDEXED BY): without ANALYZE statistics the planner would rather
        sort every candidate read through the (state, verification_state)
        index."""
        if self.postgresql:
            columns = self.table.c
            return select(columns.id).where(*where(columns)).order_by(*order_by(columns))
        columns = _Unqualified(self.table)
        return (select(columns.id)
                .select_from(text(f'"{self.table.name}" INDEXED BY "{index}"'))
                .where(*where(columns)).order_by(*order_by(columns)))

    def claim_sync_batch(self, limit: int, now: dt.datetime | None = None) -> list[SyncClaim]:
        """Pending registries first, then failed ones whose retry is due.

        `now` is the claim's token: rows claimed by this call carry it.
        """
        t = self.table
        now = now or utcnow()
        values = tr.sync_started(now)
        returning = (t.c.id, self.fk, t.c.retry_count)
        pending = self._candidates(
            f"index_{t.name}_pending_sync",
            lambda c: [is_(c.state, SyncState.PENDING)],
            lambda c: [c.id])
        rows = self._claim(pending, values, returning, limit)
        if len(rows) < limit:
            due = self._candidates(
                f"index_{t.name}_failed_sync",
                lambda c: [is_(c.state, SyncState.FAILED),
                           or_(c.retry_at.is_(None), c.retry_at < now)],
                lambda c: [self.nulls_first(c.retry_at), c.id])
            rows += self._claim(due, values, returning, limit - len(rows))
        return [SyncClaim(row[0], row[1], now, row[2]) for row in rows]

    def claim_verification_batch(self, limit: int,
                                 now: dt.datetime | None = None) -> list[VerificationClaim]:
        """Synced registries pending verification, then retry-due failed ones."""
        t = self.table
        now = now or utcnow()
        values = tr.verification_started(now)
        returning = (t.c.id, self.fk, t.c.verification_retry_count)
        pending = self._candidates(
            f"{t.name}_pending_verification",
            lambda c: [is_(c.state, SyncState.SYNCED),
                       is_(c.verification_state, VerificationState.PENDING)],
            lambda c: [self.nulls_first(c.verified_at), c.id])
        rows = self._claim(pending, values, returning, limit)
        if len(rows) < limit:
            due = self._candidates(
                f"{t.name}_failed_verification",
                lambda c: [is_(c.state, SyncState.SYNCED),
                           is_(c.verification_state, VerificationState.FAILED),
                           or_(c.verification_retry_at.is_(None),
                               c.verification_retry_at < now)],
                lambda c: [self.nulls_first(c.verification_retry_at), c.id])
            rows += self._claim(due, values, returning, limit - len(rows))
        return [VerificationClaim(row[0], row[1], now, row[2]) for row in rows]

    # --- handing claims back ----------------------------------------------------

    def release_claims_made_at(self, claimed_at: dt.datetime) -> tuple[int, int]:
        """Hand back rows claimed at exactly `claimed_at`.

        For a claim whose answer was lost (the connection broke after the
        database committed it): the caller never learnt which rows it took,
        but they carry its timestamp. Returns (syncs, verifications).
        """
        t = self.table
        with writing(self.engine) as connection:
            syncs = connection.execute(
                update(t).where(t.c.state == SyncState.STARTED, t.c.last_synced_at == claimed_at)
                .values(**tr.sync_pending())).rowcount
            verifications = connection.execute(
                update(t).where(t.c.verification_state == VerificationState.STARTED,
                                t.c.verification_started_at == claimed_at)
                .values(**tr.verification_pending(from_failed=True, registry=True))).rowcount
        return syncs, verifications

    def release_claims_before(self, cutoff: dt.datetime) -> tuple[int, int]:
        """Hand back syncs and verifications claimed before `cutoff` (the
        start of the oldest live engine: theirs are a dead engine's). Syncs
        go back to pending, verifications to pending with their retry
        counters kept. Returns (syncs, verifications)."""
        t = self.table
        with writing(self.engine) as connection:
            syncs = connection.execute(
                update(t).where(t.c.state == SyncState.STARTED, t.c.last_synced_at < cutoff)
                .values(**tr.sync_pending())).rowcount
            verifications = connection.execute(
                update(t).where(t.c.verification_state == VerificationState.STARTED,
                                t.c.verification_started_at < cutoff)
                .values(**tr.verification_pending(from_failed=True, registry=True))).rowcount
        return syncs, verifications

    def release_sync_claims(self, claims: Iterable[SyncClaim]) -> int:
        """Hand back claimed syncs that never started (the engine is stopping)."""
        t = self.table
        released = 0
        with writing(self.engine) as connection:
            # In id order, as a bulk action locks rows (`bulk_actions.py`).
            for claim in sorted(claims, key=lambda claim: claim.registry_id):
                released += connection.execute(update(t).where(
                    t.c.id == claim.registry_id, t.c.state == SyncState.STARTED,
                    t.c.last_synced_at == claim.claimed_at).values(**tr.sync_pending())).rowcount
        return released

    # --- re-verification -----------------------------------------------------------

    def request_reverification(self, interval: dt.timedelta, limit: int = REVERIFICATION_BATCH,
                               now: dt.datetime | None = None) -> int:
        """Synced registries verified successfully longer ago than `interval`
        go back to verification pending, the longest verified first, at most
        `limit` at a time (GitLab's reverification batch). The verification
        pipeline then hashes the replica again: a file changed on disk fails,
        which fails the sync, and it is downloaded again. Read from the
        partial index of succeeded verifications, so the cost is the batch,
        not the table. Returns how many went back to pending."""
        t = self.table
        cutoff = (now or utcnow()) - interval
        due = self._candidates(
            f"{t.name}_succeeded_verification",
            lambda c: [is_(c.state, SyncState.SYNCED),
                       is_(c.verification_state, VerificationState.SUCCEEDED),
                       c.verified_at < cutoff],
            lambda c: [c.verified_at, c.id])
        return len(self._claim(due, tr.verification_pending(from_failed=False, registry=True),
                               (t.c.id,), limit))

    # --- timeouts -------------------------------------------------------------------

    def fail_timed_out_syncs(self, timeout: dt.timedelta = tr.SYNC_TIMEOUT) -> int:
        t = self.table
        now = utcnow()
        values = tr.sync_failed(0, tr.SYNC_TIMEOUT_MESSAGE, now=now)
        with writing(self.engine) as connection:
            return connection.execute(
                update(t).where(t.c.state == SyncState.STARTED,
                                t.c.last_synced_at < now - timeout).values(**values)).rowcount

    def fail_timed_out_verifications(
            self, timeout: dt.timedelta = tr.VERIFICATION_TIMEOUT) -> int:
        t = self.table
        now = utcnow()
        values = tr.registry_verification_failed(
            0, tr.VERIFICATION_TIMEOUT_MESSAGE, checksum=None, now=now)
        with writing(self.engine) as connection:
            return connection.execute(
                update(t).where(t.c.verification_state == VerificationState.STARTED,
                                t.c.verification_started_at < now - timeout)
                .values(**values)).rowcount

