"""Event log gaps (issue 18, item 5): ids the secondary's cursor passes
without seeing are stored, asked for on every poll, and their events
handled when they appear, without waiting for the consistency walk (made
an hour long here, so it runs once, at the start, on an empty primary).

A PostgreSQL primary hands out log ids when a transaction inserts, so a
create held open while a later one commits is passed by the cursor; the
first two tests do exactly that. An SQLite primary serialises its writers
(`BEGIN IMMEDIATE`), so no gap arises from concurrency there; the other
tests make a gap by taking a log row away and putting it back, on both
databases."""
import datetime as dt
import json
import time

import pytest
import urllib3
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, insert, select

from backend.db.engine import writing
from backend.db.primary_schema import GeoEventLog
from backend.framework.checksum import file_checksum
from backend.framework.clock import clock, utcnow
from backend.framework.replicator import FileStore
from backend.framework.states import SyncState, VerificationState
from backend.primary import events
from backend.primary.verification_store import PrimaryVerificationStore
from backend.replicables import replicator_for
from backend.sites.secondary import SecondarySite
from backend.secondary.event_log_gaps import (GAP_LIFETIME, MAX_OPEN_GAPS, EventLogGaps,
                                              skipped_ids)
from tests.support.fixtures_e2e import registries
from tests.support.sites import READ_HEADERS, secondary_config, start_engine, wait_until

CoolWidgets = replicator_for("cool_widget")
HTTP = urllib3.PoolManager()
pytestmark = pytest.mark.slow
POLL = 0.1  # the engine's poll interval here: a found gap is handled on the next poll
WALK = 3600.0  # the consistency walk: once at the start, never again during a test


@pytest.fixture
def make_engine(primary, tracking_url, tmp_path, credentials):
    engines = []

    def make():
        config = secondary_config(primary.url, tracking_url, tmp_path / "secondary",
                                  credentials)
        engine = start_engine(config, poll_interval=POLL, consistency_interval=WALK)
        engines.append(engine)
        wait_until(lambda: engine.events.cursor.get() is not None, message="cursor set")
        return engine

    yield make
    for engine in engines:
        engine.stop()


def state(engine, model_id, key="state"):
    row = registries(engine, CoolWidgets).get(model_id)
    return row and row[key]


def hold_a_create(site, data: bytes):
    """Write a widget and its `created` event as the catalog does, in a
    transaction left open: (connection, transaction, model id, event id)."""
    catalog = site.catalog()
    project_id = catalog.default_project_id()
    relative = site.storage.new_relative_path(CoolWidgets.plural_name, "held.bin")
    size = site.storage.store_bytes(data, relative, FileStore.LOCAL)
    model = CoolWidgets.model_table()
    connection = site.engine.connect()
    transaction = connection.begin()
    now = utcnow()
    model_id = connection.execute(insert(model).values(
        project_id=project_id, file=relative, file_store=FileStore.LOCAL, size=size,
        created_at=now, updated_at=now).returning(model.c.id)).scalar_one()
    PrimaryVerificationStore(site.engine, CoolWidgets).mark_pending(connection, model_id)
    event_id = events.publish(connection, CoolWidgets.replicable_name, events.CREATED,
                              {"model_record_id": model_id})
    return connection, transaction, model_id, event_id


def consumed_past(engine, event_id):
    wait_until(lambda: (engine.events.cursor.get() or 0) >= event_id, timeout=20,
               message=f"the cursor past event {event_id}")


