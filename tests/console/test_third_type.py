"""A type is one declaration, in the console too: Gadgets, declared only in
the test suite, appear in the type selector, Replication details, Failures,
the Overview's bars and charts, exports, the settings' flags and the status
bar, with no edit of the console."""
import csv

import pytest
from PySide6.QtCore import Qt

from app.main_window import MainWindow
from app.settings_dialog import SettingsDialog
from app.sources import LocalSource
from backend.framework.states import SyncState
from backend.secondary.status import percentage
from tests.support.gadgets import GADGETS

pytestmark = pytest.mark.slow


@pytest.fixture
def window(qtbot, gadget_sites, settings):
    source = LocalSource(gadget_sites.secondary, gadget_sites.primary)
    window = MainWindow(source, settings=settings)
    qtbot.addWidget(window)
    window.show()
    window.start()
    yield window
    window.close()


def test_every_console_view_shows_the_third_type(qtbot, window, gadget_sites, tmp_path):
    titles = [window.type_box.itemText(i) for i in range(window.type_box.count())]
    assert titles == ["Cool Widgets", "Package Files", "Gadgets"]

    # The overview lists it with the others, bars and percentages.
    overview = window.overview
    qtbot.waitUntil(lambda: overview.bars["gadgets"][0].total == GADGETS, timeout=10000)
    sync, verify, checksum = overview.bars["gadgets"]
    assert (sync.success, sync.failed) == (GADGETS - 1, 1)
    assert checksum.total == GADGETS and checksum.failed == 1  # the demo's primary is here
    assert overview.percentages["gadgets"].text().startswith(percentage(GADGETS - 1, GADGETS))

    window.set_type("gadget")
    assert window.type_box.currentText() == "Gadgets"

    # The status bar: its totals.
    qtbot.waitUntil(lambda: window.totals_label.text().startswith(
        f"Gadgets: {GADGETS} registries"), timeout=10000)

    # Replication details: its registries, named after its model.
    details = window.details
    qtbot.waitUntil(lambda: details.model.rowCount() == GADGETS
                    and details.model.row_data(0) is not None, timeout=10000)
    assert details.model.headerData(1, Qt.Horizontal) == "Gadget"
    assert "gadget id" in details.search.placeholderText()
    assert {details.model.row_data(r).replicable for r in range(GADGETS)} == {"gadget"}
    details.sidebar.sync_list.setCurrentRow(4)  # failed
    qtbot.waitUntil(lambda: details.model.rowCount() == 1
                    and details.model.row_data(0) is not None, timeout=10000)
    assert details.model.row_data(0).model_id == gadget_sites.missing
    qtbot.waitUntil(lambda: details.sidebar.sync_list.item(4).text() == "Failed (1)",
                    timeout=10000)

    # Failures: its group.
    failures = window.failures
    failures.refresh()
    qtbot.waitUntil(lambda: failures.tree.topLevelItemCount() == 1, timeout=10000)
    assert failures.tree.topLevelItem(0).text(2) == \
        "The file is missing on the Geo primary site"
    assert failures.summary.text() == ("Gadgets: 1 failed registry in 1 group "
                                       "(1 sync, 0 verification)")

    # The charts: its history.
    overview.refresh_history()
    curve = overview.progress_chart.curves["synced %"]
    qtbot.waitUntil(lambda: curve.getData()[1] is not None and len(curve.getData()[1]) > 0,
                    timeout=10000)
    assert overview.progress_chart.plotItem.titleLabel.text.startswith("Gadgets")
    assert curve.getData()[1][-1] == float(percentage(GADGETS - 1, GADGETS).rstrip("%"))

    # Export: the filter of its registries, its model id column.
    path = tmp_path / "gadgets.csv"
    window.export_to(str(path), "csv")
    qtbot.waitUntil(path.exists, timeout=10000)
    rows = list(csv.DictReader(path.open()))
    assert [(int(r["gadget_id"]), r["state"]) for r in rows] == [
        (gadget_sites.missing, SyncState.FAILED.label)]
    window.runner.wait()


def test_settings_offer_the_third_types_flag(qtbot, gadget_sites, tmp_path, monkeypatch):
    monkeypatch.setenv("GEO_CONSOLE_HOME", str(tmp_path))
    dialog = SettingsDialog({"mode": "local", "feature_flags": {
        "geo_gadget_replication": False}})
    qtbot.addWidget(dialog)
    assert set(dialog.flags) == {"geo_cool_widget_replication",
                                 "geo_package_file_replication", "geo_gadget_replication"}
    assert not dialog.flags["geo_gadget_replication"].isChecked()
    assert dialog.flags["geo_package_file_replication"].isChecked()
    dialog.mode.setCurrentIndex(1)
    dialog.flags["geo_gadget_replication"].setChecked(True)
    assert dialog.result_settings()["feature_flags"]["geo_gadget_replication"] is True
