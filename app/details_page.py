"""Replication details: the registries of the current type in a table over
any number of rows, the state sidebar with live counts, search, sorting by
a click on a column's header, actions on the selection or on the whole
filter, and the detail panel (which folds away).

What the table shows is a `RegistrySelection` (the sidebar's states, the
search, and a failure group opened from the Failures view) and a sort
order; the table itself is `registry_view.py`, the actions
`selection_actions.py`.
"""
from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QMenu, QSplitter, QToolButton,
                               QVBoxLayout, QWidget)

from app.registry_view import RegistryView
from app.selection_actions import SelectionActions
from backend.framework.states import parse_sync_state, parse_verification_state
from backend.secondary.registry_query import DEFAULT_SORT, SORTS
from backend.secondary.registry_selection import RegistrySelection
from widgets.detail_panel import DetailPanel
from widgets.registry_table_model import (COLUMNS, PAGE_SIZE, RegistryTableModel, cell_text,
                                          column_title)
from widgets.state_sidebar import StateSidebar

RECOUNT_DELAY = 800       # ms: debounce of the sidebar counts
COPY_LIMIT = 10_000       # rows copied at most
REFRESH_INTERVAL = 3000   # ms
DETAIL_WIDTH = 320        # px: the detail panel at first


class DetailsPage(QWidget):
    message = Signal(str)          # status bar text
    actionDone = Signal(str, int)  # action, how many registries

    def __init__(self, runner, source, parent=None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.source = source
        self.data_type = source.types[0]
        self._shown_type = self.data_type
        self.selection = RegistrySelection()
        self.group: RegistrySelection | None = None  # a failure group being shown
        self.sort = DEFAULT_SORT
        self._running = False
        self._detail_id: int | None = None

        self.sidebar = StateSidebar()
        self.sidebar.filterChanged.connect(lambda *_: self._apply_filter())
        self.search = QLineEdit()
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search registries")
        self.search.returnPressed.connect(self._search_changed)
        self.search_timer = QTimer(self)
        self.search_timer.setSingleShot(True)
        self.search_timer.setInterval(400)
        self.search_timer.timeout.connect(self._search_changed)
        self.search.textEdited.connect(lambda _t: self.search_timer.start())
        self.group_label = QLabel("")
        self.group_label.setWordWrap(True)
        self.group_clear = QToolButton()
        self.group_clear.setText("Show all")
        self.group_clear.setToolTip("Stop showing only this failure group")
        self.group_clear.clicked.connect(lambda: self.show_group(None))

        self.model = RegistryTableModel(self)
        self.model.countRequested.connect(self._fetch_count)
        self.model.pageRequested.connect(self._fetch_page)
        self.table = RegistryView(self.model)
        self.table.message.connect(self.message)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.choiceChanged.connect(self._choice_changed)
        self.table.idsWanted.connect(self._resolve_ids)
        self.table.sortWanted.connect(self._sort_changed)
        self.model.pageLoaded.connect(lambda _page: self._choice_changed())
        self.actions = SelectionActions(self)
        self.actions.message.connect(self.message)
        self.actions.actionDone.connect(self._action_done)

        self.detail = DetailPanel()
        self.count_label = QLabel("")
        self.resync_button = self._button("Resync", "Download the selected registries again",
                                          lambda: self.act_on_selection("resync"), "Ctrl+R")
        self.reverify_button = self._button("Reverify", "Verify the selected registries again",
                                            lambda: self.act_on_selection("reverify"),
                                            "Ctrl+Shift+R")
        self.resync_all = self._bulk_button("Resync all", "resync")
        self.reverify_all = self._bulk_button("Reverify all", "reverify")
        self.copy_button = self._button("Copy", "Copy the selected rows", self.copy_rows,
                                        "Ctrl+C")
        self.detail_button = self._button("Details", "Show or hide the detail panel",
                                          lambda checked: self.show_detail(checked))
        self.detail_button.setCheckable(True)
        self.detail_button.setChecked(True)
        self._lay_out()
        if not source.can_act:  # a read-only token: say so where the actions are
            for widget in (self.resync_button, self.reverify_button, self.resync_all,
                           self.reverify_all):
                widget.setEnabled(False)
                widget.setToolTip(source.cannot_act_because)
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
        self._name_the_type()

    @property
    def replicable(self) -> str:
        return self.data_type.replicable_name

    @property
    def confirm(self):
        return self.actions.confirm

    @confirm.setter
    def confirm(self, ask) -> None:  # tests answer for the administrator
        self.actions.confirm = ask

    def _lay_out(self) -> None:
        # The search on a row of its own, so its hint is read whole at any
        # width the window leaves it; the actions below it.
        tools = QVBoxLayout()
        tools.addWidget(self.search)
        actions = QHBoxLayout()
        for widget in (self.resync_button, self.reverify_button, self.resync_all,
                       self.reverify_all, self.copy_button):
            actions.addWidget(widget)
        actions.addStretch(1)
        actions.addWidget(self.detail_button)
        tools.addLayout(actions)
        self.group_bar = QWidget()
        group_layout = QHBoxLayout(self.group_bar)
        group_layout.setContentsMargins(0, 0, 0, 0)
        group_layout.addWidget(self.group_label, 1)
        group_layout.addWidget(self.group_clear)
        self.group_bar.hide()
        center = QWidget()
        center_layout = QVBoxLayout(center)
        center_layout.setContentsMargins(0, 0, 0, 0)
        center_layout.addLayout(tools)
        center_layout.addWidget(self.group_bar)
        center_layout.addWidget(self.table, 1)
        center_layout.addWidget(self.count_label)
        self.splitter = QSplitter()
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(center)
        self.splitter.addWidget(self.detail)
        side = self.sidebar.minimumWidth()
        self.splitter.setSizes([side, 1240 - side - DETAIL_WIDTH, DETAIL_WIDTH])
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
        self.splitter.splitterMoved.connect(lambda *_: self.detail_button.setChecked(
            self.detail_shown))
        layout = QVBoxLayout(self)
        layout.addWidget(self.splitter)

    @property
    def detail_shown(self) -> bool:
        return self.detail.isVisibleTo(self) and self.splitter.sizes()[2] > 0

    def show_detail(self, shown: bool) -> None:
        """Fold the detail panel away (the table takes its width) or back."""
        sizes = self.splitter.sizes()
        if shown:
            self.detail.show()
            if sizes[2] == 0:
                self.splitter.setSizes([sizes[0], max(sizes[1] - DETAIL_WIDTH, 200),
                                        DETAIL_WIDTH])
        else:
            self.detail.hide()
        self.detail_button.setChecked(shown)

    def _button(self, text, tip, callback, shortcut=None) -> QToolButton:
        widget = QToolButton()
        widget.setText(text)
        widget.setToolTip(tip + (f" ({shortcut})" if shortcut else ""))
        widget.clicked.connect(callback)
        return widget

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

    # --- the type and the filter -------------------------------------------------------

    def set_type(self, data_type) -> None:
        """Show the registries of another type; the filter stays."""
        if data_type == self.data_type:
            return
        self.data_type = data_type
        self._name_the_type()
        self.sidebar.set_counts({})
        self._apply_filter()

    def _name_the_type(self) -> None:
        model = self.data_type.title
        self.model.set_model_title(model)
        self.detail.set_model_title(model)
        hint = f"Search by registry or {model.lower()} id, file name or failure text…"
        self.search.setPlaceholderText(hint)
        # The hint is read whole: the box is never narrower than it.
        self.search.setMinimumWidth(self.search.fontMetrics().horizontalAdvance(hint) + 40)

    def _search_changed(self) -> None:
        self.search_timer.stop()
        if (self.search.text().strip() or None) != self.selection.keyword:
            self._apply_filter()

    def _apply_filter(self) -> None:
        """Show what the sidebar, the search and the sort say. Another filter
        or type forgets the registries chosen; another sort keeps them."""
        replication, verification = self.sidebar.selection()
        group = self.group or RegistrySelection()
        selection = RegistrySelection(
            replication_state=parse_sync_state(replication) if replication else None,
            verification_state=parse_verification_state(verification) if verification else None,
            keyword=self.search.text(), sync_failure=group.sync_failure,
            verification_failure=group.verification_failure)
        if selection != self.selection or self.data_type != self._shown_type:
            self.table.forget_choice()
        self.selection, self._shown_type = selection, self.data_type
        self.model.reset()
        if self._running:
            self.recount_timer.start()

    def _sort_changed(self, sort: str) -> None:
        """A header was clicked: the same registries in another order; the
        registries chosen stay chosen. An order the source cannot give (a
        GitLab 16.x site sorts by id only; GitLab's tracking database has no
        file names) is said, and the order stays as it was."""
        sorts = getattr(self.source, "sorts", None)
        allowed = sorts(self.replicable) if sorts is not None else None
        if allowed is not None and sort not in allowed:
            self.table.show_sort(self.sort)
            self.actions.message.emit(f"{self.source.name} cannot list "
                                      f"{self.data_type.title_plural} in that order.")
            return
        self.sort = sort
        self.model.reset()

    def sort_by(self, sort: str) -> None:
        """Sort as a click on a header does (`FILE_NAME_ASC`, …)."""
        self.table.show_sort(sort)
        self._sort_changed(sort)

    def show_group(self, group: RegistrySelection | None, title: str = "") -> None:
        """Show only the registries of a failure group (from the Failures
        view), whatever their state; None shows the sidebar's filter again."""
        self.group = group
        self.group_bar.setVisible(group is not None)
        if group is not None:
            self.group_label.setText(title)
            self.sidebar.select(None, None)
            self.search.clear()
        self._apply_filter()

    def set_filter(self, replication: str | None, verification: str | None, search: str,
                   sort: str) -> None:
        """Restore a filter (from settings)."""
        self.search.setText(search)
        self.sort = sort if sort in SORTS else DEFAULT_SORT
        self.table.show_sort(self.sort)
        self.sidebar.select(replication, verification)

    def describe(self) -> str:
        return f"{self.data_type.title_plural}: {self.selection.describe()}"

    # --- loading -------------------------------------------------------------------------

    def _fetch_count(self, generation: int) -> None:
        source, replicable, selection = self.source, self.replicable, self.selection
        self.runner.submit("count", lambda: source.count(replicable, selection),
                           lambda count: self._count_arrived(generation, count))

    def _count_arrived(self, generation: int, count: int) -> None:
        self.model.set_count(generation, count)
        if generation == self.model.generation:
            self.count_label.setText(f"{count:,} registries — {self.describe()}")

    def _fetch_page(self, generation: int, page: int) -> None:
        source, replicable = self.source, self.replicable
        selection, sort = self.selection, self.sort
        self.runner.submit(f"page-{page}", lambda: source.rows(
            replicable, selection, sort, page * PAGE_SIZE, PAGE_SIZE),
            lambda rows: self.model.set_page(generation, page, rows))

    def _recount(self) -> None:
        source, replicable = self.source, self.replicable
        self.runner.submit("state-counts", lambda: source.state_counts(replicable),
                           self.sidebar.set_counts)

    # --- selection and actions --------------------------------------------------------------

    def _resolve_ids(self, request: int, ranges: list) -> None:
        """Ids of rows picked before their page was loaded, off the GUI thread."""
        source, replicable = self.source, self.replicable
        selection, sort = self.selection, self.sort

        def ids():
            found = []
            for first, last in ranges:
                for start in range(first, last + 1, 5000):
                    size = min(5000, last + 1 - start)
                    found += [row.registry_id for row in source.rows(
                        replicable, selection, sort, start, size)]
            return found

        self.runner.submit("resolve-choice", ids,
                           lambda found: self.table.add_resolved(request, found))

    def _choice_changed(self) -> None:
        """The detail panel and the buttons follow the registries chosen."""
        table = self.table
        count = table.chosen_count()
        for widget in (self.resync_button, self.reverify_button, self.copy_button):
            widget.setEnabled(count > 0 and not table.resolving
                              and (widget is self.copy_button or self.source.can_act))
        if count != 1 or table.everything:
            self._detail_id = None
            self.detail.show_row(None)
            return
        (registry_id,) = table.chosen
        loaded = table.chosen_rows()
        if loaded:
            self._detail_id = registry_id
            self.detail.show_row(loaded[0])
        elif self._detail_id != registry_id:  # scrolled away: ask for it
            self._detail_id = registry_id
            source, replicable = self.source, self.replicable
            self.runner.submit("detail", lambda: source.rows(
                replicable, RegistrySelection(ids=(registry_id,)), DEFAULT_SORT, 0, 1),
                lambda rows: self.detail.show_row(rows[0] if rows
                                                  and self._detail_id == registry_id else None))

    def copy_rows(self) -> None:
        """Copy the chosen registries as TSV, in the table's order (those not
        loaded are fetched by id); at most COPY_LIMIT."""
        table = self.table
        if table.everything:
            rows = table.chosen_rows()[:COPY_LIMIT]
            self._copy(rows, complete=len(rows) == table.chosen_count())
            return
        loaded = table.chosen_rows()
        missing = table.chosen - {row.registry_id for row in loaded}
        if not missing:
            self._copy(loaded)
            return
        source, replicable = self.source, self.replicable
        wanted = tuple(sorted(missing))[:COPY_LIMIT]
        self.runner.submit("copy", lambda: source.rows(
            replicable, RegistrySelection(ids=wanted), DEFAULT_SORT, 0, len(wanted)),
            lambda rows: self._copy(loaded + rows))

    def _copy(self, rows, complete: bool = True) -> None:
        if not rows:
            return
        visible = [c for c in range(len(COLUMNS)) if not self.table.isColumnHidden(c)]
        lines = ["\t".join(column_title(c, self.model.model_title) for c in visible)]
        lines += ["\t".join(cell_text(row, c) for c in visible) for row in rows]
        QGuiApplication.clipboard().setText("\n".join(lines))
        self.message.emit(f"Copied {len(rows):,} rows." + ("" if complete else
                          f" (the first {len(rows):,} loaded)"))

    def copy_ids(self) -> None:
        table = self.table
        ids = [row.registry_id for row in table.chosen_rows()] if table.everything \
            else sorted(table.chosen)
        QGuiApplication.clipboard().setText(" ".join(map(str, ids)))
        self.message.emit(f"Copied {len(ids):,} registry ids.")

    def act_on_selection(self, action: str) -> None:
        self.actions.on_selection(action)

    def act_on_filter(self, action: str, failed_only: bool) -> None:
        self.actions.on_filter(action, failed_only)

    def _action_done(self, action: str, changed: int) -> None:
        self.actionDone.emit(action, changed)
        self.refresh()

    def _context_menu(self, position) -> None:
        menu = QMenu(self)
        enabled = self.table.chosen_count() > 0 and not self.table.resolving
        for text, callback, keys in (("Resync", lambda: self.act_on_selection("resync"),
                                      "Ctrl+R"),
                                     ("Reverify", lambda: self.act_on_selection("reverify"),
                                      "Ctrl+Shift+R"),
                                     ("Copy rows", self.copy_rows, "Ctrl+C"),
                                     ("Copy registry ids", self.copy_ids, None)):
            action = QAction(text, menu)
            if keys:
                action.setShortcut(QKeySequence(keys))
            action.setEnabled(enabled and (text.startswith("Copy") or self.source.can_act))
            action.triggered.connect(callback)
            menu.addAction(action)
        menu.exec(self.table.viewport().mapToGlobal(position))

    # --- persistence --------------------------------------------------------------------------

    def save_state(self, settings: QSettings) -> None:
        settings.setValue("details/header", self.table.horizontalHeader().saveState())
        settings.setValue("details/splitter", self.splitter.saveState())
        settings.setValue("details/detail_shown", self.detail_shown)
        replication, verification = self.sidebar.selection()
        settings.setValue("details/filter", [replication or "", verification or "",
                                             self.search.text().strip(), self.sort])

    def restore_state(self, settings: QSettings) -> None:
        header = settings.value("details/header")
        if header is not None:
            self.table.horizontalHeader().restoreState(header)
        splitter = settings.value("details/splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)
        shown = settings.value("details/detail_shown")
        if shown is not None:
            self.show_detail(str(shown).lower() in ("true", "1"))
        saved = settings.value("details/filter")
        if isinstance(saved, list) and len(saved) == 4:
            replication, verification, search, sort = (str(v) for v in saved)
            self.set_filter(replication or None, verification or None, search,
                            sort or DEFAULT_SORT)
