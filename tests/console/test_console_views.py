"""Overview, failures, export, settings and the main window, offscreen."""
import csv
import functools
import json
import os
import stat
import subprocess
import sys
import time

import pytest
from PySide6.QtCore import Qt, QTimer

from app.failures_page import FailuresPage
from app.main_window import MainWindow
from app.overview_page import OverviewPage
from app.settings import load_settings, validate
from app.settings_dialog import SettingsDialog
from app.sources import RemoteSource
from app.tasks import TaskRunner
from backend.framework.states import SyncState, VerificationState
from tests.console.conftest import db_states, registry_rows

ROWS = registry_rows()
FAILED = [n for n, row in enumerate(ROWS, 1) if row["state"] == SyncState.FAILED]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def window(qtbot, source, settings):
    window = MainWindow(source, settings=settings)
    qtbot.addWidget(window)
    window.show()
    window.start()
    yield window
    window.close()


def test_overview_shows_status_bars_and_pause(qtbot, source, local_site):
    runner = TaskRunner()
    page = OverviewPage(runner, source)
    qtbot.addWidget(page)
    page.start()
    qtbot.waitUntil(lambda: page.name_label.text() == "secondary-1", timeout=10000)
    sync, verify, checksum = page.bars["cool_widgets"]
    assert (sync.total, sync.success, sync.failed) == (60, 39, len(FAILED))
    # 39 and 34 of 60, rounded down: 100% only when every registry is there
    assert page.percentages["cool_widgets"].text() == "65.00% / 56.66%"
    assert page.bars["package_files"][0].total == 0  # every type is listed
    assert "Failed: 15" in sync.toolTip() and "Queued: 6" in sync.toolTip()
    assert checksum.toolTip() == "Not applicable"  # no primary in this console
    assert page.lag_label.text() == "No events seen yet"
    assert not page.pause_button.isEnabled()  # a stopped engine has nothing to pause
    local_site.engine.start()
    page.refresh()
    # Its primary never answers: once a download has found that out, syncs
    # wait for it, which the label says rather than "Running".
    qtbot.waitUntil(lambda: page.engine_label.text() == "Running"
                    or "Syncs paused</b>: the primary cannot be reached" in
                    page.engine_label.text(), timeout=10000)
    page.pauseToggled.connect(lambda pause: source.pause() if pause else source.resume())
    page.pause_button.click()
    assert local_site.engine.paused
    page.refresh()
    qtbot.waitUntil(lambda: page.pause_button.text() == "Resume engine", timeout=10000)
    assert "Paused" in page.engine_label.text()
    page.stop()
    runner.close()


def test_overview_charts_follow_history(qtbot, source, local_site):
    import datetime as dt

    from backend.secondary import status_history
    now = dt.datetime.now(dt.timezone.utc)
    for minute in range(30):
        status_history.record(local_site.tracking_engine, "cool_widget",
                              {"registry_count": 60, "synced_count": minute * 2},
                              {"syncs_succeeded": 2}, 60.0,
                              now=now - dt.timedelta(minutes=30 - minute))
    runner = TaskRunner()
    page = OverviewPage(runner, source)
    qtbot.addWidget(page)
    page.refresh_history()
    curve = page.progress_chart.curves["synced %"]
    qtbot.waitUntil(lambda: curve.getData()[0] is not None and len(curve.getData()[0]) > 10,
                    timeout=10000)
    first = curve  # the same curve object is updated in place
    page.range_box.setCurrentIndex(3)  # last month
    qtbot.waitUntil(lambda: runner.pool.activeThreadCount() == 0, timeout=10000)
    assert page.progress_chart.curves["synced %"] is first
    assert max(curve.getData()[1]) == 96.66  # 58 of 60, rounded down
    runner.close()


