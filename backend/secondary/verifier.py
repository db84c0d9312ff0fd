"""Verification on a secondary: re-hash replicated files and compare them
with the primary's checksum. A mismatch or error fails the verification and
the sync, so the file is downloaded again after the backoff."""
from __future__ import annotations

import logging
import os

from sqlalchemy import update

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

        `record(write)` performs each database write, a function of a
        connection (the engine gathers them into few transactions and retries
        them through an outage); by default each gets its own transaction.
        """
        record = record or (lambda write: write(None))
        outcome = {"verified": 0, "failed": 0, "disabled": 0}
        replicator = store.replicator
        try:
            primary = self.client.states(replicator.replicable_name,
                                         [claim.model_id for claim in claims])
        except Exception:
            record(lambda connection: release(store, claims, connection))  # try again later
            raise
        for claim in claims:
            state = primary.get(claim.model_id)
            if state is None or state["verification_state"] != VerificationState.SUCCEEDED \
                    or not state["checksum"]:
                # Nothing to compare with until the primary has a checksum.
                record(lambda connection, claim=claim:
                       store.mark_verification_disabled(claim, connection))
                outcome["disabled"] += 1
                continue
            expected = state["checksum"]
            try:
                local = self.local_checksum(replicator, claim.model_id, state["file_store"])
            except OSError as exc:
                message = f"Error during verification: {exc.strerror or exc}"
                record(lambda connection, claim=claim, message=message:
                       store.mark_verification_failed(claim, message, connection=connection))
                outcome["failed"] += 1
                continue
            if local == expected:
                record(lambda connection, claim=claim, local=local:
                       store.mark_verified(claim, local, connection))
                outcome["verified"] += 1
            else:
                failure = tr.mismatch_failure(local, expected, claim.registry_id)
                record(lambda connection, claim=claim, failure=failure, local=local,
                       expected=expected: store.mark_verification_failed(
                           claim, failure, checksum=local, primary_checksum=expected,
                           connection=connection))
                outcome["failed"] += 1
        return outcome

    def local_checksum(self, replicator, model_id: int, file_store: int) -> str:
        path = self.storage.path_text(replicator, model_id)
        if file_store == FileStore.REMOTE:
            return size_checksum(os.stat(path).st_size)
        return file_checksum(path)


def release(store: RegistryStore, claims: list[VerificationClaim], connection=None) -> None:
    """Hand claimed rows back as pending, keeping their retry counters."""
    t = store.table
    values = tr.verification_pending(from_failed=True, registry=True)
    with store.transaction(connection) as connection:
        for claim in claims:
            connection.execute(update(t).where(store._verification_guard(claim)).values(**values))
