"""The registry table of Replication details: a view over any number of
rows, with a column chooser on its header, copying of the selected rows,
and the selection as ranges (cheap even when a million rows are selected).
"""
from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTableView

from widgets.registry_table_model import COLUMNS, RegistryTableModel, column_title

COLUMN_WIDTHS = (80, 80, 90, 95, 60, 140, 140, 140, 260, 220, 70, 140)
COPY_LIMIT = 10_000  # rows copied at most (those loaded)


class RegistryView(QTableView):
    message = Signal(str)

    def __init__(self, model: RegistryTableModel, parent=None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.registries = model
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
        # rows are. Its own (empty) selection model keeps painting instant;
        # sorting is the sort box's job, so sections need no clicks.
        header.setHighlightSections(False)
        header.setSectionsClickable(False)
        self._header_selection = QItemSelectionModel(model, self)
        header.setSelectionModel(self._header_selection)
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setStretchLastSection(True)
        header.setContextMenuPolicy(Qt.CustomContextMenu)
        header.customContextMenuRequested.connect(self._column_menu)
        for column, width in enumerate(COLUMN_WIDTHS):
            header.resizeSection(column, width)

    # --- the selection ---------------------------------------------------------------

    def selected_ranges(self) -> list[tuple[int, int]]:
        """Selected rows as (first, last) ranges, merged."""
        ranges = sorted((r.top(), r.bottom()) for r in self.selectionModel().selection())
        merged: list[tuple[int, int]] = []
        for top, bottom in ranges:
            if merged and top <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(bottom, merged[-1][1]))
            else:
                merged.append((top, bottom))
        return merged

    def selected_count(self) -> int:
        return sum(bottom - top + 1 for top, bottom in self.selected_ranges())

    def selected_rows(self, limit: int = COPY_LIMIT) -> list:
        """Loaded rows of the selection (for the detail panel and copying)."""
        rows: list[int] = []
        for top, bottom in self.selected_ranges():
            rows.extend(range(top, min(bottom, top + limit - len(rows) - 1) + 1))
            if len(rows) >= limit:
                break
        return self.registries.loaded_rows(rows)

    def select_rows(self, rows) -> None:
        selection = self.selectionModel()
        selection.clearSelection()
        for row in rows:
            selection.select(self.registries.index(row, 0),
                             QItemSelectionModel.Select | QItemSelectionModel.Rows)

    # --- copying ------------------------------------------------------------------------

    def copy_rows(self) -> None:
        """Copy the selected rows that are loaded (at most COPY_LIMIT) as TSV."""
        if not self.selected_rows(limit=1):
            return
        model = self.registries
        visible = [c for c in range(len(COLUMNS)) if not self.isColumnHidden(c)]
        lines = ["\t".join(column_title(c, model.model_title) for c in visible)]
        for top, bottom in self.selected_ranges():
            for row_number in range(top, min(bottom, top + COPY_LIMIT) + 1):
                if model.row_data(row_number) is None:
                    continue
                lines.append("\t".join(str(model.index(row_number, c).data() or "")
                                       for c in visible))
        QGuiApplication.clipboard().setText("\n".join(lines))
        self.message.emit(f"Copied {len(lines) - 1} rows.")

    def copy_ids(self) -> None:
        ids = [str(row.registry_id) for row in self.selected_rows()]
        QGuiApplication.clipboard().setText(" ".join(ids))
        self.message.emit(f"Copied {len(ids)} registry ids.")

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
