"""Secondaries re-verify on their own: a replica verified longer ago than
`minimum_reverification_interval` goes back to verification pending in
bounded batches, so a replica corrupted on disk is found and downloaded
again. A real primary and engine on loopback, SQLite and PostgreSQL."""
import datetime as dt
import time

import pytest
from sqlalchemy import update

from backend.framework.clock import clock, utcnow
from backend.framework.states import SyncState, VerificationState
from backend.replicables import replicator_for
from backend.secondary.registry_backfill import RegistryBackfill
from backend.secondary.registry_claims import REVERIFICATION_BATCH, RegistryClaims
from tests.support.fixtures_e2e import all_synced_and_verified, registries
from tests.support.sites import secondary_config, start_engine, wait_until

CoolWidgets = replicator_for("cool_widget")
INTERVAL = dt.timedelta(days=7)  # the default minimum_reverification_interval


def verified_days_ago(database, model_ids, days: float) -> None:
    table = CoolWidgets.registry_table()
    with database.begin() as connection:
        connection.execute(update(table).where(
            table.c[CoolWidgets.registry_fk].in_(model_ids))
            .values(verified_at=utcnow() - dt.timedelta(days=days)))


@pytest.mark.slow
def test_a_corrupted_replica_is_found_by_reverification_alone(
        primary, tracking_url, tmp_path, credentials):
    catalog = primary.catalog()
    data = {catalog.add_bytes(bytes([i]) * 5000, f"w{i}.bin"): bytes([i]) * 5000
            for i in range(1, 4)}
    flipped, truncated, recent = data
    config = secondary_config(primary.url, tracking_url, tmp_path / "secondary", credentials)
    engine = start_engine(config, housekeeping_intervals={"reverification": 0.5})
    try:
        wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, list(data)),
                   timeout=30, message="replicated and verified")
        path = engine.storage.path(CoolWidgets, flipped)
        corrupted = bytearray(path.read_bytes())
        corrupted[1234] ^= 0x01
        path.write_bytes(bytes(corrupted))
        engine.storage.path(CoolWidgets, truncated).write_bytes(b"")
        engine.storage.path(CoolWidgets, recent).write_bytes(b"not checked yet")
        verified_days_ago(engine.engine, [flipped, truncated], 8)
        verified_days_ago(engine.engine, [recent], 6)
        before = registries(engine, CoolWidgets)[recent]

        started = time.monotonic()
        rows = wait_until(lambda: (r := registries(engine, CoolWidgets)) and all(
            r[i]["state"] == SyncState.FAILED for i in (flipped, truncated)) and r,
            timeout=30, message="the corrupted replicas found")
        found_after = time.monotonic() - started
        for model_id in (flipped, truncated):
            row = rows[model_id]
            assert row["verification_state"] == VerificationState.FAILED
            assert row["checksum_mismatch"] is True
            assert row["last_sync_failure"].startswith(
                "Verification failed with: Checksum does not match the primary checksum")
            assert row["retry_at"] > utcnow()  # downloaded again after the backoff
        assert rows[recent] == before  # not due: left alone
        assert found_after < 5  # sweep every 0.5 s here (60 s in production)

        clock.advance(dt.timedelta(minutes=2))  # past the backoff of a first failure
        engine.wake()
        wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, list(data)),
                   timeout=30, message="downloaded again and verified")
        for model_id in (flipped, truncated):
            assert engine.storage.path(CoolWidgets, model_id).read_bytes() == data[model_id]
            assert registries(engine, CoolWidgets)[model_id]["checksum_mismatch"] is False
    finally:
        engine.stop()


def test_reverification_takes_bounded_batches_of_the_longest_verified(tracking_engine):
    count = REVERIFICATION_BATCH + 500
    RegistryBackfill(tracking_engine, CoolWidgets).insert_pending(range(1, count + 1))
    table = CoolWidgets.registry_table()
    now = utcnow()
    with tracking_engine.begin() as connection:
        connection.execute(update(table).values(
            state=SyncState.SYNCED, verification_state=VerificationState.SUCCEEDED,
            verified_at=now - dt.timedelta(days=30)))
        # Verified within the interval, or not verified successfully: never due.
        connection.execute(update(table).where(table.c.id <= 100)
                           .values(verified_at=now - dt.timedelta(days=6)))
        connection.execute(update(table).where(table.c.id.between(101, 200))
                           .values(verification_state=VerificationState.FAILED))
        connection.execute(update(table).where(table.c.id.between(201, 300))
                           .values(state=SyncState.FAILED))
        connection.execute(update(table).where(table.c.id > count - 10)
                           .values(verified_at=now - dt.timedelta(days=40)))
    claims = RegistryClaims(tracking_engine, CoolWidgets)
    assert claims.request_reverification(INTERVAL, now=now) == REVERIFICATION_BATCH
    with tracking_engine.connect() as connection:
        pending = set(connection.execute(table.select().with_only_columns(table.c.id).where(
            table.c.verification_state == VerificationState.PENDING)).scalars())
    assert set(range(count - 9, count + 1)) <= pending  # the longest verified first
    assert not pending & set(range(1, 301))
    assert claims.request_reverification(INTERVAL, now=now) == count - 300 - REVERIFICATION_BATCH
    assert claims.request_reverification(INTERVAL, now=now) == 0
    with tracking_engine.connect() as connection:
        rows = connection.execute(table.select().where(table.c.id > 300)).mappings().all()
    assert all(r["verification_state"] == VerificationState.PENDING and r["state"] == 2
               and r["verification_retry_count"] == 0 for r in rows)
