"""The outcomes of syncs and verifications, as guarded one-row UPDATEs.

Every outcome is an `Outcome`: statements with their parameters, each
guarded by the claim it ends (the row is still that claim's started sync
or verification), so writing it twice, or after a resync meanwhile,
changes nothing and the newest request always wins. Outcomes of many rows
are written together (`apply`): statements that repeat run once for all
their parameter sets, on PostgreSQL as one UPDATE over arrays
(`db/row_updates.py`). A statement is built once per table: these run once
per blob.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import update
from sqlalchemy.engine import Connection, Engine

from backend.db.engine import writing
from backend.db.row_updates import execute_for_rows, per_row_update
from backend.framework import transitions as tr
from backend.framework.backoff import DEFAULT_CAP, MISSING_ON_PRIMARY_CAP
from backend.framework.clock import utcnow
from backend.framework.states import SyncState, VerificationState
from backend.secondary.registry_claims import SyncClaim, VerificationClaim

_PREPARED: dict[tuple, object] = {}


@dataclass(frozen=True)
class Outcome:
    """What one piece of work changes: guarded statements with parameters.

    `wakes_verification`: once written, the row waits for the verification
    scheduler (a sync recorded without its verification).
    """

    statements: tuple
    wakes_verification: bool = False
    # A folder a replica was renamed into: the recorder makes it durable
    # (once for the whole group) before the group is written.
    folder: str | None = None


def apply(connection: Connection, outcomes: Iterable[Outcome]) -> None:
    """Write outcomes in the caller's transaction, each statement once for
    every parameter set given for it (their guards make the order moot)."""
    batched: dict[object, list[dict]] = {}
    for outcome in outcomes:
        for statement, params in outcome.statements:
            batched.setdefault(statement, []).append(params)
    for statement, params in batched.items():
        # In id order, as a bulk action locks rows (`bulk_actions.py`).
        params.sort(key=_row_id)
        execute_for_rows(connection, statement, params)


def write(engine: Engine, outcome: Outcome) -> bool:
    """Write one outcome in a transaction of its own; True if it landed
    (its claim still held the row)."""
    with writing(engine) as connection:
        return sum(connection.execute(statement, params).rowcount
                   for statement, params in outcome.statements) > 0


class RegistryOutcomes:
    """The outcomes of one type's claims."""

    def __init__(self, replicator) -> None:
        self.table = replicator.registry_table()

    # --- syncs ----------------------------------------------------------------------

    def synced(self, claim: SyncClaim, primary_verified: bool) -> Outcome:
        """The guarded synced!. Afterwards the registry awaits verification
        if the primary has verified the blob (keeping the retry counters of
        a failed verification), else its verification is disabled. Of the
        statements at most one matches the row."""
        params = {"b_id": claim.registry_id, "b_claimed_at": claim.claimed_at}
        if not primary_verified:
            return Outcome(((self._synced("disabled"), params),))
        return Outcome(((self._synced("pending"), params),
                        (self._synced("pending_from_failed"), params)),
                       wakes_verification=True)

    def synced_and_verified(self, claim: SyncClaim, checksum: str,
                            verified_at: dt.datetime) -> Outcome:
        """synced! for a blob verified as it was written (its file hashed to
        the primary's checksum): synced and verification succeeded in one
        guarded UPDATE, as if started and succeeded in one save. That holds
        after a failed verification too: its retry counters are kept only
        for the next attempt, and this one has succeeded."""
        return Outcome(((self._synced("verified"), {
            "b_id": claim.registry_id, "b_claimed_at": claim.claimed_at,
            "b_checksum": checksum.encode("ascii"), "b_verified_at": verified_at}),))

    def sync_failed(self, claim: SyncClaim, message: str,
                    missing_on_primary: bool = False) -> Outcome:
        """failed! with the backoff: the retry count grows from the claim's."""
        cap = MISSING_ON_PRIMARY_CAP if missing_on_primary else DEFAULT_CAP
        values = tr.sync_failed(claim.retry_count, message, cap=cap, now=utcnow())
        return Outcome(((self._sync_failed(), {
            "b_id": claim.registry_id, "b_claimed_at": claim.claimed_at,
            "b_retry_count": values["retry_count"], "b_retry_at": values["retry_at"],
            "b_last_sync_failure": values["last_sync_failure"]}),))

    def sync_interrupted(self, claim: SyncClaim) -> Outcome:
        """The primary could not be reached (`primary_breaker.py`): the
        attempt does not count. The row goes back to what the claim found, a
        pending sync, or a failed one due at once with its retry count and
        its own last failure kept."""
        failed = claim.retry_count > 0
        return Outcome(((self._sync_interrupted(), {
            "b_id": claim.registry_id, "b_claimed_at": claim.claimed_at,
            "b_state": SyncState.FAILED if failed else SyncState.PENDING,
            "b_retry_at": utcnow() if failed else None}),))

    def _sync_interrupted(self):
        def build(value):
            t = self.table
            return update(t).where(*_sync_guard(t, value)).values(
                **_per_row(t, value, "state", "retry_at"))
        return self._prepared(("sync_interrupted",), build)

    def _synced(self, after: str):
        def build(value):
            t = self.table
            where = _sync_guard(t, value)
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
        return self._prepared(("synced", after), build)

    def _sync_failed(self):
        def build(value):
            t = self.table
            return update(t).where(*_sync_guard(t, value)).values(
                state=SyncState.FAILED, **_per_row(t, value, "retry_count", "retry_at",
                                                   "last_sync_failure"))
        return self._prepared(("sync_failed",), build)

    # --- verifications ------------------------------------------------------------------

    def verified(self, claim: VerificationClaim, checksum: str) -> Outcome:
        now = utcnow()
        return Outcome(((self._verified(), {
            "b_id": claim.registry_id, "b_claimed_at": claim.claimed_at,
            "b_checksum": checksum.encode("ascii"), "b_verified_at": now}),))

    def verification_failed(self, claim: VerificationClaim, failure: str, *,
                            checksum: str | None = None,
                            primary_checksum: str | None = None) -> Outcome:
        """A verification failure on a secondary also fails the sync, so the
        blob is downloaded again after the backoff. With `primary_checksum`
        it was a mismatch: the local checksum and the primary's are kept."""
        values = tr.registry_verification_failed(
            claim.verification_retry_count, failure, checksum=checksum, now=utcnow())
        params = {"b_id": claim.registry_id, "b_claimed_at": claim.claimed_at,
                  **{f"b_{name}": values[name] for name in _VERIFICATION_FAILED}}
        if primary_checksum is None:
            return Outcome(((self._verification_failed(mismatch=False), params),))
        params["b_verification_checksum_mismatched"] = primary_checksum.encode("ascii")
        return Outcome(((self._verification_failed(mismatch=True), params),))

    def verification_disabled(self, claim: VerificationClaim) -> Outcome:
        """Nothing to compare with until the primary has a checksum."""
        return Outcome(((self._verification_set("disabled", tr.disabled()),
                         _verification_params(claim)),))

    def verification_released(self, claims: Iterable[VerificationClaim]) -> Outcome:
        """Claimed verifications handed back as pending, keeping their retry
        counters (not started, or the primary's checksums were unreachable)."""
        statement = self._verification_set(
            "released", tr.verification_pending(from_failed=True, registry=True))
        return Outcome(tuple((statement, _verification_params(claim)) for claim in claims))

    def _verified(self):
        def build(value):
            t = self.table
            values = tr.verification_succeeded("", utcnow())
            values.update(verification_checksum=value("b_checksum",
                                                      t.c.verification_checksum.type),
                          verified_at=value("b_verified_at", t.c.verified_at.type),
                          checksum_mismatch=False, verification_checksum_mismatched=None)
            return update(t).where(*_verification_guard(t, value)).values(**values)
        return self._prepared(("verified",), build)

    def _verification_failed(self, mismatch: bool):
        def build(value):
            t = self.table
            values = _per_row(t, value, *_VERIFICATION_FAILED)
            values.update(state=SyncState.FAILED, verification_state=VerificationState.FAILED)
            if mismatch:
                values.update(checksum_mismatch=True, **_per_row(
                    t, value, "verification_checksum_mismatched"))
            return update(t).where(*_verification_guard(t, value)).values(**values)
        return self._prepared(("verification_failed", mismatch), build)

    def _verification_set(self, key: str, values: dict):
        def build(value):
            t = self.table
            return update(t).where(*_verification_guard(t, value)).values(**values)
        return self._prepared(("verification", key), build)

    def _prepared(self, key: tuple, build):
        key = (self.table.name, *key)
        statement = _PREPARED.get(key)
        if statement is None:
            statement = _PREPARED[key] = per_row_update(build)
        return statement


# The columns a failed verification sets row by row (the rest are constants).
_VERIFICATION_FAILED = ("verification_retry_count", "verification_retry_at", "verified_at",
                        "verification_failure", "verification_checksum", "retry_count",
                        "retry_at", "last_sync_failure")


def _row_id(params: dict) -> int:
    return params.get("b_id", 0)


def _sync_guard(t, value) -> list:
    """The row is still the started sync of the claim given as parameters."""
    return [t.c.id == value("b_id", t.c.id.type), t.c.state == SyncState.STARTED,
            t.c.last_synced_at == value("b_claimed_at", t.c.last_synced_at.type)]


def _verification_guard(t, value) -> list:
    return [t.c.id == value("b_id", t.c.id.type),
            t.c.verification_state == VerificationState.STARTED,
            t.c.verification_started_at == value("b_claimed_at",
                                                  t.c.verification_started_at.type)]


def _per_row(t, value, *names) -> dict:
    """Columns set from each row's parameter `b_<column>`."""
    return {name: value(f"b_{name}", t.c[name].type) for name in names}


def _verification_params(claim: VerificationClaim) -> dict:
    return {"b_id": claim.registry_id, "b_claimed_at": claim.claimed_at}
