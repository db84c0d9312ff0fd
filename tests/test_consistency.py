"""Registry consistency against a real primary: the backfill's ranges and
verification queued for registries synced before the primary had a
checksum (SQLite and PostgreSQL)."""
import pytest
from sqlalchemy import update

from backend.replicables import replicator_for
from backend.framework.scope import SyncScope
from backend.framework.states import SyncState, VerificationState
from backend.secondary.consistency import RegistryConsistency
from backend.secondary.geo_client import GeoClient
from backend.secondary.local_storage import LocalStorage
from tests.support.registries import Registries
from tests.support.fixtures_e2e import registries
from tests.support.sites import wait_for_checksums

CoolWidgets = replicator_for("cool_widget")
pytestmark = pytest.mark.slow


@pytest.fixture
def walk(primary, tracking_engine, tmp_path, credentials):
    client = GeoClient(primary.url, credentials["access_key"], credentials["secret"])
    yield RegistryConsistency(tracking_engine, client, LocalStorage(tmp_path / "secondary"),
                              SyncScope(), batch_size=20, first_batch_size=5)
    client.close()


def test_the_first_range_after_start_is_small(primary, walk, tracking_engine):
    """Syncs can start on the first few registries while the backfill goes on."""
    ids = [primary.catalog().add_bytes(b"w%d" % i, "w") for i in range(30)]
    steps = [walk.run_once(CoolWidgets) for _ in range(3)]
    assert [step.created for step in steps] == [5, 20, 5]
    assert sorted(registries(tracking_engine, CoolWidgets)) == ids
    assert walk.run_once(CoolWidgets).wrapped
    # Later passes walk full ranges.
    assert walk.run_once(CoolWidgets).created == 0
    assert walk.run_once(CoolWidgets).created == 0
    assert walk.run_once(CoolWidgets).wrapped


def test_a_registry_synced_before_the_primary_verified_is_queued(primary, walk,
                                                                tracking_engine):
    catalog = primary.catalog()
    ids = [catalog.add_bytes(b"v%d" % i, "v") for i in range(4)]
    wait_for_checksums(primary)
    store = Registries(tracking_engine, CoolWidgets)
    store.insert_pending(ids[:2])
    table = store.table
    with tracking_engine.begin() as connection:
        connection.execute(update(table).where(store.fk == ids[0]).values(
            state=SyncState.SYNCED, verification_state=VerificationState.DISABLED))
    step = walk.run_once(CoolWidgets)
    assert step.created == 2 and step.enabled == 1
    rows = registries(tracking_engine, CoolWidgets)
    assert rows[ids[0]]["verification_state"] == VerificationState.PENDING
    assert all(rows[i]["state"] == SyncState.PENDING for i in ids[1:])


def test_statistics_are_refreshed_after_bulk_inserts(primary, tracking_engine, tmp_path,
                                                     credentials):
    """On PostgreSQL the claims are planned by the table's statistics: the
    walker refreshes them once it has created `analyze_after` registries,
    and again whenever those it created have doubled."""
    if tracking_engine.dialect.name != "postgresql":
        pytest.skip("SQLite claims name their index; there is nothing to refresh")
    client = GeoClient(primary.url, credentials["access_key"], credentials["secret"])
    walk = RegistryConsistency(tracking_engine, client, LocalStorage(tmp_path / "secondary"),
                               SyncScope(), batch_size=20, first_batch_size=5,
                               analyze_after=10)

    def estimated_rows():
        with tracking_engine.connect() as connection:
            return connection.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE oid = 'cool_widget_registry'::regclass"
            ).scalar_one()

    try:
        catalog = primary.catalog()
        [catalog.add_bytes(b"a%d" % i, "a") for i in range(30)]
        never = estimated_rows()
        assert walk.run_once(CoolWidgets).created == 5   # 5 < 10: not yet
        assert estimated_rows() == never
        assert walk.run_once(CoolWidgets).created == 20  # 25 created: refreshed
        assert estimated_rows() == 25
        assert walk.run_once(CoolWidgets).created == 5   # 5 more: not doubled
        assert estimated_rows() == 25
    finally:
        client.close()
