"""The primary's Geo API over real HTTP on loopback, through the secondary's clients."""
import asyncio
import hashlib
import os

import pytest
import urllib3

from backend.framework.replicator import FileStore

from backend.replicables import replicator_for
from backend.framework.scope import SyncScope
from backend.primary.checksummer import Checksummer
from backend.primary.geo_api import INLINE_BODY
from backend.secondary.blob_client import READ_SIZE as BLOB_READ_SIZE, BlobClient
from backend.secondary.geo_client import GeoApiError, GeoClient, PrimaryUnreachable
from tests.support.sites import wait_for_checksums

CoolWidgets = replicator_for("cool_widget")


@pytest.fixture
def client(primary, credentials):
    client = GeoClient(primary.url, credentials["access_key"], credentials["secret"])
    yield client
    client.close()


@pytest.fixture
def download(primary, credentials):
    """download(model_id) -> (headers, bytes, piece sizes), over the engine's
    blob client on an event loop of its own."""
    def run(model_id: int):
        async def fetch():
            pieces = []

            async def consume(piece: bytes) -> None:
                pieces.append(piece)

            async with BlobClient(primary.url, credentials["access_key"],
                                  credentials["secret"]) as client:
                headers = await client.download("cool_widget", model_id, consume)
            return headers, b"".join(pieces), [len(piece) for piece in pieces]
        return asyncio.run(fetch())
    return run


def round_trip(primary, download, data: bytes):
    """Store `data` on the primary, download it; asserts the bytes and the
    checksum header came back, returns the headers and the piece sizes."""
    model_id = primary.catalog().add_bytes(data, "w.bin")
    wait_for_checksums(primary)
    headers, body, pieces = download(model_id)
    assert body == data
    assert headers.checksum == hashlib.sha256(data).hexdigest()
    return headers, pieces


def test_retrieve_streams_the_blob_with_its_checksum(primary, download):
    headers, _ = round_trip(primary, download, b"widget bytes" * 1000)
    assert headers.verification_state == 2 and headers.file_store == FileStore.LOCAL


