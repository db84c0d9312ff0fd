"""The demo with object storage, from the console's settings, on a real
S3-protocol server (moto's, its own process): about one blob in ten of each
type is kept in the primary's bucket and the secondary replicates them,
into its own bucket when one is given; a bucket that is not there stops
the demo before anything is written, and the console says why in one line.
The Overview counts each type's blobs in object storage."""
import dataclasses

import pytest
from sqlalchemy import update

from app.main import demo_settings, open_source, target_of
from app.overview_page import OverviewPage, object_storage_line
from app.settings import load_settings, save_settings
from app.sources import LocalSource
from app.tasks import TaskRunner
from backend.demo import Demo
from backend.framework.replicator import FileStore
from backend.framework.states import SyncState
from backend.replicables import replicator_for
from backend.secondary.registry_selection import RegistrySelection
from tests.console.conftest import CoolWidgets, open_window
from tests.support.s3_server import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY
from tests.support.sites import wait_until

sqlite_only = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)


@pytest.fixture
def home(tmp_path, keyring_in_memory):
    return tmp_path / "home"


def demo_with_buckets(s3_server, primary_bucket: str, secondary_bucket: str = "") -> dict:
    return {"mode": "demo", "demo": {"object_store": {
        "primary_bucket": primary_bucket, "secondary_bucket": secondary_bucket,
        "connection": {"endpoint": s3_server.endpoint, "region": "us-east-1",
                       "path_style": True, "aws_access_key_id": DUMMY_ACCESS_KEY_ID,
                       "aws_secret_access_key": DUMMY_SECRET_ACCESS_KEY}}}}


def keys_in(s3_server, bucket: str) -> list[str]:
    listed = s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    return [item["Key"] for item in listed]


@pytest.mark.slow
def test_the_demo_replicates_its_object_stored_blobs_into_the_secondarys_bucket(
        tmp_path, home, s3_server):
    primary_bucket, secondary_bucket = s3_server.make_bucket(), s3_server.make_bucket()
    save_settings(demo_with_buckets(s3_server, primary_bucket, secondary_bucket))
    # What the console starts, from the settings saved (the secret from the
    # token store), seeded small: 20 Cool Widgets, 8 Package Files.
    settings = dataclasses.replace(demo_settings(load_settings(), tmp_path / "ws"),
                                   seed_widgets=20, trickle_interval=600)
    demo = Demo(settings).start()
    try:
        # One in ten, the first included: Cool Widgets 0 and 10, Package File 0.
        stored = {"cool_widgets": 2, "package_files": 1}

        def replicated():
            status = demo.secondary.status()
            return all(status[f"{p}_object_storage_synced_count"] == n
                       for p, n in stored.items()) and status
        status = wait_until(replicated, timeout=60, message="object-stored blobs synced")
        assert {p: status[f"{p}_object_storage_count"] for p in stored} == stored
        primary = demo.primary.rest_status()
        assert {p: primary[f"{p}_object_storage_count"] for p in stored} == stored
        assert len(keys_in(s3_server, primary_bucket)) == 3
        assert len(keys_in(s3_server, secondary_bucket)) == 3  # the replicas

        source = LocalSource(demo.site, demo.primary)
        rows = source.rows("cool_widget", RegistrySelection(), "ID_ASC", 0, 100)
        in_bucket = [row for row in rows if row.storage == "object storage"]
        assert len(in_bucket) == 2 and len(rows) == 20
        assert all(row.state == SyncState.SYNCED for row in in_bucket)
    finally:
        demo.stop()


@pytest.mark.slow
def test_without_a_bucket_of_its_own_the_demos_secondary_keeps_them_on_its_disk(
        tmp_path, home, s3_server):
    primary_bucket = s3_server.make_bucket()
    settings = dataclasses.replace(
        demo_settings(demo_with_buckets(s3_server, primary_bucket), tmp_path / "ws"),
        seed_widgets=10, trickle_interval=600)
    demo = Demo(settings).start()
    try:
        wait_until(lambda: demo.secondary.status()["cool_widgets_object_storage_synced_count"]
                   == 1, timeout=60, message="the object-stored Cool Widget synced")
        assert not demo.secondary.config.object_store.enabled
        assert demo.secondary.config.sync_object_storage
    finally:
        demo.stop()


def test_a_demo_bucket_that_is_not_there_is_told_in_one_line_and_nothing_is_written(
        qtbot, tmp_path, home, settings, s3_server):
    from app.connection import UNREACHABLE
    save_settings(demo_with_buckets(s3_server, "no-such-bucket"))
    window = open_window(qtbot, settings, target=target_of(None),
                         opener=lambda: open_source(tmp_path / "ws", None))
    qtbot.waitUntil(lambda: window.connection.state == UNREACHABLE, timeout=30000)
    text = window.banner.text.text()
    assert "Cannot reach the demo with object storage" in text
    assert f"the bucket no-such-bucket at {s3_server.endpoint} does not exist" in text
    assert "Traceback" not in text and "Error" not in text
    assert not (tmp_path / "ws" / "primary.db").exists()
    window.close()


def test_a_demo_without_buckets_is_the_plain_demo(tmp_path):
    settings = demo_settings({"mode": "demo"}, tmp_path / "ws")
    assert not settings.object_storage and settings.stores() == []
    demo = Demo(settings)
    assert not demo.primary_config().object_store.enabled
    assert not demo.secondary_config("http://127.0.0.1:9").sync_object_storage


# --- the Overview's counts --------------------------------------------------------------

@sqlite_only
def test_the_overview_counts_each_types_registries_in_object_storage(qtbot, source,
                                                                     local_site):
    details = CoolWidgets.details_table()
    # Registries 501..512 (12 of the 60) are of records in object storage.
    with local_site.tracking_engine.begin() as connection:
        connection.execute(update(details).where(details.c.cool_widget_id <= 512)
                           .values(file_store=FileStore.REMOTE))
    runner = TaskRunner()
    page = OverviewPage(runner, source)
    qtbot.addWidget(page)
    page.show()
    page.refresh()
    label = page.object_storage["cool_widgets"]
    qtbot.waitUntil(lambda: label.isVisible(), timeout=10000)
    # 12 registries, of which 501-503, 506, 507, 509-511 are synced (registry_rows)
    assert label.text() == "Object storage: 12 of 60 registries, 8 synced"
    assert page.object_storage["package_files"].isHidden()  # none of them
    runner.close()


def test_the_overview_counts_the_primarys_records_and_says_nothing_when_not_told(qtbot):
    plural = replicator_for("package_file").plural_name
    secondary = {f"{plural}_registry_count": 40, f"{plural}_object_storage_count": 12,
                 f"{plural}_object_storage_synced_count": 10}
    primary = {f"{plural}_count": 400, f"{plural}_object_storage_count": 40}
    assert object_storage_line(secondary, primary, plural) == (
        "Object storage: 12 of 40 registries, 10 synced; 40 of 400 records on the primary")
    assert object_storage_line({}, primary, plural) == "Object storage: 40 of 400 records"
    assert object_storage_line(secondary, {}, plural) == (
        "Object storage: 12 of 40 registries, 10 synced")
    # A GitLab site, or an older one: the fields are absent or null.
    gitlab = {f"{plural}_registry_count": 40, f"{plural}_object_storage_count": None}
    assert object_storage_line(gitlab, {}, plural) == ""
    assert object_storage_line({**secondary, f"{plural}_object_storage_count": 0}, {},
                               plural) == ""
