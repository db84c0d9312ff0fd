"""A table model for millions of registries that never holds them all.

Like DB Browser for SQLite's model: the row count comes from an
asynchronous COUNT, rows arrive in pages of PAGE_SIZE for the visible range
from a loader running off the GUI thread, rows not loaded yet read
"loading…", and answers for an older filter are dropped. A small cache of
pages is kept; nothing here sorts or filters in Python.

Rows are plain objects read by attribute (the console gives it registry
rows); states are shown by their `label`.
"""
from __future__ import annotations

import datetime as dt
from collections import OrderedDict

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from widgets.state_icons import state_icon

PAGE_SIZE = 200
DISPLAY, DECORATION, TOOLTIP, FOREGROUND = (int(role) for role in (
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.ToolTipRole,
    Qt.ItemDataRole.ForegroundRole))
ROLES_ANSWERED = frozenset((DISPLAY, DECORATION, TOOLTIP, FOREGROUND))
LOADING_BRUSH = QBrush(QColor("#999999"))
MAX_CACHED_PAGES = 60
LOADING = "loading…"

# (key, header, format, sort): `sort` names the order a click on the header
# asks the source for (registry_query.SORT_KEYS), None where the tracking
# database has no index to sort a million rows by.
COLUMNS = [
    ("registry_id", "Registry", None, "ID"),
    ("model_id", "Record", None, "MODEL_RECORD_ID"),  # titled after the type's model
    ("file_name", "File", None, "FILE_NAME"),
    ("state", "Replication", None, None),
    ("verification_state", "Verification", None, None),
    ("failure", "Failure", None, None),
    ("size", "Size", "size", "SIZE"),
    ("project_path", "Project", None, "PROJECT_PATH"),
    ("shard", "Shard", None, None),
    ("storage", "Storage", None, None),
    ("retry_count", "Retries", None, None),
    ("last_synced_at", "Last synced", "time", "LAST_SYNCED_AT"),
    ("verified_at", "Last verified", "time", "VERIFIED_AT"),
    ("retry_at", "Next retry", "time", None),
    ("primary_checksum", "Primary checksum", None, None),
    ("missing_on_primary", "Missing on primary", "bool", None),
    ("checksum_mismatch", "Mismatch", "bool", None),
    ("created_at", "Created", "time", None),
]
STATE_COLUMNS = ("state", "verification_state")  # shown with their state's icon
# Cells whose whole text is also their tooltip (they are often cut).
TOOLTIP_COLUMNS = ("failure", "file_name", "project_path", "primary_checksum")
_KEYS = [column[0] for column in COLUMNS]


def column_of(key: str) -> int:
    return _KEYS.index(key)


def sort_of(column: int) -> str | None:
    """The sort key (`FILE_NAME`) a click on the column's header asks for."""
    return COLUMNS[column][3] if 0 <= column < len(COLUMNS) else None


def column_sorted_by(sort_key: str) -> int | None:
    return next((c for c, column in enumerate(COLUMNS) if column[3] == sort_key), None)


