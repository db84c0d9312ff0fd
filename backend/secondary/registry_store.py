"""All SQL on a registry table: claims, transitions, admin actions, backfill.

Every write is guarded so concurrent engines (threads or processes sharing a
PostgreSQL tracking DB) never work the same row at once: a claim is a single
UPDATE of rows picked with FOR UPDATE SKIP LOCKED (PostgreSQL) or inside a
BEGIN IMMEDIATE transaction (SQLite), and a completion only lands while the
row still carries the claim's start time.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from sqlalchemy import (ARRAY, BigInteger, LargeBinary, String, and_, bindparam, column,
                        delete, func, literal_column, or_, select, text, true, update)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from backend.db.engine import is_postgresql, writing
from backend.db.row_updates import per_row_update
from backend.framework import transitions as tr
from backend.framework.backoff import DEFAULT_CAP, MISSING_ON_PRIMARY_CAP
from backend.framework.clock import utcnow
from backend.framework.states import SyncState, VerificationState

CHUNK = 1000
INSERT_CHUNK = 50_000
_PREPARED: dict[tuple, object] = {}  # per-blob statements, built once per table


def _is(column, state: int):
    """`column = <number>` with the number in the SQL text, not bound: SQLite
    uses a partial index (WHERE state = 0) only for a literal it can match."""
    return column == literal_column(str(int(state)))


class _Unqualified:
    """A table's columns, rendered without the table name (for a FROM that
    SQLAlchemy only knows as text)."""

    def __init__(self, table) -> None:
        self._table = table

    def __getattr__(self, name: str):
        return column(name, self._table.c[name].type)


@dataclass(frozen=True)
class SyncClaim:
    registry_id: int
    model_id: int
    claimed_at: dt.datetime


@dataclass(frozen=True)
class VerificationClaim:
    registry_id: int
    model_id: int
    claimed_at: dt.datetime
    verification_retry_count: int


@dataclass(frozen=True)
class RegistryFilter:
    """The filters an administrator narrows registries with."""

    replication_state: SyncState | None = None
    verification_state: VerificationState | None = None
    ids: tuple[int, ...] | None = None          # registry ids
    model_ids: tuple[int, ...] | None = None    # replicated model ids

    def clauses(self, table) -> list:
        clauses = []
        if self.replication_state is not None:
            clauses.append(table.c.state == int(self.replication_state))
        if self.verification_state is not None:
            clauses.append(table.c.verification_state == int(self.verification_state))
        if self.ids is not None:
            clauses.append(table.c.id.in_(list(self.ids)))
        if self.model_ids is not None:
            clauses.append(table.c[self.fk_name(table)].in_(list(self.model_ids)))
        return clauses

    @staticmethod
    def fk_name(table) -> str:
        return table.name.removesuffix("_registry") + "_id"


class RegistryStore:
    def __init__(self, engine: Engine, replicator) -> None:
        self.engine = engine
        self.replicator = replicator
        self.table = replicator.registry_table()
        self.fk = self.table.c[replicator.registry_fk]
        self._pg = is_postgresql(engine)

    def _nulls_first(self, column):
        """Ascending with NULLs first. SQLite sorts so by default, and with
        NULLS FIRST spelt out its planner no longer reads the index in order."""
        return column.asc().nulls_first() if self._pg else column.asc()

    @contextlib.contextmanager
    def transaction(self, connection: Connection | None) -> Iterator[Connection]:
        """The caller's transaction if given, else a write transaction of our own."""
        if connection is not None:
            yield connection
        else:
            with writing(self.engine) as connection:
                yield connection

    # --- claims ------------------------------------------------------------

    def _claim(self, candidates, values: dict, returning: Sequence, limit: int):
        """UPDATE the first `limit` candidate rows in one statement."""
        if limit <= 0:
            return []
        t = self.table
        picked = candidates.limit(limit)
        if self._pg:
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
        if self._pg:
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
        returning = (t.c.id, self.fk)
        pending = self._candidates(
            f"index_{t.name}_pending_sync",
            lambda c: [_is(c.state, SyncState.PENDING)],
            lambda c: [c.id])
        rows = self._claim(pending, values, returning, limit)
        if len(rows) < limit:
            due = self._candidates(
                f"index_{t.name}_failed_sync",
                lambda c: [_is(c.state, SyncState.FAILED),
                           or_(c.retry_at.is_(None), c.retry_at < now)],
                lambda c: [self._nulls_first(c.retry_at), c.id])
            rows += self._claim(due, values, returning, limit - len(rows))
        return [SyncClaim(row[0], row[1], now) for row in rows]

    def claim_verification_batch(self, limit: int,
                                 now: dt.datetime | None = None) -> list[VerificationClaim]:
        """Synced registries pending verification, then retry-due failed ones."""
        t = self.table
        now = now or utcnow()
        values = tr.verification_started(now)
        returning = (t.c.id, self.fk, t.c.verification_retry_count)
        pending = self._candidates(
            f"{t.name}_pending_verification",
            lambda c: [_is(c.state, SyncState.SYNCED),
                       _is(c.verification_state, VerificationState.PENDING)],
            lambda c: [self._nulls_first(c.verified_at), c.id])
        rows = self._claim(pending, values, returning, limit)
        if len(rows) < limit:
            due = self._candidates(
                f"{t.name}_failed_verification",
                lambda c: [_is(c.state, SyncState.SYNCED),
                           _is(c.verification_state, VerificationState.FAILED),
                           or_(c.verification_retry_at.is_(None),
                               c.verification_retry_at < now)],
                lambda c: [self._nulls_first(c.verification_retry_at), c.id])
            rows += self._claim(due, values, returning, limit - len(rows))
        return [VerificationClaim(row[0], row[1], now, row[2]) for row in rows]

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

    def release_sync_claims(self, claims: Iterable[SyncClaim]) -> int:
        """Hand back claimed syncs that never started (the engine is stopping)."""
        return self._release(claims, self._sync_guard, tr.sync_pending())

    def release_verification_claims(self, claims: Iterable[VerificationClaim],
                                    connection: Connection | None = None) -> int:
        """Hand back claimed verifications as pending, keeping their retry
        counters (not started, or the primary's checksums were unreachable)."""
        return self._release(claims, self._verification_guard,
                             tr.verification_pending(from_failed=True, registry=True),
                             connection)

    def _release(self, claims, guard, values: dict, connection: Connection | None = None) -> int:
        released = 0
        with self.transaction(connection) as connection:
            for claim in claims:
                released += connection.execute(
                    update(self.table).where(guard(claim)).values(**values)).rowcount
        return released

    # --- sync outcomes -------------------------------------------------------

    def _sync_guard(self, claim: SyncClaim):
        t = self.table
        return and_(t.c.id == claim.registry_id, t.c.state == SyncState.STARTED,
                    t.c.last_synced_at == claim.claimed_at)

    def mark_synced(self, claim: SyncClaim, primary_verified: bool,
                    connection: Connection | None = None) -> bool:
        """The guarded synced!: lands only if the row is still our started sync.

        A resync requested meanwhile set the row pending: it stays pending and
        is synced again, so the newest request always wins. Afterwards the
        registry awaits verification if the primary has verified the blob
        (keeping the retry counters of a failed verification). Outcomes take
        `connection` to be written in a caller's transaction.
        """
        with self.transaction(connection) as connection:
            return any(connection.execute(statement, params).rowcount == 1
                       for statement, params in self.synced_statements(claim, primary_verified))

    def synced_statements(self, claim: SyncClaim, primary_verified: bool) -> list:
        """mark_synced as guarded statements with parameters (for grouped
        writing): at most one of them matches the row."""
        params = {"b_id": claim.registry_id, "b_claimed_at": claim.claimed_at}
        if not primary_verified:
            return [(self._synced_statement("disabled"), params)]
        return [(self._synced_statement("pending"), params),
                (self._synced_statement("pending_from_failed"), params)]

    def synced_and_verified_statements(self, claim: SyncClaim, checksum: str,
                                       verified_at: dt.datetime) -> list:
        """mark_synced for a blob verified as it was written (its file hashed
        to the primary's checksum): synced and verification succeeded in one
        guarded UPDATE, as if started and succeeded in one save. That holds
        after a failed verification too: its retry counters are kept only for
        the next attempt, and this one has succeeded."""
        return [(self._synced_statement("verified"), {
            "b_id": claim.registry_id, "b_claimed_at": claim.claimed_at,
            "b_checksum": checksum.encode("ascii"), "b_verified_at": verified_at})]

    def _synced_statement(self, after: str):
        """Built once per table: these run once per blob."""
        def build(value):
            t = self.table
            where = [t.c.id == value("b_id", t.c.id.type), t.c.state == SyncState.STARTED,
                     t.c.last_synced_at == value("b_claimed_at", t.c.last_synced_at.type)]
            if after == "disabled":
                values = tr.disabled()
            elif after == "pending":
                values = tr.verification_pending(from_failed=False, registry=True)
                where.append(t.c.verification_state != VerificationState.FAILED)
            elif after == "verified":
                values = tr.verification_pending(from_failed=False, registry=True)
                verified_at = value("b_verified_at", t.c.verified_at.type)
                values.update(tr.verification_succeeded("", verified_at),  # checksum: per row
                              verification_started_at=verified_at,
                              verification_checksum=value(
                                  "b_checksum", t.c.verification_checksum.type))
            else:
                values = tr.verification_pending(from_failed=True, registry=True)
                where.append(t.c.verification_state == VerificationState.FAILED)
            return update(t).where(*where).values(
                **tr.sync_succeeded_cleanup(), state=SyncState.SYNCED, **values)
        return self._prepared(("synced", after), lambda: per_row_update(build))

    def _prepared(self, key: tuple, build):
        key = (self.table.name, *key)
        statement = _PREPARED.get(key)
        if statement is None:
            statement = _PREPARED[key] = build()
        return statement

    def mark_sync_failed(self, claim: SyncClaim, message: str,
                         missing_on_primary: bool = False,
                         connection: Connection | None = None) -> bool:
        t = self.table
        cap = MISSING_ON_PRIMARY_CAP if missing_on_primary else DEFAULT_CAP
        with self.transaction(connection) as connection:
            row = connection.execute(
                select(t.c.retry_count).where(self._sync_guard(claim))).first()
            if row is None:
                return False
            values = tr.sync_failed(row[0], message, cap=cap, now=utcnow())
            return connection.execute(
                update(t).where(self._sync_guard(claim)).values(**values)).rowcount == 1

    # --- verification outcomes ------------------------------------------------

    def _verification_guard(self, claim: VerificationClaim):
        t = self.table
        return and_(t.c.id == claim.registry_id,
                    t.c.verification_state == VerificationState.STARTED,
                    t.c.verification_started_at == claim.claimed_at)

    def mark_verified(self, claim: VerificationClaim, checksum: str,
                      connection: Connection | None = None) -> bool:
        statement, params = self.verified_statements(claim, checksum)[0]
        with self.transaction(connection) as connection:
            return connection.execute(statement, params).rowcount == 1

    def verified_statements(self, claim: VerificationClaim, checksum: str) -> list:
        """mark_verified as a guarded statement with parameters."""
        def build(value):
            t = self.table
            values = tr.verification_succeeded("", utcnow())
            values.update(verification_checksum=value("b_checksum", LargeBinary()),
                          verified_at=value("b_verified_at", t.c.verified_at.type),
                          checksum_mismatch=False, verification_checksum_mismatched=None)
            return update(t).where(
                t.c.id == value("b_id", t.c.id.type),
                t.c.verification_state == VerificationState.STARTED,
                t.c.verification_started_at == value(
                    "b_claimed_at", t.c.verification_started_at.type)).values(**values)
        return [(self._prepared(("verified",), lambda: per_row_update(build)),
                 {"b_id": claim.registry_id, "b_claimed_at": claim.claimed_at,
                  "b_checksum": checksum.encode("ascii"), "b_verified_at": utcnow()})]

    def mark_verification_disabled(self, claim: VerificationClaim,
                                   connection: Connection | None = None) -> bool:
        return self._update_verification(claim, tr.disabled(), connection)

    def mark_verification_failed(self, claim: VerificationClaim, failure: str, *,
                                 checksum: str | None = None,
                                 primary_checksum: str | None = None,
                                 connection: Connection | None = None) -> bool:
        values = tr.registry_verification_failed(
            claim.verification_retry_count, failure, checksum=checksum, now=utcnow())
        if primary_checksum is not None:
            values.update(checksum_mismatch=True,
                          verification_checksum_mismatched=primary_checksum.encode("ascii"))
        return self._update_verification(claim, values, connection)

    def _update_verification(self, claim: VerificationClaim, values: dict,
                             connection: Connection | None) -> bool:
        with self.transaction(connection) as connection:
            return connection.execute(update(self.table)
                                      .where(self._verification_guard(claim))
                                      .values(**values)).rowcount == 1

    # --- events --------------------------------------------------------------

    def ensure_pending(self, model_id: int, *, reset_existing: bool) -> None:
        """`created`: create the registry pending, or set an existing one pending."""
        t = self.table
        with writing(self.engine) as connection:
            inserted = connection.execute(self._insert_new().values(
                {self.fk.name: model_id, "created_at": utcnow()})).rowcount
            if not inserted and reset_existing:
                connection.execute(update(t).where(self.fk == model_id)
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

    # --- administrator actions -------------------------------------------------

    def resync(self, selection: RegistryFilter) -> int:
        """Set matching registries pending; a running sync of one of them loses."""
        t = self.table
        with writing(self.engine) as connection:
            return connection.execute(update(t).where(*selection.clauses(t))
                                      .values(**tr.sync_pending())).rowcount

    def reverify(self, selection: RegistryFilter) -> int:
        """Set matching synced registries pending verification.

        Rows that are not synced have nothing to verify; they are left alone.
        """
        t = self.table
        clauses = [*selection.clauses(t), t.c.state == SyncState.SYNCED]
        with writing(self.engine) as connection:
            # Rows not failed first: afterwards they are pending, so the second
            # statement, for failed rows, cannot count them again.
            others = connection.execute(
                update(t).where(*clauses, t.c.verification_state != VerificationState.FAILED)
                .values(**tr.verification_pending(from_failed=False, registry=True))).rowcount
            failed = connection.execute(
                update(t).where(*clauses, t.c.verification_state == VerificationState.FAILED)
                .values(**tr.verification_pending(from_failed=True, registry=True))).rowcount
        return failed + others

    # --- timeouts --------------------------------------------------------------

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

    # --- backfill ----------------------------------------------------------------

    def tracked_model_ids(self, first: int, last: int) -> set[int]:
        with self.engine.connect() as connection:
            return set(connection.execute(
                select(self.fk).where(self.fk.between(first, last))).scalars())

    def max_tracked_model_id(self) -> int | None:
        with self.engine.connect() as connection:
            return connection.execute(select(func.max(self.fk))).scalar()

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
        if self._pg:
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
                    "ids": chunk if self._pg else json.dumps(chunk), "now": now}).rowcount
        return inserted

    def refresh_statistics(self) -> None:
        """ANALYZE the registry table (PostgreSQL): after a bulk insert, so
        that claims are planned by index order (see consistency.py). SQLite
        needs none: its claims name their index."""
        if not self._pg:
            return
        with self.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                f'ANALYZE "{self.table.name}"')

    def _insert_new(self):
        """INSERT that skips model ids already tracked (another engine won)."""
        dialect_insert = pg_insert if self._pg else sqlite_insert
        return dialect_insert(self.table).on_conflict_do_nothing(index_elements=[self.fk.name])


def registry_rows(engine: Engine, replicator, selection: RegistryFilter,
                  limit: int | None = None, chunk: int = 5000):
    """Stream registry rows (dicts) in id order, `chunk` at a time (keyset)."""
    t = replicator.registry_table()
    last_id = 0
    remaining = limit
    while remaining is None or remaining > 0:
        size = chunk if remaining is None else min(chunk, remaining)
        statement = (select(t).where(*selection.clauses(t), t.c.id > last_id)
                     .order_by(t.c.id).limit(size))
        with engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(statement)]
        if not rows:
            return
        yield from rows
        last_id = rows[-1]["id"]
        if remaining is not None:
            remaining -= len(rows)
        if len(rows) < size:
            return


def existing_ids(engine: Engine, replicator, ids: Sequence[int]) -> set[int]:
    t = replicator.registry_table()
    found: set[int] = set()
    with engine.connect() as connection:
        for start in range(0, len(ids), CHUNK):
            found |= set(connection.execute(
                select(t.c.id).where(t.c.id.in_(list(ids[start:start + CHUNK])))).scalars())
    return found
