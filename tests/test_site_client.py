"""The console's gql client against a running secondary (and primary), over HTTP."""
import datetime as dt

import pytest

from app.site_client import SiteClient, SiteClientError
from backend.framework.states import SyncState, VerificationState
from backend.replicables import replicator_for
from backend.secondary.registry_selection import RegistrySelection
from backend.sites.secondary import SecondarySite
from tests.support.sites import READ_TOKEN, secondary_config, start_primary, wait_until

CoolWidgets = replicator_for("cool_widget")
WIDGETS = CoolWidgets.describe()
FAILED = RegistrySelection(replication_state=SyncState.FAILED)
SYNCED = RegistrySelection(replication_state=SyncState.SYNCED)
pytestmark = pytest.mark.slow


@pytest.fixture
def sites(primary_url, tracking_url, tmp_path, credentials):
    primary = start_primary(primary_url, tmp_path / "p", credentials)
    catalog = primary.catalog()
    ids = [catalog.add_bytes(b"b%d" % i, "w") for i in range(25)]
    primary.blob_path(CoolWidgets, ids[0])[0].unlink()
    secondary = SecondarySite(secondary_config(primary.url, tracking_url, tmp_path / "s",
                                               credentials, api_token="client-token"),
                              poll_interval=0.1, consistency_interval=1.0).start()
    wait_until(lambda: secondary.engine.status()["cool_widgets_verified_count"] == 24,
               timeout=60, message="24 verified")
    secondary.engine.snapshot()
    yield primary, secondary
    secondary.stop()
    primary.stop()


def test_reads_node_status_types_and_registries(sites):
    _, secondary = sites
    client = SiteClient(secondary.url, READ_TOKEN)
    assert client.node()["name"] == "secondary-1"
    assert client.status()["cool_widgets_registry_count"] == 25
    assert client.types() == [r.describe() for r in secondary.replicators]
    page = client.registries(WIDGETS, first=10)
    assert page.count == 25 and len(page.rows) == 10 and page.has_next_page
    assert [row.registry_id for row in page.rows] == list(range(1, 11))
    assert page.rows[0].replicable == "cool_widget" and page.rows[0].model_id
    rest = client.registries(WIDGETS, first=20, after=page.end_cursor)
    assert len(rest.rows) == 15 and not rest.has_next_page
    failed = client.registries(WIDGETS, FAILED, first=10)
    assert failed.count == 1 and failed.rows[0].missing_on_primary
    assert failed.nodes[0]["missingOnPrimary"] is True
    newest = client.registries(WIDGETS, first=3, sort="LAST_SYNCED_AT_DESC")
    assert len(newest.rows) == 3
    by_id = client.registries(WIDGETS, RegistrySelection(ids=(5, 6)))
    assert [row.registry_id for row in by_id.rows] == [5, 6]
    by_keyword = client.registries(WIDGETS, RegistrySelection(keyword="missing on the geo"))
    assert [row.registry_id for row in by_keyword.rows] == [failed.rows[0].registry_id]


def test_a_remote_secondary_says_what_each_registry_is_sorts_and_lists_a_failure_group(sites):
    """Details travel from the primary to the secondary in batches and on to
    the console through GraphQL; header sorts and failure groups work
    remotely as they do on the hosted engine."""
    from app.sources import RemoteSource
    from backend.secondary.registry_query import group_selection
    primary, secondary = sites
    catalog = primary.catalog()
    project = catalog.add_project("api", "acme/platform", shard="fast")
    named = catalog.add_bytes(b"named", "zz-release.tar.gz", project_id=project)
    client = SiteClient(secondary.url, api_token="client-token")
    source = RemoteSource(client)
    described = RegistrySelection(keyword="zz-release")
    wait_until(lambda: [row.model_id for row in source.rows(
        "cool_widget", described, "ID_ASC", 0, 10)] == [named], timeout=30,
        message="the new record described")
    [row] = source.rows("cool_widget", described, "ID_ASC", 0, 10)
    assert (row.file_name, row.size, row.project_path, row.shard, row.storage) == \
        ("zz-release.tar.gz", 5, "acme/platform/api", "fast", "local")
    by_name = source.rows("cool_widget", RegistrySelection(), "FILE_NAME_DESC", 0, 3)
    assert by_name[0].model_id == named
    by_size = source.rows("cool_widget", RegistrySelection(), "SIZE_ASC", 0, 30)
    assert [r.size for r in by_size] == sorted(r.size for r in by_size)
    secondary.engine.pause()  # the missing record is not retried meanwhile
    wait_until(lambda: [g["count"] for g in source.failure_groups("cool_widget")] == [1],
               timeout=60, message="the missing record failed again")
    [group] = [g for g in source.failure_groups("cool_widget") if g["kind"] == "sync"]
    assert group["count"] == 1 and group["message"].startswith("The file is missing")
    members = source.rows("cool_widget", group_selection(group), "ID_ASC", 0, 10)
    assert len(members) == 1 and members[0].missing_on_primary
    assert source.act("cool_widget", "resync", group_selection(group)) == 1
    assert client.registries(WIDGETS, RegistrySelection(ids=(members[0].registry_id,))) \
        .rows[0].state == SyncState.PENDING
    secondary.engine.resume()


def test_actions_need_the_token_and_change_registries(sites):
    _, secondary = sites
    with pytest.raises(SiteClientError, match="mutations need its api_token"):
        SiteClient(secondary.url, READ_TOKEN).update("resync", WIDGETS, 3)
    client = SiteClient(secondary.url, api_token="client-token")
    secondary.engine.pause()
    assert client.update("resync", WIDGETS, 3)["state"] == "PENDING"
    assert client.bulk_update("reverify", WIDGETS, SYNCED) >= 20
    assert client.registries(WIDGETS, RegistrySelection(ids=(4,))).rows[0] \
        .verification_state == VerificationState.PENDING
    assert client.bulk_update("resync", WIDGETS, RegistrySelection(ids=(4, 5))) == 2
    with pytest.raises(SiteClientError, match="narrows by registry ids and states only"):
        client.bulk_update("resync", WIDGETS, RegistrySelection(keyword="x"))
    secondary.engine.resume()
    wait_until(lambda: client.registries(WIDGETS, SYNCED.narrowed(
        verification_state=VerificationState.SUCCEEDED), first=1).count == 24,
        timeout=30, message="resynced and reverified again")


def test_history(sites):
    _, secondary = sites
    client = SiteClient(secondary.url, READ_TOKEN)
    points = client.history(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10))
    assert points and points[-1]["registryCount"] == 25


def test_primary_has_no_registries_and_lists_sites(sites):
    primary, secondary = sites
    client = SiteClient(primary.url, READ_TOKEN)
    with pytest.raises(SiteClientError, match="not a secondary"):
        client.registries(WIDGETS, first=1)
    with pytest.raises(SiteClientError, match="not a secondary"):
        client.types()
    assert [s["name"] for s in client.all_statuses()][0] == "primary"
    # A secondary answers the same list, asked of its primary.
    assert [s["name"] for s in SiteClient(secondary.url, READ_TOKEN).all_statuses()] == \
        ["primary", "secondary-1"]


def test_errors_are_one_message(sites):
    _, secondary = sites
    with pytest.raises(SiteClientError, match="cannot reach"):
        SiteClient("http://127.0.0.1:9", timeout=2).node()
    with pytest.raises(SiteClientError, match="between 0 and 500"):
        SiteClient(secondary.url, READ_TOKEN).registries(WIDGETS, first=501)
    with pytest.raises(SiteClientError, match="cannot reach"):
        SiteClient("http://127.0.0.1:9", timeout=2).all_statuses()
