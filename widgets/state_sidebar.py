"""The state filter: sync and verification states with live counts
(qBittorrent's status filter), one choice per group."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from widgets.state_icons import blank_icon, state_icon

ICON_SIZE = 16
SYNC = [("", "All"), ("pending", "Pending"), ("started", "Started"), ("synced", "Synced"),
        ("failed", "Failed")]
VERIFICATION = [("", "Any"), ("pending", "Pending"), ("started", "Started"),
                ("succeeded", "Succeeded"), ("failed", "Failed"), ("disabled", "Disabled")]


class StateSidebar(QWidget):
    filterChanged = Signal(object, object)   # replication state, verification state (or None)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.sync_list = self._group(layout, "Replication", SYNC)
        self.verification_list = self._group(layout, "Verification", VERIFICATION)
        layout.addStretch(1)
        # Wide enough for every state with a seven-digit count beside it.
        metrics = self.sync_list.fontMetrics()
        widest = max(metrics.horizontalAdvance(f"{text} (1,000,000)")
                     for _key, text in SYNC + VERIFICATION)
        self.setMinimumWidth(widest + ICON_SIZE + 36)

    def _group(self, layout, title: str, entries) -> QListWidget:
        label = QLabel(f"<b>{title}</b>")
        layout.addWidget(label)
        widget = QListWidget()
        widget.setAccessibleName(f"{title} state filter")
        widget.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        for key, text in entries:
            item = QListWidgetItem(state_icon(key) if key else blank_icon(ICON_SIZE), text)
            item.setData(Qt.UserRole, key)
            item.setData(Qt.UserRole + 1, text)
            widget.addItem(item)
        widget.setCurrentRow(0)
        # Every row shown, none scrolled: the rows with an icon are the tallest.
        rows = sum(widget.sizeHintForRow(row) for row in range(widget.count()))
        widget.setFixedHeight(rows + 2 * widget.frameWidth() + 2)
        widget.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        widget.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        widget.currentItemChanged.connect(lambda *_: self._changed())
        label.setBuddy(widget)
        layout.addWidget(widget)
        return widget

    def _changed(self) -> None:
        self.filterChanged.emit(*self.selection())

    def selection(self) -> tuple[str | None, str | None]:
        def value(widget):
            item = widget.currentItem()
            return (item.data(Qt.UserRole) or None) if item else None
        return value(self.sync_list), value(self.verification_list)

    def select(self, replication: str | None, verification: str | None) -> None:
        for widget, key in ((self.sync_list, replication or ""),
                            (self.verification_list, verification or "")):
            for row in range(widget.count()):
                if widget.item(row).data(Qt.UserRole) == key:
                    widget.blockSignals(True)
                    widget.setCurrentRow(row)
                    widget.blockSignals(False)
        self._changed()

    def set_counts(self, counts: dict[str, int]) -> None:
        """counts: 'all', sync state names, and 'v_<verification state>'."""
        for widget, prefix in ((self.sync_list, ""), (self.verification_list, "v_")):
            for row in range(widget.count()):
                item = widget.item(row)
                key = item.data(Qt.UserRole)
                number = counts.get("all" if not key else prefix + key)
                text = item.data(Qt.UserRole + 1)
                item.setText(f"{text} ({number:,})" if number is not None else text)
