"""GraphQL requests cannot starve a site (issue "Reliability and security,
second round", item 1): depth and cost are computed in time linear in the
document, a cost limit counts aliases and page sizes, and GraphQL runs on
threads of its own while status keeps answering."""
import json
import time
import urllib.request

import pytest

from backend.api.graphql.limits import MAX_COST
from backend.sites.secondary import SecondarySite
from tests.support.sites import READ_HEADERS, READ_TOKEN, secondary_config


@pytest.fixture
def site(tracking_url, tmp_path, credentials):
    site = SecondarySite(secondary_config("http://127.0.0.1:9", tracking_url, tmp_path / "s",
                                          credentials)).start(run_engine=False)
    yield site
    site.stop()


def ask(site, query: str, variables=None) -> tuple[dict, float]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(site.url + "/api/graphql", data=body,
                                     headers={"Content-Type": "application/json",
                                              **READ_HEADERS})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read()), time.monotonic() - started


def doubling_fragments(k: int) -> str:
    """`F1 { ...F2 ...F2 }` … `Fk { geoNode { name } }`: 2^(k-1) spreads."""
    parts = ["query { ...F1 }"]
    for n in range(1, k):
        parts.append(f"fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} }}")
    parts.append(f"fragment F{k} on Query {{ geoNode {{ name }} }}")
    return "\n".join(parts)


def test_fragments_that_double_are_refused_at_once(site):
    answer, took = ask(site, doubling_fragments(24))  # 19 s before, and a stalled site
    [error] = answer["errors"]
    assert error["message"].startswith("This query could answer 16,777,216 values; "
                                       f"the limit is {MAX_COST:,}.")
    assert took < 1.0


def test_aliases_count_as_the_fields_they_are(site):
    page = "coolWidgetRegistries(first: 100) { nodes { id } }"
    query = "{ geoNode { " + " ".join(f"a{n}: {page}" for n in range(500)) + " } }"
    answer, took = ask(site, query)
    assert "the limit is" in answer["errors"][0]["message"] and took < 2.0
    # The same page once is fine, as is the console's largest page.
    answer, _ = ask(site, "{ geoNode { " + page + " } }")
    assert "errors" not in answer
    from app.site_client import REGISTRY_FIELDS
    answer, _ = ask(site, "query($n: Int) { geoNode { coolWidgetRegistries(first: $n) "
                          "{ count nodes { " + REGISTRY_FIELDS + " } } } }", {"n": 500})
    assert "errors" not in answer


def test_a_flood_of_refused_queries_leaves_status_fast(site):
    """Six concurrent attackers (the probe that stalled the Geo API for 57 s),
    from a process of their own as attackers are, while the status is
    asked: each answer well under a second."""
    flood = start_flood(site.url)
    try:
        slowest = max(status_took(site.url) for _ in range(10))
        assert slowest < STATUS_BOUND, slowest
    finally:
        stop_flood(flood)


# The slowest status answer allowed under a flood. The attackers, the site and
# PostgreSQL share this machine's two cores, so an answer waits for a core now
# and then (1.45 s once in CI); a stall, as before the limits, lasted 57 s.
STATUS_BOUND = 2.5


def status_took(url: str) -> float:
    """Seconds the site's REST status took to answer 200."""
    started = time.monotonic()
    with urllib.request.urlopen(urllib.request.Request(
            url + "/api/v4/geo_sites/current/status", headers=READ_HEADERS),
            timeout=30) as answer:
        assert answer.status == 200
    return time.monotonic() - started


