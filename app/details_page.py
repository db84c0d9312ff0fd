"""Replication details: the registry table over any number of rows, the
state sidebar with live counts, search, sort, actions on the selection or on
the whole filter, and the detail panel."""
from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QMenu, QMessageBox, QSplitter, QTableView,
                               QToolButton, QVBoxLayout, QWidget)

from app.sources import Filter
from widgets.detail_panel import DetailPanel
from widgets.registry_table_model import COLUMNS, PAGE_SIZE, RegistryTableModel
from widgets.state_sidebar import StateSidebar

SORTS = [("ID_ASC", "Registry id ↑"), ("ID_DESC", "Registry id ↓"),
         ("LAST_SYNCED_AT_DESC", "Last synced, newest"),
         ("LAST_SYNCED_AT_ASC", "Last synced, oldest"),
         ("VERIFIED_AT_DESC", "Last verified, newest"),
         ("VERIFIED_AT_ASC", "Last verified, oldest")]
RECOUNT_DELAY = 800       # ms: debounce of the sidebar counts
REFRESH_INTERVAL = 3000   # ms


class DetailsPage(QWidget):
    message = Signal(str)          # status bar text
    actionDone = Signal(str, int)  # action, how many registries

    def __init__(self, runner, source, parent=None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.source = source
        self.view_filter = Filter()
        self.confirm = self._confirm  # replaced in tests
        self._running = False

        self.sidebar = StateSidebar()
        self.sidebar.filterChanged.connect(self._states_changed)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search by registry or widget id, or failure text…")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search registries")
        self.search.returnPressed.connect(self._search_changed)
        self.search_timer = QTimer(self)
        self.search_timer.setSingleShot(True)
        self.search_timer.setInterval(400)
        self.search_timer.timeout.connect(self._search_changed)
        self.search.textEdited.connect(lambda _t: self.search_timer.start())
        self.sort_box = QComboBox()
        self.sort_box.setAccessibleName("Sort registries")
        for key, text in SORTS:
            self.sort_box.addItem(text, key)
        self.sort_box.currentIndexChanged.connect(lambda _i: self._apply_filter())

        self.model = RegistryTableModel(self)
        self.model.countRequested.connect(self._fetch_count)
        self.model.pageRequested.connect(self._fetch_page)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAccessibleName("Registries")
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setContextMenuPolicy(Qt.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        vertical = self.table.verticalHeader()
        vertical.setSectionResizeMode(QHeaderView.Fixed)
        vertical.setDefaultSectionSize(22)
        vertical.hide()
        header = self.table.horizontalHeader()
        # A header shares the table's selection and asks it, per column and
        # paint, whether every row is selected: a million checks once all
        # rows are. Its own (empty) selection model keeps painting instant;
        # sorting is the sort box's job, so sections need no clicks.
        header.setHighlightSections(False)
        header.setSectionsClickable(False)
        self._header_selection = QItemSelectionModel(self.model, self)
        header.setSelectionModel(self._header_selection)
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setStretchLastSection(True)
        header.setContextMenuPolicy(Qt.CustomContextMenu)
        header.customContextMenuRequested.connect(self._column_menu)
        for column, width in enumerate((80, 80, 90, 95, 60, 140, 140, 140, 260, 220, 70, 140)):
            header.resizeSection(column, width)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())
        self.model.dataChanged.connect(lambda *_: self._selection_changed())

        self.detail = DetailPanel()
        self.count_label = QLabel("")

        def button(text, tip, callback, shortcut=None):
            widget = QToolButton()
            widget.setText(text)
            widget.setToolTip(tip + (f" ({shortcut})" if shortcut else ""))
            widget.clicked.connect(callback)
            return widget

        self.resync_button = button("Resync", "Download the selected registries again",
                                    lambda: self.act_on_selection("resync"), "Ctrl+R")
        self.reverify_button = button("Reverify", "Verify the selected registries again",
                                      lambda: self.act_on_selection("reverify"), "Ctrl+Shift+R")
        self.resync_all = self._bulk_button("Resync all", "resync")
        self.reverify_all = self._bulk_button("Reverify all", "reverify")
        self.copy_button = button("Copy", "Copy the selected rows", self.copy_rows, "Ctrl+C")

        tools = QHBoxLayout()
        tools.addWidget(self.search, 1)
        tools.addWidget(QLabel("Sort:"))
        tools.addWidget(self.sort_box)
        for widget in (self.resync_button, self.reverify_button, self.resync_all,
                       self.reverify_all, self.copy_button):
            tools.addWidget(widget)
        center = QWidget()
        center_layout = QVBoxLayout(center)
        center_layout.setContentsMargins(0, 0, 0, 0)
        center_layout.addLayout(tools)
        center_layout.addWidget(self.table, 1)
        center_layout.addWidget(self.count_label)
        self.splitter = QSplitter()
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(center)
        self.splitter.addWidget(self.detail)
        self.splitter.setSizes([170, 760, 300])
        self.splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.splitter)

        for keys, callback in (("Ctrl+R", lambda: self.act_on_selection("resync")),
                               ("Ctrl+Shift+R", lambda: self.act_on_selection("reverify")),
                               (QKeySequence.Copy, self.copy_rows),
                               (QKeySequence.Find, self.search.setFocus),
                               (QKeySequence.Refresh, self.refresh)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.WidgetWithChildrenShortcut)
            shortcut.activated.connect(callback)

        self.recount_timer = QTimer(self)
        self.recount_timer.setSingleShot(True)
        self.recount_timer.setInterval(RECOUNT_DELAY)
        self.recount_timer.timeout.connect(self._recount)
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(REFRESH_INTERVAL)
        self.refresh_timer.timeout.connect(self.refresh)

    # --- life ------------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        self._apply_filter()
        self.refresh_timer.start()

    def stop(self) -> None:
        self._running = False
        self.refresh_timer.stop()
        self.recount_timer.stop()
        self.search_timer.stop()

    def refresh(self) -> None:
        if not self._running:
            return  # an answer that arrived after stop() starts nothing
        self.model.refresh()
        self.recount_timer.start()

    # --- filter -------------------------------------------------------------------------

    def _states_changed(self, _replication, _verification) -> None:
        self._apply_filter()

    def _search_changed(self) -> None:
        self.search_timer.stop()
        if self.search.text().strip() != self.view_filter.search:
            self._apply_filter()

    def _apply_filter(self) -> None:
        replication, verification = self.sidebar.selection()
        self.view_filter = Filter(replication, verification, self.search.text().strip(),
                                  self.sort_box.currentData() or "ID_ASC")
        self.model.reset()
        if self._running:
            self.recount_timer.start()

    def set_filter(self, view: Filter) -> None:
        """Restore a filter (from settings)."""
        self.search.setText(view.search)
        index = self.sort_box.findData(view.sort)
        self.sort_box.blockSignals(True)
        self.sort_box.setCurrentIndex(max(index, 0))
        self.sort_box.blockSignals(False)
        self.sidebar.select(view.replication_state, view.verification_state)

    # --- loading -------------------------------------------------------------------------

    def _fetch_count(self, generation: int) -> None:
        view = self.view_filter
        self.runner.submit("count", lambda: self.source.count(view),
                           lambda count: self._count_arrived(generation, count))

    def _count_arrived(self, generation: int, count: int) -> None:
        self.model.set_count(generation, count)
        if generation == self.model.generation:
            self.count_label.setText(f"{count:,} registries — {self.view_filter.describe()}")

    def _fetch_page(self, generation: int, page: int) -> None:
        view = self.view_filter
        self.runner.submit(f"page-{page}",
                           lambda: self.source.rows(view, page * PAGE_SIZE, PAGE_SIZE),
                           lambda rows: self.model.set_page(generation, page, rows))

    def _recount(self) -> None:
        self.runner.submit("state-counts", self.source.state_counts, self.sidebar.set_counts)

    # --- selection and actions --------------------------------------------------------------

    def selected_ranges(self) -> list[tuple[int, int]]:
        """Selected rows as (first, last) ranges: cheap even for a million."""
        ranges = sorted((r.top(), r.bottom()) for r in self.table.selectionModel().selection())
        merged: list[tuple[int, int]] = []
        for top, bottom in ranges:
            if merged and top <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(bottom, merged[-1][1]))
            else:
                merged.append((top, bottom))
        return merged

    def selected_count(self) -> int:
        return sum(bottom - top + 1 for top, bottom in self.selected_ranges())

    def selected_rows(self, limit: int = 10_000) -> list[dict]:
        """Loaded rows of the selection (for the detail panel and copying)."""
        rows: list[int] = []
        for top, bottom in self.selected_ranges():
            rows.extend(range(top, min(bottom, top + limit - len(rows) - 1) + 1))
            if len(rows) >= limit:
                break
        return self.model.loaded_rows(rows)

    def _selection_changed(self) -> None:
        count = self.selected_count()
        rows = self.selected_rows(limit=1) if count == 1 else []
        self.detail.show_row(rows[0] if rows else None)
        for widget in (self.resync_button, self.reverify_button, self.copy_button):
            widget.setEnabled(count > 0)

    def act_on_selection(self, action: str) -> None:
        ranges = self.selected_ranges()
        if not ranges:
            self.message.emit("Select registries first.")
            return
        view, total = self.view_filter, self.model.rowCount()
        if ranges == [(0, total - 1)]:
            # Everything the filter shows (Ctrl+A): one statement, not a million ids.
            self._run_action(action, lambda: self.source.act(action, view=view))
            return
        known = {row: data["registry_id"] for top, bottom in ranges
                 for row in range(top, bottom + 1)
                 if (data := self.model.row_data(row)) is not None} \
            if self.selected_count() <= 10_000 else {}

        def ids():
            chosen = []
            for top, bottom in ranges:
                missing = [row for row in range(top, bottom + 1) if row not in known]
                if not missing:
                    chosen += [known[row] for row in range(top, bottom + 1)]
                    continue
                for start in range(top, bottom + 1, 5000):
                    size = min(5000, bottom + 1 - start)
                    chosen += [r["registry_id"] for r in self.source.rows(view, start, size)]
            return self.source.act(action, ids=chosen)

        self._run_action(action, ids)

    def act_on_filter(self, action: str, failed_only: bool) -> None:
        view = self.view_filter
        if failed_only:
            view = (Filter(view.replication_state or "failed", view.verification_state,
                           view.search, view.sort) if action == "resync"
                    else Filter(view.replication_state, "failed", view.search, view.sort))
        self.runner.submit("bulk-count", lambda: self.source.count(view),
                           lambda count: self._confirm_bulk(action, view, count))

    def _confirm_bulk(self, action: str, view: Filter, count: int) -> None:
        if count == 0:
            self.message.emit(f"Nothing to {action}: no registry matches {view.describe()}.")
            return
        consequence = ("Each one is downloaded from the primary again."
                       if action == "resync" else
                       "Each synced one is read and checksummed again; only synced "
                       "registries can be reverified.")
        question = (f"{action.title()} {count:,} registries ({view.describe()})?\n\n"
                    f"{consequence} This runs in the background and may take a while.")
        if self.confirm(f"{action.title()} {count:,} registries", question):
            self._run_action(action, lambda: self.source.act(action, view=view))

    def _run_action(self, action: str, call) -> None:
        self.message.emit(f"Scheduling {action}…")
        self.runner.submit(f"action-{action}", call,
                           lambda changed: self._action_done(action, changed))

    def _action_done(self, action: str, changed: int) -> None:
        verb = "resync" if action == "resync" else "re-verification"
        self.message.emit(f"Scheduled {changed:,} registries for {verb}.")
        self.actionDone.emit(action, changed)
        self.refresh()

    def _confirm(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(self, title, question,
                                      QMessageBox.Yes | QMessageBox.Cancel, QMessageBox.Cancel)
        return answer == QMessageBox.Yes

    def _bulk_button(self, text: str, action: str) -> QToolButton:
        widget = QToolButton()
        widget.setText(text)
        widget.setPopupMode(QToolButton.MenuButtonPopup)
        widget.setToolTip(f"{text} registries of the current filter")
        widget.clicked.connect(lambda: self.act_on_filter(action, failed_only=False))
        menu = QMenu(widget)
        menu.addAction(f"{text} of the filter", lambda: self.act_on_filter(action, False))
        menu.addAction(f"{text} failed", lambda: self.act_on_filter(action, True))
        widget.setMenu(menu)
        return widget

    def _context_menu(self, position) -> None:
        menu = QMenu(self)
        enabled = bool(self.selected_rows())
        for text, callback, keys in (("Resync", lambda: self.act_on_selection("resync"),
                                      "Ctrl+R"),
                                     ("Reverify", lambda: self.act_on_selection("reverify"),
                                      "Ctrl+Shift+R"),
                                     ("Copy rows", self.copy_rows, "Ctrl+C"),
                                     ("Copy registry ids", self.copy_ids, None)):
            action = QAction(text, menu)
            if keys:
                action.setShortcut(QKeySequence(keys))
            action.setEnabled(enabled)
            action.triggered.connect(callback)
            menu.addAction(action)
        menu.exec(self.table.viewport().mapToGlobal(position))

    def copy_rows(self) -> None:
        """Copy the selected rows that are loaded (at most 10,000) as TSV."""
        rows = self.selected_rows()
        if not rows:
            return
        visible = [c for c in range(len(COLUMNS)) if not self.table.isColumnHidden(c)]
        lines = ["\t".join(COLUMNS[c][1] for c in visible)]
        for top, bottom in self.selected_ranges():
            for row_number in range(top, min(bottom, top + 10_000) + 1):
                if self.model.row_data(row_number) is None:
                    continue
                lines.append("\t".join(str(self.model.index(row_number, c).data() or "")
                                       for c in visible))
        QGuiApplication.clipboard().setText("\n".join(lines))
        self.message.emit(f"Copied {len(lines) - 1} rows.")

    def copy_ids(self) -> None:
        ids = [str(row["registry_id"]) for row in self.selected_rows()]
        QGuiApplication.clipboard().setText(" ".join(ids))
        self.message.emit(f"Copied {len(ids)} registry ids.")

    def _column_menu(self, position) -> None:
        menu = QMenu(self)
        for column, (_key, title, _kind) in enumerate(COLUMNS):
            action = QAction(title, menu)
            action.setCheckable(True)
            action.setChecked(not self.table.isColumnHidden(column))
            action.toggled.connect(lambda checked, c=column: self.set_column_visible(c, checked))
            menu.addAction(action)
        menu.exec(self.table.horizontalHeader().mapToGlobal(position))

    def set_column_visible(self, column: int, visible: bool) -> None:
        shown = [c for c in range(len(COLUMNS)) if not self.table.isColumnHidden(c)]
        if not visible and shown == [column]:
            self.message.emit("At least one column stays visible.")
            return
        self.table.setColumnHidden(column, not visible)

    # --- persistence --------------------------------------------------------------------------

    def save_state(self, settings: QSettings) -> None:
        settings.setValue("details/header", self.table.horizontalHeader().saveState())
        settings.setValue("details/splitter", self.splitter.saveState())
        view = self.view_filter
        settings.setValue("details/filter", [view.replication_state or "",
                                             view.verification_state or "", view.search,
                                             view.sort])

    def restore_state(self, settings: QSettings) -> None:
        header = settings.value("details/header")
        if header is not None:
            self.table.horizontalHeader().restoreState(header)
        splitter = settings.value("details/splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)
        saved = settings.value("details/filter")
        if isinstance(saved, list) and len(saved) == 4:
            replication, verification, search, sort = (str(v) for v in saved)
            self.set_filter(Filter(replication or None, verification or None, search,
                                   sort or "ID_ASC"))