@pytest.mark.parametrize("size", [0, INLINE_BODY, INLINE_BODY + 1, 3 * INLINE_BODY + 5])
def test_blobs_of_every_size_come_back_whole(primary, download, size):
    """Up to INLINE_BODY from memory, beyond it with sendfile: same bytes,
    same headers, a Content-Length the client checks; the client hands
    the body on in pieces of about 1 MiB, whatever the network's."""
    _, pieces = round_trip(primary, download,
                           bytes(range(256)) * (size // 256) + b"z" * (size % 256))
    assert all(piece >= BLOB_READ_SIZE for piece in pieces[:-1])
    assert sum(pieces) == size


@pytest.mark.parametrize("replacement", ["folder", "fifo"])
def test_something_else_where_the_file_should_be_is_file_not_found(primary, download,
                                                                  replacement):
    model_id = primary.catalog().add_bytes(b"x", "w.bin")
    path = primary.blob_path(CoolWidgets, model_id)[0]
    path.unlink()
    path.mkdir() if replacement == "folder" else os.mkfifo(path)
    with pytest.raises(GeoApiError) as caught:
        download(model_id)
    assert caught.value.status == 404 and caught.value.geo_code == "FILE_NOT_FOUND"


def test_missing_file_answers_file_not_found(primary, download):
    model_id = primary.catalog().add_bytes(b"x", "w.bin")
    primary.blob_path(CoolWidgets, model_id)[0].unlink()
    with pytest.raises(GeoApiError) as caught:
        download(model_id)
    assert caught.value.status == 404 and caught.value.geo_code == "FILE_NOT_FOUND"
    assert str(caught.value) == f"CoolWidget #{model_id} file not found"


def test_unknown_record_is_a_plain_404(download):
    with pytest.raises(GeoApiError) as caught:
        download(12345)
    assert caught.value.status == 404 and caught.value.geo_code is None


def test_object_storage_blobs_redirect_to_a_signed_url(primary, download):
    model_id = primary.catalog().add_bytes(b"remote!", "r.bin", file_store=FileStore.REMOTE)
    assert download(model_id)[1] == b"remote!"


def test_wrong_secret_is_401(primary, credentials):
    bad = GeoClient(primary.url, credentials["access_key"], "w" * 32)
    with pytest.raises(GeoApiError) as caught:
        bad.events(0)
    assert caught.value.status == 401
    bad.close()


def test_unauthenticated_requests_are_refused(primary):
    model_id = primary.catalog().add_bytes(b"secret", "w.bin")
    http = urllib3.PoolManager()
    for path in (f"/api/v4/geo/retrieve/cool_widget/{model_id}", "/api/v4/geo/events",
                 "/api/v4/geo/replicables/cool_widget"):
        response = http.request("GET", primary.url + path)
        assert response.status == 401, path
        assert b"secret" not in response.data
    response = http.request("POST", primary.url + "/api/v4/geo/events/find",
                            body=b'{"ids": [1]}')
    assert response.status == 401


def test_a_refused_connection_reads_as_refused_not_as_a_timeout():
    import socket
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = GeoClient(f"http://127.0.0.1:{port}", "k", "s" * 32)
    with pytest.raises(PrimaryUnreachable, match="^cannot connect: Connection refused$"):
        client.events(0)
    client.close()


def test_the_primary_counts_the_records_of_a_scope(primary, client):
    catalog = primary.catalog()
    catalog.add_bytes(b"here", "a")
    catalog.add_bytes(b"remote", "b", file_store=FileStore.REMOTE)
    assert client.count("cool_widget", SyncScope().to_params()) == 1
    assert client.count("cool_widget", SyncScope(sync_object_storage=True).to_params()) == 2
    assert client.count("package_file", SyncScope().to_params()) == 0


def test_tampered_signed_url_is_refused(primary):
    http = urllib3.PoolManager()
    response = http.request("GET", primary.url + "/api/v4/geo/object_storage/../../etc/passwd"
                            "?expires=99999999999&signature=00")
    assert response.status in (403, 404)


def test_events_after_a_cursor(primary, client):
    # The checksummer, driven here: running on its own it could checksum the
    # first record before its deletion and publish `checksum_succeeded` for
    # it too (one run in seven under load).
    primary.checksummer.stop()
    catalog = primary.catalog()
    first = catalog.add_bytes(b"a", "a")
    second = catalog.add_bytes(b"b", "b")
    catalog.delete([first])
    checksummer = Checksummer(primary)
    while checksummer.run_once():
        pass
    page = client.events(after=0)
    assert [(e["event_name"], e["payload"]["model_record_id"]) for e in page["events"]
            if e["event_name"] != "checksum_succeeded"] == [
        ("created", first), ("created", second), ("deleted", first)]
    assert [e["payload"]["model_record_id"] for e in page["events"]
            if e["event_name"] == "checksum_succeeded"] == [second]
    assert page["last_event_id"] == page["events"][-1]["id"]
    later = client.events(after=page["events"][0]["id"])
    assert len(later["events"]) == len(page["events"]) - 1


def test_events_found_by_id_are_those_that_exist_marked_in_scope(primary, client):
    primary.checksummer.stop()  # only `created` events
    catalog = primary.catalog()
    ids = [catalog.add_bytes(b"%d" % i, "x") for i in range(3)]
    page = client.events(after=0)["events"]
    log_ids = [e["id"] for e in page]
    found = client.find_events([log_ids[2], log_ids[0], 10**9],
                               scope_params=SyncScope().to_params())
    assert [(e["id"], e["payload"]["model_record_id"], e["in_scope"]) for e in found] == [
        (log_ids[0], ids[0], True), (log_ids[2], ids[2], True)]
    assert client.find_events([]) == []


def test_finding_events_refuses_bad_bodies_with_400(primary, client):
    for body in ({"ids": "1"}, {"ids": [1, "2"]}, {"ids": [True]}, {"no": []},
                 {"ids": list(range(1, 1002))}):
        with pytest.raises(GeoApiError) as caught:
            client._json("POST", "api/v4/geo/events/find", body=body)
        assert caught.value.status == 400, body
    assert client.find_events([2**70, -1, 0]) == []  # cannot exist; no overflow


def test_replicables_list_a_range_with_checksums(primary, client):
    catalog = primary.catalog()
    ids = [catalog.add_bytes(b"%d" % i, "x") for i in range(5)]
    wait_for_checksums(primary)
    page = client.replicables("cool_widget", after_id=ids[0], batch_size=3,
                              scope_params=SyncScope().to_params())
    assert page["range_end"] == ids[3]
    assert [r["id"] for r in page["replicables"]] == ids[1:4]
    assert all(r["checksum"] and r["verification_state"] == 2 for r in page["replicables"])
    empty = client.replicables("cool_widget", after_id=ids[-1], batch_size=3,
                               scope_params=SyncScope().to_params())
    assert empty["range_end"] is None


def test_states_answer_for_given_ids(primary, client):
    model_id = primary.catalog().add_bytes(b"abc", "x")
    wait_for_checksums(primary)
    states = client.states("cool_widget", [model_id, 999])
    assert set(states) == {model_id}
    assert states[model_id]["checksum"] == hashlib.sha256(b"abc").hexdigest()


def test_bad_parameters_are_400_not_500(primary, client):
    with pytest.raises(GeoApiError) as caught:
        client.replicables("cool_widget", after_id=0, batch_size=10,
                           scope_params={"selective_sync_type": "bogus"})
    assert caught.value.status == 400
    with pytest.raises(GeoApiError) as caught:
        client.replicables("nope", after_id=0, batch_size=10, scope_params={})
    assert caught.value.status == 404


def test_status_reports_are_stored_per_secondary(primary, client):
    client.post_status({"cool_widgets_synced_count": 3})
    client.post_status({"cool_widgets_synced_count": 4})
    statuses = primary.secondary_statuses()
    assert len(statuses) == 1 and statuses[0]["site_name"] == "secondary-1"
    assert statuses[0]["status"]["cool_widgets_synced_count"] == 4