def test_a_create_committed_after_a_later_one_is_handled_on_the_next_polls(
        postgres_only, primary, make_engine):
    engine = make_engine()
    connection, transaction, held_id, held_event = hold_a_create(primary, b"held open")
    try:
        later_id = primary.catalog().add_bytes(b"committed first", "later.bin")
        later_event, _ = events.last_event(primary.engine)
        assert later_event > held_event
        consumed_past(engine, later_event)
        wait_until(lambda: state(engine, later_id) == SyncState.SYNCED, timeout=20,
                   message="the later widget synced")
        assert held_event in [gap for gap, _ in engine.events.gaps.open_after(0)]
        assert held_id not in registries(engine, CoolWidgets)
        status = engine.status()
        assert status["event_log_gap_count"] >= 1
        assert status["event_log_oldest_gap_id"] <= held_event
    finally:
        transaction.commit()
        connection.close()
    committed = time.monotonic()
    wait_until(lambda: state(engine, held_id) == SyncState.SYNCED, timeout=10,
               interval=0.02, message="the held widget synced")
    took = time.monotonic() - committed
    print(f"held widget synced {took:.2f} s after its commit")
    # Found on a poll (every 0.1 s here, 1 s by default), then downloaded.
    assert took < 3.0, f"the held widget took {took:.1f} s"
    assert engine.housekeeping.schedule.jobs["consistency"].runs == 1  # not the walk
    wait_until(lambda: engine.status()["event_log_gap_count"] == 0, timeout=5,
               message="no gap left open")


def test_a_checksum_succeeded_committed_late_still_queues_the_verification(
        postgres_only, primary, make_engine):
    primary.checksummer.stop()  # this test checksums by hand
    primary.checksummer = None
    catalog = primary.catalog()
    engine = make_engine()
    model_id = catalog.add_bytes(b"checksummed late", "late.bin")
    wait_until(lambda: state(engine, model_id) == SyncState.SYNCED, timeout=20,
               message="synced before the primary has a checksum")
    assert state(engine, model_id, "verification_state") == VerificationState.DISABLED

    store = PrimaryVerificationStore(primary.engine, CoolWidgets)
    (claim,) = store.claim_batch(10)
    checksum = file_checksum(primary.blob_path(CoolWidgets, model_id)[0])
    connection = primary.engine.connect()
    transaction = connection.begin()
    try:
        assert store.mark_succeeded(connection, claim, checksum)
        held_event = events.publish(connection, CoolWidgets.replicable_name,
                                    events.CHECKSUM_SUCCEEDED, {"model_record_id": model_id})
        catalog.add_bytes(b"another", "another.bin")
        later_event, _ = events.last_event(primary.engine)
        assert later_event > held_event
        consumed_past(engine, later_event)
        assert engine.status()["event_log_gap_count"] >= 1
        assert state(engine, model_id, "verification_state") == VerificationState.DISABLED
    finally:
        transaction.commit()
        connection.close()
    wait_until(lambda: state(engine, model_id, "verification_state")
               == VerificationState.SUCCEEDED, timeout=10, interval=0.02,
               message="verified once the checksum event appeared")
    assert engine.housekeeping.schedule.jobs["consistency"].runs == 1


def take_out_log_row(site, event_id):
    """Remove a log row (its event stays): the cursor will pass its id."""
    with writing(site.engine) as connection:
        row = connection.execute(select(GeoEventLog).where(GeoEventLog.id == event_id)) \
            .mappings().one()
        connection.execute(delete(GeoEventLog).where(GeoEventLog.id == event_id))
    return dict(row)


def put_back_log_row(site, row):
    with writing(site.engine) as connection:
        connection.execute(insert(GeoEventLog).values(**row))


def created_event(site, model_id):
    from backend.db.primary_schema import GeoEvent
    with site.engine.connect() as connection:
        return connection.execute(
            select(GeoEventLog.id).join(GeoEvent, GeoEvent.id == GeoEventLog.geo_event_id)
            .where(GeoEvent.event_name == events.CREATED)
            .where(GeoEvent.payload["model_record_id"].as_integer() == model_id)).scalar_one()


def three_widgets_the_middle_one_late(primary, engine):
    """Three widgets created while the engine is paused, the log row of the
    middle one's `created` taken out: (ids, its row)."""
    primary.checksummer.stop()  # no checksum events: only the three `created`
    primary.checksummer = None
    engine.pause()
    catalog = primary.catalog()
    ids = [catalog.add_bytes(b"w%d" % i, f"w{i}.bin") for i in range(3)]
    row = take_out_log_row(primary, created_event(primary, ids[1]))
    engine.resume()
    consumed_past(engine, created_event(primary, ids[2]))
    wait_until(lambda: state(engine, ids[2]) == SyncState.SYNCED, timeout=20,
               message="the third widget synced")
    return ids, row


