"""REST status and Prometheus output match what the databases hold after a
real sync run (SQLite and PostgreSQL)."""
import pytest
import urllib3
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from backend.replicables import replicator_for
from backend.framework.states import SyncState, VerificationState
from backend.primary.checksummer import Checksummer
from backend.sites.secondary import SecondarySite
from tests.support.graphql_http import data
from tests.support.sites import (READ_HEADERS, secondary_config, start_primary,
                                 wait_for_checksums, wait_until)

CoolWidgets = replicator_for("cool_widget")
HTTP = urllib3.PoolManager()
pytestmark = pytest.mark.slow


def get_json(url):
    import json
    response = HTTP.request("GET", url, headers=READ_HEADERS)
    return response.status, json.loads(response.data)


def metrics(url) -> dict:
    text = HTTP.request("GET", url + "/metrics").data.decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, sample.labels.get("name"))] = sample.value
    return values


@pytest.fixture
def sites(primary_url, tracking_url, tmp_path, credentials):
    primary = start_primary(primary_url, tmp_path / "p", credentials)
    primary.checksummer.stop()  # so it cannot checksum the files about to vanish
    catalog = primary.catalog()
    ids = [catalog.add_bytes(b"x" * (100 + i), "w") for i in range(30)]
    for model_id in ids[:3]:
        primary.blob_path(CoolWidgets, model_id)[0].unlink()  # fail on the secondary
    primary.checksummer = Checksummer(primary)
    primary.checksummer.start()
    wait_for_checksums(primary)
    secondary = SecondarySite(secondary_config(primary.url, tracking_url, tmp_path / "s",
                                               credentials, api_token="tok"),
                              poll_interval=0.1, consistency_interval=1.0).start()

    def settled():
        status = secondary.engine.status()
        return status["cool_widgets_verified_count"] == 27 and \
            status["cool_widgets_failed_count"] == 3
    wait_until(settled, timeout=60, message="27 verified, 3 failed")
    secondary.engine.snapshot()
    yield primary, secondary
    secondary.stop()
    primary.stop()


def counted(engine, *clauses):
    table = CoolWidgets.registry_table()
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table).where(*clauses)).scalar()


def test_secondary_rest_status_matches_the_tracking_db(sites):
    _, secondary = sites
    code, status = get_json(secondary.url + "/api/v4/geo_sites/current/status")
    assert code == 200
    table = CoolWidgets.registry_table()
    engine = secondary.tracking_engine
    synced = table.c.state == SyncState.SYNCED
    assert status["cool_widgets_registry_count"] == counted(engine) == 30
    assert status["cool_widgets_count"] == 30
    assert status["cool_widgets_synced_count"] == counted(engine, synced) == 27
    assert status["cool_widgets_failed_count"] == counted(engine, table.c.state == 3) == 3
    assert status["cool_widgets_verified_count"] == counted(
        engine, synced, table.c.verification_state == VerificationState.SUCCEEDED)
    assert status["cool_widgets_verification_total_count"] == 27
    assert status["cool_widgets_verification_failed_count"] == 0
    assert status["cool_widgets_synced_in_percentage"] == "90.00%"
    assert status["cool_widgets_verified_in_percentage"] == "90.00%"
    assert status["cool_widgets_checksum_total_count"] is None  # primary-only field
    assert status["cool_widgets_oldest_unsynced_time"]
    assert status["primary"] is False and status["name"] == "secondary-1"
    assert status["healthy"] is True and status["health_status"] == "Healthy"
    assert status["health"] == "Healthy"
    assert status["cursor_last_event_id"] is not None
    assert status["last_event_id"] >= status["cursor_last_event_id"]
    assert status["event_log_gap_count"] == 0 and status["event_log_oldest_gap_id"] is None
    assert status["last_successful_status_check_timestamp"]
    assert status["db_replication_lag_seconds"] is None
    assert status["engine_state"] == "running"
    # A secondary lists every site by asking its primary, as GitLab's proxy.
    code, listed = get_json(secondary.url + "/api/v4/geo_sites/status")
    assert code == 200 and [s["name"] for s in listed] == ["primary", "secondary-1"]


def test_primary_rest_status_lists_every_site(sites):
    primary, secondary = sites
    code, statuses = get_json(primary.url + "/api/v4/geo_sites/status")
    assert code == 200 and [s["name"] for s in statuses] == ["primary", "secondary-1"]
    own, reported = statuses
    assert own["primary"] is True
    assert own["cool_widgets_count"] == 30
    assert own["cool_widgets_checksum_total_count"] == 30
    assert own["cool_widgets_checksummed_count"] == 27
    assert own["cool_widgets_checksum_failed_count"] == 3
    assert own["cool_widgets_synced_count"] is None  # secondary-only field
    assert own["last_event_id"] is not None and own["cursor_last_event_id"] is None
    assert own["event_log_gap_count"] is None and own["event_log_oldest_gap_id"] is None
    wait_until(lambda: get_json(primary.url + "/api/v4/geo_sites/status")[1][1]
               ["cool_widgets_verified_count"] == 27, timeout=10, message="fresh report")
    code, current = get_json(primary.url + "/api/v4/geo_sites/current/status")
    assert current["name"] == "primary"