def test_failures_grouped_by_kind_and_a_group_resynced_after_asking(qtbot, source, local_site):
    runner = TaskRunner()
    page = FailuresPage(runner, source)
    qtbot.addWidget(page)
    page.refresh()
    qtbot.waitUntil(lambda: page.tree.topLevelItemCount() == 3, timeout=10000)
    items = [page.tree.topLevelItem(i) for i in range(3)]
    texts = {(item.text(0), item.text(2)): item.text(1) for item in items}
    missing = [n for n in FAILED if n % 8 == 0]
    unverified = [n for n, row in enumerate(ROWS, 1)
                  if row["verification_state"] == VerificationState.FAILED]
    assert texts == {
        ("Sync", "The file is missing on the Geo primary site"): str(len(missing)),
        ("Sync", "Downloaded file checksum mismatch"): str(len(FAILED) - len(missing)),
        ("Verification", "(no message)"): str(len(unverified))}
    total = len(FAILED) + len(unverified)
    assert page.summary.text() == (f"Cool Widgets: {total} failed registries in 3 groups "
                                   "(2 sync, 1 verification)")
    [group] = [item for item in items if item.text(2).startswith("The file")]
    group.setSelected(True)
    asked = []
    page.confirm = lambda title, question: asked.append(title) or False
    page.resync_button.click()
    assert asked == [f"Resync {len(missing)} registries"]
    runner.wait()
    assert all(db_states(local_site)[n][0] == SyncState.FAILED for n in missing)  # cancelled
    page.confirm = lambda title, question: asked.append(question) or True
    page.resync_button.click()
    assert "that failed to sync with “The file is missing" in asked[-1]
    qtbot.waitUntil(lambda: all(db_states(local_site)[n][0] == SyncState.PENDING
                                for n in missing), timeout=10000)
    assert db_states(local_site)[4][0] == SyncState.FAILED  # the other group stays
    runner.close()


def test_a_group_of_one_reads_in_the_singular(qtbot, source, local_site):
    from sqlalchemy import update

    from tests.console.conftest import CoolWidgets
    table = CoolWidgets.registry_table()
    with local_site.tracking_engine.begin() as connection:
        connection.execute(update(table).where(table.c.state == SyncState.FAILED).values(
            state=SyncState.SYNCED))
        connection.execute(update(table).where(table.c.id != 7).values(
            verification_state=VerificationState.SUCCEEDED))
        connection.execute(update(table).where(table.c.id == 7).values(
            verification_state=VerificationState.FAILED, verification_failure="bad"))
    runner = TaskRunner()
    page = FailuresPage(runner, source)
    qtbot.addWidget(page)
    page.refresh()
    qtbot.waitUntil(lambda: page.tree.topLevelItemCount() == 1, timeout=10000)
    assert page.summary.text() == ("Cool Widgets: 1 failed registry in 1 group "
                                   "(0 sync, 1 verification)")
    runner.close()


def test_a_double_clicked_group_lists_exactly_its_registries(qtbot, window):
    failures, details = window.failures, window.details
    window.tabs.setCurrentWidget(failures)
    failures.refresh()
    qtbot.waitUntil(lambda: failures.tree.topLevelItemCount() == 3, timeout=10000)
    [item] = [failures.tree.topLevelItem(i) for i in range(3)
              if failures.tree.topLevelItem(i).text(2).startswith("The file")]
    rect = failures.tree.visualItemRect(item)
    qtbot.mouseClick(failures.tree.viewport(), Qt.LeftButton, pos=rect.center())
    qtbot.mouseDClick(failures.tree.viewport(), Qt.LeftButton, pos=rect.center())
    assert window.tabs.currentWidget() is details
    assert details.group_bar.isVisibleTo(details) and "The file is missing" in \
        details.group_label.text()
    missing = [n for n in FAILED if n % 8 == 0]
    qtbot.waitUntil(lambda: details.model.rowCount() == len(missing)
                    and all(details.model.row_data(r) is not None
                            for r in range(len(missing))), timeout=10000)
    assert [details.model.row_data(r).registry_id for r in range(len(missing))] == missing
    details.group_clear.click()
    qtbot.waitUntil(lambda: details.model.rowCount() == len(ROWS), timeout=10000)
    assert not details.group_bar.isVisibleTo(details)


