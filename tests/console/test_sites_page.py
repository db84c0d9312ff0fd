"""The Sites view against real sites on loopback: a primary, a secondary
engine that reports to it, and a second secondary whose reports go through
the primary's authenticated Geo API. The view lists what the primary's
`GET /api/v4/geo_sites/status` says (through the hosted secondary, or
through a remote secondary's site API), marks a site that stopped
reporting, and says plainly when the primary cannot be reached. Site
listing does not depend on the tracking database: SQLite only."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from app.main_window import MainWindow
from app.site_client import SiteClient
from app.site_summaries import event_lag, fraction
from app.sites_page import SitesPage
from app.sources import LocalSource, RemoteSource
from app.tasks import TaskRunner
from backend.db.primary_schema import GeoNodeStatus
from backend.framework.clock import utcnow
from backend.secondary.geo_client import GeoClient
from backend.sites.secondary import SecondarySite
from tests.support.sites import secondary_config, start_primary, wait_until

pytestmark = pytest.mark.slow

# What the second secondary reports: 9,999 of 10,000 synced must read as
# 99.99%, never 100%.
FAR_STATUS = {
    "name": "eu-west", "url": "https://eu-west.example:8091", "healthy": False,
    "health": "cannot reach the primary: read timed out", "health_status": "Unhealthy",
    "last_event_id": 120, "last_event_timestamp": 1_700_000_300,
    "cursor_last_event_id": 100, "cursor_last_event_timestamp": None,
    "cool_widgets_registry_count": 10_000, "cool_widgets_synced_count": 9_999,
    "cool_widgets_failed_count": 1, "cool_widgets_verification_total_count": 3,
    "cool_widgets_verified_count": 2, "cool_widgets_verification_failed_count": 1,
    "package_files_registry_count": 40, "package_files_synced_count": 40,
    "package_files_failed_count": 0, "package_files_verification_total_count": 40,
    "package_files_verified_count": 40, "package_files_verification_failed_count": 0,
    "engine_state": "running",
}


@pytest.fixture
def deployment(tmp_path, credentials):
    """A primary, its secondary `secondary-1` (engine running, reporting
    every second, site API served) and a second peer `eu-west`."""
    primary = start_primary(f"sqlite:///{tmp_path / 'primary.db'}", tmp_path / "p",
                            credentials, secondaries=("secondary-1", "eu-west"),
                            before_start=lambda site: site.catalog().add_bytes(b"x" * 99, "w"))
    config = secondary_config(primary.url, f"sqlite:///{tmp_path / 'tracking.db'}",
                              tmp_path / "s", credentials, api_token="tok")
    secondary = SecondarySite(config, poll_interval=0.1, consistency_interval=1.0).start()
    far = GeoClient(primary.url, credentials["access_key"] + "1", credentials["secret"])
    far.post_status(FAR_STATUS)  # through the Geo API, as a secondary reports
    far.close()

    def reported():
        statuses = {s["name"]: s for s in primary.all_rest_statuses()}
        own = statuses.get("secondary-1", {})
        return "eu-west" in statuses and own.get("cool_widgets_synced_count") == 1 \
            and own.get("cursor_last_event_id") == own.get("last_event_id") is not None
    wait_until(reported, timeout=30, message="both secondaries reported, the blob synced")
    yield primary, secondary
    secondary.stop()
    primary.stop()


def open_page(qtbot, source):
    runner = TaskRunner()
    page = SitesPage(runner, source)
    qtbot.addWidget(page)
    page.show()
    page.start()
    return runner, page


def card(page, name):
    for site_card in page.cards:
        if site_card.data.name == name:
            return site_card
    raise AssertionError(f"no card for {name}: {[c.data.name for c in page.cards]}")


def wait_for_cards(qtbot, page, count=3):
    qtbot.waitUntil(lambda: len(page.cards) == count, timeout=15000)


def close(page, runner):
    page.stop()
    runner.close()


def test_every_site_with_health_check_lag_and_types(qtbot, deployment):
    primary, secondary = deployment
    runner, page = open_page(qtbot, LocalSource(secondary))
    wait_for_cards(qtbot, page)
    assert [c.data.name for c in page.cards] == ["primary", "eu-west", "secondary-1"]

    top = card(page, "primary")
    assert top.badge_label.text() == "Primary" and top.url_label.text() == primary.url
    assert top.data.health == "Healthy"
    assert top.data.columns == ("Data type", "Records", "Checksummed", "Checksum failed")
    assert [cells[0].text() for cells in top.cells] == ["Cool Widgets", "Package Files"]

    own = card(page, "secondary-1")
    assert own.badge_label.text() == "Secondary" and own.data.marks == ["This console"]
    assert own.data.health == "Healthy" and own.data.tone == "good"
    assert own.url_label.text() == secondary.url  # its report carries its URL
    checked = own.fact("Last status check")
    assert " ago (" in checked or checked.startswith("just now (")
    assert own.fact("Event lag") == "0 events, 0 s (up to date)"
    assert own.cell("Cool Widgets", "Synced") == "1 / 1 (100.00%)"
    assert own.cell("Package Files", "Synced") == "0 / 0"
    assert top.cell("Cool Widgets", "Records") == "1"
    assert own.cell("Package Files", "Sync failed") == "0"

    far = card(page, "eu-west")
    assert far.data.health == "Unhealthy" and far.data.tone == "bad"
    assert far.reason_label.text() == "Cannot reach the primary: read timed out"
    assert far.fact("Event lag") == "20 events behind, time behind unknown"
    assert far.cell("Cool Widgets", "Synced") == "9,999 / 10,000 (99.99%)"
    # of every registry: 2 verified of 10,000 is not 2 of the 3 verifiable
    assert far.cell("Cool Widgets", "Verified") == "2 / 10,000 (0.02%)"
    assert far.cell("Cool Widgets", "Sync failed") == "1"
    assert far.cell("Cool Widgets", "Verification failed") == "1"
    assert far.cell("Package Files", "Synced") == "40 / 40 (100.00%)"
    assert not page.problem_label.isVisible()
    assert "2 secondary sites" in page.summary.text() and primary.url in page.summary.text()
    close(page, runner)


def test_a_secondary_that_stopped_reporting_is_out_of_date(qtbot, deployment):
    primary, secondary = deployment
    far = GeoClient(primary.url, secondary.config.access_key + "1", secondary.config.secret)
    far.post_status(dict(FAR_STATUS, healthy=True, health="Healthy", health_status="Healthy"))
    far.close()
    with primary.engine.begin() as connection:  # its last report, 20 minutes ago
        connection.execute(update(GeoNodeStatus).where(GeoNodeStatus.site_name == "eu-west")
                           .values(updated_at=utcnow() - dt.timedelta(minutes=20)))
    runner, page = open_page(qtbot, LocalSource(secondary))
    wait_for_cards(qtbot, page)
    silent = card(page, "eu-west")
    assert silent.data.health == "Unhealthy"  # it said "Healthy", 20 minutes ago
    assert silent.note_label.text().startswith("Out of date: no status report for 20 min")
    assert silent.fact("Last status check").startswith("20 min")
    assert silent.fact("Engine") == "Running (as last reported)"
    assert card(page, "secondary-1").data.health == "Healthy"  # it reports every second
    close(page, runner)


def test_an_unreachable_primary_is_said_plainly_and_nothing_stays_healthy(qtbot, deployment):
    primary, secondary = deployment
    runner, page = open_page(qtbot, LocalSource(secondary))
    wait_for_cards(qtbot, page)
    assert card(page, "secondary-1").data.health == "Healthy"
    url = primary.url
    primary.stop()
    page.refresh()
    qtbot.waitUntil(lambda: page.problem_label.isVisible(), timeout=15000)
    text = page.problem_label.text()
    assert text.startswith(f"Not current: cannot reach the primary at {url}: ")
    assert "Shown as the primary listed them at " in text and " ago)" in text
    assert "Error" not in text and "Traceback" not in text
    assert len(page.cards) == 3  # the last answer is kept, with its age
    healths = [c.data.health for c in page.cards]
    assert "Healthy" not in healths
    assert card(page, "secondary-1").data.health == "Last known: Healthy"
    assert card(page, "secondary-1").data.tone == "unknown"
    close(page, runner)


def test_a_remote_secondary_lists_the_sites_by_asking_its_primary(qtbot, deployment):
    primary, secondary = deployment
    client = SiteClient(secondary.url, "tok", timeout=15)
    runner, page = open_page(qtbot, RemoteSource(client))
    wait_for_cards(qtbot, page)
    assert card(page, "primary").url_label.text() == primary.url
    assert card(page, "secondary-1").data.marks == ["This console"]
    url = primary.url
    primary.stop()
    page.refresh()
    qtbot.waitUntil(lambda: page.problem_label.isVisible(), timeout=15000)
    # The secondary's 502 says why, and the console shows its words.
    assert f"cannot reach the primary at {url}" in page.problem_label.text()
    assert "HTTP 502" not in page.problem_label.text()
    close(page, runner)
    client.close()


def test_nothing_listed_yet_when_the_primary_never_answered(qtbot, source):
    """The hosted secondary's primary (127.0.0.1:9) refuses connections."""
    runner, page = open_page(qtbot, source)
    qtbot.waitUntil(lambda: page.problem_label.isVisible(), timeout=15000)
    assert page.problem_label.text().startswith(
        "The sites cannot be listed: cannot reach the primary at http://127.0.0.1:9")
    assert page.cards == []
    close(page, runner)