def test_prometheus_gauges_match_the_status(sites):
    primary, secondary = sites
    values = metrics(secondary.url)
    name = "secondary-1"
    assert values[("geo_cool_widgets_registry", name)] == 30
    assert values[("geo_cool_widgets_synced", name)] == 27
    assert values[("geo_cool_widgets_failed", name)] == 3
    assert values[("geo_cool_widgets_verified", name)] == 27
    assert values[("geo_cool_widgets_verification_total", name)] == 27
    assert values[("geo_cool_widgets_verification_failed", name)] == 0
    assert values[("geo_cool_widgets", name)] == 30
    assert ("geo_cool_widgets_checksummed", name) not in values  # null on a secondary
    assert values[("geo_event_log_gaps", name)] == 0
    # The engine's own counters and histograms.
    assert values[("geo_engine_syncs_succeeded_total", name)] == 27
    assert values[("geo_engine_syncs_failed_total", name)] >= 3
    assert values[("geo_engine_downloaded_bytes_total", name)] == sum(
        100 + i for i in range(3, 30))
    assert values[("geo_engine_verifications_succeeded_total", name)] == 27
    assert values[("geo_engine_sync_duration_seconds_count", name)] >= 30
    assert ("geo_engine_verification_duration_seconds_count", name) in values
    on_primary = metrics(primary.url)
    assert on_primary[("geo_cool_widgets_checksummed", "primary")] == 27
    assert on_primary[("geo_cool_widgets_checksum_failed", "primary")] == 3
    assert on_primary[("geo_cool_widgets_checksum_total", "primary")] == 30
    assert on_primary[("geo_cool_widgets", "primary")] == 30
    assert ("geo_event_log_gaps", "primary") not in on_primary  # no cursor, no gaps
    wait_until(lambda: metrics(primary.url).get(("geo_cool_widgets_synced", name)) == 27,
               timeout=10, message="secondary's reported status exported by the primary")


def test_metric_help_texts_follow_gitlab(sites):
    _, secondary = sites
    text = HTTP.request("GET", secondary.url + "/metrics").data.decode()
    assert "# HELP geo_cool_widgets_verified Number of Cool Widgets verified on the secondary" \
        in text
    assert 'geo_cool_widgets_synced{name="secondary-1",url="secondary-1"} 27.0' in text


def test_primary_graphql_has_no_registries(sites):
    primary, _ = sites
    node = data(primary.url, "{ geoNode { name primary coolWidgetRegistries { count } } }")
    assert node["geoNode"] == {"name": "primary", "primary": True, "coolWidgetRegistries": None}


def test_history_after_a_run(sites):
    _, secondary = sites
    import datetime as dt
    start = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)).isoformat()
    points = data(secondary.url, """query($from: Time!) { geoNode {
        statusHistory(from: $from) { registryCount syncedPercentage } } }""",
                  {"from": start})["geoNode"]["statusHistory"]
    assert points and points[-1]["registryCount"] == 30
    assert points[-1]["syncedPercentage"] == 90.0


def assert_counted(counters, expected: dict) -> None:
    """Totals since the start and the status history's interval agree."""
    assert {k: v for k, v in counters.snapshot().items() if k in expected} == expected
    interval = counters.take_interval()["cool_widget"]
    assert {k: v for k, v in interval.items() if k in expected} == expected


def samples_of(counters):
    """Prometheus sample values of site-a's cool widgets."""
    def sample(name, **labels):
        return counters.registry.get_sample_value(
            name, {"name": "site-a", "replicable": "cool_widget", **labels})
    return sample


def test_engine_counters_count_syncs_everywhere():
    """Totals, the status history's interval and Prometheus agree."""
    from backend.secondary.engine_counters import EngineCounters
    counters = EngineCounters("site-a")
    counters.sync_finished("cool_widget", True, 0.02, 100)
    counters.sync_finished("cool_widget", True, 0.3, 50)
    counters.sync_finished("cool_widget", False, 5.0, 70)  # a failure downloads nothing
    assert_counted(counters, {"syncs_attempted": 3, "syncs_succeeded": 2, "syncs_failed": 1,
                              "bytes_downloaded": 150})
    assert counters.take_interval() == {}
    sample = samples_of(counters)
    assert sample("geo_engine_sync_attempts_total") == 3
    assert sample("geo_engine_syncs_succeeded_total") == 2
    assert sample("geo_engine_syncs_failed_total") == 1
    assert sample("geo_engine_downloaded_bytes_total") == 150
    assert sample("geo_engine_sync_duration_seconds_count") == 3
    assert sample("geo_engine_sync_duration_seconds_bucket", le="0.025") == 1
    assert sample("geo_engine_sync_duration_seconds_bucket", le="0.5") == 2


def test_verifications_on_write_count_as_verifications():
    from backend.secondary.engine_counters import EngineCounters
    counters = EngineCounters("site-a")
    counters.verified_on_write("cool_widget")
    counters.verified_on_write("cool_widget")
    counters.verification_finished("cool_widget", 10, 9, 1, 0.5)  # a batch of the workers
    assert_counted(counters, {"verifications_attempted": 12, "verifications_succeeded": 11,
                              "verifications_failed": 1})
    sample = samples_of(counters)
    assert sample("geo_engine_verification_attempts_total") == 12
    assert sample("geo_engine_verifications_succeeded_total") == 11
    assert sample("geo_engine_verifications_failed_total") == 1
    assert sample("geo_engine_verification_duration_seconds_count") == 1  # batches only


@pytest.mark.parametrize("part,whole,shown", [
    (99_996, 100_000, "99.99%"), (99_999, 100_000, "99.99%"), (100_000, 100_000, "100.00%"),
    (2, 3, "66.66%"), (29, 100, "29.00%"), (0, 0, "0.00%"), (1, 3, "33.33%")])
def test_percentages_round_down_so_100_means_every_registry(part, whole, shown):
    from backend.secondary import status_history
    from backend.secondary.status import percentage
    assert percentage(part, whole) == shown
    assert status_history._percent(part, float(whole)) == float(shown.rstrip("%"))
