"""The registry state machine in the tracking DB (SQLite and PostgreSQL):
claims, outcomes, administrator actions and backfill."""
import datetime as dt
import threading

import pytest
from sqlalchemy import select, update

from backend.framework.clock import clock, utcnow
from backend.replicables import replicator_for
from backend.framework.states import SyncState, VerificationState
from backend.secondary.registry_selection import RegistrySelection
from tests.support.registries import Registries

CoolWidgets = replicator_for("cool_widget")


@pytest.fixture
def store(tracking_engine):
    return Registries(tracking_engine, CoolWidgets)


def row(store, model_id):
    t = store.table
    with store.engine.connect() as connection:
        return connection.execute(select(t).where(t.c.cool_widget_id == model_id)).mappings().one()


def set_values(store, model_id, **values):
    with store.engine.begin() as connection:
        connection.execute(update(store.table).where(store.fk == model_id).values(**values))


def synced(store, model_id, primary_verified=True):
    store.ensure_pending(model_id, reset_existing=True)
    claim = next(c for c in store.claim_sync_batch(100) if c.model_id == model_id)
    assert store.mark_synced(claim, primary_verified)
    return claim


def test_new_registry_is_pending_with_defaults(store):
    store.insert_pending([5])
    r = row(store, 5)
    assert r["state"] == SyncState.PENDING and r["verification_state"] == VerificationState.PENDING
    assert r["retry_count"] == 0 and r["checksum_mismatch"] is False and r["created_at"]


def test_insert_pending_skips_tracked_ids(store):
    assert store.insert_pending([1, 2, 3]) == 3
    assert store.insert_pending([2, 3, 4]) == 1
    assert store.tracked_model_ids(1, 10) == {1, 2, 3, 4}


def test_claim_takes_pending_before_retry_due_failed(store):
    store.insert_pending([1, 2, 3])
    set_values(store, 1, state=SyncState.FAILED, retry_at=utcnow() - dt.timedelta(seconds=1))
    set_values(store, 2, state=SyncState.FAILED, retry_at=utcnow() + dt.timedelta(hours=1))
    first = store.claim_sync_batch(1)
    assert [c.model_id for c in first] == [3]
    second = store.claim_sync_batch(10)
    assert [c.model_id for c in second] == [1]  # 2 is not due yet
    r = row(store, 3)
    assert r["state"] == SyncState.STARTED and r["last_synced_at"] == first[0].claimed_at


def test_started_registries_are_not_claimed_again(store):
    store.insert_pending([1])
    assert len(store.claim_sync_batch(5)) == 1
    assert store.claim_sync_batch(5) == []


def test_synced_clears_retries_and_queues_verification(store):
    store.insert_pending([1])
    set_values(store, 1, state=SyncState.FAILED, retry_count=3, last_sync_failure="x",
               retry_at=utcnow() - dt.timedelta(seconds=5))
    claim = store.claim_sync_batch(1)[0]
    assert store.mark_synced(claim, primary_verified=True)
    r = row(store, 1)
    assert r["state"] == SyncState.SYNCED and r["retry_count"] == 0
    assert r["retry_at"] is None and r["last_sync_failure"] is None
    assert r["verification_state"] == VerificationState.PENDING


def test_synced_without_primary_checksum_disables_verification(store):
    synced(store, 1, primary_verified=False)
    assert row(store, 1)["verification_state"] == VerificationState.DISABLED


def test_resync_during_a_sync_wins(store):
    store.insert_pending([1])
    claim = store.claim_sync_batch(1)[0]
    assert store.resync(RegistrySelection(model_ids=(1,))) == 1
    assert store.mark_synced(claim, primary_verified=True) is False
    r = row(store, 1)
    assert r["state"] == SyncState.PENDING
    assert r["verification_state"] == VerificationState.DISABLED


def test_stale_completion_of_a_reclaimed_row_does_not_land(store):
    store.insert_pending([1])
    old = store.claim_sync_batch(1)[0]
    store.resync(RegistrySelection(model_ids=(1,)))
    clock.advance(dt.timedelta(seconds=1))
    new = store.claim_sync_batch(1)[0]
    assert store.mark_sync_failed(old, "late failure") is False
    assert store.mark_synced(new, True) is True


