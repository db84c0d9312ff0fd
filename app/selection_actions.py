"""Resync and reverify from Replication details: the rows selected, or
everything the filter shows behind a confirmation that says how many
registries it touches and what happens to them.

Selected rows become registry ids; rows of the selection not loaded are
fetched first, in id chunks, off the GUI thread. Selecting every row of
the filter (Ctrl+A) acts on the filter itself: one statement in the
database, not a million ids.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox

from backend.framework.states import SyncState, VerificationState
from backend.secondary.registry_selection import RegistrySelection

FETCH_CHUNK = 5000  # rows fetched at once to learn the ids of a selection


class SelectionActions(QObject):
    message = Signal(str)
    actionDone = Signal(str, int)  # action, how many registries

    def __init__(self, page) -> None:
        super().__init__(page)
        self.page = page  # the DetailsPage: its source, type, filter, view and runner
        self.confirm = self._ask

    def on_selection(self, action: str) -> None:
        page = self.page
        view = page.table
        ranges = view.selected_ranges()
        if not ranges:
            self.message.emit("Select registries first.")
            return
        source, replicable = page.source, page.replicable
        selection, sort, total = page.selection, page.sort, page.model.rowCount()
        if ranges == [(0, total - 1)]:
            self._run(action, lambda: source.act(replicable, action, selection))
            return
        model = page.model
        known = {row: data.registry_id for top, bottom in ranges
                 for row in range(top, bottom + 1)
                 if (data := model.row_data(row)) is not None} \
            if view.selected_count() <= 10_000 else {}

        def chosen_ids() -> tuple[int, ...]:
            ids: list[int] = []
            for top, bottom in ranges:
                if all(row in known for row in range(top, bottom + 1)):
                    ids += [known[row] for row in range(top, bottom + 1)]
                    continue
                for start in range(top, bottom + 1, FETCH_CHUNK):
                    size = min(FETCH_CHUNK, bottom + 1 - start)
                    ids += [row.registry_id
                            for row in source.rows(replicable, selection, sort, start, size)]
            return tuple(ids)

        self._run(action, lambda: source.act(replicable, action,
                                             RegistrySelection(ids=chosen_ids())))

    def on_filter(self, action: str, failed_only: bool) -> None:
        page = self.page
        selection = page.selection
        if failed_only:
            selection = (selection.narrowed(replication_state=selection.replication_state
                                            or SyncState.FAILED) if action == "resync"
                         else selection.narrowed(verification_state=VerificationState.FAILED))
        source, replicable = page.source, page.replicable
        page.runner.submit("bulk-count", lambda: source.count(replicable, selection),
                           lambda count: self._confirm_bulk(action, selection, count))

    def _confirm_bulk(self, action: str, selection: RegistrySelection, count: int) -> None:
        what = self.page.data_type.title_plural.lower()
        if count == 0:
            self.message.emit(f"Nothing to {action}: no {what} registry matches "
                              f"{selection.describe()}.")
            return
        consequence = ("Each one is downloaded from the primary again."
                       if action == "resync" else
                       "Each synced one is read and checksummed again; only synced "
                       "registries can be reverified.")
        question = (f"{action.title()} {count:,} {what} registries ({selection.describe()})?"
                    f"\n\n{consequence} This runs in the background and may take a while.")
        if self.confirm(f"{action.title()} {count:,} registries", question):
            source, replicable = self.page.source, self.page.replicable
            self._run(action, lambda: source.act(replicable, action, selection))

    def _run(self, action: str, call) -> None:
        self.message.emit(f"Scheduling {action}…")
        self.page.runner.submit(f"action-{action}", call,
                                lambda changed: self._done(action, changed))

    def _done(self, action: str, changed: int) -> None:
        verb = "resync" if action == "resync" else "re-verification"
        self.message.emit(f"Scheduled {changed:,} registries for {verb}.")
        self.actionDone.emit(action, changed)

    def _ask(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(self.page, title, question,
                                      QMessageBox.Yes | QMessageBox.Cancel, QMessageBox.Cancel)
        return answer == QMessageBox.Yes
