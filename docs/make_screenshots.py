"""Screenshots of the real console on the embedded demo, offscreen.

    python docs/make_screenshots.py      # writes docs/screenshots/*.png

Runs the demo in a temporary workspace, waits for replication to settle,
and grabs each view as an administrator sees it.
"""
from __future__ import annotations

import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    folder = pathlib.Path(tempfile.mkdtemp(prefix="geo-shots-"))
    os.environ["GEO_CONSOLE_HOME"] = str(folder / "home")
    app = QApplication([])
    app.setStyle("Fusion")
    from app.main import open_source
    from app.main_window import MainWindow
    from app.settings_dialog import SettingsDialog
    source, stop = open_source(folder / "workspace", None)
    window = MainWindow(source, settings=QSettings(str(folder / "ui.ini"), QSettings.IniFormat),
                        on_close=stop)
    window.resize(1400, 860)
    window.show()
    window.start()
    pump(app, 25)  # replication settles; a few snapshots fill the charts
    OUT.mkdir(parents=True, exist_ok=True)
    window.tabs.setCurrentIndex(0)
    pump(app, 3)
    window.grab().save(str(OUT / "overview.png"))
    window.tabs.setCurrentIndex(1)
    details = window.details
    details.sidebar.sync_list.setCurrentRow(4)  # failed
    pump(app, 2)
    details.table.selectRow(0)
    pump(app, 1)
    window.grab().save(str(OUT / "replication-details.png"))
    details.sidebar.sync_list.setCurrentRow(0)
    pump(app, 2)
    window.tabs.setCurrentIndex(2)
    pump(app, 2)
    window.grab().save(str(OUT / "failures.png"))
    window.set_type("package_file")  # the type selector drives every tab
    window.tabs.setCurrentIndex(1)
    details.sidebar.sync_list.setCurrentRow(4)  # failed
    pump(app, 2)
    details.table.selectRow(0)
    pump(app, 1)
    window.grab().save(str(OUT / "package-files.png"))
    window.set_type("cool_widget")
    window.tabs.setCurrentWidget(window.sites)  # every site, in both themes
    for scheme, name in (("light", "sites.png"), ("dark", "sites-dark.png")):
        window.set_theme(scheme, save=False)
        pump(app, 3)
        window.grab().save(str(OUT / name))
    window.set_theme("system", save=False)
    window.tabs.setCurrentIndex(0)
    dialog = SettingsDialog({"mode": "local", "secondary": {
        "name": "eu-west", "primary_url": "https://primary.example:8090",
        "access_key": "eu-west-key", "secret": "x" * 40,
        "tracking_database_url": "postgresql://geo@db.example/tracking",
        "storage_path": "/srv/geo/blobs"}})
    dialog.mode.setCurrentIndex(1)
    dialog.show()
    pump(app, 1)
    dialog.grab().save(str(OUT / "settings.png"))
    dialog.close()
    window.close()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
