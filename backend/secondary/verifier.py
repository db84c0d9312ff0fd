"""Verification on a secondary: re-hash replicated files and compare them
with the primary's checksum. A mismatch or error fails the verification and
the sync, so the file is downloaded again after the backoff."""
from __future__ import annotations

import logging
import os

from backend.framework import transitions as tr
from backend.framework.checksum import file_checksum, size_checksum
from backend.framework.replicator import FileStore
from backend.framework.states import VerificationState
from backend.secondary.checksum_pool import ChecksumPool, checksums
from backend.secondary.registry_store import RegistryStore, VerificationClaim

log = logging.getLogger(__name__)


class Verifier:
    def __init__(self, client, storage, pool: ChecksumPool | None = None) -> None:
        self.client = client
        self.storage = storage
        self.pool = pool  # worker processes for the hashing, if given

    def verify_batch(self, store: RegistryStore, claims: list[VerificationClaim],
                     record=None, record_statements=None) -> dict:
        """Verify claimed registries; returns counts by outcome.

        `record(write)` performs each database write, a function of a
        connection, and `record_statements` a list of guarded statements with
        parameters (the engine gathers them into few transactions and retries
        them through an outage); by default each gets its own transaction.
        """
        record = record or (lambda write: write(None))
        # Successes, the common outcome, as statements the engine batches.
        record_statements = record_statements or (lambda statements: record(
            lambda connection: [connection.execute(statement, params)
                                for statement, params in statements]))
        outcome = {"verified": 0, "failed": 0, "disabled": 0}
        replicator = store.replicator
        try:
            primary = self.client.states(
                replicator.replicable_name, [claim.model_id for claim in claims])
        except Exception:
            record(lambda connection: store.release_verification_claims(
                claims, connection))  # try again later
            raise
        comparable = [claim for claim in claims if _comparable(primary.get(claim.model_id))]
        computed = self.local_checksums(replicator, [
            (claim.model_id, primary[claim.model_id]["file_store"]) for claim in comparable])
        for claim in claims:
            if claim.model_id not in computed:
                # Nothing to compare with until the primary has a checksum.
                record(lambda connection, claim=claim:
                       store.mark_verification_disabled(claim, connection))
                outcome["disabled"] += 1
                continue
            expected = primary[claim.model_id]["checksum"]
            try:
                local = computed[claim.model_id]
                if isinstance(local, OSError):
                    raise local
            except OSError as exc:
                message = f"Error during verification: {exc.strerror or exc}"
                record(lambda connection, claim=claim, message=message:
                       store.mark_verification_failed(claim, message, connection=connection))
                outcome["failed"] += 1
                continue
            if local == expected:
                record_statements(store.verified_statements(claim, local))
                outcome["verified"] += 1
            else:
                failure = tr.mismatch_failure(local, expected, claim.registry_id)
                record(lambda connection, claim=claim, failure=failure, local=local,
                       expected=expected: store.mark_verification_failed(
                           claim, failure, checksum=local, primary_checksum=expected,
                           connection=connection))
                outcome["failed"] += 1
        return outcome

    def local_checksums(self, replicator, wanted: list[tuple[int, int]]) -> dict:
        """{model id: checksum or OSError} for (model id, file store) pairs;
        local files are hashed in the pool's processes when there is one."""
        results: dict[int, str | OSError] = {}
        local: list[int] = []
        paths: list[str] = []
        for model_id, store in wanted:
            if store == FileStore.REMOTE:
                try:
                    results[model_id] = self.local_checksum(replicator, model_id, store)
                except OSError as exc:
                    results[model_id] = exc
            else:
                local.append(model_id)
                paths.append(self.storage.path_text(replicator, model_id))
        if local:
            hashed = self.pool.checksums(paths) if self.pool else checksums(paths)
            results.update(zip(local, hashed))
        return results

    def local_checksum(self, replicator, model_id: int, file_store: int) -> str:
        path = self.storage.path_text(replicator, model_id)
        if file_store == FileStore.REMOTE:
            return size_checksum(os.stat(path).st_size)
        return file_checksum(path)


def _comparable(state: dict | None) -> bool:
    """The primary has verified this blob and has a checksum to compare with."""
    return bool(state and state["verification_state"] == VerificationState.SUCCEEDED
                and state["checksum"])

