"""Both ways of storing the primary's verification state run through the
same engine: Cool Widgets (a `cool_widget_states` table) and Package Files
(columns on the model), replicated side by side."""
import os

import pytest

from backend.replicables import replicator_for
from tests.support.fixtures_e2e import all_synced_and_verified
from tests.support.sites import secondary_config, start_engine, start_primary, wait_until

CoolWidgets = replicator_for("cool_widget")
PackageFiles = replicator_for("package_file")
pytestmark = pytest.mark.slow


def test_state_table_and_model_columns_replicate_alike(primary_url, tracking_url, tmp_path,
                                                        credentials):
    types = [CoolWidgets, PackageFiles]
    primary = start_primary(primary_url, tmp_path / "primary", credentials)
    engine = None
    try:
        ids = {t: [primary.catalog(t).add_bytes(os.urandom(500 + i), "b") for i in range(20)]
               for t in types}
        engine = start_engine(secondary_config(primary.url, tracking_url,
                                               tmp_path / "secondary", credentials))
        for replicator in types:
            wait_until(lambda: all_synced_and_verified(engine, replicator, ids[replicator]),
                       timeout=60, message=f"{replicator.title_plural} replicated")
        status = engine.status()
        assert status["package_files_verified_count"] == 20
        assert status["cool_widgets_verified_count"] == 20
        primary.catalog(PackageFiles).delete(ids[PackageFiles][:5])
        wait_until(lambda: engine.status()["package_files_registry_count"] == 15, timeout=30,
                   message="package file deletions replicated")
    finally:
        if engine:
            engine.stop()
        primary.stop()