def test_export_csv_and_json_contain_what_the_filter_shows(qtbot, window, tmp_path):
    window.details.sidebar.sync_list.setCurrentRow(4)  # failed
    qtbot.waitUntil(lambda: window.details.selection.replication_state == SyncState.FAILED,
                    timeout=5000)
    path = tmp_path / "failed.csv"
    window.export_to(str(path), "csv")
    qtbot.waitUntil(path.exists, timeout=10000)
    rows = list(csv.DictReader(path.open()))
    assert [int(r["registry_id"]) for r in rows] == FAILED
    assert {r["state"] for r in rows} == {"failed"}
    json_path = tmp_path / "failed.json"
    window.export_to(str(json_path), "json")
    qtbot.waitUntil(json_path.exists, timeout=10000)
    document = json.loads(json_path.read_text())
    assert document["count"] == len(FAILED)
    assert document["filter"]["replication_state"] == "failed"
    assert document["summary"]["cool_widgets_failed_count"] == len(FAILED)
    assert document["replicable"] == "cool_widget"
    assert "console-token" not in json_path.read_text()


def test_cancelled_export_writes_nothing(qtbot, window, tmp_path):
    path = tmp_path / "all.csv"
    job = window.export_to(str(path), "csv")
    job.cancel()
    window.runner.wait()
    qtbot.waitUntil(lambda: "cancelled" in window.message_label.text() or path.exists(),
                    timeout=10000)
    assert not path.exists() or len(path.read_text().splitlines()) == 61


def test_pdf_report(qtbot, window, tmp_path):
    path = tmp_path / "report.pdf"
    window.export_pdf(str(path))
    qtbot.waitUntil(path.exists, timeout=15000)
    data = path.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 5000
    assert "PDF report written" in window.message_label.text()


def test_status_bar_and_failure_notification(qtbot, window, local_site):
    qtbot.waitUntil(lambda: "60 registries" in window.totals_label.text(), timeout=10000)
    assert window.totals_label.text().startswith("Cool Widgets: 60 registries")
    # This console's engine is not started: the status bar says so.
    assert window.connection_label.text() == "▲ secondary-1: The sync engine is not running"


def test_only_registries_never_seen_failed_are_notified(qtbot, window, local_site):
    """The 15 failures there at the start are not news; two new ones are; a
    broken record failing again after its retry is not, and news is
    throttled."""
    from sqlalchemy import update

    from tests.console.conftest import CoolWidgets
    notifier, told = window.notifier, []
    notifier.notified.connect(told.append)
    qtbot.waitUntil(lambda: notifier.seen.get("cool_widget") == set(FAILED), timeout=10000)
    assert told == []
    table = CoolWidgets.registry_table()

    def set_state(ids, state):
        with local_site.tracking_engine.begin() as connection:
            connection.execute(update(table).where(table.c.id.in_(ids)).values(state=state))
        window.connection.poll()

    set_state([1, 2], SyncState.FAILED)
    qtbot.waitUntil(lambda: bool(told), timeout=10000)
    assert told == ["2 Cool Widget registries newly failed. See the Failures tab."]
    assert "newly failed" in window.message_label.text()
    set_state([4], SyncState.PENDING)  # retried ...
    qtbot.waitUntil(lambda: notifier.counts["cool_widget"] == len(FAILED) + 1, timeout=10000)
    notifier.last_notified = 0.0  # past the throttle
    set_state([4], SyncState.FAILED)  # ... and failed again: not news
    qtbot.waitUntil(lambda: notifier.counts["cool_widget"] == len(FAILED) + 2, timeout=10000)
    window.runner.wait()
    qtbot.wait(50)
    assert len(told) == 1
    notifier.last_notified = time.monotonic()  # as if just told
    set_state([3], SyncState.FAILED)  # news, but within a minute of the last: throttled
    qtbot.waitUntil(lambda: 3 in notifier.seen["cool_widget"], timeout=10000)
    assert len(told) == 1


