"""The Settings dialog and what saving does: a problem is told in the
dialog's words beside its field and saves nothing; "Test connection" tries
the settings for real (a primary and a tracking database, or a remote
secondary and its token) and changes nothing; a save applies feature flags
to the running secondary at once and offers to reconnect for anything else;
a source that is still opening when it is given up is stopped, not leaked.
"""
import threading

import pytest
from PySide6.QtWidgets import QMessageBox

from app.settings import LIVE, NO_CHANGE, RECONNECT, change_between, load_settings, \
    save_settings
from app.settings_dialog import SettingsDialog
from app.sources import LocalSource
from tests.console.conftest import open_window

# The connection logic does not depend on the tracking database.
sqlite_only = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
FLAG = "geo_cool_widget_replication"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GEO_CONSOLE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def local_settings(tmp_path, primary_url="http://127.0.0.1:9", access_key="key",
                   secret="s" * 40) -> dict:
    return {"mode": "local", "secondary": {
        "name": "here", "primary_url": primary_url, "access_key": access_key,
        "secret": secret, "tracking_database_url": f"sqlite:///{tmp_path / 'here.db'}",
        "storage_path": str(tmp_path / "here-blobs")}}


def told(dialog) -> tuple[str, str]:
    """The problem shown, as (field, the words under it), checked to be
    visible there and nowhere else."""
    field = dialog.problem.field
    line = dialog.problems[field]
    assert line.isVisible() and dialog.error.text() == ""
    assert [key for key, other in dialog.problems.items() if other.isVisible()] == [field]
    return field, line.text()


def dialog_for(qtbot, settings: dict) -> SettingsDialog:
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_a_problem_is_told_beside_its_field_and_nothing_is_saved(qtbot, tmp_path, home):
    dialog = dialog_for(qtbot, local_settings(tmp_path))
    dialog.files_capacity.setValue(0)
    assert dialog.files_capacity.value() == 0  # kept as typed, to be told about
    dialog.accept()
    assert told(dialog) == ("files_max_capacity", "Concurrent syncs must be between 1 and "
                                                  "10000.")
    assert dialog.labels["files_max_capacity"].styleSheet() and dialog.isVisible()
    assert dialog.focusWidget() is dialog.files_capacity
    assert not dialog.labels["verification_max_capacity"].styleSheet()
    assert not (home / "console.toml").exists()

    dialog.files_capacity.setValue(4)
    dialog.reverification.setValue(0)
    dialog.accept()
    assert told(dialog) == ("minimum_reverification_interval",
                            "Re-verify after must be at least 1 day.")
    assert not dialog.labels["files_max_capacity"].styleSheet()
    assert dialog.problems["files_max_capacity"].isHidden()

    dialog.reverification.setValue(3)
    dialog.secret.setText("short")
    dialog.accept()
    assert told(dialog) == ("secret", "Secret must be at least 32 characters.")
    assert not (home / "console.toml").exists()

    dialog.secret.setText("")  # the saved one is kept
    dialog.accept()
    assert not dialog.isVisible() and dialog.problem is None
    saved = load_settings()["secondary"]
    assert (saved["files_max_capacity"], saved["minimum_reverification_interval"],
            saved["secret"]) == (4, 3, "s" * 40)


def connection_test(qtbot, dialog) -> str:
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.test_result.text().startswith(("✓", "✗")), timeout=20000)
    text = dialog.test_result.text()
    assert "Error" not in text and "Traceback" not in text
    return text


@sqlite_only
def test_test_connection_tries_the_primary_and_the_tracking_database(
        qtbot, tmp_path, home, primary, credentials):
    dialog = dialog_for(qtbot, local_settings(tmp_path, primary.url, credentials["access_key"],
                                              credentials["secret"]))
    assert connection_test(qtbot, dialog).startswith("✓ the tracking database and the primary answer")

    dialog.secret.setText("x" * 40)
    text = connection_test(qtbot, dialog)
    assert text.startswith("✗") and "401" in text

    dialog.secret.setText(credentials["secret"])
    dialog.tracking_url.setText("postgresql://postgres@127.0.0.1:1/nowhere")
    text = connection_test(qtbot, dialog)
    assert text.startswith("✗ the tracking database:") and "refused" in text.lower()

    dialog.tracking_url.setText("")
    dialog.test_button.click()  # invalid settings are told, not tried
    assert told(dialog) == ("tracking_database_url", "Tracking database URL must not be "
                                                     "empty.")
    assert dialog.test_result.text().startswith("✗")  # the last real try, still shown
    assert not (home / "console.toml").exists()  # testing saves nothing


@sqlite_only
def test_test_connection_tries_a_remote_secondary_and_its_token(
        qtbot, tmp_path, home, tracking_url, credentials):
    from backend.sites.secondary import SecondarySite
    from tests.console.conftest import db_states, registry_rows
    from tests.support.sites import READ_TOKEN, secondary_config
    from backend.replicables import replicator_for
    from sqlalchemy import insert
    site = SecondarySite(secondary_config("http://127.0.0.1:9", tracking_url, tmp_path / "s",
                                          credentials, api_token="the-token")
                         ).start(run_engine=False)
    try:
        with site.tracking_engine.begin() as connection:
            connection.execute(insert(replicator_for("cool_widget").registry_table()),
                               registry_rows())
        before = db_states(site)
        dialog = dialog_for(qtbot, {"mode": "remote", "remote": {"url": site.url}})
        dialog.remote_token.setText("the-token")
        assert connection_test(qtbot, dialog) == ("✓ secondary-1 answers; its API token may "
                                                  "resync and reverify.")
        dialog.remote_token.setText(READ_TOKEN)
        assert connection_test(qtbot, dialog) == ("✓ secondary-1 answers; this token only "
                                                  "reads: resync and reverify are refused.")
        dialog.remote_token.setText("not-the-token")
        assert connection_test(qtbot, dialog) == ("✗ The token was refused: it is neither this "
                                                  "site's api_token nor its read_token.")
        dialog.remote_token.setText("")
        assert connection_test(qtbot, dialog).startswith(
            "✗ This site's API needs a token: Authorization: Bearer")
        assert db_states(site) == before  # trying the token changed nothing
    finally:
        site.stop()


