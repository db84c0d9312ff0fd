"""Resync and reverify from Replication details: the registries chosen
(by id, `registry_view.py`), or everything the filter shows behind a
confirmation that says how many registries it touches and what happens to
them. Choosing every registry of the filter (Ctrl+A) acts on the filter
itself: one statement in the database, not a million ids.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox

from app.bulk_progress import BulkProgress
from app.wording import plural
from backend.framework.states import SyncState, VerificationState
from backend.secondary.registry_selection import RegistrySelection

# Said before an action that writes to a GitLab tracking database itself.
DIRECT_WRITE = ("This changes GitLab's tracking database as GitLab's own bulk resync and "
                "reverify do (state pending, retries cleared, 1,000 rows a transaction); "
                "GitLab's background jobs then do the work.")


class SelectionActions(QObject):
    message = Signal(str)
    actionDone = Signal(str, int)  # action, how many registries

    def __init__(self, page) -> None:
        super().__init__(page)
        self.page = page  # the DetailsPage: its source, type, filter, view and runner
        self.confirm = self._ask

    def on_selection(self, action: str) -> None:
        """Act on exactly the registries chosen: their ids, or the filter
        itself when every registry of it is (Ctrl+A: one statement)."""
        page = self.page
        view = page.table
        if not page.source.can_act:
            self.message.emit(page.source.cannot_act_because)
            return
        if view.resolving:
            self.message.emit("Still finding the registries picked; try again in a moment.")
            return
        if not view.everything and not view.chosen:
            self.message.emit("Select registries first.")
            return
        source, replicable = page.source, page.replicable
        selection = page.selection if view.everything else \
            RegistrySelection(ids=tuple(sorted(view.chosen)))
        if getattr(source, "confirm_every_action", False) and not self.confirm(
                f"{action.title()} {plural(view.chosen_count(), 'registry')}",
                f"{action.title()} {plural(view.chosen_count(), 'registry')} by writing to "
                f"{source.name} directly?\n\n{DIRECT_WRITE}"):
            return
        self._run(action, lambda progress: source.act(replicable, action, selection,
                                                      progress=progress))

    def on_filter(self, action: str, failed_only: bool) -> None:
        page = self.page
        if not page.source.can_act:
            self.message.emit(page.source.cannot_act_because)
            return
        selection = page.selection
        if failed_only:
            selection = (selection.narrowed(replication_state=selection.replication_state
                                            or SyncState.FAILED) if action == "resync"
                         else selection.narrowed(verification_state=VerificationState.FAILED))
        source, replicable = page.source, page.replicable
        page.runner.submit("bulk-count", lambda: source.count(replicable, selection),
                           lambda count: self._confirm_bulk(action, selection, count))

    def _confirm_bulk(self, action: str, selection: RegistrySelection, count: int) -> None:
        what = self.page.data_type.title.lower()
        if count == 0:
            self.message.emit(f"Nothing to {action}: no {what} registry matches "
                              f"{selection.describe()}.")
            return
        consequence = ("Each one is downloaded from the primary again."
                       if action == "resync" else
                       "Each synced one is read and checksummed again; only synced "
                       "registries can be reverified.")
        question = (f"{action.title()} {plural(count, self.page.data_type.title.lower() + ' registry')} "
                    f"({selection.describe()})?"
                    f"\n\n{consequence} This runs in the background and may take a while.")
        if getattr(self.page.source, "confirm_every_action", False):
            question += f"\n\n{DIRECT_WRITE}"
        if self.confirm(f"{action.title()} {plural(count, 'registry')}", question):
            source, replicable = self.page.source, self.page.replicable
            self._run(action, lambda progress: source.act(replicable, action, selection,
                                                          progress=progress))

    def _run(self, action: str, call) -> None:
        """`call(progress)` on the runner's thread, with a progress dialog
        that can cancel it (`bulk_progress.py`)."""
        self.message.emit(f"Scheduling {action}…")
        progress = BulkProgress(self.page, f"{action.title()} of "
                                f"{self.page.data_type.title.lower()} registries")

        def done(changed: int) -> None:
            progress.finish()
            self._done(action, changed, cancelled=progress.was_cancelled)

        def failed(message: str) -> None:
            progress.finish()
            self.message.emit(message)

        self.page.runner.submit(f"action-{action}", lambda: call(progress), done, failed)

    def _done(self, action: str, changed: int, cancelled: bool = False) -> None:
        verb = "resync" if action == "resync" else "re-verification"
        text = f"Scheduled {plural(changed, 'registry')} for {verb}."
        if cancelled:
            text = f"Cancelled: {text[0].lower()}{text[1:-1]}; the others are as they were."
        self.message.emit(text)
        self.actionDone.emit(action, changed)

    def _ask(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(self.page, title, question,
                                      QMessageBox.Yes | QMessageBox.Cancel, QMessageBox.Cancel)
        return answer == QMessageBox.Yes
