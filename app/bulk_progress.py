"""Progress of a resync or reverify of many registries, with Cancel.

The action runs on the task runner's thread, in batches of 1,000
(`backend/secondary/bulk_actions.py`); after each batch it reports here,
from that thread, and a queued signal moves the figures to the dialog on
the GUI thread. Cancel asks the action to stop after its batch: what was
scheduled stays scheduled, the rest is as it was. The dialog shows only
for an action that takes longer than half a second.
"""
from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QProgressDialog

SHOW_AFTER_MS = 500


class BulkProgress(QObject):
    advanced = Signal(int, int)  # done, total: emitted from the worker thread

    def __init__(self, parent, what: str) -> None:
        super().__init__(parent)
        self._cancel = threading.Event()
        self._stopped_early = False
        self.dialog = QProgressDialog(f"{what}…", "Cancel", 0, 0, parent)
        self.dialog.setWindowTitle(what)
        self.dialog.setWindowModality(Qt.WindowModal)
        self.dialog.setMinimumDuration(SHOW_AFTER_MS)
        self.dialog.setAutoClose(False)
        self.dialog.setAutoReset(False)
        self.dialog.canceled.connect(self._cancelled)  # the button, Esc, closing it
        self.advanced.connect(self._show, Qt.QueuedConnection)
        self.what = what
        self.dialog.setValue(0)  # starts the clock of SHOW_AFTER_MS

    # --- from the worker thread -------------------------------------------------------

    def report(self, done: int, total: int) -> None:
        self.advanced.emit(done, total)

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def stopped(self, early: bool) -> None:
        """The action is over: `early` if a cancel stopped it before the end."""
        self._stopped_early = early

    # --- on the GUI thread ------------------------------------------------------------

    def _cancelled(self) -> None:
        self._cancel.set()

    @property
    def was_cancelled(self) -> bool:
        """The action stopped before its end because of Cancel (a Cancel
        after its last batch changes nothing)."""
        return self._stopped_early

    def _show(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            return
        self.dialog.setMaximum(max(total, done, 1))
        self.dialog.setValue(min(done, self.dialog.maximum()))
        self.dialog.setLabelText(f"{self.what}: {done:,} of {total:,} registries scheduled "
                                 "(1,000 at a time)")

    def finish(self) -> None:
        self.dialog.reset()
        self.dialog.close()
        self.dialog.deleteLater()
        self.deleteLater()
