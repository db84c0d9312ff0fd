"""Every site's status (`GET /api/v4/geo_sites/status`): a secondary reports
GitLab's status fields to its primary (health, URL, cursor time); the
primary judges a report older than 10 minutes out of date, so that site is
unhealthy; a secondary answers the same list by asking its primary, and
says plainly when it cannot. Real sites on loopback, SQLite."""
import datetime as dt
import json

import pytest
import urllib3
from sqlalchemy import update

from backend.db.primary_schema import GeoNodeStatus
from backend.framework.clock import utcnow
from backend.secondary.geo_client import GeoClient
from backend.sites.secondary import SecondarySite
from tests.support.sites import READ_HEADERS, secondary_config, start_primary, wait_until

HTTP = urllib3.PoolManager(retries=False)
pytestmark = pytest.mark.slow


def get_json(url):
    response = HTTP.request("GET", url, timeout=20, headers=READ_HEADERS)
    return response.status, json.loads(response.data)


@pytest.fixture
def pair(tmp_path, credentials):
    primary = start_primary(f"sqlite:///{tmp_path / 'primary.db'}", tmp_path / "p",
                            credentials, secondaries=("secondary-1", "old-one"),
                            before_start=lambda site: site.catalog().add_bytes(b"y" * 50, "w"))
    secondary = SecondarySite(secondary_config(
        primary.url, f"sqlite:///{tmp_path / 'tracking.db'}", tmp_path / "s", credentials),
        poll_interval=0.1, consistency_interval=1.0).start()
    yield primary, secondary, credentials
    secondary.stop()
    primary.stop()


def listed(url) -> dict:
    code, statuses = get_json(url + "/api/v4/geo_sites/status")
    assert code == 200
    return {status["name"]: status for status in statuses}


def test_a_secondary_reports_health_url_and_cursor_time(pair):
    primary, secondary, _ = pair
    wait_until(lambda: listed(primary.url).get("secondary-1", {}).get(
        "cursor_last_event_timestamp"), timeout=30, message="a report with the cursor time")
    reported = listed(primary.url)["secondary-1"]
    assert reported["primary"] is False and reported["url"] == secondary.url
    assert (reported["healthy"], reported["health"], reported["health_status"]) == \
        (True, "Healthy", "Healthy")
    assert reported["cursor_last_event_id"] == reported["last_event_id"]
    assert reported["last_successful_status_check_timestamp"] >= \
        int(utcnow().timestamp()) - 30
    # The secondary answers the same list, asked of its primary.
    assert set(listed(secondary.url)) == {"primary", "secondary-1"}


def test_a_report_older_than_ten_minutes_makes_its_site_unhealthy(pair):
    primary, _, credentials = pair
    old = GeoClient(primary.url, credentials["access_key"] + "1", credentials["secret"])
    old.post_status({"name": "old-one", "healthy": True, "health": "Healthy",
                     "health_status": "Healthy"})
    old.close()
    assert listed(primary.url)["old-one"]["healthy"] is True
    with primary.engine.begin() as connection:
        connection.execute(update(GeoNodeStatus).where(GeoNodeStatus.site_name == "old-one")
                           .values(updated_at=utcnow() - dt.timedelta(minutes=12)))
    stale = listed(primary.url)["old-one"]
    assert (stale["healthy"], stale["health_status"]) == (False, "Unhealthy")
    assert stale["health"] == "No status report for 12 minutes (more than 10 is out of date)"


def test_a_report_without_health_fields_is_judged_by_its_last_error(pair):
    primary, _, credentials = pair
    old = GeoClient(primary.url, credentials["access_key"] + "1", credentials["secret"])
    old.post_status({"name": "old-one", "last_error": "database error: disk full"})
    old.close()
    judged = listed(primary.url)["old-one"]
    assert (judged["healthy"], judged["health"], judged["health_status"]) == \
        (False, "database error: disk full", "Unhealthy")


def test_a_secondary_whose_primary_is_down_says_so_in_one_line(pair):
    primary, secondary, _ = pair
    url = primary.url
    primary.stop()
    code, body = get_json(secondary.url + "/api/v4/geo_sites/status")
    assert code == 502
    assert body["message"].startswith(f"cannot reach the primary at {url}: ")
    assert "Traceback" not in body["message"] and "Error" not in body["message"]


def test_gitlabs_site_list_and_status_by_id_on_both_sites(pair):
    """GitLab's routes: `GET /api/v4/geo_sites` (site objects, `current` for
    the site asked) and `GET /api/v4/geo_sites/:id/status`, ids being the
    GeoNode ids GraphQL gives."""
    from backend.framework.status_fields import site_id
    primary, secondary, _ = pair
    wait_until(lambda: "secondary-1" in listed(primary.url), timeout=30,
               message="the secondary's first report")
    for site in (primary, secondary):
        code, sites = get_json(site.url + "/api/v4/geo_sites")
        assert code == 200
        by_name = {entry["name"]: entry for entry in sites}
        assert {name for name, entry in by_name.items() if entry["current"]} == {site.name}
        assert by_name["primary"]["primary"] is True and by_name["secondary-1"]["url"] == \
            secondary.url
        for name, entry in by_name.items():
            assert entry["id"] == site_id(name)
            code, status = get_json(f"{site.url}/api/v4/geo_sites/{entry['id']}/status")
            assert code == 200 and status["geo_node_id"] == entry["id"]
        code, body = get_json(site.url + "/api/v4/geo_sites/12345/status")
        assert (code, body) == (404, {"message": "404 GeoNode Not Found"})
    refused = HTTP.request("GET", secondary.url + "/api/v4/geo_sites", timeout=20,
                           headers={"Authorization": "Bearer not-the-token"})
    assert refused.status == 401
