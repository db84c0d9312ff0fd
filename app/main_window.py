"""The console's main window: a connection banner and a data type selector
over the Overview, Replication details, Failures and Sites tabs; export,
settings, theme, notifications and a status bar.

The window opens before its site does (`connection.py`): while the source
is being opened, or cannot be, the banner says so, with Retry and
Settings; the tabs appear once the source is open. The type selector
drives Replication details, Failures, the Overview's charts, the status
bar's totals and exports; the Overview's bars list every type. Nothing
here waits on the network or a database: closing hides the window at once
and stops the hosted engine on a thread of its own.
"""
from __future__ import annotations

import threading

from PySide6.QtCore import QSettings, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (QComboBox, QFileDialog, QLabel, QMainWindow, QMessageBox,
                               QProgressDialog, QStackedWidget, QTabWidget, QToolBar,
                               QVBoxLayout, QWidget)

import resources
from app import theme
from app.connection import CONNECTED, CONNECTING, NO_ANSWER, SiteConnection, clock_time
from app.connection_banner import ConnectionBanner
from app.details_page import DetailsPage
from app.export import ExportJob
from app.failure_notifier import FailureNotifier
from app.failures_page import FailuresPage
from app.overview_page import OverviewPage
from app.pdf_report import gather_status_report, write_pdf
from app.settings import LIVE, NO_CHANGE, RECONNECT, change_between, load_settings
from app.settings_dialog import SettingsDialog
from app.sites_page import SitesPage
from app.tasks import TaskRunner

DEFAULT_SIZE = (1280, 720)  # fits a 1366 x 768 screen with its panel


OLD_ANSWER = 5  # seconds: an answer this old is shown with its age (polls are every 2 s)


