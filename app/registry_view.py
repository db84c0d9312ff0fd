"""The registry table of Replication details: a view over any number of
rows whose selection follows records, not rows, with a column chooser on
its header.

What the administrator picks is kept as registry ids (`chosen`), or as
"every registry of the filter" (`everything`, Ctrl+A). Clicks and keys
change the ids; whenever rows arrive (a refresh, a sort, rows inserted
above) the view selects again the rows that carry the chosen ids, so a
selected registry stays selected wherever it moves and no other registry
takes its place. Rows picked before their page was loaded (a shift-click
far down) are asked for by `idsWanted` and join the choice once their ids
are known (`add_resolved`); until then the choice is `resolving`.
"""
from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTableView

from widgets.registry_table_model import (COLUMNS, RegistryTableModel, column_of, column_sorted_by,
                                          column_title, sort_of)

# Widths at the default window: the ids, the file, both states and the
# failure fit without scrolling beside the sidebar and the detail panel.
COLUMN_WIDTHS = {"registry_id": 58, "model_id": 82, "file_name": 140, "state": 84,
                 "verification_state": 88, "failure": 300, "size": 75, "project_path": 160,
                 "shard": 80, "storage": 100, "retry_count": 60, "last_synced_at": 140,
                 "verified_at": 140, "retry_at": 140, "primary_checksum": 200,
                 "missing_on_primary": 70, "checksum_mismatch": 70, "created_at": 140}
# Shown from the column menu (the header's right click).
HIDDEN_AT_FIRST = ("shard", "storage", "retry_at", "primary_checksum", "checksum_mismatch",
                   "created_at")
RESOLVE_LIMIT = 100_000  # registries picked one by one at most; beyond, the filter is the pick


def _without(ranges: list[tuple[int, int]], first: int, last: int) -> list[tuple[int, int]]:
    """Row ranges less the rows first..last."""
    kept = []
    for start, end in ranges:
        if end < first or start > last:
            kept.append((start, end))
            continue
        if start < first:
            kept.append((start, first - 1))
        if end > last:
            kept.append((last + 1, end))
    return kept