def test_what_a_save_takes():
    local = {"mode": "local", "secondary": {"name": "a"}, "feature_flags": {FLAG: True}}
    assert change_between(local, dict(local)) == NO_CHANGE
    assert change_between(local, {**local, "feature_flags": {FLAG: False}}) == LIVE
    assert change_between(local, {**local, "secondary": {
        "name": "a", "files_max_capacity": 3, "verification_max_capacity": 9}}) == LIVE
    assert change_between(local, {**local, "secondary": {"name": "b"}}) == RECONNECT
    assert change_between(local, {"mode": "demo"}) == RECONNECT
    assert change_between({"mode": "remote", "remote": {"url": "http://a"}},
                          {"mode": "remote", "remote": {"url": "http://b"}}) == RECONNECT


@sqlite_only
def test_saved_capacities_and_flags_apply_to_the_running_secondary(
        qtbot, tmp_path, home, settings, local_site):
    save_settings(local_settings(tmp_path))
    window = open_window(qtbot, settings, source=LocalSource(local_site))
    window.set_type("cool_widget")
    qtbot.waitUntil(lambda: "registries" in window.totals_label.text(), timeout=10000)
    window.open_settings()
    dialog = window.settings_dialog
    assert dialog.isVisible() and dialog.flags[FLAG].isChecked()
    dialog.flags[FLAG].setChecked(False)
    dialog.files_capacity.setValue(7)
    dialog.verification_capacity.setValue(3)
    dialog.accept()
    qtbot.waitUntil(lambda: "Settings applied" in window.message_label.text(), timeout=10000)
    assert window.message_label.text() == ("Settings applied: 7 concurrent syncs, 3 "
                                           "verification jobs; replication of Cool Widgets "
                                           "is off.")
    assert local_site.engine.flags[FLAG] is False
    assert local_site.engine.syncs.workers.count == 7
    assert local_site.geo_node(None)["verificationMaxCapacity"] == 3
    assert window.confirm is None  # nothing to reconnect for
    qtbot.waitUntil(lambda: window.totals_label.text() == "Cool Widgets: replication off",
                    timeout=10000)
    window.close()


@sqlite_only
def test_other_changes_reconnect_when_asked_stopping_the_old_source_first(
        qtbot, home, settings, local_site):
    happened = []

    def opener():
        happened.append("open")
        return LocalSource(local_site), lambda: happened.append("stop")

    window = open_window(qtbot, settings, opener=opener, target="the demo",
                         target_of=lambda: "the secondary at http://far")
    qtbot.waitUntil(lambda: window.overview is not None, timeout=10000)
    first = window.overview
    before, after = {"mode": "demo"}, {"mode": "remote", "remote": {"url": "http://far"}}

    window.settings_saved(before, after)
    window.confirm.button(QMessageBox.No).click()  # Later: nothing happens now
    assert happened == ["open"] and window.overview is first
    assert "apply at the next reconnect" in window.message_label.text()
    window.confirm = None
    local = {"mode": "local", "secondary": {"name": "a", "files_max_capacity": 2,
                                            "verification_max_capacity": 2}}
    window.settings_saved(local, {**local, "feature_flags": {FLAG: False}})
    assert window.confirm is not None  # a live change, but what was put off is still to do
    window.confirm.button(QMessageBox.No).click()
    assert local_site.engine.flags.get(FLAG, True)

    window.settings_saved(before, after)
    assert window.confirm.button(QMessageBox.Yes).text() == "Reconnect now"
    assert "stops the secondary it runs" in window.confirm.text()
    window.confirm.button(QMessageBox.Yes).click()
    qtbot.waitUntil(lambda: window.overview is not None and window.overview is not first,
                    timeout=10000)
    assert happened == ["open", "stop", "open"]
    assert window.banner.target == "the secondary at http://far"
    assert window.stack.currentWidget() is window.tabs
    assert window.tabs.count() == 4 and len(window.findChildren(type(window.type_bar))) == 1
    window.close()
    window.closing.join(10)
    assert happened == ["open", "stop", "open", "stop"]


@sqlite_only
def test_a_console_started_with_a_config_file_keeps_it(qtbot, settings, source):
    window = open_window(qtbot, settings, source=source, config_path="site.toml")
    window.settings_saved({"mode": "demo"}, {"mode": "remote", "remote": {"url": "http://x"}})
    assert window.confirm is None
    assert "runs the secondary of site.toml" in window.message_label.text()
    window.close()


@sqlite_only
def test_a_source_still_opening_when_given_up_stops_itself(qtbot, settings, local_site):
    release, happened = threading.Event(), []

    def opener():
        release.wait(10)
        happened.append("open")
        return LocalSource(local_site), lambda: happened.append("stop")

    window = open_window(qtbot, settings, opener=opener)
    window.close()  # while opening: the window goes at once
    assert not window.isVisible() and window.closing.is_alive()
    release.set()
    window.closing.join(10)
    assert happened == ["open", "stop"]
    assert window.overview is None  # never shown
