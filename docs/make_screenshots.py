"""Screenshots of the real console on the embedded demo, offscreen.

    python docs/make_screenshots.py      # writes docs/screenshots/*.png

Runs the demo in a temporary workspace, waits for replication to settle,
and grabs each view as an administrator sees it, at the default window
size (1280 x 720), in the light and the dark theme (`<view>.png`,
`<view>-dark.png`). Two connection states are shown for real: a site that
stops answering (the demo's secondary watched remotely through a proxy
that then holds every answer back: "no answer") and a site that cannot be
reached (a closed port: the banner).
"""
from __future__ import annotations

import os
import pathlib
import socket
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
THEMES = (("light", ""), ("dark", "-dark"))


def pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def pump_until(app, predicate, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("the console did not get there in time")
        pump(app, 0.1)


def grab_both(app, window, name: str, settle: float = 2) -> None:
    for scheme, suffix in THEMES:
        window.set_theme(scheme, save=False)
        pump(app, settle)
        window.grab().save(str(OUT / f"{name}{suffix}.png"))
    window.set_theme("light", save=False)


def close(window) -> None:
    window.close()
    if window.closing is not None:
        window.closing.join(60)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    folder = pathlib.Path(tempfile.mkdtemp(prefix="geo-shots-"))
    os.environ["GEO_CONSOLE_HOME"] = str(folder / "home")
    app = QApplication([])
    app.setStyle("Fusion")
    from app.main import open_source
    from app.main_window import MainWindow
    from app.settings_dialog import SettingsDialog
    from app.site_client import SiteClient
    from app.sources import RemoteSource
    from tests.support.delay_proxy import DelayProxy

    def ui_settings(name: str) -> QSettings:
        return QSettings(str(folder / f"{name}.ini"), QSettings.IniFormat)

    source, stop = open_source(folder / "workspace", None)
    window = MainWindow(source, settings=ui_settings("ui"), on_close=stop)
    window.show()  # the default size: 1280 x 720
    window.start()
    pump(app, 25)  # replication settles; a few snapshots fill the charts
    OUT.mkdir(parents=True, exist_ok=True)
    window.tabs.setCurrentWidget(window.overview)
    grab_both(app, window, "overview", settle=3)
    window.tabs.setCurrentWidget(window.details)
    details = window.details
    details.sidebar.sync_list.setCurrentRow(4)  # failed
    pump(app, 2)
    details.table.selectRow(0)
    grab_both(app, window, "replication-details")
    details.sidebar.sync_list.setCurrentRow(0)
    pump(app, 2)
    window.tabs.setCurrentWidget(window.failures)
    grab_both(app, window, "failures")
    window.set_type("package_file")  # the type selector drives every tab
    window.tabs.setCurrentWidget(window.details)
    details.sidebar.sync_list.setCurrentRow(4)  # failed
    pump(app, 2)
    details.table.selectRow(0)
    grab_both(app, window, "package-files")
    window.set_type("cool_widget")
    window.tabs.setCurrentWidget(window.sites)  # every site
    grab_both(app, window, "sites", settle=3)
    window.tabs.setCurrentWidget(window.overview)

    # A site that stops answering: the demo's secondary, watched remotely.
    proxy = DelayProxy(int(source.site.url.rsplit(":", 1)[1]), delay=0)
    url = f"http://127.0.0.1:{proxy.port}"

    def remote_opener(target: str):
        def open_it():
            client = SiteClient(target, source.site.api_token, timeout=30)
            return RemoteSource(client), client.close
        return open_it

    watcher = MainWindow(settings=ui_settings("remote"), opener=remote_opener(url), target=url)
    watcher.show()
    watcher.start()
    pump_until(app, lambda: watcher.connection.last_answer_at is not None, 30)
    pump(app, 6)
    proxy.delay = 3600  # every answer from now on is held back
    pump_until(app, lambda: watcher.connection.state == "no answer", 30)
    pump(app, 2)
    grab_both(app, watcher, "no-answer")
    close(watcher)
    proxy.stop()

    # A site that cannot be reached at all.
    nowhere = f"http://127.0.0.1:{closed_port()}"
    lost = MainWindow(settings=ui_settings("lost"), opener=remote_opener(nowhere),
                      target=nowhere)
    lost.show()
    lost.start()
    pump_until(app, lambda: lost.connection.state == "unreachable", 30)
    grab_both(app, lost, "unreachable")
    close(lost)

    dialog = SettingsDialog({"mode": "local", "secondary": {
        "name": "eu-west", "primary_url": "https://primary.example:8090",
        "access_key": "eu-west-key", "secret": "x" * 40,
        "tracking_database_url": "postgresql://geo@db.example/tracking",
        "storage_path": "/srv/geo/blobs", "sync_object_storage": True,
        "object_store": {"enabled": True, "bucket": "geo-eu-west-replicas", "connection": {
            "endpoint": "https://minio.example:9000", "region": "eu-west-1",
            "path_style": True, "aws_access_key_id": "GEOEUWEST",
            "aws_secret_access_key": "x" * 40}}}})
    dialog.mode.setCurrentIndex(1)
    dialog.show()
    pump(app, 1)
    dialog.grab().save(str(OUT / "settings.png"))
    dialog.close()
    close(window)
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
