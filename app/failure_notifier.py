"""Desktop notifications for registries that newly fail.

"Newly" means a registry this console has not seen failed before: the
failures present when it starts are where it starts from, and a broken
record that fails again after each retry is told about once. The failed
registries' ids are read only when a type's failed count has grown (off
the GUI thread), at most CHECK_LIMIT of them, and notifications are
throttled to one every NOTIFY_EVERY seconds. They go to the system tray
when the desktop has one, else to the status bar (and the window asks for
attention).
"""
from __future__ import annotations

import time

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

CHECK_LIMIT = 10_000
NOTIFY_EVERY = 60.0


class FailureNotifier(QObject):
    notified = Signal(str)  # what was told, for the status bar (and tests)

    def __init__(self, runner, source, window, icon) -> None:
        super().__init__(window)
        self.runner = runner
        self.source = source
        self.window = window
        self.seen: dict[str, set[int]] = {}    # type -> registries seen failed
        self.counts: dict[str, int] = {}       # type -> failed count last time
        self.last_notified = 0.0
        self.tray = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(icon, self)
            self.tray.setToolTip("Geo Console")
            self.tray.show()

    def close(self) -> None:
        """The source is going: no more tray icon."""
        if self.tray is not None:
            self.tray.hide()

    def status_arrived(self, status: dict) -> None:
        for kind in self.source.types:
            failed = status.get(f"{kind.plural_name}_failed_count")
            if failed is None:
                continue
            before = self.counts.get(kind.replicable_name)
            self.counts[kind.replicable_name] = failed
            if before is None or failed > before:
                self._look(kind, first=before is None)

    def _look(self, kind, first: bool) -> None:
        source, name = self.source, kind.replicable_name
        self.runner.submit(f"failed-ids-{name}", lambda: source.failed_ids(name, CHECK_LIMIT),
                           lambda ids: self._compare(kind, set(ids), first))

    def _compare(self, kind, failed: set[int], first: bool) -> None:
        seen = self.seen.setdefault(kind.replicable_name, set())
        new = failed - seen
        seen |= failed
        if first or not new:
            return  # what was failed at the start is where the console starts from
        self.tell(kind, len(new))

    def tell(self, kind, new: int) -> None:
        now = time.monotonic()
        if now - self.last_notified < NOTIFY_EVERY:
            return  # throttled: a failing site does not flood the administrator
        self.last_notified = now
        text = (f"{new:,} {kind.title} {'registry' if new == 1 else 'registries'} newly "
                "failed. See the Failures tab.")
        if self.tray is not None:
            self.tray.showMessage("Geo Console", text, QSystemTrayIcon.Warning, 10_000)
        QApplication.alert(self.window)
        self.notified.emit(text)
