"""What an administrator asks of registries: resync and reverify, of one
registry, a selection, or everything a filter shows.

The selection is decided by the database (its WHERE clauses), never by a
list of ids loaded into Python first.
"""
from __future__ import annotations

from sqlalchemy import update

from backend.db.engine import writing
from backend.framework import transitions as tr
from backend.framework.states import SyncState, VerificationState
from backend.secondary.registry_selection import RegistrySelection
from backend.secondary.registry_table import CHUNK, RegistryTable


class RegistryActions(RegistryTable):
    def resync(self, selection: RegistrySelection) -> int:
        """Set matching registries pending; a running sync of one of them
        loses (its outcome is guarded by its claim). Returns how many."""
        t = self.table
        with writing(self.engine) as connection:
            return connection.execute(update(t).where(*selection.clauses(t, self.fk, self.replicator.details_table()))
                                      .values(**tr.sync_pending())).rowcount

    def reverify(self, selection: RegistrySelection) -> int:
        """Set matching synced registries pending verification.

        Rows that are not synced have nothing to verify; they are left alone.
        """
        t = self.table
        clauses = [*selection.clauses(t, self.fk, self.replicator.details_table()), t.c.state == SyncState.SYNCED]
        with writing(self.engine) as connection:
            # Rows not failed first: afterwards they are pending, so the second
            # statement, for failed rows, cannot count them again.
            others = connection.execute(
                update(t).where(*clauses, t.c.verification_state != VerificationState.FAILED)
                .values(**tr.verification_pending(from_failed=False, registry=True))).rowcount
            failed = connection.execute(
                update(t).where(*clauses, t.c.verification_state == VerificationState.FAILED)
                .values(**tr.verification_pending(from_failed=True, registry=True))).rowcount
        return failed + others

    def act(self, action: str, selection: RegistrySelection) -> int:
        """"resync" or "reverify" the selection. Registries chosen by id go
        CHUNK at a time, each chunk a transaction: a million ids are never
        one statement (SQLite refuses that many parameters)."""
        run = {"resync": self.resync, "reverify": self.reverify}.get(action)
        if run is None:
            raise ValueError(f"unknown action {action!r}; use resync or reverify")
        for name in ("ids", "model_ids"):
            chosen = getattr(selection, name)
            if chosen is not None and len(chosen) > CHUNK:
                return sum(self.act(action, selection.narrowed(
                    **{name: chosen[start:start + CHUNK]}))
                    for start in range(0, len(chosen), CHUNK))
        return run(selection)
