"""Registry consistency (backfill): walks the primary's ids in ranges of
10,000, creates missing registries as pending and removes registries (and
files) of records that are gone or have left the selective-sync scope.
It also queues for verification synced registries whose verification was
disabled (synced before the primary had a checksum) once the primary has
one, in case the `checksum_succeeded` event came before the cursor, and
keeps what the primary says each record is (registry_details.py)."""
from __future__ import annotations

from dataclasses import dataclass

from backend.framework.states import VerificationState
from backend.secondary.event_consumer import remove_replicas
from backend.secondary.registry_backfill import RegistryBackfill
from backend.secondary.registry_details import RegistryDetails

BATCH_SIZE = 10_000
# The first range after the engine starts is smaller: on an empty tracking
# DB its registries are inserted (and their syncs can start) in tens of
# milliseconds rather than the half second 10,000 take on PostgreSQL.
FIRST_BATCH_SIZE = 1_000
# PostgreSQL plans the claims by the table's statistics, which registries
# created in bulk leave stale until autovacuum next looks (a minute or
# more; never, for a new table, in the first seconds). Without them the
# claim of pending syncs read and sorted every pending row instead of the
# first few in index order. The walker refreshes them once it has created
# this many registries, and again whenever those it created have doubled.
ANALYZE_AFTER = 1_000


@dataclass
class ConsistencyResult:
    created: int = 0
    removed: int = 0
    enabled: int = 0
    described: int = 0  # registries whose details changed
    wrapped: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.created or self.removed or self.enabled or self.described)


class RegistryConsistency:
    def __init__(self, engine, client, storage, scope, batch_size: int = BATCH_SIZE,
                 first_batch_size: int = FIRST_BATCH_SIZE,
                 analyze_after: int = ANALYZE_AFTER) -> None:
        self.engine = engine
        self.client = client
        self.storage = storage
        self.scope = scope
        self.batch_size = batch_size
        self.first_batch_size = min(first_batch_size, batch_size)
        self.analyze_after = analyze_after
        self._cursors: dict[str, int] = {}
        self._created: dict[str, tuple[int, int]] = {}  # name -> (created, at last ANALYZE)

    def run_once(self, replicator) -> ConsistencyResult:
        """Reconcile one id range of one type; the cursor wraps at the end."""
        name = replicator.replicable_name
        size = self.batch_size if name in self._cursors else self.first_batch_size
        after = self._cursors.get(name, 0)
        store = RegistryBackfill(self.engine, replicator)
        page = self.client.replicables(name, after, size, self.scope.to_params())
        end = page.get("range_end")
        if end is None:
            # Primary ids exhausted: registries above them are orphans.
            end = store.last_tracked_model_id(after, size)
            if end is None:
                self._cursors[name] = 0
                return ConsistencyResult(wrapped=True)
        source = {row["id"] for row in page.get("replicables", [])}
        tracked = store.tracked_model_ids(after + 1, end)
        result = ConsistencyResult()
        result.created = store.insert_pending(source - tracked)
        if result.created:
            self._refresh_statistics(store, name, result.created)
        # Only registries that existed before this range can be synced with
        # verification disabled; those just created are pending.
        checksummed = [row["id"] for row in page.get("replicables", [])
                       if row.get("verification_state") == VerificationState.SUCCEEDED
                       and row["id"] in tracked]
        result.enabled = store.enable_verification(checksummed) if checksummed else 0
        gone = sorted(tracked - source)
        if gone:
            result.removed = remove_replicas(store, self.storage, replicator, gone)
        result.described = RegistryDetails(self.engine, replicator).record(
            page.get("replicables", []))
        self._cursors[name] = end
        return result

    def run_full_pass(self, replicator) -> ConsistencyResult:
        """Every range once, from the start (used at start-up and by tests)."""
        self._cursors[replicator.replicable_name] = 0
        total = ConsistencyResult()
        while True:
            step = self.run_once(replicator)
            total.created += step.created
            total.removed += step.removed
            total.enabled += step.enabled
            total.described += step.described
            if step.wrapped:
                total.wrapped = True
                return total

    def _refresh_statistics(self, store: RegistryBackfill, name: str, created: int) -> None:
        total, analyzed = self._created.get(name, (0, 0))
        total += created
        if total - analyzed >= max(self.analyze_after, analyzed):
            store.refresh_statistics()
            analyzed = total
        self._created[name] = (total, analyzed)
