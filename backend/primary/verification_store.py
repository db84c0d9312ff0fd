"""SQL for the primary's own verification state (checksumming).

Works for both ways of storing it: columns on the model (template option 1)
or a separate `<name>_states` table (option 2); see VerificationStorage.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from backend.db.engine import is_postgresql, writing
from backend.framework import transitions as tr
from backend.framework.clock import utcnow
from backend.framework.states import VerificationState


@dataclass(frozen=True)
class ChecksumClaim:
    model_id: int
    claimed_at: dt.datetime
    verification_retry_count: int


class PrimaryVerificationStore:
    def __init__(self, engine: Engine, replicator) -> None:
        self.engine = engine
        self.replicator = replicator
        storage = replicator.verification
        self.table = storage.table
        self.key = self.table.c[storage.key]
        self.separate = storage.separate
        self.model = replicator.model_table()
        self._pg = is_postgresql(engine)

    # --- marking ------------------------------------------------------------

    def mark_pending(self, connection: Connection, model_id: int) -> None:
        """After create: the blob needs a checksum (creates the state row)."""
        values = tr.verification_pending(from_failed=False, registry=False)
        if self.separate:
            connection.execute(insert(self.table).values({self.key.name: model_id, **values}))
        else:
            connection.execute(update(self.table).where(self.key == model_id).values(**values))

    def backfill_state_rows(self, batch: int = 1000) -> int:
        """Create missing state rows (option 2); they start pending."""
        if not self.separate:
            return 0
        model_id = self.model.c.id
        missing = (select(model_id).where(~select(self.key).where(self.key == model_id)
                                          .exists()).order_by(model_id).limit(batch))
        with writing(self.engine) as connection:
            ids = list(connection.execute(missing).scalars())
            if ids:
                connection.execute(insert(self.table), [{self.key.name: i} for i in ids])
        return len(ids)

    # --- claiming and outcomes -----------------------------------------------

    def claim_batch(self, limit: int) -> list[ChecksumClaim]:
        now = utcnow()
        t = self.table
        pending = (select(self.key).where(t.c.verification_state == VerificationState.PENDING)
                   .order_by(t.c.verified_at.asc().nulls_first(), self.key))
        claims = self._claim(pending, now, limit)
        if len(claims) < limit:
            due = (select(self.key)
                   .where(t.c.verification_state == VerificationState.FAILED,
                          or_(t.c.verification_retry_at.is_(None),
                              t.c.verification_retry_at < now))
                   .order_by(t.c.verification_retry_at.asc().nulls_first(), self.key))
            claims += self._claim(due, now, limit - len(claims))
        return claims

    def _claim(self, candidates, now, limit) -> list[ChecksumClaim]:
        if limit <= 0:
            return []
        picked = candidates.limit(limit)
        if self._pg:
            picked = picked.with_for_update(skip_locked=True)
        statement = (update(self.table).where(self.key.in_(picked.scalar_subquery()))
                     .values(**tr.verification_started(now))
                     .returning(self.key, self.table.c.verification_retry_count))
        with writing(self.engine) as connection:
            rows = connection.execute(statement).all()
        return [ChecksumClaim(row[0], now, row[1]) for row in rows]

    def _guard(self, claim: ChecksumClaim):
        t = self.table
        return and_(self.key == claim.model_id,
                    t.c.verification_state == VerificationState.STARTED,
                    t.c.verification_started_at == claim.claimed_at)

    def mark_succeeded(self, connection: Connection, claim: ChecksumClaim,
                       checksum: str) -> bool:
        """Record the checksum; a verification restarted meanwhile keeps its own."""
        return connection.execute(
            update(self.table).where(self._guard(claim))
            .values(**tr.verification_succeeded(checksum, utcnow()))).rowcount == 1

    def mark_failed(self, claim: ChecksumClaim, failure: str) -> bool:
        values = tr.verification_failed(claim.verification_retry_count,
                                        f"Error during verification: {failure}",
                                        checksum=None, now=utcnow())
        with writing(self.engine) as connection:
            return connection.execute(
                update(self.table).where(self._guard(claim)).values(**values)).rowcount == 1

    def request_reverification(self, interval_days: int, limit: int = 1000) -> int:
        """Succeeded checksums older than the interval go back to pending."""
        t = self.table
        cutoff = utcnow() - dt.timedelta(days=interval_days)
        due = (select(self.key).where(t.c.verification_state == VerificationState.SUCCEEDED,
                                      t.c.verified_at < cutoff)
               .order_by(t.c.verified_at).limit(limit))
        if self._pg:
            due = due.with_for_update(skip_locked=True)
        with writing(self.engine) as connection:
            return connection.execute(
                update(self.table).where(self.key.in_(due.scalar_subquery()))
                .values(**tr.verification_pending(from_failed=False, registry=False))).rowcount

    def fail_timed_out(self, timeout: dt.timedelta = tr.VERIFICATION_TIMEOUT) -> int:
        t = self.table
        now = utcnow()
        values = tr.verification_failed(0, tr.VERIFICATION_TIMEOUT_MESSAGE, checksum=None,
                                        now=now)
        with writing(self.engine) as connection:
            return connection.execute(
                update(t).where(t.c.verification_state == VerificationState.STARTED,
                                t.c.verification_started_at < now - timeout)
                .values(**values)).rowcount

    # --- reading ---------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        t = self.table
        vstate = t.c.verification_state
        statement = select(
            func.count(),
            func.count().filter(vstate == VerificationState.SUCCEEDED),
            func.count().filter(vstate == VerificationState.FAILED))
        with self.engine.connect() as connection:
            total, succeeded, failed = connection.execute(statement.select_from(t)).one()
        return {"checksum_total": total, "checksummed": succeeded, "checksum_failed": failed}

    def states_for(self, connection: Connection, model_ids: list[int]) -> dict[int, tuple]:
        """model id -> (verification_state, checksum text or None)."""
        t = self.table
        rows = connection.execute(select(self.key, t.c.verification_state,
                                         t.c.verification_checksum)
                                  .where(self.key.in_(model_ids)))
        return {row[0]: (row[1], row[2].decode("ascii") if row[2] else None) for row in rows}