def test_theme_choice_is_remembered_and_applies_its_palette(window, settings):
    from PySide6.QtGui import QGuiApplication, QPalette

    import resources
    window.set_theme("dark")
    assert settings.value("theme") == "dark"
    palette = QGuiApplication.palette()
    assert palette.color(QPalette.Window).name() == resources.palette("dark")["Window"]
    assert palette.color(QPalette.Disabled, QPalette.Text).name() == \
        resources.disabled_palette("dark")["Text"]
    assert window.overview.progress_chart.backgroundBrush().color().name() == "#1e1f22"
    window.set_theme("light")
    assert settings.value("theme") == "light"
    assert QGuiApplication.palette().color(QPalette.Base).name() == \
        resources.palette("light")["Base"]
    assert window.overview.progress_chart.backgroundBrush().color().name() == \
        resources.chart_colours("light")["background"]


def test_states_show_their_icons_and_the_window_its_own(qtbot, window):
    from PySide6.QtCore import Qt

    from widgets.registry_table_model import column_of
    details = window.details
    qtbot.waitUntil(lambda: details.model.row_data(0) is not None, timeout=10000)
    for column in (column_of("state"), column_of("verification_state")):
        assert not details.model.index(0, column).data(Qt.DecorationRole).isNull()
    assert details.model.index(0, 0).data(Qt.DecorationRole) is None
    from widgets.state_icons import blank_icon, state_icon
    items = [details.sidebar.sync_list.item(row) for row in range(5)]
    # "All" is no state: a blank icon keeps its text in line with the others.
    assert items[0].icon().cacheKey() == blank_icon(16).cacheKey()
    assert [item.icon().cacheKey() for item in items[1:]] == [
        state_icon(state).cacheKey() for state in ("pending", "started", "synced", "failed")]
    assert not window.windowIcon().isNull()


def test_window_geometry_and_tab_restored(qtbot, source, settings):
    first = MainWindow(source, settings=settings)
    qtbot.addWidget(first)
    first.show()
    first.resize(1000, 700)
    qtbot.waitUntil(lambda: first.size().toTuple() == (1000, 700))
    first.tabs.setCurrentIndex(2)
    first.set_type("package_file")
    first.close()
    second = MainWindow(source, settings=settings)
    qtbot.addWidget(second)
    second.show()
    assert second.tabs.currentIndex() == 2
    assert second.data_type.replicable_name == "package_file"
    assert second.details.data_type == second.failures.data_type == second.data_type
    # Qt clamps a restored width to the screen (800 pixels offscreen).
    qtbot.waitUntil(lambda: second.height() == 700)
    second.close()


