"""Event log pruning (issue 18, item 6): the primary deletes the events
every secondary is done with, nothing while any secondary is unhealthy or
has not reported, never one a secondary may still ask for; the log stays
bounded in a long run. Reports reach the primary over its Geo API, as a
secondary posts them."""
import datetime as dt
import threading
import time

import pytest
from sqlalchemy import delete, func, select

from backend.db.engine import writing
from backend.db.primary_schema import GeoEvent, GeoEventLog
from backend.framework.clock import clock
from backend.primary import events
from backend.replicables import replicator_for
from backend.secondary.geo_client import GeoClient
from tests.support.fixtures_e2e import all_synced_and_verified
from tests.support.sites import (secondary_config, start_engine, start_primary,
                                 wait_until)

CoolWidgets = replicator_for("cool_widget")
pytestmark = pytest.mark.slow
SECONDARIES = ("secondary-1", "secondary-2")


@pytest.fixture
def two_secondaries(primary_url, tmp_path, credentials):
    """A primary with two configured secondaries; its pruner is run by hand."""
    site = start_primary(primary_url, tmp_path / "primary", credentials,
                         secondaries=SECONDARIES)
    yield site
    site.stop()


def report(site, credentials, index, **status):
    """Post a status as secondary number `index` does."""
    client = GeoClient(site.url, credentials["access_key"] + ("" if index == 0 else str(index)),
                       credentials["secret"])
    try:
        client.post_status({"name": SECONDARIES[index], "healthy": True,
                            "health": "Healthy", "health_status": "Healthy", **status})
    finally:
        client.close()


def log_ids(site) -> list[int]:
    with site.engine.connect() as connection:
        return list(connection.execute(select(GeoEventLog.id).order_by(GeoEventLog.id))
                    .scalars())


def event_count(site) -> int:
    with site.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(GeoEvent)).scalar_one()


def make_events(site, count: int) -> list[int]:
    catalog = site.catalog()
    for i in range(count):
        catalog.add_bytes(b"e%d" % i, "e.bin")
    return log_ids(site)


def test_nothing_is_pruned_until_every_secondary_reports_healthy(two_secondaries,
                                                                 credentials):
    site = two_secondaries
    ids = make_events(site, 10)
    newest = ids[-1]
    pruner = site.pruner

    assert pruner.run_once() == 0
    assert "secondary-1 has not reported" in pruner.last_decision.reason

    report(site, credentials, 0, cursor_last_event_id=newest)
    assert pruner.run_once() == 0
    assert "secondary-2 has not reported" in pruner.last_decision.reason

    report(site, credentials, 1, cursor_last_event_id=newest, healthy=False,
           health="The sync engine is not running", health_status="Unhealthy")
    assert pruner.run_once() == 0
    assert pruner.last_decision.reason == \
        "secondary secondary-2 is unhealthy (The sync engine is not running)"

    report(site, credentials, 1, cursor_last_event_id=None)
    assert pruner.run_once() == 0
    assert "secondary-2 has not reported an event cursor" in pruner.last_decision.reason

    # Both healthy, then silent for more than 10 minutes: out of date.
    report(site, credentials, 1, cursor_last_event_id=newest)
    clock.advance(dt.timedelta(minutes=10, seconds=5))
    assert pruner.run_once() == 0
    assert "No status report for 10 minutes" in pruner.last_decision.reason
    assert log_ids(site) == ids

    clock.reset()
    assert pruner.run_once() == len(ids) - 1
    assert log_ids(site) == [newest] and event_count(site) == 1  # the newest stays


