"""A test-only replicable that keeps its verification state in columns on
the model (template option 1), where Cool Widgets use a separate
`cool_widget_states` table (option 2). Both run through the same engine."""
from __future__ import annotations

from backend.db.base import PrimaryBase, TrackingBase
from backend.framework.columns import (BlobModelColumns, make_registry_model,
                                       verification_state_columns, verification_state_indexes)
from backend.framework.replicator import REPLICATORS, Replicator, VerificationStorage

Gadget = type("Gadget", (BlobModelColumns, PrimaryBase), {
    "__tablename__": "gadgets",
    "__table_args__": verification_state_indexes("gadgets"),
    **verification_state_columns("gadgets"),
})
GadgetRegistry = make_registry_model(TrackingBase, "gadget")


class GadgetReplicator(Replicator):
    model = Gadget
    registry = GadgetRegistry
    verification = VerificationStorage.on_model(Gadget)


def create_primary_tables(engine) -> None:
    Gadget.__table__.create(engine, checkfirst=True)


def create_tracking_tables(engine) -> None:
    GadgetRegistry.__table__.create(engine, checkfirst=True)


class registered_gadgets:
    """Context manager: Gadgets are a known type while inside."""

    def __enter__(self):
        REPLICATORS.register(GadgetReplicator)
        return GadgetReplicator

    def __exit__(self, *exc):
        REPLICATORS.unregister(GadgetReplicator)