def test_the_sites_tab_polls_while_shown_and_stops_with_the_window(qtbot, source, settings):
    window = MainWindow(source, settings=settings)
    qtbot.addWidget(window)
    window.show()
    window.start()
    assert window.tabs.tabText(window.tabs.count() - 1) == "&Sites"
    assert not window.sites.timer.isActive()  # not shown yet
    window.tabs.setCurrentWidget(window.sites)
    assert window.sites.timer.isActive()
    window.tabs.setCurrentIndex(0)
    assert not window.sites.timer.isActive()
    window.tabs.setCurrentWidget(window.sites)
    window.close()
    assert not window.sites.timer.isActive()


def test_lag_and_percentages_say_only_what_is_known():
    assert fraction(9_999, 10_000) == "9,999 / 10,000 (99.99%)"
    assert fraction(1, 3) == "1 / 3 (33.33%)"
    assert fraction(0, 0) == "0 / 0"
    assert fraction(None, 5) == "not reported"
    base = {"last_event_id": 10, "last_event_timestamp": 1000}
    assert event_lag({**base, "cursor_last_event_id": 7,
                      "cursor_last_event_timestamp": 900}) == "3 events, 100 s behind (1 min 40 s)"
    assert event_lag({**base, "cursor_last_event_id": 9,
                      "cursor_last_event_timestamp": None}) == \
        "1 event behind, time behind unknown"
    assert event_lag({**base, "cursor_last_event_id": None}) == \
        "unknown (no event processed yet)"
    assert event_lag({"last_event_id": None}) == "unknown (no event seen yet)"
