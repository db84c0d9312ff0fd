"""Registry consistency against a real primary: the backfill's ranges and
verification queued for registries synced before the primary had a
checksum (SQLite and PostgreSQL)."""
import pytest
from sqlalchemy import update

from backend.framework.replicator import replicator_for
from backend.framework.scope import SyncScope
from backend.framework.states import SyncState, VerificationState
from backend.secondary.consistency import RegistryConsistency
from backend.secondary.geo_client import GeoClient
from backend.secondary.local_storage import LocalStorage
from backend.secondary.registry_store import RegistryStore
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
    store = RegistryStore(tracking_engine, CoolWidgets)
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
