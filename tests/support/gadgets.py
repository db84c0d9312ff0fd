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

import backend.replicables  # noqa: F401  (the shipped types come first in the registry)
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


GADGETS = 12  # one of them with its file gone from the primary


class GadgetSites:
    """A primary and a running secondary (engine and API) replicating Cool
    Widgets, Package Files and Gadgets, Gadgets declared only here."""

    def __init__(self, primary, secondary, config_path, missing: int) -> None:
        self.primary = primary
        self.secondary = secondary
        self.config_path = str(config_path)
        self.missing = missing  # the gadget whose file is gone


def start_gadget_sites(databases, tmp_path, credentials) -> GadgetSites:
    """Inside `registered_gadgets()`: migrate both databases, make the
    Gadgets' tables with the migration helpers, fill the primary and wait
    until the secondary has every gadget verified or failed."""
    from backend.db.migrate import upgrade
    from backend.sites.secondary import SecondarySite
    from tests.support.sites import secondary_config, start_primary, wait_until
    primary_url, tracking_url = databases.url("primary"), databases.url("tracking")
    upgrade(primary_url, "primary")
    upgrade(tracking_url, "tracking")
    create_primary_tables(primary_url)
    create_tracking_tables(tracking_url)
    ids = []

    def fill(site):
        catalog = site.catalog(GadgetReplicator)
        ids.extend(catalog.add_bytes(b"gadget %d" % n, f"g{n}.bin") for n in range(GADGETS))
        site.blob_path(GadgetReplicator, ids[3])[0].unlink()  # before any checksum

    primary = start_primary(primary_url, tmp_path / "primary", credentials, before_start=fill)
    config = secondary_config(primary.url, tracking_url, tmp_path / "secondary", credentials,
                              api_token="gadget-token")
    secondary = SecondarySite(config, poll_interval=0.1, consistency_interval=1.0).start()

    def settled():
        status = secondary.engine.status()
        return (status["gadgets_verified_count"] == GADGETS - 1
                and status["gadgets_failed_count"] == 1)

    wait_until(settled, timeout=60, message="gadgets verified, one failed")
    secondary.engine.snapshot()  # a point of history for the charts
    path = tmp_path / "geo.toml"
    path.write_text(f"""[secondary]
name = "{config.name}"
primary_url = "{primary.url}"
access_key = "{config.access_key}"
secret = "{config.secret}"
tracking_database_url = "{tracking_url}"
storage_path = "{config.storage_path}"
""")
    return GadgetSites(primary, secondary, path, ids[3])