class MainWindow(QMainWindow):
    typeChanged = Signal(object)  # the ReplicableType now shown

    def __init__(self, source=None, settings: QSettings | None = None, on_close=None, *,
                 opener=None, target: str = "the site", config_path: str | None = None,
                 target_of=None) -> None:
        """Give an open `source`, or `opener()` returning (source, stop) to be
        run off the GUI thread; `target` names the site in the banner (and
        `target_of()`, when given, names it again after a reconnect).
        `config_path`: the console runs the secondary of that file, which
        saved settings do not change."""
        super().__init__()
        self.settings = settings or QSettings("geo-console", "console")
        self.on_close = on_close
        self.opener = opener
        self.config_path = config_path
        self.target_of = target_of
        self._retired: list[threading.Thread] = []  # sources stopping after a reconnect
        self._connect(opener, source)
        self.source = None
        self.overview = self.details = self.failures = self.sites = None
        self.data_type = None
        self.closing: threading.Thread | None = None
        self._started = False
        self._last_status: dict = {}
        self._theme = "system"
        self._following_the_system = False
        self.export_job: ExportJob | None = None
        self._export_timers: set[QTimer] = set()
        self.notifier: FailureNotifier | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.confirm: QMessageBox | None = None  # "reconnect now?" after a save
        self._reconnect_pending = False  # a save the administrator put off ("Later")
        self.setWindowTitle("Geo Console")

        self.banner = ConnectionBanner(target)
        self.banner.retryRequested.connect(lambda: self.connection.retry())
        self.banner.settingsRequested.connect(self.open_settings)
        self.waiting = QLabel("Connecting…")
        self.waiting.setAccessibleName("Waiting for the site")
        self.tabs = QTabWidget()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.waiting)
        self.stack.addWidget(self.tabs)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.connection_label = QLabel("Connecting…")
        self.connection_label.setAccessibleName("Connection")
        self.totals_label = QLabel("")
        self.message_label = QLabel("")
        self.message_timer = QTimer(self)
        self.message_timer.setSingleShot(True)
        self.message_timer.setInterval(10000)
        self.message_timer.timeout.connect(lambda: self.message_label.setText(""))
        # The connection label says how old the last answer is while it ages.
        self.age_timer = QTimer(self)
        self.age_timer.setInterval(1000)
        self.age_timer.timeout.connect(self._show_connection)
        self.statusBar().addWidget(self.message_label, 1)
        self.statusBar().addPermanentWidget(self.totals_label)
        self.statusBar().addPermanentWidget(self.connection_label)
        self._build_menus()
        self._restore_geometry()
        if source is not None:
            self._build_pages(source)

    def _connect(self, opener, source=None) -> None:
        """A runner and a connection of their own for each site opened: a
        reconnect closes the old ones, whose late answers go nowhere."""
        self.runner = TaskRunner(self)
        self.runner.errorOccurred.connect(self.show_error)
        self.connection = SiteConnection(self.runner, opener=opener, source=source, parent=self)
        self.connection.opened.connect(self._source_opened)
        self.connection.stateChanged.connect(self._connection_changed)
        self.connection.statusArrived.connect(self._status_arrived)

    # --- menus ---------------------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.export_actions = []
        for text, fmt, keys in (("Export CSV…", "csv", "Ctrl+E"), ("Export JSON…", "json", None)):
            action = file_menu.addAction(text, lambda f=fmt: self.export_dialog(f))
            if keys:
                action.setShortcut(QKeySequence(keys))
            self.export_actions.append(action)
        self.export_actions.append(file_menu.addAction("Export PDF report…", self.pdf_dialog))
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
        for action in (self.pause_action, self.resume_action, *self.export_actions):
            action.setEnabled(False)  # until the site says what applies

    # --- the pages, once the source is open ---------------------------------------------------

    def _build_pages(self, source) -> None:
        self.source = source
        self.setWindowTitle(f"Geo Console — {'remote' if source.remote else 'local'} secondary")
        self.overview = OverviewPage(self.runner, source)
        self.details = DetailsPage(self.runner, source)
        self.failures = FailuresPage(self.runner, source)
        self.tabs.addTab(self.overview, "&Overview")
        self.tabs.addTab(self.details, "&Replication details")
        self.tabs.addTab(self.failures, "&Failures")
        self.sites = SitesPage(self.runner, source)
        self.tabs.addTab(self.sites, "&Sites")
        self.stack.setCurrentWidget(self.tabs)
        self.data_type = source.types[0]
        self.type_box = QComboBox()
        self.type_box.setAccessibleName("Data type")
        self.type_box.setToolTip("The data type Replication details, Failures, the charts "
                                 "and exports show")
        for data_type in source.types:
            self.type_box.addItem(data_type.title_plural, data_type.replicable_name)
        self.type_box.currentIndexChanged.connect(self._type_chosen)
        bar = self.type_bar = QToolBar("Data type")
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
        self.details.actionDone.connect(lambda *_: self.connection.poll())
        self.failures.groupOpened.connect(self.show_failure_group)
        for action in self.export_actions:
            action.setEnabled(True)
        self.notifier = FailureNotifier(self.runner, source, self,
                                        QIcon(str(resources.icon(resources.APP_ICON))))
        self.notifier.notified.connect(lambda text: self.show_message(text, error=True))
        self._restore_pages()
        if self._started:
            self._start_pages()

    def show_failure_group(self, selection, title: str) -> None:
        """The registries of a failure group, in Replication details."""
        self.details.show_group(selection, title)
        self.tabs.setCurrentWidget(self.details)

    def _source_opened(self, source) -> None:
        self._build_pages(source)

    @property
    def pages(self) -> list:
        return [page for page in (self.overview, self.details, self.failures, self.sites)
                if page]

    def _tear_down_pages(self) -> None:
        """Back to the waiting page, as before the source opened."""
        if self.source is not None:
            self.save()
        for page in self.pages:
            page.stop()
            page.deleteLater()
        self.tabs.clear()
        if self.notifier is not None:
            self.notifier.close()
            self.notifier.deleteLater()
        if self.source is not None:
            self.removeToolBar(self.type_bar)
            self.type_bar.deleteLater()
        self.overview = self.details = self.failures = self.sites = self.notifier = None
        self.source = self.data_type = None
        self._last_status = {}
        self.totals_label.setText("")
        self.stack.setCurrentWidget(self.waiting)
        self.setWindowTitle("Geo Console")
        for action in (self.pause_action, self.resume_action, *self.export_actions):
            action.setEnabled(False)

    def _retire(self, connection: SiteConnection) -> None:
        """Give `connection` up; its source stops on a thread of its own
        (after opening, if it is opening now)."""
        stop, settled = connection.abandon(), connection.settled

        def stop_it():
            settled.wait(300)
            if stop is not None:
                stop()

        thread = threading.Thread(target=stop_it, name="console-stopping-source")
        thread.start()
        self._retired.append(thread)

    def reconnect(self) -> None:
        """Open the site again from the settings now saved: the pages go,
        the source shown is stopped on a thread of its own, and the new one
        opens (off the GUI thread) once the old has stopped."""
        if self.opener is None:
            return
        self._retire(self.connection)
        self.runner.close()
        self._tear_down_pages()
        retired, opener = list(self._retired), self.opener

        def reopen():
            for thread in retired:
                thread.join()
            return opener()

        self._connect(reopen)
        self._reconnect_pending = False
        if self.target_of is not None:
            self.banner.target = self.target_of()
        self.connection.open()

    # --- life ------------------------------------------------------------------------------

    def start(self) -> None:
        self._started = True
        self.age_timer.start()
        self.set_theme(self.settings.value("theme", "system"), save=False)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._system_scheme_changed)
        self._following_the_system = True
        if self.source is not None:
            self._start_pages()
        else:
            self.connection.open()

    def _start_pages(self) -> None:
        for page in self.pages:
            page.start()
        self.connection.start()

    def closeEvent(self, event) -> None:
        """Hide at once; the hosted engine stops on a thread of its own
        (`closing`), which whoever runs the application may wait for."""
        self.save()
        if self._following_the_system:
            QGuiApplication.styleHints().colorSchemeChanged.disconnect(
                self._system_scheme_changed)
            self._following_the_system = False
        self._retire(self.connection)
        self.message_timer.stop()
        self.age_timer.stop()
        for page in self.pages:
            page.stop()
        if self.export_job is not None:
            self.export_job.cancel()  # a half-written export is discarded
        self.runner.close()
        for timer in self._export_timers:
            timer.stop()
        retired, on_close = list(self._retired), self.on_close

        def close_all():
            for thread in retired:
                thread.join()
            if on_close is not None:
                on_close()

        self.closing = threading.Thread(target=close_all, name="console-closing")
        self.closing.start()
        super().closeEvent(event)

    def save(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        if self.source is not None:
            self.settings.setValue("window/tab", self.tabs.currentIndex())
            self.settings.setValue("window/type", self.data_type.replicable_name)
            self.details.save_state(self.settings)
        self.settings.sync()

    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(*DEFAULT_SIZE)

    def _restore_pages(self) -> None:
        self.tabs.setCurrentIndex(int(self.settings.value("window/tab", 0) or 0))
        self.details.restore_state(self.settings)
        saved = str(self.settings.value("window/type", "") or "")
        # None chosen yet, or one this site has not: the first status picks
        # the first type in use (GitLab lists 17 to 40 types alphabetically,
        # most of them empty on most sites).
        self._pick_type_in_use = self.type_box.findData(saved) < 0
        self.set_type(saved)
        self._type_at_start = self.data_type

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
        self.connection.retry()
        if self.source is None:
            return
        self.overview.refresh_history()
        self.details.refresh()
        self.failures.refresh()
        self.sites.refresh()

    # --- connection, status bar and notifications ---------------------------------------------

    def _connection_changed(self, state: str, detail: str) -> None:
        self.banner.show_state(state, detail)
        if self.source is None:
            self.waiting.setText("Connecting…" if state == CONNECTING else
                                 "Nothing to show until the site can be reached.")
        if self.overview is not None:
            answered = self.connection.last_answer_at
            self.overview.set_stale(None if state == CONNECTED else
                                    f"as the site answered at {clock_time(answered)}"
                                    if answered else "the site has not answered yet")
        self._show_connection()

    def _status_arrived(self, status: dict) -> None:
        self._last_status = status
        if getattr(self, "_pick_type_in_use", False):
            self._pick_type_in_use = False
            in_use = [t.replicable_name for t in self.source.types
                      if status.get(f"{t.plural_name}_registry_count")]
            untouched = self.data_type is self._type_at_start  # not chosen meanwhile
            if in_use and untouched and \
                    status.get(f"{self.data_type.plural_name}_registry_count") == 0:
                self.set_type(in_use[0])
        if self.overview is not None:
            self.overview.show_status(status)
        self._show_connection()
        self._show_totals()
        self._enable_engine_actions(status.get("engine_state"))
        self.notifier.status_arrived(status)

    def _show_connection(self) -> None:
        """● name: connected (· paused) / ▲ no answer since … / ▲ unreachable: …"""
        state, detail = self.connection.state, self.connection.detail
        status = self._last_status
        name = status.get("name") or (self.source.name if self.source and not self.source.remote
                                      else "site")
        if state == CONNECTED:
            healthy = status.get("healthy")
            text = f"● {name}: connected" if healthy else \
                f"▲ {name}: {status.get('health') or 'unhealthy'}"
            if status.get("engine_state") == "paused":
                text += " · engine paused"
            age = self.connection.age()
            if age is not None and age >= OLD_ANSWER:  # a slow link: say how old
                text += f" · answered {int(age)} s ago"
            colour = "#2e9e5b" if healthy and status.get("engine_state") != "paused" \
                else "#c98a12" if healthy else "#d9534f"
        elif state == CONNECTING:
            text, colour = "◌ connecting…", ""
        elif state == NO_ANSWER:
            text, colour = f"▲ {name}: {detail.lower()} (shown as it was then)", "#c98a12"
        else:
            text, colour = f"▲ unreachable: {detail}", "#d9534f"
        self.connection_label.setText(text)
        self.connection_label.setToolTip(text)
        self.connection_label.setStyleSheet(f"color: {colour}" if colour else "")

    def _enable_engine_actions(self, engine_state: str | None) -> None:
        """Only the action that applies: Pause while running, Resume while paused."""
        can = bool(self.source and self.source.can_pause)
        self.pause_action.setEnabled(can and engine_state == "running")
        self.resume_action.setEnabled(can and engine_state == "paused")

    def _show_totals(self) -> None:
        """The current type's totals, from the last status."""
        status, kind = self._last_status, self.data_type
        if kind is None:
            return
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

    def show_message(self, text: str, error: bool = False) -> None:
        self.message_label.setStyleSheet("color: #d9534f" if error else "")
        self.message_label.setText(text)
        self.message_timer.start()

    def show_error(self, text: str) -> None:
        self.show_message(text, error=True)

    # --- actions -----------------------------------------------------------------------------------

    def set_paused(self, pause: bool) -> None:
        if self.source is None or not self.source.can_pause:
            return
        self.pause_action.setEnabled(False)
        self.resume_action.setEnabled(False)
        self.runner.submit("pause", self.source.pause if pause else self.source.resume,
                           lambda _r: self.connection.poll())

    def set_theme(self, key: str, save: bool = True) -> None:
        """"system", "light" or "dark" (theme.CHOICES), for the whole console."""
        self._theme = key
        scheme = theme.apply(key)
        if self.overview is not None:
            self.overview.set_theme(scheme)
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
        dialog.finished.connect(lambda _r: self.settings_saved(dialog.initial, dialog.saved))
        dialog.open()  # window-modal, and the event loop goes on
        self.settings_dialog = dialog

    def settings_saved(self, before: dict, after: dict | None) -> None:
        """Apply what a save changed: the running secondary's capacities and
        feature flags at once; anything else by reconnecting, when the
        administrator says so."""
        if after is None:
            return
        change = change_between(before, after)
        if change == NO_CHANGE:
            return
        if self._reconnect_pending:
            change = RECONNECT  # what runs is older than `before`
        if self.config_path:
            self.show_message(f"Settings saved. This console runs the secondary of "
                              f"{self.config_path}; the settings apply when it is started "
                              "without --config.")
            return
        hosted = self.source is not None and not self.source.remote \
            and self.source.primary is None  # the secondary of the settings, not the demo
        if change == LIVE and hosted:
            source, secondary = self.source, after["secondary"]
            flags = after.get("feature_flags", {})
            self.runner.submit("apply-settings", lambda: source.apply_live(secondary, flags),
                               lambda _r: self._applied(secondary, flags))
            return
        if self.opener is None:
            self.show_message("Settings saved; they apply when Geo Console starts again.")
            return
        self.confirm = QMessageBox(QMessageBox.Question, "Reconnect",
                                   "Settings saved. Reconnect now with the new settings? "
                                   "The console closes its connection to the site it shows"
                                   + (" and stops the secondary it runs" if
                                      self.source is not None and not self.source.remote
                                      else "") + ".",
                                   QMessageBox.Yes | QMessageBox.No, self)
        self.confirm.button(QMessageBox.Yes).setText("Reconnect now")
        self.confirm.button(QMessageBox.No).setText("Later")
        self.confirm.setDefaultButton(QMessageBox.Yes)
        self.confirm.finished.connect(
            lambda result: self.reconnect() if result == QMessageBox.Yes else
            self._put_off())
        self.confirm.open()

    def _put_off(self) -> None:
        self._reconnect_pending = True
        self.show_message("Settings saved; they apply at the next reconnect or start.")

    def _applied(self, secondary: dict, flags: dict) -> None:
        off = [kind.title_plural for kind in self.source.types
               if not flags.get(kind.feature_flag, True)] if self.source else []
        self.show_message(
            f"Settings applied: {secondary['files_max_capacity']:,} concurrent syncs, "
            f"{secondary['verification_max_capacity']:,} verification jobs; "
            + (f"replication of {', '.join(off)} is off." if off
               else "every type is replicated."))
        self.connection.poll()

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
        start, end = self.overview.history_range()

        def gather():  # on a worker: every part of the report is a query or a request
            return gather_status_report(source, [charted], start, end)

        def build(report):
            try:
                write_pdf(path, report)
            except OSError as exc:
                self.show_message(f"PDF report not written: {exc.strerror or exc}", error=True)
                return
            self.show_message(f"PDF report written to {path}.")

        self.runner.submit("pdf", gather, build)
