"""Verification on a secondary: re-hash replicated files and compare them
with the primary's checksum. A mismatch or error fails the verification and
the sync, so the file is downloaded again after the backoff.

A replica in the secondary's bucket is verified by the SHA-256 the service
stored with it when it has the whole object's, else by reading the object
through the hash; against a primary that checksums object-stored blobs by
size (`object_storage_verification = "size"`), by its size."""
from __future__ import annotations

import logging
import os
from typing import Callable

from backend.framework import transitions as tr
from backend.framework.checksum import file_checksum, is_size_checksum, size_checksum
from backend.framework.replicator import FileStore
from backend.framework.states import VerificationState
from backend.secondary.checksum_pool import ChecksumPool, checksums
from backend.secondary.registry_claims import VerificationClaim
from backend.secondary.registry_outcomes import Outcome, RegistryOutcomes, write

log = logging.getLogger(__name__)


class Verifier:
    def __init__(self, client, storage, pool: ChecksumPool | None = None) -> None:
        self.client = client
        self.storage = storage
        self.pool = pool  # worker processes for the hashing, if given

    def verify_batch(self, engine, replicator, claims: list[VerificationClaim],
                     record: Callable[[Outcome], None] | None = None) -> dict:
        """Verify claimed registries; returns counts by outcome.

        `record(outcome)` writes each outcome (the engine's recorder gathers
        them into few transactions and retries them through an outage); by
        default each is written at once in a transaction of its own.
        """
        record = record or (lambda outcome: write(engine, outcome))
        outcomes = RegistryOutcomes(replicator)
        counts = {"verified": 0, "failed": 0, "disabled": 0}
        try:
            primary = self.client.states(
                replicator.replicable_name, [claim.model_id for claim in claims])
        except Exception:
            record(outcomes.verification_released(claims))  # try again later
            raise
        comparable = [claim for claim in claims if _comparable(primary.get(claim.model_id))]
        computed = self.local_checksums(replicator, [
            (claim.model_id, primary[claim.model_id]["file_store"],
             primary[claim.model_id]["checksum"]) for claim in comparable])
        for claim in claims:
            if claim.model_id not in computed:
                # Nothing to compare with until the primary has a checksum.
                record(outcomes.verification_disabled(claim))
                counts["disabled"] += 1
                continue
            expected = primary[claim.model_id]["checksum"]
            local = computed[claim.model_id]
            if isinstance(local, OSError):
                record(outcomes.verification_failed(
                    claim, f"Error during verification: {local.strerror or local}"))
                counts["failed"] += 1
            elif local == expected:
                record(outcomes.verified(claim, local))
                counts["verified"] += 1
            else:
                record(outcomes.verification_failed(
                    claim, tr.mismatch_failure(local, expected, claim.registry_id),
                    checksum=local, primary_checksum=expected))
                counts["failed"] += 1
        return counts

    def local_checksums(self, replicator, wanted: list[tuple[int, int, str]]) -> dict:
        """{model id: checksum or OSError} for (model id, file store,
        primary checksum) triples, each in the primary checksum's kind;
        local files are hashed in the pool's processes when there is one."""
        results: dict[int, str | OSError] = {}
        local: list[int] = []
        paths: list[str] = []
        for model_id, store, expected in wanted:
            if store == FileStore.REMOTE and (self.storage.bucket is not None
                                              or is_size_checksum(expected)):
                try:
                    results[model_id] = self.local_checksum(replicator, model_id, store,
                                                            expected)
                except OSError as exc:
                    results[model_id] = exc
            else:
                local.append(model_id)
                paths.append(self.storage.path_text(replicator, model_id))
        if local:
            hashed = self.pool.checksums(paths) if self.pool else checksums(paths)
            results.update(zip(local, hashed))
        return results

    def local_checksum(self, replicator, model_id: int, file_store: int,
                       expected: str) -> str:
        """One replica's checksum in the kind of the primary's `expected`."""
        by_size = is_size_checksum(expected)
        bucket = self.storage.bucket
        if file_store == FileStore.REMOTE and bucket is not None:
            key = self.storage.object_key(replicator, model_id)
            return size_checksum(bucket.head(key).size) if by_size else bucket.sha256(key)[0]
        path = self.storage.path_text(replicator, model_id)
        return size_checksum(os.stat(path).st_size) if by_size else file_checksum(path)


def _comparable(state: dict | None) -> bool:
    """The primary has verified this blob and has a checksum to compare with."""
    return bool(state and state["verification_state"] == VerificationState.SUCCEEDED
                and state["checksum"])

