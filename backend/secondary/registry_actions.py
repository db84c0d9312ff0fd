"""What an administrator asks of registries: resync and reverify, of one
registry, a selection, or everything a filter shows.

The selection is decided by the database (its WHERE clauses), never by a
list of ids loaded into Python first, and changed in batches of at most
1,000 rows a transaction (`bulk_actions.py`).
"""
from __future__ import annotations

from typing import Callable

from backend.secondary.bulk_actions import BulkAction, BulkResult
from backend.secondary.registry_selection import RegistrySelection
from backend.secondary.registry_table import RegistryTable


class RegistryActions(RegistryTable):
    def resync(self, selection: RegistrySelection) -> int:
        """Set matching registries pending; a running sync of one of them
        loses (its outcome is guarded by its claim). Returns how many."""
        return self.act("resync", selection)

    def reverify(self, selection: RegistrySelection) -> int:
        """Set matching synced registries pending verification. Rows that
        are not synced have nothing to verify; they are left alone."""
        return self.act("reverify", selection)

    def act(self, action: str, selection: RegistrySelection) -> int:
        """"resync" or "reverify" the selection; how many registries changed."""
        return self.run(action, selection).changed

    def run(self, action: str, selection: RegistrySelection, *,
            progress: Callable[[int, int], None] = lambda done, total: None,
            cancelled: Callable[[], bool] = lambda: False) -> BulkResult:
        """The same, with progress and a way to cancel (`BulkAction.run`)."""
        return BulkAction(self.engine, self.replicator).run(
            action, selection, progress=progress, cancelled=cancelled)
