"""The console tells the truth about its connection: it opens on a site it
cannot reach (the reason, Retry, Settings), notices a hung site (no answer
since …, the data marked as of then), still shows a slow one (one poll at a
time, one connection reused), never blocks on quitting, and shows a paused
engine. The remote site is a real `secondary run` process, which a test
can stop with SIGSTOP; connection states do not depend on the tracking
database, so these run on SQLite."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from app.connection import CONNECTED, NO_ANSWER, UNREACHABLE, clock_time
from app.main import open_source, target_of
from app.overview_page import event_lag
from app.settings import save_settings
from app.settings_dialog import SettingsDialog
from app.site_client import SiteClient
from app.sources import RemoteSource
from tests.console.conftest import open_window
from tests.support.delay_proxy import DelayProxy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN = "remote-console-token"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RemoteSecondary:
    """`main.py secondary run` in a process of its own (its primary away)."""

    def __init__(self, tmp_path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = tmp_path / "remote.toml"
        config.write_text(f"""[secondary]
name = "far-away"
primary_url = "http://127.0.0.1:{free_port()}"
access_key = "k"
secret = "{'s' * 40}"
tracking_database_url = "sqlite:///{tmp_path / 'remote-tracking.db'}"
storage_path = "{tmp_path / 'remote-blobs'}"
listen = "127.0.0.1:{port}"
api_token = "{TOKEN}"
""")
        self.process = subprocess.Popen(
            [sys.executable, "main.py", "secondary", "run", "--config", str(config)], cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(urllib.request.Request(
                    self.url + "/api/v4/geo_sites/current/status",
                    headers={"Authorization": f"Bearer {TOKEN}"}), timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the remote secondary did not start")

    def opener(self, url: str | None = None):
        def open_it():
            client = SiteClient(url or self.url, TOKEN, timeout=30)
            return RemoteSource(client), client.close
        return open_it

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def remote(tmp_path):
    site = RemoteSecondary(tmp_path, free_port())
    yield site
    site.stop()


def test_an_unreachable_site_opens_the_console_with_the_reason_retry_and_settings(
        qtbot, tmp_path, monkeypatch, settings):
    port = free_port()
    monkeypatch.setenv("GEO_CONSOLE_HOME", str(tmp_path))
    save_settings({"mode": "remote", "remote": {"url": f"http://127.0.0.1:{port}",
                                                "api_token": TOKEN}})
    window = open_window(qtbot, settings, opener=lambda: open_source(None, None),
                         target=target_of(None))
    qtbot.waitUntil(lambda: window.connection.state == UNREACHABLE, timeout=15000)
    text = window.banner.text.text()
    assert f"Cannot reach the secondary at http://127.0.0.1:{port}" in text
    assert "connection refused" in text and "Error" not in text
    assert window.banner.retry.isVisible() and window.banner.settings.isVisible()
    assert window.stack.currentWidget() is window.waiting
    assert window.connection_label.text().startswith("▲ unreachable: ")

    window.banner.settings.click()  # Settings are within reach
    assert isinstance(window.settings_dialog, SettingsDialog)
    assert window.settings_dialog.isVisible()
    window.settings_dialog.reject()

    site = RemoteSecondary(tmp_path, port)  # the site comes up: Retry connects
    try:
        window.banner.retry.click()
        qtbot.waitUntil(lambda: window.connection.state == CONNECTED
                        and window.overview is not None
                        and window.overview.name_label.text() == "far-away", timeout=20000)
        assert not window.banner.isVisible() and window.stack.currentWidget() is window.tabs
        window.close()
        window.closing.join(30)
    finally:
        site.stop()


def test_a_hung_site_reads_no_answer_since_and_its_data_as_of_then(qtbot, remote, settings):
    window = open_window(qtbot, settings, opener=remote.opener(), target=remote.url)
    window.connection.no_answer_after = 1.5
    qtbot.waitUntil(lambda: window.overview is not None
                    and window.overview.name_label.text() == "far-away", timeout=20000)
    remote.freeze()
    try:
        qtbot.waitUntil(lambda: window.connection.state == NO_ANSWER, timeout=20000)
        since = clock_time(window.connection.last_answer_at)
        assert f"No answer since {since}" in window.banner.text.text()
        assert window.overview.stale_label.isVisible()
        assert window.overview.stale_label.text() == \
            f"Not current: shown as the site answered at {since}."
        assert window.connection_label.text() == \
            f"▲ far-away: no answer since {since} (shown as it was then)"
        started = time.monotonic()
        window.close()  # quitting never waits for the hung site
        assert time.monotonic() - started < 1.0
    finally:
        remote.thaw()
    window.closing.join(60)


def test_a_hung_site_that_answers_again_is_current_again(qtbot, remote, settings):
    window = open_window(qtbot, settings, opener=remote.opener(), target=remote.url)
    window.connection.no_answer_after = 1.5
    qtbot.waitUntil(lambda: window.connection.state == CONNECTED
                    and window.connection.last_answer_at is not None, timeout=20000)
    remote.freeze()
    qtbot.waitUntil(lambda: window.connection.state == NO_ANSWER, timeout=20000)
    remote.thaw()
    qtbot.waitUntil(lambda: window.connection.state == CONNECTED, timeout=20000)
    assert not window.banner.isVisible() and not window.overview.stale_label.isVisible()
    window.close()
    window.closing.join(30)


def test_a_slow_link_still_shows_the_site_one_poll_at_a_time(qtbot, remote, settings):
    proxy = DelayProxy(remote.port, delay=2.5)
    try:
        url = f"http://127.0.0.1:{proxy.port}"
        window = open_window(qtbot, settings, opener=remote.opener(url), target=url)
        answers = []
        window.connection.statusArrived.connect(lambda status: answers.append(time.monotonic()))
        qtbot.waitUntil(lambda: len(answers) >= 3, timeout=60000)
        # Each answer takes longer than the 2 s between polls: none was
        # dropped for a newer one, and the connections were reused (each
        # worker thread keeps its own).
        assert proxy.connections <= window.runner.pool.maxThreadCount() * 2 + 1
        assert proxy.requests >= 2 * proxy.connections, (proxy.requests, proxy.connections)
        assert window.overview.name_label.text() == "far-away"
        window.close()
        window.closing.join(30)
    finally:
        proxy.stop()


def test_on_a_slower_link_the_last_answer_is_shown_with_its_age(qtbot, remote, settings):
    proxy = DelayProxy(remote.port, delay=7)
    try:
        url = f"http://127.0.0.1:{proxy.port}"
        window = open_window(qtbot, settings, opener=remote.opener(url), target=url)
        qtbot.waitUntil(lambda: window.connection.last_answer_at is not None, timeout=60000)
        # The next answer is 7 s away: meanwhile the label ages, second by second.
        qtbot.waitUntil(lambda: "answered 5 s ago" in window.connection_label.text(),
                        timeout=10000)
        # Connected (its primary is away, which it says): not "no answer".
        assert window.connection.state == "connected"
        assert window.connection_label.text().startswith("▲ far-away: ")
        window.close()
        window.closing.join(30)
    finally:
        proxy.stop()


def test_a_paused_engine_shows_in_the_status_bar_the_overview_and_the_menu(
        qtbot, source, local_site, settings):
    local_site.engine.start()
    window = open_window(qtbot, settings, source=source)
    qtbot.waitUntil(lambda: window.pause_action.isEnabled(), timeout=10000)
    assert not window.resume_action.isEnabled()
    window.pause_action.trigger()
    qtbot.waitUntil(lambda: "engine paused" in window.connection_label.text(), timeout=10000)
    assert window.resume_action.isEnabled() and not window.pause_action.isEnabled()
    assert "Paused" in window.overview.engine_label.text()
    window.resume_action.trigger()
    qtbot.waitUntil(lambda: window.pause_action.isEnabled(), timeout=10000)
    assert "engine paused" not in window.connection_label.text()
    window.close()
    window.closing.join(10)
    assert local_site.engine.running  # the fixture's site: not the window's to stop


@pytest.mark.parametrize("status,shown", [
    ({"last_event_id": 40, "cursor_last_event_id": 40, "last_event_timestamp": 1796115101,
      "cursor_last_event_timestamp": None}, "last event 40, processed 40 (0 events, up to date)"),
    ({"last_event_id": 45, "cursor_last_event_id": 40, "last_event_timestamp": 1796115101,
      "cursor_last_event_timestamp": None},
     "last event 45, processed 40 (5 events, time behind unknown)"),
    ({"last_event_id": 41, "cursor_last_event_id": 40, "last_event_timestamp": 1796115101,
      "cursor_last_event_timestamp": 1796115071}, "last event 41, processed 40 (1 event, 30 s behind)"),
    ({"last_event_id": None}, "No events seen yet"),
    ({"last_event_id": 40, "cursor_last_event_id": 40, "last_event_timestamp": 1796115101,
      "cursor_last_event_timestamp": 1796115101, "event_log_gap_count": 2},
     "last event 40, processed 40 (0 events, up to date); 2 skipped ids awaited"),
    ({"last_event_id": 40, "cursor_last_event_id": 40, "last_event_timestamp": 1796115101,
      "cursor_last_event_timestamp": 1796115101, "event_log_gap_count": 0},
     "last event 40, processed 40 (0 events, up to date)"),
])
def test_event_lag_is_unknown_rather_than_wrong(status, shown):
    assert event_lag(status) == shown


def test_syncs_waiting_for_an_unreachable_primary_show_on_the_overview(
        qtbot, source, local_site, settings, tmp_path):
    """The fixture's primary never answers: the engine's first downloads
    open its circuit breaker, and the overview says that syncs wait for the
    primary and resume by themselves, apart from a pause the administrator
    made; the health says it too."""
    local_site.engine.start()
    window = open_window(qtbot, settings, source=source)
    qtbot.waitUntil(lambda: "Syncs paused" in window.overview.engine_label.text(),
                    timeout=20000)
    text = window.overview.engine_label.text()
    assert "the primary cannot be reached (cannot connect: Connection refused)" in text, text
    assert "resume by themselves" in text
    qtbot.waitUntil(lambda: "Syncs paused: the primary cannot be reached"
                    in window.connection_label.text(), timeout=20000)
    assert window.pause_action.isEnabled()  # not the administrator's pause
    window.overview.grab().save(str(tmp_path / "syncs-paused.png"))
    window.close()
    window.closing.join(10)
