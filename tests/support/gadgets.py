"""Gadgets: a replicable type declared inside the test suite, the way
docs/ARCHITECTURE.md says a new type is declared, to prove that a third
type reaches every part of the product without any other edit.

Its tables are made by the same helpers a migration of a shipped type
calls (`framework/type_migrations.py`), through Alembic's operations on the
test database. Its verification state lives in a `gadget_states` table
(template option 2).
"""
from __future__ import annotations

from alembic.migration import MigrationContext
from alembic.operations import Operations

from backend.db.base import PrimaryBase, TrackingBase
from backend.db.engine import create_db_engine
from backend.framework.columns import make_blob_model, make_registry_model, make_state_model
from backend.framework.replicator import REPLICATORS, Replicator, VerificationStorage
from backend.framework.type_migrations import create_model_tables, create_registry_table

Gadget = make_blob_model(PrimaryBase, "Gadget", "gadgets", verification_on_model=False)
GadgetState = make_state_model(PrimaryBase, "gadget", "gadgets")
GadgetRegistry = make_registry_model(TrackingBase, "gadget")


class GadgetReplicator(Replicator):
    model = Gadget
    registry = GadgetRegistry
    verification = VerificationStorage.state_table(GadgetState, key="gadget_id")


def _migrate(url: str, operation) -> None:
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            operation(Operations(MigrationContext.configure(connection)))
    finally:
        engine.dispose()


def create_primary_tables(url: str) -> None:
    _migrate(url, lambda op: create_model_tables(op, "gadget", "gadgets",
                                                 verification_on_model=False))


def create_tracking_tables(url: str) -> None:
    _migrate(url, lambda op: create_registry_table(op, "gadget"))


class registered_gadgets:
    """Context manager: Gadgets are a known type while inside."""

    def __enter__(self):
        REPLICATORS.register(GadgetReplicator)
        return GadgetReplicator

    def __exit__(self, *exc):
        REPLICATORS.unregister(GadgetReplicator)