def start_flood(url: str):
    """tests/support/graphql_flood.py: six threads sending the doubling
    fragments (k = 23) with the read token, in another process."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    flood = subprocess.Popen(
        [sys.executable, "-m", "tests.support.graphql_flood", url, READ_TOKEN, "6"],
        cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert flood.stdout.readline().strip() == "flooding"
    time.sleep(0.5)  # the threads are at it
    return flood


def stop_flood(flood) -> None:
    flood.stdin.close()
    flood.wait(30)


@pytest.fixture
def quick_timeouts(monkeypatch):
    from backend.api import server
    monkeypatch.setattr(server, "HEADER_TIMEOUT", 1.0)
    monkeypatch.setattr(server, "BODY_TIMEOUT", 1.0)


def test_slow_clients_are_closed_and_status_stays_fast(quick_timeouts, tracking_url,
                                                      tmp_path, credentials):
    """50 connections that send a header line every half second, and one
    that never finishes its body: each is closed by its deadline (here 1 s;
    15 s and 30 s in production), and status answers meanwhile."""
    import socket
    site = SecondarySite(secondary_config("http://127.0.0.1:9", tracking_url, tmp_path / "s",
                                          credentials)).start(run_engine=False)
    sockets = []
    try:
        for _ in range(50):
            slow = socket.create_connection(("127.0.0.1", site.server.port))
            slow.sendall(b"GET /api/v4/geo_sites/current/status HTTP/1.1\r\nHost: x\r\n")
            sockets.append(slow)
        body = socket.create_connection(("127.0.0.1", site.server.port))
        sockets.append(body)
        body.sendall(b"POST /api/graphql HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: 100\r\n\r\n{\"query\": ")
        started = time.monotonic()
        closed = set()
        while time.monotonic() - started < 5 and len(closed) < 50:
            for index, slow in enumerate(sockets[:50]):
                if index in closed:
                    continue
                try:
                    slow.sendall(b"X-Slow: 1\r\n")
                    slow.settimeout(0.01)
                    if slow.recv(1) == b"":
                        closed.add(index)
                except socket.timeout:
                    pass
                except OSError:  # reset: closed by the site
                    closed.add(index)
            with urllib.request.urlopen(urllib.request.Request(
                    site.url + "/api/v4/geo_sites/current/status", headers=READ_HEADERS),
                    timeout=5) as answer:
                assert answer.status == 200
            time.sleep(0.2)
        assert len(closed) == 50, f"{50 - len(closed)} slow connections still open"
        assert time.monotonic() - started < 4
        body.settimeout(5)
        answer = body.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 408 "), answer
        assert "The request body did not arrive within 1 s." in answer
    finally:
        for slow in sockets:
            slow.close()
        site.stop()


def test_blobs_keep_flowing_while_the_primary_is_flooded_with_costly_queries(
        primary_url, tracking_url, tmp_path, credentials):
    """The probe that stalled a primary's Geo API for 57 s (168 of 2,000
    blobs synced that minute, 21 failed "read timed out"): a process sends
    the doubling fragments from six threads to the primary's GraphQL, with
    its read token, while a secondary syncs 200 blobs from it. Every blob
    syncs, none fails, and the primary's REST status answers under a second
    throughout."""
    from backend.framework.states import SyncState
    from backend.replicables import replicator_for
    from tests.support.fixtures_e2e import all_synced_and_verified, registries
    from tests.support.sites import start_engine, start_primary, wait_for_checksums
    widgets = replicator_for("cool_widget")
    primary = start_primary(primary_url, tmp_path / "primary", credentials)
    engine = flood = None
    try:
        catalog = primary.catalog()
        ids = [catalog.add_bytes(b"blob %d " % n * 50, "w") for n in range(200)]
        wait_for_checksums(primary)
        flood = start_flood(primary.url)  # on before the first download
        engine = start_engine(secondary_config(primary.url, tracking_url, tmp_path / "s",
                                               credentials, request_timeout=5.0))
        slowest = 0.0
        deadline = time.monotonic() + 60
        while not all_synced_and_verified(engine, widgets, ids):
            assert time.monotonic() < deadline, "the blobs stopped flowing"
            slowest = max(slowest, status_took(primary.url))
            time.sleep(0.2)
        assert slowest < STATUS_BOUND, slowest
        rows = registries(engine, widgets).values()
        assert all(row["retry_count"] == 0 and row["state"] != SyncState.FAILED for row in rows)
    finally:
        if flood is not None:
            stop_flood(flood)
        if engine is not None:
            engine.stop()
        primary.stop()
