"""The console's main window: Overview, Replication details and Failures
tabs, export, settings, theme, notifications and a status bar."""
from __future__ import annotations

import time

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QApplication, QFileDialog, QLabel, QMainWindow,
                               QProgressDialog, QTabWidget)

from app.details_page import DetailsPage
from app.export import ExportJob, write_pdf
from app.failures_page import FailuresPage
from app.overview_page import OverviewPage
from app.settings import SettingsDialog, load_settings
from app.tasks import TaskRunner

NOTIFY_EVERY = 60.0  # seconds between "new failures" notifications
THEMES = [("system", "Follow the system"), ("light", "Light"), ("dark", "Dark")]


class MainWindow(QMainWindow):
    def __init__(self, source, settings: QSettings | None = None, on_close=None) -> None:
        super().__init__()
        self.source = source
        self.settings = settings or QSettings("geo-console", "console")
        self.on_close = on_close
        self.runner = TaskRunner(self)
        self.runner.errorOccurred.connect(self.show_error)
        self.setWindowTitle(f"Geo Console — {'remote' if source.remote else 'local'} secondary")
        self.overview = OverviewPage(self.runner, source)
        self.details = DetailsPage(self.runner, source)
        self.failures = FailuresPage(self.runner, source)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.overview, "&Overview")
        self.tabs.addTab(self.details, "&Replication details")
        self.tabs.addTab(self.failures, "&Failures")
        self.setCentralWidget(self.tabs)
        self.overview.pauseToggled.connect(self.set_paused)
        for page in (self.details, self.failures):
            page.message.connect(self.show_message)
        self.details.actionDone.connect(lambda *_: self.overview.refresh())

        self.connection_label = QLabel("Connecting…")
        self.totals_label = QLabel("")
        self.message_label = QLabel("")
        self.message_timer = QTimer(self)
        self.message_timer.setSingleShot(True)
        self.message_timer.setInterval(10000)
        self.message_timer.timeout.connect(lambda: self.message_label.setText(""))
        self.statusBar().addWidget(self.message_label, 1)
        self.statusBar().addPermanentWidget(self.totals_label)
        self.statusBar().addPermanentWidget(self.connection_label)
        self._last_failed: int | None = None
        self.export_job: ExportJob | None = None
        self._export_timers: set[QTimer] = set()
        self._last_notified = 0.0
        self.status_timer = QTimer(self)
        self.status_timer.setInterval(2000)
        self.status_timer.timeout.connect(self._poll_status)
        self._build_menus()
        self.restore()

    # --- menus ---------------------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, fmt, keys in (("Export CSV…", "csv", "Ctrl+E"), ("Export JSON…", "json", None)):
            action = file_menu.addAction(text, lambda f=fmt: self.export_dialog(f))
            if keys:
                action.setShortcut(QKeySequence(keys))
        file_menu.addAction("Export PDF report…", self.pdf_dialog)
        file_menu.addSeparator()
        settings = file_menu.addAction("Settings…", self.open_settings)
        settings.setShortcut(QKeySequence.Preferences)
        file_menu.addSeparator()
        quit_action = file_menu.addAction("Quit", self.close)
        quit_action.setShortcut(QKeySequence.Quit)

        view_menu = self.menuBar().addMenu("&View")
        refresh = view_menu.addAction("Refresh", self.refresh_all)
        refresh.setShortcut(QKeySequence.Refresh)
        theme_menu = view_menu.addMenu("Theme")
        self.theme_group = QActionGroup(self)
        chosen = self.settings.value("theme", "system")
        for key, text in THEMES:
            action = QAction(text, self.theme_group, checkable=True)
            action.setData(key)
            action.setChecked(key == chosen)
            action.triggered.connect(lambda _c, k=key: self.set_theme(k))
            theme_menu.addAction(action)

        engine_menu = self.menuBar().addMenu("&Engine")
        self.pause_action = engine_menu.addAction("Pause", lambda: self.set_paused(True))
        self.resume_action = engine_menu.addAction("Resume", lambda: self.set_paused(False))
        for action in (self.pause_action, self.resume_action):
            action.setEnabled(self.source.can_pause)

    # --- life ------------------------------------------------------------------------------

    def start(self) -> None:
        self.set_theme(self.settings.value("theme", "system"), save=False)
        for page in (self.overview, self.details, self.failures):
            page.start()
        self.status_timer.start()
        self._poll_status()

    def closeEvent(self, event) -> None:
        self.save()
        self.status_timer.stop()
        self.message_timer.stop()
        for page in (self.overview, self.details, self.failures):
            page.stop()
        if self.export_job is not None:
            self.export_job.cancel()  # a half-written export is discarded
        self.runner.close()
        for timer in self._export_timers:
            timer.stop()
        if self.on_close:
            self.on_close()
        super().closeEvent(event)

    def save(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/tab", self.tabs.currentIndex())
        self.details.save_state(self.settings)
        self.settings.sync()

    def restore(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        self.tabs.setCurrentIndex(int(self.settings.value("window/tab", 0) or 0))
        self.details.restore_state(self.settings)

    def refresh_all(self) -> None:
        self.overview.refresh()
        self.overview.refresh_history()
        self.details.refresh()
        self.failures.refresh()

    # --- status bar and notifications ---------------------------------------------------------

    def _poll_status(self) -> None:
        self.runner.submit("statusbar", self.source.overview, self._status_arrived,
                           self._status_failed)

    def _status_arrived(self, status: dict) -> None:
        p = self.source.replicators[0].plural_name
        healthy = status.get("healthy")
        self.connection_label.setText(
            f"{'●' if healthy else '▲'} {status.get('name', '')}: "
            f"{'connected' if healthy else status.get('health') or 'unhealthy'}")
        self.connection_label.setStyleSheet(f"color: {'#2e9e5b' if healthy else '#d9534f'}")
        registry, synced = status.get(f"{p}_registry_count"), status.get(f"{p}_synced_count")
        verified, failed = status.get(f"{p}_verified_count"), status.get(f"{p}_failed_count")
        if registry is not None:
            self.totals_label.setText(f"{registry:,} registries · {synced:,} synced · "
                                      f"{verified:,} verified · {failed:,} failed")
            self._maybe_notify(failed)

    def _status_failed(self, message: str) -> None:
        self.connection_label.setText(f"▲ disconnected: {message}")
        self.connection_label.setStyleSheet("color: #d9534f")

    def _maybe_notify(self, failed: int) -> None:
        previous, self._last_failed = self._last_failed, failed
        if previous is None or failed <= previous:
            return
        now = time.monotonic()
        if now - self._last_notified < NOTIFY_EVERY:
            return  # throttled: repeated failures do not flood the administrator
        self._last_notified = now
        new = failed - previous
        self.show_message(f"{new:,} {'registry' if new == 1 else 'registries'} newly failed "
                          f"({failed:,} failed in all). See the Failures tab.", error=True)
        QApplication.alert(self)

    def show_message(self, text: str, error: bool = False) -> None:
        self.message_label.setStyleSheet("color: #d9534f" if error else "")
        self.message_label.setText(text)
        self.message_timer.start()

    def show_error(self, text: str) -> None:
        self.show_message(text, error=True)

    # --- actions -----------------------------------------------------------------------------------

    def set_paused(self, pause: bool) -> None:
        if not self.source.can_pause:
            return
        self.runner.submit("pause", self.source.pause if pause else self.source.resume,
                           lambda _r: self.overview.refresh())

    def set_theme(self, key: str, save: bool = True) -> None:
        hints = QGuiApplication.styleHints()
        scheme = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}.get(
            key, Qt.ColorScheme.Unknown)
        if hasattr(hints, "setColorScheme"):
            hints.setColorScheme(scheme)
        dark = hints.colorScheme() == Qt.ColorScheme.Dark if key == "system" else key == "dark"
        self.overview.set_theme(dark)
        for action in self.theme_group.actions():
            action.setChecked(action.data() == key)
        if save:
            self.settings.setValue("theme", key)

    def open_settings(self) -> None:
        dialog = SettingsDialog(load_settings(), self)
        if dialog.exec():
            self.show_message("Settings saved; the new connection applies when Geo Console "
                              "starts again.")

    # --- export ------------------------------------------------------------------------------------

    def export_dialog(self, fmt: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, f"Export {fmt.upper()}",
                                              f"registries.{fmt}", f"{fmt.upper()} (*.{fmt})")
        if path:
            self.export_to(path, fmt)

    def export_to(self, path: str, fmt: str) -> ExportJob:
        job = ExportJob(self.source, self.details.view_filter, fmt, path)
        progress = QProgressDialog(f"Exporting {self.details.view_filter.describe()}…", "Cancel",
                                   0, 100, self)
        progress.setWindowTitle("Export")
        progress.setMinimumDuration(300)
        progress.canceled.connect(job.cancel)
        timer = QTimer(progress)
        timer.setInterval(200)

        def tick():
            done, total = job.progress
            progress.setValue(int(done * 100 / total) if total else 0)

        timer.timeout.connect(tick)
        timer.start()
        self._export_timers.add(timer)

        def finished(count):
            timer.stop()
            self._export_timers.discard(timer)
            progress.reset()
            self.show_message(f"Exported {count:,} registries to {path}.")

        def failed(message):
            timer.stop()
            self._export_timers.discard(timer)
            progress.reset()
            self.show_message("Export cancelled." if "cancelled" in message
                              else f"Export failed: {message}", error="cancelled" not in message)

        # A key per export: a second export must not make the first's answer stale.
        self.runner.submit(f"export-{id(job)}", job.run, finished, failed)
        self.export_job = job
        return job

    def pdf_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export PDF report", "geo-report.pdf",
                                              "PDF (*.pdf)")
        if path:
            self.export_pdf(path)

    def export_pdf(self, path: str) -> None:
        def gather():
            return self.source.overview(), self.source.failure_groups()

        def build(result):
            status, groups = result
            images = {}
            import pyqtgraph.exporters as exporters
            for title, chart in (("progress", self.overview.progress_chart),
                                 ("work", self.overview.work_chart)):
                exporter = exporters.ImageExporter(chart.plotItem)
                exporter.parameters()["width"] = 900
                images[title] = exporter.export(toBytes=True)
            write_pdf(path, status, groups, self.source.replicators, images, self.source.name)
            self.show_message(f"PDF report written to {path}.")

        self.runner.submit("pdf", gather, build)