def test_failed_sync_counts_and_backs_off(store):
    store.insert_pending([1])
    claim = store.claim_sync_batch(1)[0]
    assert store.mark_sync_failed(claim, "Non-success HTTP response status code 500")
    r = row(store, 1)
    assert r["state"] == SyncState.FAILED and r["retry_count"] == 1
    assert dt.timedelta(seconds=15) < r["retry_at"] - utcnow() <= dt.timedelta(seconds=75)
    assert r["last_sync_failure"] == "Non-success HTTP response status code 500"


def test_missing_on_primary_caps_backoff_at_four_hours(store):
    store.insert_pending([1])
    set_values(store, 1, retry_count=20)
    claim = store.claim_sync_batch(1)[0]
    store.mark_sync_failed(claim, "The file is missing on the Geo primary site",
                           missing_on_primary=True)
    wait = row(store, 1)["retry_at"] - utcnow()
    assert dt.timedelta(hours=4) < wait <= dt.timedelta(hours=4, seconds=75)


def test_other_failures_cap_backoff_at_one_hour(store):
    store.insert_pending([1])
    set_values(store, 1, retry_count=20)
    store.mark_sync_failed(store.claim_sync_batch(1)[0], "boom")
    wait = row(store, 1)["retry_at"] - utcnow()
    assert dt.timedelta(hours=1) < wait <= dt.timedelta(hours=1, seconds=75)


def test_long_failure_text_is_truncated(store):
    store.insert_pending([1])
    store.mark_sync_failed(store.claim_sync_batch(1)[0], "e" * 1000)
    text = row(store, 1)["last_sync_failure"]
    assert len(text) == 255 and text.endswith("...")


def test_verification_claim_takes_synced_pending_then_due_failed(store):
    synced(store, 1)
    synced(store, 2)
    synced(store, 3, primary_verified=False)
    set_values(store, 2, verification_state=VerificationState.FAILED,
               verification_retry_at=utcnow() - dt.timedelta(seconds=1))
    claims = store.claim_verification_batch(10)
    assert [c.model_id for c in claims] == [1, 2]
    assert row(store, 1)["verification_state"] == VerificationState.STARTED


def test_verification_success_records_checksum(store):
    synced(store, 1)
    claim = store.claim_verification_batch(1)[0]
    assert store.mark_verified(claim, "ab" * 32)
    r = row(store, 1)
    assert r["verification_state"] == VerificationState.SUCCEEDED
    assert r["verification_checksum"] == b"ab" * 32 and r["verified_at"]


def test_checksum_mismatch_fails_verification_and_sync(store):
    synced(store, 1)
    claim = store.claim_verification_batch(1)[0]
    store.mark_verification_failed(claim, "Checksum does not match", checksum="aa",
                                   primary_checksum="bb")
    r = row(store, 1)
    assert r["verification_state"] == VerificationState.FAILED
    assert r["checksum_mismatch"] is True
    assert r["verification_checksum"] == b"aa"
    assert r["verification_checksum_mismatched"] == b"bb"  # the primary's
    assert r["state"] == SyncState.FAILED
    assert r["retry_count"] == r["verification_retry_count"] == 1
    assert r["last_sync_failure"] == "Verification failed with: Checksum does not match"
    assert r["retry_at"] and r["verification_retry_at"]


def test_refailed_verification_keeps_growing_counters(store):
    synced(store, 1)
    store.mark_verification_failed(store.claim_verification_batch(1)[0], "first")
    # Re-download succeeds; verification is pending again but keeps its count.
    set_values(store, 1, retry_at=utcnow() - dt.timedelta(seconds=1))
    claim = store.claim_sync_batch(1)[0]
    store.mark_synced(claim, primary_verified=True)
    r = row(store, 1)
    assert r["verification_state"] == VerificationState.PENDING
    assert r["verification_retry_count"] == 1
    store.mark_verification_failed(store.claim_verification_batch(1)[0], "second")
    r = row(store, 1)
    assert r["verification_retry_count"] == 2 and r["retry_count"] == 2