def format_time(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def format_size(value: int | None) -> str:
    """Bytes as a person reads them: "512 B", "1.5 KiB", "2.0 GiB"."""
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def label(value) -> str:
    """A state by its name (an enum's `label`), anything else as text."""
    if value is None:
        return ""
    return str(getattr(value, "label", value))


def cell_text(row, column: int) -> str:
    """What a cell of the row shows, as text (the table, copied rows)."""
    key, _header, kind, _sort = COLUMNS[column]
    value = getattr(row, key, None)
    if kind == "time":
        return format_time(value)
    if kind == "bool":
        return "yes" if value else ""
    if kind == "size":
        return format_size(value)
    return label(value)


def column_title(column: int, model_title: str) -> str:
    key, title, _kind, _sort = COLUMNS[column]
    return model_title if key == "model_id" else title


class RegistryTableModel(QAbstractTableModel):
    """`fetch_count(generation)` and `fetch_page(generation, page)` are asked
    for; the owner answers with `set_count` and `set_page`."""

    pageRequested = Signal(int, int)      # generation, page number
    countRequested = Signal(int)          # generation
    pageLoaded = Signal(int)              # page number, once its rows are in

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.generation = 0
        self.model_title = COLUMNS[1][1]
        self._count = 0
        self._pages: OrderedDict[int, list[dict]] = OrderedDict()
        self._requested: set[int] = set()

    # --- the owner feeds it --------------------------------------------------------

    def set_model_title(self, title: str) -> None:
        """Name the model id column after the type's model ("Package File")."""
        self.model_title = title
        self.headerDataChanged.emit(Qt.Horizontal, 1, 1)

    def reset(self) -> None:
        """A new filter or sort: drop everything and ask for a count."""
        self.beginResetModel()
        self.generation += 1
        self._count = 0
        self._pages.clear()
        self._requested.clear()
        self.endResetModel()
        self.countRequested.emit(self.generation)

    def refresh(self) -> None:
        """Same filter, fresh data (after actions or on a timer): keep showing
        the old rows until the new ones arrive."""
        self.generation += 1
        self._requested.clear()
        self.countRequested.emit(self.generation)
        for page in list(self._pages):
            self._request(page)

    def set_count(self, generation: int, count: int) -> None:
        if generation != self.generation or count == self._count:
            return
        if count > self._count:
            self.beginInsertRows(QModelIndex(), self._count, count - 1)
            self._count = count
            self.endInsertRows()
        else:
            self.beginRemoveRows(QModelIndex(), count, self._count - 1)
            self._count = count
            self._pages = OrderedDict((p, rows) for p, rows in self._pages.items()
                                      if p * PAGE_SIZE < count)
            self.endRemoveRows()

    def set_page(self, generation: int, page: int, rows: list[dict]) -> None:
        if generation != self.generation:
            return  # stale answer
        self._requested.discard(page)
        self._pages[page] = rows
        self._pages.move_to_end(page)
        while len(self._pages) > MAX_CACHED_PAGES:
            self._pages.popitem(last=False)
        first = page * PAGE_SIZE
        last = min(first + PAGE_SIZE, self._count) - 1
        if last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))
        self.pageLoaded.emit(page)

    def _request(self, page: int) -> None:
        if page in self._requested:
            return
        self._requested.add(page)
        self.pageRequested.emit(self.generation, page)

    # --- reading ------------------------------------------------------------------------

    def row_data(self, row: int) -> dict | None:
        page, offset = divmod(row, PAGE_SIZE)
        rows = self._pages.get(page)
        if rows is None and 0 <= row < self._count:
            self._request(page)
        if rows is None or offset >= len(rows):
            return None
        return rows[offset]

    def loaded_rows(self, rows: list[int]) -> list[dict]:
        return [data for data in (self.row_data(row) for row in rows) if data is not None]

    def cached(self, row: int):
        """The row if its page is loaded, else None (asks for nothing)."""
        page, offset = divmod(row, PAGE_SIZE)
        rows = self._pages.get(page)
        return rows[offset] if rows is not None and offset < len(rows) else None

    def loaded_items(self):
        """(row number, row) of every loaded row, in row order."""
        for page in sorted(self._pages):
            first = page * PAGE_SIZE
            for offset, data in enumerate(self._pages[page]):
                if first + offset < self._count:
                    yield first + offset, data

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self._count

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=DISPLAY):
        if role == DISPLAY and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(COLUMNS):
            return column_title(section, self.model_title)
        return None

    def data(self, index: QModelIndex, role=DISPLAY):
        # Qt asks for a dozen roles per visible cell on every paint: the
        # roles are plain ints here, as Qt passes them (reading Qt.…Role
        # costs microseconds a time in PySide6, and made paints 40 % slower).
        if role not in ROLES_ANSWERED or not index.isValid():
            return None
        row = self.row_data(index.row())
        column = index.column()
        key = COLUMNS[column][0]
        if row is None:
            if role == FOREGROUND:
                return LOADING_BRUSH
            return LOADING if role == DISPLAY and column == 0 else None
        if role == DISPLAY:
            return cell_text(row, column)
        if role == FOREGROUND:
            return None
        value = getattr(row, key, None)
        if role == DECORATION:
            return state_icon(label(value)) if key in STATE_COLUMNS else None
        if key == "size" and value is not None:  # TOOLTIP
            return f"{value:,} bytes"
        return str(value) if key in TOOLTIP_COLUMNS and value else None

    # flags() is deliberately not overridden: QAbstractTableModel's C++ default
    # (enabled, selectable) is what rows need, and Qt asks for it several
    # times per row when a million rows are selected at once; a Python
    # override made "select all" take a minute.

