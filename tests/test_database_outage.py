"""The tracking database goes away in the middle of a sync and comes back.

PostgreSQL is reached through a proxy that, when cut, closes every open
connection and refuses new ones, as a stopped server does. The engine must
say so, wait, and finish once the database answers again: every blob synced
and verified exactly once per download, nothing lost, nothing counted twice.
"""
import random
import time

import pytest
from sqlalchemy.engine import make_url

from backend.replicables import replicator_for
from tests.support.fixtures_e2e import all_synced_and_verified, registries
from tests.support.sites import (secondary_config, start_engine, start_primary,
                                 wait_for_checksums, wait_until)
from tests.support.tcp_proxy import CuttableProxy

CoolWidgets = replicator_for("cool_widget")
BLOBS = 400
OUTAGE_SECONDS = 5
pytestmark = pytest.mark.slow


def through(proxy: CuttableProxy, url: str) -> str:
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False)


@pytest.mark.parametrize("outages", [1, 3])
def test_postgresql_outage_mid_sync(postgres_only, primary_url, tracking_url, tmp_path,
                                    credentials, retrieve_log, outages):
    rng = random.Random(5 + outages)
    primary = start_primary(primary_url, tmp_path / "primary", credentials)
    proxy = CuttableProxy(make_url(tracking_url).port or 5432)
    errors: list[str] = []
    engine = None
    try:
        catalog = primary.catalog()
        blobs = {catalog.add_bytes(rng.randbytes(rng.randint(1, 32 * 1024)), "b"): None
                 for _ in range(BLOBS)}
        wait_for_checksums(primary, timeout=60)
        config = secondary_config(primary.url, through(proxy, tracking_url),
                                  tmp_path / "secondary", credentials, files_max_capacity=6)
        engine = start_engine(config, on_error=errors.append, poll_interval=0.2)
        for _ in range(outages):
            time.sleep(rng.uniform(1.0, 2.0))
            proxy.cut()
            time.sleep(OUTAGE_SECONDS)
            proxy.restore()

        wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, blobs),
                   timeout=120, message="every blob synced and verified after the outage")
        # The outage was reported, in words (no exception class names), not
        # as a crash of the engine.
        assert errors and any("database error: " in e for e in errors), errors
        assert not any("Error:" in e for e in errors), errors
        assert engine.running
        wait_until(lambda: engine.last_error is None, timeout=10,
                   message="the error to clear once the database answers")

        rows = registries(engine, CoolWidgets)
        assert set(rows) == set(blobs)
        assert len(retrieve_log.hits) == BLOBS
        # Nothing done twice: every blob downloaded exactly once, no
        # registry failed or retried.
        assert max(retrieve_log.hits.values()) == 1, retrieve_log.hits.most_common(3)
        for model_id in blobs:
            original = primary.blob_path(CoolWidgets, model_id)[0].read_bytes()
            assert engine.storage.path(CoolWidgets, model_id).read_bytes() == original
        assert all(r["retry_count"] == 0 for r in rows.values()), \
            [r for r in rows.values() if r["retry_count"]][:3]
    finally:
        if engine is not None:
            engine.stop()
        proxy.close()
        primary.stop()