class RegistryView(QTableView):
    message = Signal(str)
    choiceChanged = Signal()
    idsWanted = Signal(int, list)  # request number, row ranges [(first, last)] to resolve
    sortWanted = Signal(str)       # a sort of registry_query.SORTS, asked by a header click

    def __init__(self, model: RegistryTableModel, parent=None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.registries = model
        self.chosen: set[int] = set()
        self.everything = False
        self.resolving = False
        self._request = 0
        self._unresolved: list[tuple[int, int]] = []  # rows picked, ids still asked for
        self._excluded: set[int] = set()  # left out of "everything" while it resolves
        self._applying = False
        self._command = None
        self.setAccessibleName("Registries")
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setContextMenuPolicy(Qt.CustomContextMenu)
        vertical = self.verticalHeader()
        vertical.setSectionResizeMode(QHeaderView.Fixed)
        vertical.setDefaultSectionSize(22)
        vertical.hide()
        header = self.horizontalHeader()
        # A header shares the table's selection and asks it, per column and
        # paint, whether every row is selected: a million checks once all
        # rows are. Its own (empty) selection model keeps painting instant.
        header.setHighlightSections(False)
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        header.sortIndicatorChanged.connect(self._header_sorted)
        self._sort = ("ID", Qt.AscendingOrder)
        self._header_selection = QItemSelectionModel(model, self)
        header.setSelectionModel(self._header_selection)
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setStretchLastSection(True)
        header.setContextMenuPolicy(Qt.CustomContextMenu)
        header.customContextMenuRequested.connect(self._column_menu)
        for key, width in COLUMN_WIDTHS.items():
            header.resizeSection(column_of(key), width)
        for key in HIDDEN_AT_FIRST:
            self.setColumnHidden(column_of(key), True)
        self.show_sort("ID_ASC")
        self.selectionModel().selectionChanged.connect(self._picked)
        model.pageLoaded.connect(lambda _page: self.apply_choice())
        model.rowsInserted.connect(lambda *_: self.apply_choice())

    # --- what the administrator picks -------------------------------------------------

    def selectionCommand(self, index, event=None):
        """Remember whether this click or key starts a new choice (Clear)."""
        command = super().selectionCommand(index, event)
        self._command = command
        return command

    def selectAll(self) -> None:
        self.everything = True
        self.chosen.clear()
        self._cancel_resolving()
        self.apply_choice()
        self.choiceChanged.emit()

    def forget_choice(self) -> None:
        """A new filter or type: nothing is chosen any more."""
        self.chosen.clear()
        self.everything = False
        self._cancel_resolving()
        self.apply_choice()
        self.choiceChanged.emit()

    def choose(self, ids) -> None:
        """Pick these registries (tests; and a whole failure group)."""
        self.chosen = set(ids)
        self.everything = False
        self._cancel_resolving()
        self.apply_choice()
        self.choiceChanged.emit()

    def _picked(self, selected: QItemSelection, deselected: QItemSelection) -> None:
        if self._applying:
            return
        command, self._command = self._command, None
        model = self.registries
        if self.everything:
            if not deselected.isEmpty() and (command is None or
                                             not command & QItemSelectionModel.Clear):
                self._pick_everything_but(deselected)
                return
            self.everything = False
        if command is not None and command & QItemSelectionModel.Clear:
            self.chosen.clear()
            self._cancel_resolving()
        asked = list(self._unresolved)
        for part in deselected:
            self._unresolved = _without(self._unresolved, part.top(), part.bottom())
            for row in range(part.top(), part.bottom() + 1):
                data = model.cached(row)
                if data is not None:
                    self.chosen.discard(data.registry_id)
        unknown: list[tuple[int, int]] = []
        for part in selected:
            for row in range(part.top(), part.bottom() + 1):
                data = model.cached(row)
                if data is not None:
                    self.chosen.add(data.registry_id)
                elif unknown and unknown[-1][1] == row - 1:
                    unknown[-1] = (unknown[-1][0], row)
                else:
                    unknown.append((row, row))
        if unknown or self._unresolved != asked:
            if unknown or self._unresolved:
                remaining, self._unresolved = self._unresolved, []
                self._resolve(remaining + unknown)  # what is still wanted, asked anew
            else:
                self._cancel_resolving()
        self.choiceChanged.emit()

    def _pick_everything_but(self, deselected: QItemSelection) -> None:
        """Every registry of the filter but some: their ids, all of them."""
        total = self.registries.rowCount()
        if total > RESOLVE_LIMIT:
            self.message.emit(f"Too many registries ({total:,}) to pick one by one; narrow "
                              "the filter, or act on all of them.")
            self.apply_choice()
            return
        left_out = {data.registry_id for part in deselected
                    for row in range(part.top(), part.bottom() + 1)
                    if (data := self.registries.cached(row)) is not None}
        self.everything = False
        self.chosen.clear()
        self._excluded = left_out
        self._resolve([(0, total - 1)])
        self.choiceChanged.emit()

    def _resolve(self, ranges: list[tuple[int, int]]) -> None:
        """Ask for the ids of these rows, with those still asked for: the
        newest request covers them all."""
        wanted = sorted(self._unresolved + ranges)
        if sum(last - first + 1 for first, last in wanted) > RESOLVE_LIMIT:
            self.message.emit("Too many registries to pick one by one; narrow the filter, or "
                              "select all (Ctrl+A) to act on all of them.")
            return
        self._unresolved = wanted
        self._request += 1
        self.resolving = True
        self.idsWanted.emit(self._request, wanted)

    def add_resolved(self, request: int, ids: list[int]) -> None:
        """The ids of rows picked before they were loaded."""
        if request != self._request or not self.resolving:
            return  # the choice changed since
        self.chosen |= set(ids) - self._excluded
        self._excluded = set()
        self._unresolved = []
        self.resolving = False
        self.apply_choice()
        self.choiceChanged.emit()

    def _cancel_resolving(self) -> None:
        self._request += 1
        self.resolving = False
        self._unresolved = []
        self._excluded = set()

    def apply_choice(self) -> None:
        """Select the loaded rows that carry the chosen ids, and only those."""
        model = self.registries
        selection = QItemSelection()
        last_column = model.columnCount() - 1
        if self.everything and model.rowCount():
            selection.select(model.index(0, 0), model.index(model.rowCount() - 1, last_column))
        elif self.chosen:
            start = previous = None
            for row, data in model.loaded_items():
                if data.registry_id not in self.chosen:
                    continue
                if start is not None and row == previous + 1:
                    previous = row
                    continue
                if start is not None:
                    selection.select(model.index(start, 0), model.index(previous, last_column))
                start = previous = row
            if start is not None:
                selection.select(model.index(start, 0), model.index(previous, last_column))
        self._applying = True
        try:
            self.selectionModel().select(selection, QItemSelectionModel.ClearAndSelect
                                         | QItemSelectionModel.Rows)
        finally:
            self._applying = False

    # --- reading the choice -------------------------------------------------------------

    def chosen_count(self) -> int:
        return self.registries.rowCount() if self.everything else len(self.chosen)

    def chosen_rows(self) -> list:
        """The loaded rows of the choice, in the table's order."""
        if self.everything:
            return [data for _row, data in self.registries.loaded_items()]
        return [data for _row, data in self.registries.loaded_items()
                if data.registry_id in self.chosen]

    # --- sorting by the header -------------------------------------------------------------

    def show_sort(self, sort: str) -> None:
        """Show `sort` (ID_ASC, FILE_NAME_DESC, …) on the header."""
        key, _, way = sort.rpartition("_")
        column = column_sorted_by(key)
        if column is None:
            return
        self._sort = (key, Qt.DescendingOrder if way == "DESC" else Qt.AscendingOrder)
        header = self.horizontalHeader()
        header.blockSignals(True)
        header.setSortIndicator(column, self._sort[1])
        header.blockSignals(False)

    def _header_sorted(self, column: int, order) -> None:
        """A click on a header: sort by its column if the database can,
        else put the indicator back and say why not."""
        key = sort_of(column)
        if key is None:
            self.show_sort(self.sort)
            title = column_title(column, self.registries.model_title).lower()
            hint = " (filter by state in the sidebar)" \
                if COLUMNS[column][0] in ("state", "verification_state") else ""
            self.message.emit(f"The registries cannot be sorted by {title}{hint}.")
            return
        self._sort = (key, order)
        self.sortWanted.emit(self.sort)

    @property
    def sort(self) -> str:
        """The sort the header shows, as registry_query names it."""
        key, order = self._sort
        return f"{key}_{'DESC' if order == Qt.DescendingOrder else 'ASC'}"

    # --- columns --------------------------------------------------------------------------

    def _column_menu(self, position) -> None:
        menu = QMenu(self)
        for column in range(len(COLUMNS)):
            action = QAction(column_title(column, self.registries.model_title), menu)
            action.setCheckable(True)
            action.setChecked(not self.isColumnHidden(column))
            action.toggled.connect(lambda checked, c=column: self.set_column_visible(c, checked))
            menu.addAction(action)
        menu.exec(self.horizontalHeader().mapToGlobal(position))

    def set_column_visible(self, column: int, visible: bool) -> None:
        shown = [c for c in range(len(COLUMNS)) if not self.isColumnHidden(c)]
        if not visible and shown == [column]:
            self.message.emit("At least one column stays visible.")
            return
        self.setColumnHidden(column, not visible)