def test_pruning_stops_below_every_cursor_and_every_open_gap(two_secondaries, credentials):
    site = two_secondaries
    ids = make_events(site, 30)
    # secondary-1 has handled 20 events; secondary-2 handled 25 but still
    # looks for the 12th, which its cursor passed.
    report(site, credentials, 0, cursor_last_event_id=ids[19])
    report(site, credentials, 1, cursor_last_event_id=ids[24],
           event_log_gap_count=1, event_log_oldest_gap_id=ids[11])
    pruner = site.pruner
    pruner.max_rows, pruner.batch = 7, 3  # at most 7 rows a run, 3 a transaction
    assert pruner.run_once() == 7
    assert log_ids(site) == ids[7:]
    assert pruner.run_once() == 4
    assert log_ids(site) == ids[11:]  # the gap and all above it stay
    assert pruner.run_once() == 0
    assert pruner.last_decision.through == ids[10]

    # The gap found, secondary-1 caught up: up to the lowest cursor.
    report(site, credentials, 0, cursor_last_event_id=ids[29])
    report(site, credentials, 1, cursor_last_event_id=ids[24], event_log_gap_count=0,
           event_log_oldest_gap_id=None)
    while pruner.run_once():
        pass
    assert log_ids(site) == ids[25:]
    assert event_count(site) == 5  # their events went with them


def test_orphaned_events_are_pruned(two_secondaries, credentials):
    site = two_secondaries
    ids = make_events(site, 4)
    with writing(site.engine) as connection:  # an event whose log row went alone
        connection.execute(delete(GeoEventLog).where(GeoEventLog.id == ids[3]))
    report(site, credentials, 0, cursor_last_event_id=ids[0])
    report(site, credentials, 1, cursor_last_event_id=ids[0])
    assert site.pruner.run_once() == 1
    assert log_ids(site) == ids[1:3]
    assert event_count(site) == 2


def test_no_secondary_configured_prunes_everything(primary_url, tmp_path, credentials):
    site = start_primary(primary_url, tmp_path / "primary", credentials, secondaries=())
    try:
        with writing(site.engine) as connection:  # left from when a secondary existed
            for i in range(3):
                events.publish(connection, "cool_widget", events.CREATED,
                               {"model_record_id": i + 1})
        assert site.pruner.run_once() == 2
        assert site.pruner.last_decision.reason == "no secondary is configured"
        assert len(log_ids(site)) == 1  # the newest stays, so that ids keep growing
    finally:
        site.stop()


def test_a_long_run_keeps_the_log_bounded_and_loses_no_event(primary_url, tracking_url,
                                                             tmp_path, credentials):
    """1,200 widgets created in 60 rounds while a real secondary replicates
    them (the consistency walk only at the start, on an empty primary, so
    every record arrives through its events) and the primary prunes every
    0.3 s: the log never holds more than a fraction of what was written,
    ends with its newest row only, and every widget is synced and verified
    (on SQLite this failed while pruning could empty the log: new rows
    took ids from 1 again, below the cursor)."""
    site = start_primary(primary_url, tmp_path / "primary", credentials, prune_interval=0.3)
    config = secondary_config(site.url, tracking_url, tmp_path / "secondary", credentials,
                              status_interval=0.5)
    engine = start_engine(config, consistency_interval=3600.0)
    sizes = []
    sampling = threading.Event()

    def sample():
        while not sampling.wait(0.1):
            sizes.append(events.count(site.engine))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        wait_until(lambda: engine.events.cursor.get() is not None, message="cursor set")
        catalog = site.catalog()
        ids = []
        for round_number in range(60):
            ids += [catalog.add_bytes(b"%d-%d" % (round_number, i), "r.bin")
                    for i in range(20)]
            time.sleep(0.05)
        wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=180,
                   message="1,200 widgets synced and verified from their events")
        wait_until(lambda: events.count(site.engine) == 1, timeout=30,
                   message="the log pruned to its newest row")
    finally:
        sampling.set()
        sampler.join()
        engine.stop()
        site.stop()
    written = 2 * len(ids)  # `created` and `checksum_succeeded` of each
    assert site.pruner.pruned == written - 1
    assert max(sizes) < written / 2, f"the log held up to {max(sizes)} of {written} events"
    assert engine.housekeeping.schedule.jobs["consistency"].runs == 1
