"""Failures of the current type grouped by kind and message, newest first:
failed syncs (downloads) apart from failed verifications (checksums).
Double-clicking a group shows its registries in Replication details; one
action resyncs a group, after a confirmation that says how many
registries it touches."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel,
                               QMessageBox, QPushButton, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from app.wording import plural
from backend.secondary.registry_query import group_selection
from widgets.registry_table_model import format_time

KINDS = {"sync": "Sync", "verification": "Verification"}
NO_MESSAGE = "(no message)"


def _key(group: dict) -> tuple[str, str]:
    return group["kind"], group["message"] or ""


class FailuresPage(QWidget):
    message = Signal(str)
    groupOpened = Signal(object, str)  # the group's RegistrySelection, a title for it

    def __init__(self, runner, source, parent=None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.source = source
        self.data_type = source.types[0]
        self.groups: list[dict] = []
        self.confirm = self._ask  # tests answer for the administrator
        self.tree = QTreeWidget()
        self.tree.setAccessibleName("Failure groups")
        self.tree.setHeaderLabels(["Kind", "Registries", "Failure", "Last seen"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        self.tree.header().setSectionResizeMode(2, QHeaderView.Stretch)
        self.tree.header().setStretchLastSection(False)
        self.tree.setToolTip("Double-click a group to see its registries")
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.itemActivated.connect(lambda item, _column: self.open_group(item))
        self.show_button = QPushButton("Show registries")
        self.show_button.setToolTip("List this group's registries in Replication details")
        self.show_button.clicked.connect(lambda: self.open_group(self.tree.currentItem()))
        self.resync_button = QPushButton("Resync this group")
        self.resync_button.setToolTip("Download every registry with this failure again")
        self.resync_button.clicked.connect(self.resync_selected_group)
        for button in (self.show_button, self.resync_button):
            button.setEnabled(False)
        self.summary = QLabel("")
        buttons = QHBoxLayout()
        buttons.addWidget(self.summary, 1)
        buttons.addWidget(self.show_button)
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
            item = QTreeWidgetItem([KINDS.get(group["kind"], group["kind"]),
                                    f"{group['count']:,}", group["message"] or NO_MESSAGE,
                                    format_time(group["last_seen_at"])])
            item.setTextAlignment(1, Qt.AlignRight | Qt.AlignVCenter)
            item.setToolTip(2, group["message"] or "")
            item.setData(0, Qt.UserRole, _key(group))
            self.tree.addTopLevelItem(item)
            if selected and _key(group) == _key(selected):
                item.setSelected(True)
                self.tree.setCurrentItem(item)
        what = self.data_type.title_plural
        if groups:
            total = sum(group["count"] for group in groups)
            sync = sum(1 for group in groups if group["kind"] == "sync")
            self.summary.setText(
                f"{what}: {plural(total, 'failed registry')} in "
                f"{plural(len(groups), 'group')} ({sync:,} sync, "
                f"{len(groups) - sync:,} verification)")
        else:
            self.summary.setText(f"{what}: no failed registries.")
        for column in (0, 1, 3):
            self.tree.resizeColumnToContents(column)
        self._selection_changed()

    def selected_group(self) -> dict | None:
        items = self.tree.selectedItems()
        return self._group_of(items[0]) if items else None

    def _group_of(self, item) -> dict | None:
        if item is None:
            return None
        key = item.data(0, Qt.UserRole)
        return next((g for g in self.groups if _key(g) == tuple(key)), None)

    def _selection_changed(self) -> None:
        chosen = self.selected_group() is not None
        self.show_button.setEnabled(chosen)
        self.resync_button.setEnabled(chosen and self.source.can_act)
        if not self.source.can_act:
            self.resync_button.setToolTip(self.source.cannot_act_because)

    def describe(self, group: dict) -> str:
        kind = "failed syncs" if group["kind"] == "sync" else "failed verifications"
        return (f"{self.data_type.title_plural}, {kind}: “{group['message'] or NO_MESSAGE}” "
                f"({plural(group['count'], 'registry')} when listed)")

    def open_group(self, item) -> None:
        group = self._group_of(item)
        if group is not None:
            self.groupOpened.emit(group_selection(group), self.describe(group))

    def resync_selected_group(self) -> None:
        group = self.selected_group()
        if group is None:
            return
        count = plural(group["count"], "registry")
        kind = "failed to sync" if group["kind"] == "sync" else "failed verification"
        question = (f"Resync {count} that {kind} with “{group['message'] or NO_MESSAGE}”?\n\n"
                    "Each one is downloaded from the primary again. This runs in the "
                    "background and may take a while.")
        if not self.confirm(f"Resync {count}", question):
            return
        source, replicable = self.source, self.data_type.replicable_name
        selection = group_selection(group)
        self.runner.submit("group-resync",
                           lambda: source.act(replicable, "resync", selection), self._done)

    def _done(self, changed: int) -> None:
        self.message.emit(f"Scheduled {plural(changed, 'registry')} for resync.")
        self.refresh()

    def _ask(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(self, title, question,
                                      QMessageBox.Yes | QMessageBox.Cancel, QMessageBox.Cancel)
        return answer == QMessageBox.Yes