def test_gaps_survive_a_restart_and_are_handled_when_their_event_appears(
        primary, make_engine, tracking_url, tmp_path, credentials):
    engine = make_engine()
    ids, row = three_widgets_the_middle_one_late(primary, engine)
    assert state(engine, ids[0]) == SyncState.SYNCED
    assert ids[1] not in registries(engine, CoolWidgets)
    assert engine.status()["event_log_gap_count"] == 1
    assert engine.status()["event_log_oldest_gap_id"] == row["id"]
    engine.stop()

    # Restarted on the same tracking DB, as a site: its status and metrics count the gap.
    site = SecondarySite(secondary_config(primary.url, tracking_url, tmp_path / "secondary",
                                          credentials),
                         poll_interval=POLL, consistency_interval=WALK).start()
    try:
        again = site.engine
        assert again.events.gaps.summary() == (1, row["id"])
        document = json.loads(HTTP.request(
            "GET", site.url + "/api/v4/geo_sites/current/status", headers=READ_HEADERS).data)
        assert (document["event_log_gap_count"], document["event_log_oldest_gap_id"]) == \
            (1, row["id"])
        assert gauge(site.url, "secondary-1") == 1
        put_back_log_row(primary, row)
        wait_until(lambda: state(again, ids[1]) == SyncState.SYNCED, timeout=10,
                   message="the late widget synced after the restart")
        # The start's consistency walk may register and sync the widget before
        # the next poll finds its event; the gap closes on that poll either way.
        wait_until(lambda: again.events.gaps.summary() == (0, None), timeout=5,
                   message="the gap closed once its event appeared")
        site.engine.snapshot()
        assert gauge(site.url, "secondary-1") == 0
    finally:
        site.stop()


def gauge(url, name):
    text = HTTP.request("GET", url + "/metrics").data.decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "geo_event_log_gaps" and sample.labels["name"] == name:
                return sample.value
    return None


def test_a_gap_not_found_within_its_lifetime_is_given_up(primary, make_engine):
    engine = make_engine()
    ids, _row = three_widgets_the_middle_one_late(primary, engine)
    time.sleep(5 * POLL)
    assert engine.events.gaps.summary()[0] == 1  # still looked for
    clock.advance(GAP_LIFETIME + dt.timedelta(seconds=1))
    wait_until(lambda: engine.events.gaps.summary() == (0, None), timeout=10,
               message="the gap given up")
    assert ids[1] not in registries(engine, CoolWidgets)  # the walk's job now


def test_skipped_ids_are_the_holes_between_the_ids_seen():
    assert skipped_ids(5, [6, 7, 9, 12]) == [8, 10, 11]
    assert skipped_ids(5, []) == []
    assert skipped_ids(5, [6]) == []
    # A jump of millions keeps the highest ids only, without a list of millions.
    assert skipped_ids(0, [10_000_001], room=3) == [9_999_998, 9_999_999, 10_000_000]
    assert skipped_ids(5, [8, 20], room=4) == [16, 17, 18, 19]


def test_open_gaps_are_bounded_keeping_the_newest(tracking_engine):
    gaps = EventLogGaps(tracking_engine)
    with writing(tracking_engine) as connection:
        gaps.record(connection, 0, skipped_ids(0, [MAX_OPEN_GAPS + 101]), utcnow())
    assert gaps.summary() == (MAX_OPEN_GAPS, 101)
    with writing(tracking_engine) as connection:
        gaps.record(connection, MAX_OPEN_GAPS + 101,
                    skipped_ids(MAX_OPEN_GAPS + 101, [MAX_OPEN_GAPS + 107]), utcnow())
    assert gaps.summary() == (MAX_OPEN_GAPS, 106)