def test_synced_and_verified_in_one_write(store):
    """A blob verified as it was written: synced and verification succeeded
    in one guarded UPDATE, after a failed verification too; a stale claim
    changes nothing."""
    store.insert_pending([1, 2])
    set_values(store, 2, verification_state=VerificationState.FAILED,
               verification_retry_count=3, checksum_mismatch=True,
               verification_checksum_mismatched=b"cd" * 32, verification_failure="old")
    claims = store.claim_sync_batch(2)
    at = utcnow()
    for claim in claims:
        assert store.write(store.outcomes.synced_and_verified(claim, "ab" * 32, at))
    for model_id in (1, 2):
        r = row(store, model_id)
        assert r["state"] == SyncState.SYNCED and r["retry_count"] == 0
        assert r["verification_state"] == VerificationState.SUCCEEDED
        assert r["verification_checksum"] == b"ab" * 32
        assert r["verification_started_at"] == r["verified_at"] == at
        assert r["verification_retry_count"] == 0 and r["verification_failure"] is None
        assert r["checksum_mismatch"] is False and r["verification_checksum_mismatched"] is None
    assert store.claim_verification_batch(10) == []

    store.ensure_pending(1, reset_existing=True)
    claim = store.claim_sync_batch(1)[0]
    assert not store.write(store.outcomes.synced_and_verified(
        claims[0], "ab" * 32, utcnow()))  # the earlier claim
    assert row(store, 1)["state"] == SyncState.STARTED
    assert store.write(store.outcomes.synced_and_verified(claim, "ab" * 32, utcnow()))


def test_synced_and_verified_as_a_group_keeps_each_rows_checksum(store):
    from backend.secondary.outcome_recorder import OutcomeRecorder
    store.insert_pending(range(1, 31))
    claims = store.claim_sync_batch(100)
    recorder = OutcomeRecorder(store.engine, retry_interval=0.1,
                               on_unreachable=lambda exc: None,
                               on_written=lambda wake: None)
    at = utcnow()
    for claim in claims:
        recorder.submit(store.outcomes.synced_and_verified(claim, f"{claim.model_id:064x}", at))
    recorder.start()
    recorder.stop(timeout=30)
    for claim in claims:
        r = row(store, claim.model_id)
        assert r["verification_state"] == VerificationState.SUCCEEDED
        assert r["verification_checksum"] == f"{claim.model_id:064x}".encode()


def test_checksum_succeeded_event_queues_verification(store):
    synced(store, 1, primary_verified=False)
    assert store.checksum_succeeded(1)
    assert row(store, 1)["verification_state"] == VerificationState.PENDING
    assert store.checksum_succeeded(999) is False


def test_created_event_resets_an_existing_registry(store):
    synced(store, 1)
    store.ensure_pending(1, reset_existing=True)
    assert row(store, 1)["state"] == SyncState.PENDING


def test_sync_timeout_after_eight_hours(store):
    store.insert_pending([1, 2])
    store.claim_sync_batch(1)
    clock.advance(dt.timedelta(hours=7, minutes=59))
    assert store.fail_timed_out_syncs() == 0
    store.claim_sync_batch(1)
    clock.advance(dt.timedelta(minutes=2))
    assert store.fail_timed_out_syncs() == 1
    r = row(store, 1)
    assert r["state"] == SyncState.FAILED and r["retry_count"] == 1
    assert r["last_sync_failure"] == "Sync timed out after 8 hours"
    assert row(store, 2)["state"] == SyncState.STARTED


def test_verification_timeout_after_eight_hours(store):
    synced(store, 1)
    store.claim_verification_batch(1)
    clock.advance(dt.timedelta(hours=8, seconds=1))
    assert store.fail_timed_out_verifications() == 1
    r = row(store, 1)
    assert r["verification_state"] == VerificationState.FAILED
    assert r["verification_failure"] == "Verification timed out after 8 hours"
    assert r["verification_retry_count"] == 1 and r["verification_checksum"] is None
    assert r["state"] == SyncState.FAILED


def test_resync_all_failed_touches_only_failed(store):
    store.insert_pending([1, 2, 3])
    for claim in store.claim_sync_batch(3):
        if claim.model_id == 3:
            store.mark_synced(claim, True)
        else:
            store.mark_sync_failed(claim, "x")
    assert store.resync(RegistrySelection(replication_state=SyncState.FAILED)) == 2
    assert row(store, 3)["state"] == SyncState.SYNCED
    assert row(store, 1)["state"] == SyncState.PENDING and row(store, 1)["retry_count"] == 0


def test_reverify_only_touches_synced(store):
    synced(store, 1)
    store.mark_verified(store.claim_verification_batch(1)[0], "cc")
    store.insert_pending([2])
    assert store.reverify(RegistrySelection()) == 1
    assert row(store, 1)["verification_state"] == VerificationState.PENDING
    assert row(store, 2)["state"] == SyncState.PENDING


