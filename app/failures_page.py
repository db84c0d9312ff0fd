"""Failures of the current type grouped by message, newest first; one
action resyncs a group."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from backend.secondary.registry_selection import RegistrySelection
from widgets.registry_table_model import format_time


class FailuresPage(QWidget):
    message = Signal(str)

    def __init__(self, runner, source, parent=None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.source = source
        self.data_type = source.types[0]
        self.groups: list[dict] = []
        self.tree = QTreeWidget()
        self.tree.setAccessibleName("Failure groups")
        self.tree.setHeaderLabels(["Registries", "Failure", "Last seen"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        self.tree.header().setSectionResizeMode(1, QHeaderView.Stretch)
        self.tree.header().setStretchLastSection(False)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.resync_button = QPushButton("Resync this group")
        self.resync_button.setToolTip("Download every registry with this failure again")
        self.resync_button.setEnabled(False)
        self.resync_button.clicked.connect(self.resync_selected_group)
        self.summary = QLabel("")
        buttons = QHBoxLayout()
        buttons.addWidget(self.summary, 1)
        buttons.addWidget(self.resync_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self.timer = QTimer(self)
        self.timer.setInterval(5000)
        self.timer.timeout.connect(self.refresh)

    def start(self) -> None:
        self.refresh()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def set_type(self, data_type) -> None:
        if data_type != self.data_type:
            self.data_type = data_type
            self.show_groups([])
            self.refresh()

    def refresh(self) -> None:
        source, replicable = self.source, self.data_type.replicable_name
        self.runner.submit("failure-groups", lambda: source.failure_groups(replicable),
                           self.show_groups)

    def show_groups(self, groups: list[dict]) -> None:
        selected = self.selected_group()
        self.groups = groups
        self.tree.clear()
        for group in groups:
            item = QTreeWidgetItem([f"{group['count']:,}", group["message"] or "(no message)",
                                    format_time(group["last_seen_at"])])
            item.setTextAlignment(0, Qt.AlignRight | Qt.AlignVCenter)
            item.setToolTip(1, group["message"] or "")
            item.setData(0, Qt.UserRole, group["message"])
            self.tree.addTopLevelItem(item)
            if selected and group["message"] == selected["message"]:
                item.setSelected(True)
        total = sum(group["count"] for group in groups)
        what = self.data_type.title_plural
        self.summary.setText(f"{what}: {total:,} failed registries in {len(groups)} groups"
                             if groups else f"{what}: no failed registries.")
        self.tree.resizeColumnToContents(0)
        self.tree.resizeColumnToContents(2)

    def selected_group(self) -> dict | None:
        items = self.tree.selectedItems()
        if not items:
            return None
        message = items[0].data(0, Qt.UserRole)
        return next((g for g in self.groups if g["message"] == message), None)

    def _selection_changed(self) -> None:
        self.resync_button.setEnabled(self.selected_group() is not None)

    def resync_selected_group(self) -> None:
        group = self.selected_group()
        if group is None:
            return
        message = group["message"]
        source, replicable = self.source, self.data_type.replicable_name

        def resync():
            ids = source.failure_group_ids(replicable, message)
            return source.act(replicable, "resync", RegistrySelection(ids=tuple(ids))) \
                if ids else 0

        self.runner.submit("group-resync", resync, self._done)

    def _done(self, changed: int) -> None:
        self.message.emit(f"Scheduled {changed:,} registries for resync.")
        self.refresh()
