"""One type's registry in one tracking DB, for tests: the parts the engine
uses (claims, outcomes, actions, backfill) behind one object, outcomes
written at once, so a test reads as the state machine it checks."""
from __future__ import annotations

from backend.secondary.registry_actions import RegistryActions
from backend.secondary.registry_backfill import RegistryBackfill
from backend.secondary.registry_claims import RegistryClaims
from backend.secondary.registry_outcomes import RegistryOutcomes, write


class Registries:
    def __init__(self, engine, replicator) -> None:
        self.engine = engine
        self.replicator = replicator
        self.table = replicator.registry_table()
        self.fk = self.table.c[replicator.registry_fk]
        self.claims = RegistryClaims(engine, replicator)
        self.outcomes = RegistryOutcomes(replicator)
        self.actions = RegistryActions(engine, replicator)
        self.backfill = RegistryBackfill(engine, replicator)

    def __getattr__(self, name):
        for part in (self.claims, self.actions, self.backfill):
            if hasattr(part, name):
                return getattr(part, name)
        raise AttributeError(name)

    def write(self, outcome) -> bool:
        return write(self.engine, outcome)

    def mark_synced(self, claim, primary_verified: bool) -> bool:
        return self.write(self.outcomes.synced(claim, primary_verified))

    def mark_sync_failed(self, claim, message: str, missing_on_primary: bool = False) -> bool:
        return self.write(self.outcomes.sync_failed(claim, message, missing_on_primary))

    def mark_verified(self, claim, checksum: str) -> bool:
        return self.write(self.outcomes.verified(claim, checksum))

    def mark_verification_failed(self, claim, failure: str, **checksums) -> bool:
        return self.write(self.outcomes.verification_failed(claim, failure, **checksums))