def test_concurrent_claims_never_share_a_row(store):
    store.insert_pending(range(1, 401))
    claimed: list[int] = []
    lock = threading.Lock()

    def worker():
        while True:
            batch = store.claim_sync_batch(3)
            if not batch:
                return
            with lock:
                claimed.extend(c.model_id for c in batch)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == list(range(1, 401))


def test_reverify_counts_each_registry_once(store):
    synced(store, 1)
    synced(store, 2)
    store.mark_verification_failed(store.claim_verification_batch(1)[0], "x")
    set_values(store, 1, state=SyncState.SYNCED)  # failed verification, synced again
    assert store.reverify(RegistrySelection()) == 2


def test_claims_made_at_a_lost_timestamp_are_handed_back(store):
    store.insert_pending([1, 2, 3])
    lost = utcnow()
    store.claim_sync_batch(2, now=lost)       # the answer never arrived
    clock.advance(dt.timedelta(seconds=1))
    kept = store.claim_sync_batch(1)          # another claim, answered
    assert store.release_claims_made_at(lost) == (2, 0)
    assert {c.model_id for c in store.claim_sync_batch(5)} == {1, 2}
    assert row(store, kept[0].model_id)["state"] == SyncState.STARTED


def test_outcomes_written_as_a_group_land_like_outcomes_written_one_by_one(store):
    """The recorder runs each outcome statement once for a whole group (on
    PostgreSQL one UPDATE over arrays): rows must end exactly as when each
    outcome is written alone, stale claims included."""
    from sqlalchemy import event

    from backend.secondary.outcome_recorder import OutcomeRecorder

    grouped, alone = list(range(1, 41)), list(range(301, 341))  # same residues
    store.insert_pending(grouped + alone)
    for model_id in grouped + alone:
        if model_id % 3 == 0:  # a failed verification: counters are kept
            set_values(store, model_id, verification_state=VerificationState.FAILED,
                       verification_retry_count=2, verification_failure="bad")
    claims = {c.model_id: c for c in store.claim_sync_batch(100)}
    stale = [m for m in grouped + alone if m % 5 == 0]
    store.resync(RegistrySelection(model_ids=tuple(stale)))  # these claims lose
    updates = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def seen(conn, cursor, sql, parameters, context, executemany):
        if sql.startswith("UPDATE"):
            updates.append(sql)

    def record_group(outcome_of):
        recorder = OutcomeRecorder(store.engine, retry_interval=0.1,
                                   on_unreachable=lambda exc: None,
                                   on_written=lambda wake: None)
        for model_id in grouped:
            outcome = outcome_of(model_id)
            if outcome is not None:
                recorder.submit(outcome)
        updates.clear()
        recorder.start()
        recorder.stop(timeout=30)
        if store.engine.dialect.name == "postgresql":
            assert all("unnest" in sql for sql in updates)
        return len(updates)

    statements = record_group(lambda m: store.outcomes.synced(claims[m], True))
    for model_id in alone:
        store.mark_synced(claims[model_id], primary_verified=True)
    verifications = {c.model_id: c for c in store.claim_verification_batch(100)}
    assert sorted(verifications) == sorted(m for m in grouped + alone if m not in stale)
    verified = record_group(lambda m: store.outcomes.verified(verifications[m], "ab" * 32)
                            if m in verifications else None)
    for model_id in alone:
        if model_id in verifications:
            store.mark_verified(verifications[model_id], "ab" * 32)
    if store.engine.dialect.name == "postgresql":
        assert (statements, verified) == (2, 1)  # one per statement, for 40 rows

    ignored = {"id", "cool_widget_id", "created_at", "last_synced_at", "verified_at",
               "verification_started_at", "retry_at", "verification_retry_at"}
    for model_id in grouped:
        mine, twin = row(store, model_id), row(store, model_id + 300)
        assert {k: v for k, v in mine.items() if k not in ignored} == \
            {k: v for k, v in twin.items() if k not in ignored}
        assert (mine["verified_at"] is None) == (twin["verified_at"] is None)
    states = [row(store, m)["verification_state"] for m in grouped]
    assert states.count(VerificationState.SUCCEEDED) == len(grouped) - len(
        [m for m in grouped if m % 5 == 0])
