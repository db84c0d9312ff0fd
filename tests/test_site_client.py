"""The console's gql client against a running secondary (and primary), over HTTP."""
import datetime as dt

import pytest

from app.site_client import SiteClient, SiteClientError
from backend.replicables import replicator_for
from backend.sites.secondary import SecondarySite
from tests.support.sites import secondary_config, start_primary, wait_until

CoolWidgets = replicator_for("cool_widget")
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


def test_reads_node_status_and_registries(sites):
    _, secondary = sites
    client = SiteClient(secondary.url)
    assert client.node()["name"] == "secondary-1"
    assert client.status()["cool_widgets_registry_count"] == 25
    page = client.registries(first=10)
    assert page.count == 25 and len(page.nodes) == 10 and page.has_next_page
    assert [n["registryId"] for n in page.nodes] == list(range(1, 11))
    rest = client.registries(first=20, after=page.end_cursor)
    assert len(rest.nodes) == 15 and not rest.has_next_page
    failed = client.registries(first=10, replication_state="failed")
    assert failed.count == 1 and failed.nodes[0]["missingOnPrimary"] is True
    newest = client.registries(first=3, sort="LAST_SYNCED_AT_DESC")
    assert len(newest.nodes) == 3
    by_id = client.registries(ids=[5, 6])
    assert [n["registryId"] for n in by_id.nodes] == [5, 6]


def test_actions_need_the_token_and_change_registries(sites):
    _, secondary = sites
    with pytest.raises(SiteClientError, match="API token"):
        SiteClient(secondary.url).update("resync", 3)
    client = SiteClient(secondary.url, api_token="client-token")
    secondary.engine.pause()
    assert client.update("resync", 3)["state"] == "PENDING"
    assert client.bulk_update("reverify_all", replication_state="synced") >= 20
    assert client.registries(ids=[4]).nodes[0]["verificationState"] == "PENDING"
    assert client.bulk_update("resync_all", ids=[4, 5]) == 2
    secondary.engine.resume()
    wait_until(lambda: client.registries(first=1, replication_state="synced",
                                         verification_state="succeeded").count == 24,
               timeout=30, message="resynced and reverified again")


def test_history(sites):
    _, secondary = sites
    client = SiteClient(secondary.url)
    points = client.history(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10))
    assert points and points[-1]["registryCount"] == 25


def test_primary_has_no_registries_and_lists_sites(sites):
    primary, _ = sites
    client = SiteClient(primary.url)
    with pytest.raises(SiteClientError, match="not a secondary"):
        client.registries(first=1)
    assert [s["name"] for s in client.all_statuses()][0] == "primary"


def test_errors_are_one_message(sites):
    _, secondary = sites
    with pytest.raises(SiteClientError, match="cannot reach"):
        SiteClient("http://127.0.0.1:9", timeout=2).node()
    with pytest.raises(SiteClientError, match="between 0 and 500"):
        SiteClient(secondary.url).registries(first=501)
    with pytest.raises(SiteClientError, match="HTTP 404"):
        SiteClient(secondary.url).all_statuses()
