"""Verification on a secondary: re-hash replicated files and compare them
with the primary's checksum. A mismatch or error fails the verification and
the sync, so the file is downloaded again after the backoff."""
from __future__ import annotations

import logging

from sqlalchemy import update

from backend.db.engine import writing
from backend.framework import transitions as tr
from backend.framework.checksum import file_checksum, size_checksum
from backend.framework.replicator import FileStore
from backend.framework.states import VerificationState
from backend.secondary.registry_store import RegistryStore, VerificationClaim

log = logging.getLogger(__name__)


class Verifier:
    def __init__(self, client, storage) -> None:
        self.client = client
        self.storage = storage

    def verify_batch(self, store: RegistryStore, claims: list[VerificationClaim],
                     record=None) -> dict:
        """Verify claimed registries; returns counts by outcome.

        `record(write)` performs each database write (the engine retries it
        through an outage); by default it just calls it.
        """
        record = record or (lambda write: write())
        outcome = {"verified": 0, "failed": 0, "disabled": 0}
        replicator = store.replicator
        try:
            primary = self.client.states(replicator.replicable_name,
                                         [claim.model_id for claim in claims])
        except Exception:
            record(lambda: release(store, claims))  # primary unreachable: try again later
            raise
        for claim in claims:
            state = primary.get(claim.model_id)
            if state is None or state["verification_state"] != VerificationState.SUCCEEDED \
                    or not state["checksum"]:
                # Nothing to compare with until the primary has a checksum.
                record(lambda: store.mark_verification_disabled(claim))
                outcome["disabled"] += 1
                continue
            expected = state["checksum"]
            try:
                local = self.local_checksum(replicator, claim.model_id, state["file_store"])
            except OSError as exc:
                message = f"Error during verification: {exc.strerror or exc}"
                record(lambda: store.mark_verification_failed(claim, message))
                outcome["failed"] += 1
                continue
            if local == expected:
                record(lambda: store.mark_verified(claim, local))
                outcome["verified"] += 1
            else:
                record(lambda: store.mark_verification_failed(
                    claim, tr.mismatch_failure(local, expected, claim.registry_id),
                    checksum=local, primary_checksum=expected))
                outcome["failed"] += 1
        return outcome

    def local_checksum(self, replicator, model_id: int, file_store: int) -> str:
        path = self.storage.path(replicator, model_id)
        if file_store == FileStore.REMOTE:
            return size_checksum(path.stat().st_size)
        return file_checksum(path)


def release(store: RegistryStore, claims: list[VerificationClaim]) -> None:
    """Hand claimed rows back as pending, keeping their retry counters."""
    t = store.table
    values = tr.verification_pending(from_failed=True, registry=True)
    with writing(store.engine) as connection:
        for claim in claims:
            connection.execute(update(t).where(store._verification_guard(claim)).values(**values))
