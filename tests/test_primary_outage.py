"""A primary down for a minute: the secondary's syncs wait for it (a circuit
breaker) instead of failing one by one, no registry's backoff grows, and
full sync is back within seconds of its return.

Before, every registry the workers tried during an outage failed and backed
off on its own: after 300 s down, full sync came back 417 s after the
primary did.
"""
import time

import pytest
from prometheus_client import generate_latest

from backend.api.metrics import site_registry
from backend.framework.states import SyncState
from backend.replicables import replicator_for
from tests.conftest import DB_KINDS, DatabaseFactory, require_database
from tests.support.fixtures_e2e import counted, all_synced_and_verified, registries
from tests.support.sites import (secondary_config, start_engine, start_primary,
                                 wait_for_checksums, wait_until)
from tests.support.tcp_proxy import CuttableProxy
from tests.test_faulty_primary import FaultProxyProcess

CoolWidgets = replicator_for("cool_widget")
OUTAGE = 60.0  # seconds: "a minute or more"
NAMES = {"sqlite": "secondary-sqlite", "postgresql": "secondary-pg"}
pytestmark = pytest.mark.slow



def test_a_primary_outage_of_a_minute_is_recovered_within_seconds(
        tmp_path, credentials, retrieve_log):
    """Two secondaries at once, one on an SQLite tracking database and one
    on PostgreSQL, so that the minute's outage is waited out once for both."""
    require_database("postgresql")
    databases = {kind: DatabaseFactory(kind, tmp_path / kind) for kind in DB_KINDS}
    for kind in DB_KINDS:
        (tmp_path / kind).mkdir()
    primary = start_primary(databases["sqlite"].url("primary"), tmp_path / "primary",
                            credentials, secondaries=tuple(NAMES.values()))
    port = int(primary.url.rsplit(":", 1)[1])
    proxy = CuttableProxy(port)
    engines = []
    retrieve_log.delay = 0.01  # 600 blobs take a few seconds: the outage comes mid-sync
    try:
        catalog = primary.catalog()
        ids = [catalog.add_bytes(b"blob %d " % i * 40, "w") for i in range(600)]
        wait_for_checksums(primary)
        for index, kind in enumerate(DB_KINDS):
            config = secondary_config(
                f"http://127.0.0.1:{proxy.port}", databases[kind].url("tracking"),
                tmp_path / kind / "storage", credentials, name=NAMES[kind],
                access_key=credentials["access_key"] + ("" if index == 0 else str(index)),
                files_max_capacity=4, request_timeout=2.0)
            engines.append(start_engine(config, consistency_interval=3600.0))
        t = CoolWidgets.registry_table()
        for engine in engines:
            wait_until(lambda: counted(engine, CoolWidgets, t.c.state == SyncState.SYNCED) >= 60,
                       timeout=60, message="the first syncs")

        proxy.cut()  # the primary's port closes: connections refused
        cut_at = time.monotonic()
        for engine in engines:
            wait_until(lambda: "primary_unreachable" in engine.sync_holds, timeout=10,
                       message="the breaker to open")
        time.sleep(1.0)  # a download whose body arrived before the cut is still recorded
        synced_at_cut = [counted(engine, CoolWidgets, t.c.state == SyncState.SYNCED)
                         for engine in engines]
        while time.monotonic() - cut_at < OUTAGE:
            for engine, synced in zip(engines, synced_at_cut):
                # No attempt counts against a registry while the primary is
                # down, and nothing is claimed that would then wait.
                assert counted(engine, CoolWidgets, t.c.state == SyncState.FAILED) == 0
                assert counted(engine, CoolWidgets, t.c.retry_count > 0) == 0
                assert counted(engine, CoolWidgets, t.c.state == SyncState.SYNCED) == synced
                assert engine.running
            time.sleep(1.0)
        for engine in engines:
            hold = engine.status()["sync_holds"]["primary_unreachable"]
            assert hold["reason"] == "the primary cannot be reached (cannot connect: " \
                "Connection refused)", hold
            assert cut_at - 1 <= time.monotonic() - (time.time() - hold["since"]) <= cut_at + 10
            exposition = generate_latest(site_registry(
                engine.replicators, lambda: [(engine.config.name, engine.status())])).decode()
            assert (f'geo_sync_paused{{name="{engine.config.name}",reason="primary_unreachable",'
                    f'url="{engine.config.name}"}} 1.0') in exposition, exposition
            assert f'reason="low_disk",url="{engine.config.name}"}} 0.0' in exposition

        retrieve_log.delay = 0  # what is left takes a second or two, not the slowed pace
        proxy.restore()
        back_at = time.monotonic()
        for engine, synced in zip(engines, synced_at_cut):
            wait_until(lambda: counted(engine, CoolWidgets, t.c.state == SyncState.SYNCED) > synced,
                       timeout=10, interval=0.05, message="the first sync after the outage")
        first_sync = time.monotonic() - back_at
        assert first_sync < 3, f"syncs resumed {first_sync:.1f} s after the primary came back"
        for engine in engines:
            wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=30,
                       interval=0.05, message="full sync after the outage")
        recovered = time.monotonic() - back_at
        assert recovered < 10, f"full sync {recovered:.1f} s after the primary came back"
        for engine in engines:
            assert engine.sync_holds == {}
            rows = registries(engine, CoolWidgets)
            assert all(r["retry_count"] == 0 and r["last_sync_failure"] is None
                       for r in rows.values())
        # Nothing was claimed twice: a blob is downloaded again only if its
        # download was in flight when the connections were cut (the primary
        # logged it; the secondary got a broken body).
        assert sorted(retrieve_log.hits) == ids
        again = sum(retrieve_log.hits.values()) - 2 * len(ids)
        assert 0 <= again <= 2 * config.files_max_capacity, retrieve_log.hits
    finally:
        for engine in engines:
            engine.stop()
        proxy.close()
        primary.stop()
        for factory in databases.values():
            factory.cleanup()


def test_a_failure_of_one_blob_while_the_primary_answers_is_that_registrys_own(
        primary_url, tracking_url, tmp_path, credentials):
    """The breaker asks the primary before it calls a failure an outage: a
    blob whose every download is reset fails with its backoff (the probe
    got an answer), and the other blobs sync without a pause."""
    primary = start_primary(primary_url, tmp_path / "primary", credentials)
    proxy = FaultProxyProcess(primary.url, seed=1, stall=1.0)
    engine = None
    try:
        catalog = primary.catalog()
        ids = [catalog.add_bytes(b"fine %d" % i, "w") for i in range(20)]
        broken = catalog.add_bytes(b"always reset", "w")
        wait_for_checksums(primary)
        proxy.send(f"reset /api/v4/geo/retrieve/cool_widget/{broken}")
        config = secondary_config(proxy.url, tracking_url, tmp_path / "secondary",
                                  credentials)
        engine = start_engine(config)
        t = CoolWidgets.registry_table()
        wait_until(lambda: counted(engine, CoolWidgets, t.c.state == SyncState.SYNCED) == len(ids)
                   and counted(engine, CoolWidgets, t.c.state == SyncState.FAILED) == 1, timeout=30,
                   message="the other blobs synced, the reset one failed")
        row = registries(engine, CoolWidgets)[broken]
        assert row["retry_count"] == 1, row
        assert row["last_sync_failure"] == "Error downloading file: Connection reset by peer"
        assert engine.sync_holds == {}
    finally:
        if engine is not None:
            engine.stop()
        proxy.stop()
        primary.stop()
