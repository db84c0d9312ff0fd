"""What a running secondary takes without a restart: its capacities (sync
workers, verification threads, rows claimed) and its feature flags."""
import threading

import pytest

from backend.replicables import replicator_for
from backend.secondary.verification_pipeline import verification_threads
from backend.sites.secondary import SecondarySite
from tests.support.fixtures_e2e import all_synced_and_verified, registries
from tests.support.sites import secondary_config, wait_until

CoolWidgets = replicator_for("cool_widget")
PackageFiles = replicator_for("package_file")
pytestmark = [pytest.mark.slow,
              # The engine's threads do not depend on the tracking database.
              pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)]


@pytest.fixture
def site(primary, tracking_url, tmp_path, credentials):
    config = secondary_config(primary.url, tracking_url, tmp_path / "secondary", credentials,
                              files_max_capacity=1, verification_max_capacity=1)
    site = SecondarySite(config)
    site.engine.poll_interval = 0.1
    site.start(serve=False)
    yield site
    site.stop()


def verify_threads(site) -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("geo-verify-")
            and t.name != "geo-verify-scheduler"}


def test_capacities_change_while_the_engine_runs(primary, site):
    engine = site.engine
    assert engine.syncs.workers.count == 1 and verify_threads(site) == {"geo-verify-0"}

    site.set_capacities(6, 4)
    assert engine.syncs.work.capacity == 48  # eight claims ahead per worker
    assert engine.verifications.work.capacity == 40  # ten rows per job, as GitLab
    wait_until(lambda: len(verify_threads(site)) == verification_threads(4),
               message="verification threads started")
    assert engine.syncs.workers.count == 6
    node = site.geo_node(None)
    assert (node["filesMaxCapacity"], node["verificationMaxCapacity"]) == (6, 4)

    ids = [primary.catalog().add_bytes(b"live %d" % i, f"l{i}.bin") for i in range(40)]
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=60,
               message="synced and verified at the new capacity")

    site.set_capacities(1, 1)  # the extra threads end after their batch
    wait_until(lambda: verify_threads(site) == {"geo-verify-0"},
               message="verification threads back to one")
    more = [primary.catalog().add_bytes(b"after %d" % i, f"a{i}.bin") for i in range(5)]
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids + more), timeout=60,
               message="still syncing at capacity one")


def test_a_feature_flag_turned_off_and_on_while_running(primary, site):
    engine = site.engine
    engine.set_feature_flags({CoolWidgets.feature_flag: False})
    assert site.rest_status()["cool_widgets_registry_count"] is None  # replication off
    ids = [primary.catalog().add_bytes(b"flagged %d" % i, f"f{i}.bin") for i in range(5)]
    package = primary.catalog(PackageFiles)
    package_ids = [package.add_bytes(b"package %d" % i, f"p{i}.bin") for i in range(3)]
    wait_until(lambda: all_synced_and_verified(engine, PackageFiles, package_ids),
               timeout=60, message="the other type goes on")
    assert not set(ids) & {model_id for model_id, row in registries(engine, CoolWidgets)
                           .items() if row["state"] == 2}

    engine.set_feature_flags({CoolWidgets.feature_flag: True})
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=60,
               message="backfilled once turned on")
