"""The console's main window: a data type selector over the Overview,
Replication details and Failures tabs, export, settings, theme,
notifications and a status bar.

The selector drives Replication details, Failures, the Overview's charts,
the status bar's totals and exports; the Overview's bars list every type.
"""
from __future__ import annotations

import time

from PySide6.QtCore import QSettings, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (QApplication, QComboBox, QFileDialog, QLabel, QMainWindow,
                               QProgressDialog, QTabWidget, QToolBar)

from app.details_page import DetailsPage
from app.export import ExportJob, write_pdf
from app.failures_page import FailuresPage
from app.overview_page import OverviewPage
from app.settings import SettingsDialog, load_settings
import resources
from app import theme
from app.tasks import TaskRunner

NOTIFY_EVERY = 60.0  # seconds between "new failures" notifications


class MainWindow(QMainWindow):
    typeChanged = Signal(object)  # the ReplicableType now shown

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
        self.data_type = source.types[0]
        self.type_box = QComboBox()
        self.type_box.setAccessibleName("Data type")
        self.type_box.setToolTip("The data type Replication details, Failures, the charts "
                                 "and exports show")
        for data_type in source.types:
            self.type_box.addItem(data_type.title_plural, data_type.replicable_name)
        self.type_box.currentIndexChanged.connect(self._type_chosen)
        bar = QToolBar("Data type")
        bar.setObjectName("type-toolbar")
        bar.setMovable(False)
        label = QLabel(" Data type: ")
        label.setBuddy(self.type_box)
        bar.addWidget(label)
        bar.addWidget(self.type_box)
        self.addToolBar(bar)
        for page in (self.overview, self.details, self.failures):
            self.typeChanged.connect(page.set_type)
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
        self._last_status: dict = {}
        self._theme = "system"
        self._following_the_system = False
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
        for key, text in theme.CHOICES:
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
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._system_scheme_changed)
        self._following_the_system = True
        for page in (self.overview, self.details, self.failures):
            page.start()
        self.status_timer.start()
        self._poll_status()

    def closeEvent(self, event) -> None:
        self.save()
        if self._following_the_system:
            QGuiApplication.styleHints().colorSchemeChanged.disconnect(
                self._system_scheme_changed)
            self._following_the_system = False
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
        self.settings.setValue("window/type", self.data_type.replicable_name)
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
        self.set_type(str(self.settings.value("window/type", "") or ""))

    # --- the data type ----------------------------------------------------------------------

    def set_type(self, replicable: str) -> None:
        """Show the type named `replicable` (an unknown name changes nothing)."""
        index = self.type_box.findData(replicable)
        if index >= 0:
            self.type_box.setCurrentIndex(index)

    def _type_chosen(self, index: int) -> None:
        self.data_type = self.source.types[index]
        self.typeChanged.emit(self.data_type)
        self._show_totals()

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
        self._last_status = status
        healthy = status.get("healthy")
        self.connection_label.setText(
            f"{'●' if healthy else '▲'} {status.get('name', '')}: "
            f"{'connected' if healthy else status.get('health') or 'unhealthy'}")
        self.connection_label.setStyleSheet(f"color: {'#2e9e5b' if healthy else '#d9534f'}")
        self._show_totals()
        failed = [status.get(f"{t.plural_name}_failed_count") for t in self.source.types]
        if any(count is not None for count in failed):
            self._maybe_notify(sum(count or 0 for count in failed))

    def _show_totals(self) -> None:
        """The current type's totals, from the last status."""
        status, kind = self._last_status, self.data_type
        p = kind.plural_name
        registry, synced = status.get(f"{p}_registry_count"), status.get(f"{p}_synced_count")
        verified, failed = status.get(f"{p}_verified_count"), status.get(f"{p}_failed_count")
        if registry is None:
            self.totals_label.setText(f"{kind.title_plural}: replication off"
                                      if status else "")
            return
        self.totals_label.setText(f"{kind.title_plural}: {registry:,} registries · "
                                  f"{synced:,} synced · {verified:,} verified · "
                                  f"{failed:,} failed")

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
        """"system", "light" or "dark" (theme.CHOICES), for the whole console."""
        self._theme = key
        self.overview.set_theme(theme.apply(key))
        self.setWindowIcon(QIcon(str(resources.icon(resources.APP_ICON))))
        for action in self.theme_group.actions():
            action.setChecked(action.data() == key)
        if save:
            self.settings.setValue("theme", key)

    def _system_scheme_changed(self, _scheme) -> None:
        if self._theme == "system":
            self.set_theme("system", save=False)

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
        details = self.details
        job = ExportJob(self.source, details.data_type, details.selection, fmt, path)
        progress = QProgressDialog(f"Exporting {details.describe()}…", "Cancel", 0, 100, self)
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
        source, charted = self.source, self.data_type

        def gather():
            return source.overview(), {kind.replicable_name: source.failure_groups(
                kind.replicable_name) for kind in source.types}

        def build(result):
            status, groups = result
            images = {}
            import pyqtgraph.exporters as exporters
            for title, chart in (("progress", self.overview.progress_chart),
                                 ("work", self.overview.work_chart)):
                exporter = exporters.ImageExporter(chart.plotItem)
                exporter.parameters()["width"] = 900
                images[title] = exporter.export(toBytes=True)
            write_pdf(path, status, groups, source.types, images, source.name, charted)
            self.show_message(f"PDF report written to {path}.")

        self.runner.submit("pdf", gather, build)