def test_settings_validate_persist_and_hide_secrets(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("GEO_CONSOLE_HOME", str(tmp_path))
    dialog = SettingsDialog(load_settings())
    qtbot.addWidget(dialog)
    dialog.mode.setCurrentIndex(1)  # local secondary
    dialog.primary_url.setText("ftp://nope")
    dialog.accept()
    # In the dialog's words, beside the field, which is marked.
    assert dialog.problems["primary_url"].text() == ("Primary URL must be an http:// or "
                                                     "https:// URL.")
    assert dialog.labels["primary_url"].styleSheet() and not dialog.labels["access_key"].styleSheet()
    assert not (tmp_path / "console.toml").exists()
    dialog.primary_url.setText("http://primary:8090")
    dialog.access_key.setText("key")
    dialog.secret.setText("s" * 40)
    dialog.tracking_url.setText(f"sqlite:///{tmp_path / 't.db'}")
    dialog.storage.setText(str(tmp_path / "blobs"))
    dialog.files_capacity.setValue(25)
    dialog.accept()
    saved = tmp_path / "console.toml"
    assert saved.exists() and stat.S_IMODE(saved.stat().st_mode) == 0o600
    settings = load_settings()
    assert settings["secondary"]["files_max_capacity"] == 25
    assert settings["secondary"]["secret"] == "s" * 40
    again = SettingsDialog(settings)
    qtbot.addWidget(again)
    assert again.secret.text() == "" and "saved" in again.secret.placeholderText()
    assert again.secret.echoMode() == again.secret.EchoMode.Password
    again.mode.setCurrentIndex(1)
    assert again.result_settings()["secondary"]["secret"] == "s" * 40  # kept, not shown
    problem = validate({"mode": "remote", "remote": {"url": "nope"}})
    assert problem.field == "remote_url" and problem.message.startswith("The secondary")


def test_remote_source_drives_the_details_page(qtbot, tracking_url, tmp_path, credentials):
    from sqlalchemy import insert

    from app.details_page import DetailsPage
    from app.site_client import SiteClient
    from backend.replicables import replicator_for
    from backend.sites.secondary import SecondarySite
    from tests.support.sites import secondary_config
    site = SecondarySite(secondary_config("http://127.0.0.1:9", tracking_url, tmp_path / "s",
                                          credentials, api_token="remote-token")
                         ).start(run_engine=False)
    try:
        with site.tracking_engine.begin() as connection:
            connection.execute(insert(replicator_for("cool_widget").registry_table()), ROWS)
        runner = TaskRunner()
        page = DetailsPage(runner, RemoteSource(SiteClient(site.url, "remote-token")))
        qtbot.addWidget(page)
        page.start()
        page.sidebar.sync_list.setCurrentRow(4)
        qtbot.waitUntil(lambda: page.model.rowCount() == len(FAILED)
                        and page.model.row_data(0) is not None, timeout=15000)
        assert page.model.row_data(0).registry_id == FAILED[0]
        page.table.selectRow(0)
        page.act_on_selection("resync")
        qtbot.waitUntil(lambda: db_states(site)[FAILED[0]][0] == SyncState.PENDING,
                        timeout=10000)
        page.stop()
        # The refresh after the action is still asking the site: let it answer
        # before the site stops, or its request waits out the client's timeout.
        assert runner.wait(20000)
        runner.close()
    finally:
        site.stop()


def test_console_without_a_display_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["GEO_CONSOLE_HOME"] = str(tmp_path)
    result = subprocess.run([sys.executable, "main.py"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "geo-console: error: no display found; run `python main.py demo --headless` for the "
        "demo without a window"]


def test_a_console_whose_configuration_is_missing_says_why_in_one_line(tmp_path):
    config = tmp_path / "geo.toml"
    fragment = "configuration file not found"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", GEO_CONSOLE_HOME=str(tmp_path))
    result = subprocess.run([sys.executable, "main.py", "--config", str(config)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    errors = [line for line in result.stderr.splitlines() if "propagateSizeHints" not in line]
    assert result.returncode == 1
    assert len(errors) == 1 and errors[0].startswith("geo-console: error: ") \
        and fragment in errors[0], result.stderr


def test_a_tracking_database_that_cannot_be_reached_opens_the_console_with_the_reason(
        qtbot, tmp_path, settings):
    from app.connection import UNREACHABLE
    from app.main import open_source, target_of
    config = tmp_path / "geo.toml"
    config.write_text("[secondary]\nname='s'\nprimary_url='http://127.0.0.1:9'\n"
                      "access_key='k'\nsecret='" + "s" * 32 + "'\n"
                      "tracking_database_url='postgresql://postgres@127.0.0.1:1/x'\n"
                      f"storage_path='{tmp_path / 'blobs'}'\n")
    window = MainWindow(opener=lambda: open_source(None, str(config)), settings=settings,
                        target=target_of(str(config)))
    qtbot.addWidget(window)
    window.show()
    window.start()
    qtbot.waitUntil(lambda: window.connection.state == UNREACHABLE, timeout=15000)
    text = window.banner.text.text()
    assert f"Cannot reach the secondary of {config}" in text and "database error" in text
    assert window.banner.retry.isVisible()
    window.close()


def test_the_gui_thread_guard_catches_a_query_from_the_console(qtbot, no_io_on_the_gui_thread,
                                                               source):
    """The hygiene fixture is not a test that cannot fail: console code that
    queries on the GUI thread, run by the event loop, is caught (and here
    forgiven); the same call made by a test itself is the test's business."""
    source.state_counts("cool_widget")
    assert not no_io_on_the_gui_thread
    QTimer.singleShot(0, functools.partial(source.state_counts, "cool_widget"))
    qtbot.wait(50)
    queries = [c for c in no_io_on_the_gui_thread if c.startswith("query SELECT from")]
    assert queries and "app/sources.py" in queries[0]
    no_io_on_the_gui_thread.clear()


def describe_registries(site) -> None:
    """What the primary would say of the registries' records."""
    from backend.secondary.registry_details import RegistryDetails
    from tests.console.conftest import CoolWidgets
    RegistryDetails(site.tracking_engine, CoolWidgets).record(
        {"id": 500 + n, "file_name": f"release-{n:03d}_final.tar.gz", "size": 1000 * n,
         "file_store": 2 if n % 2 else 1, "project_id": n % 3,
         "project_path": f"acme/platform/project-{n % 3}", "shard": "fast",
         "checksum": f"{n:02d}" * 32} for n in range(1, 61))


def test_each_row_says_what_the_registry_is_and_a_file_name_finds_it(qtbot, window, local_site):
    from widgets.registry_table_model import column_of
    describe_registries(local_site)
    details = window.details
    window.tabs.setCurrentWidget(details)
    details.refresh()
    qtbot.waitUntil(lambda: details.model.row_data(0) is not None
                    and details.model.row_data(0).file_name is not None, timeout=10000)
    first = {key: details.model.index(0, column_of(key)).data()
             for key in ("file_name", "size", "project_path", "shard", "storage",
                         "primary_checksum", "missing_on_primary")}
    assert first == {"file_name": "release-001_final.tar.gz", "size": "1000 B",
                     "project_path": "acme/platform/project-1", "shard": "fast",
                     "storage": "object storage", "primary_checksum": "01" * 32,
                     "missing_on_primary": ""}
    details.search.setText("release-042_")  # the underscore is a letter, not a wildcard
    details.search.returnPressed.emit()
    qtbot.waitUntil(lambda: details.model.rowCount() == 1
                    and details.model.row_data(0) is not None, timeout=10000)
    assert details.model.row_data(0).registry_id == 42
    details.table.selectRow(0)
    qtbot.waitUntil(lambda: details.detail.values["registry_id"].text() == "42", timeout=5000)
    # The detail panel shows the checksum whole and the file's size in bytes.
    assert details.detail.values["primary_checksum"].text() == "42" * 32
    assert details.detail.values["size"].text() == "41.0 KiB (42,000 bytes)"
    assert details.detail.values["project_path"].text() == "acme/platform/project-0"


def test_at_the_default_size_the_failure_and_the_search_hint_are_not_cut(qtbot, window):
    from widgets.registry_table_model import column_of
    details = window.details
    window.tabs.setCurrentWidget(details)
    qtbot.waitUntil(lambda: details.model.row_data(0) is not None, timeout=10000)
    assert (window.width(), window.height()) == (1280, 720)
    view = details.table
    failure = column_of("failure")
    # The failure column starts inside the table and its text fits in what shows.
    start = view.horizontalHeader().sectionViewportPosition(failure)
    shown = view.viewport().width() - start
    longest = max(view.fontMetrics().horizontalAdvance(row["last_sync_failure"] or "")
                  for row in ROWS)
    assert 0 <= start and shown >= longest + 8, (start, shown, longest)
    hint = details.search.placeholderText()
    assert details.search.width() >= details.search.fontMetrics().horizontalAdvance(hint)
    # Folding the detail panel gives the table its width; unfolding brings it back.
    before = view.width()
    details.detail_button.click()
    qtbot.waitUntil(lambda: view.width() > before + 200, timeout=5000)
    assert not details.detail_shown
    details.detail_button.click()
    qtbot.waitUntil(lambda: details.detail_shown, timeout=5000)
