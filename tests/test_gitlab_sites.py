"""The console's client against GitLab Geo sites of both schema generations.

The sites are the GitLab stand-in (tests/support/gitlab_site.py): a real
HTTP server whose GraphQL schema is GitLab's, for 16.3 and for 19.2, as
GitLab's published schemas describe them, and whose REST routes and token
rules are GitLab's. It validates every document against its generation's
schema, so these are contract tests of our client: every document it sent
must be valid for the site, and every action must change exactly the
registries picked.
"""
from __future__ import annotations

import datetime as dt
import functools
import os
import pathlib

import pytest
from graphql import build_schema, parse, validate

from app.site_client import SiteClient, SiteClientError
from app.sources import READ_ONLY_TOKEN, RemoteSource
from backend.framework.clock import clock, utcnow
from backend.framework.states import SyncState
from backend.secondary.registry_selection import RegistrySelection
from tests.support.gitlab_site import GitLabSite

API, READ = "glpat-admin-api", "glpat-admin-read"
TOKENS = {API: ["api"], READ: ["read_api"]}
GENERATIONS = ("16.3", "19.2")
TYPE_COUNTS = {"16.3": 17, "19.2": 40}
DOWNLOAD, MISMATCH = "Error downloading file", "Checksum does not match the primary checksum"


@pytest.fixture(autouse=True)
def own_history_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("GEO_CONSOLE_HOME", str(tmp_path / "home"))


@pytest.fixture(params=GENERATIONS)
def gitlab(request):
    """A GitLab secondary of one generation: 260 uploads (the last ten
    failed, six and four of two messages) and five package files."""
    site = GitLabSite(generation=request.param, name="geo-2", site_id=2, tokens=TOKENS)
    site.add_registries("Upload", 250)
    site.add_registries("Upload", 6, state="FAILED", lastSyncFailure=DOWNLOAD,
                        lastSyncedAt=None, retryCount=3)
    site.add_registries("Upload", 4, state="FAILED", lastSyncFailure=MISMATCH, retryCount=1)
    site.add_registries("PackageFile", 5)
    with site:
        yield site


def client_of(site, token=API) -> SiteClient:
    return SiteClient(site.url, token, timeout=10)


def all_valid(site) -> None:
    """Every document the site received validates against its schema, and
    against GitLab's published schema of that generation where one is at
    hand (GEO_CONSOLE_GITLAB_SDL_16_3, GEO_CONSOLE_GITLAB_SDL_19_2)."""
    assert site.documents
    schemas = [site.schema] + published_schema(site.generation)
    for path, query, _variables in site.documents:
        for schema in schemas:
            errors = validate(schema, parse(query))
            assert errors == [], (path, query, errors)


@functools.lru_cache(maxsize=None)
def _published(path: str):
    return build_schema(pathlib.Path(path).read_text(encoding="utf-8"), assume_valid=True,
                        assume_valid_sdl=True)


def published_schema(generation: str) -> list:
    path = os.environ.get("GEO_CONSOLE_GITLAB_SDL_" + generation.replace(".", "_"))
    return [_published(path)] if path else []


def uploads(source):
    return next(kind for kind in source.types if kind.replicable_name == "upload")


def states(site, graphql_type="Upload") -> dict[int, tuple[str, str]]:
    return {r["id"]: (r["state"], r["verificationState"]) for r in site.registries(graphql_type)}


def test_types_are_discovered_from_the_site_with_gitlabs_names(gitlab):
    client = client_of(gitlab)
    try:
        types = client.types()
        assert len(types) == TYPE_COUNTS[gitlab.generation]
        titles = {kind.title_plural for kind in types}
        assert {"Package Files", "LFS Objects", "Uploads", "Job Artifacts",
                "CI Secure Files", "Container Repositories"} <= titles
        upload = next(kind for kind in types if kind.replicable_name == "upload")
        assert (upload.plural_name, upload.registry_fk) == (
            "uploads", "file_id" if gitlab.generation == "16.3" else "upload_id")
        assert client.node()["name"] == "geo-2"
    finally:
        client.close()
    all_valid(gitlab)


def test_registries_counts_pages_and_status_of_both_generations(gitlab):
    source = RemoteSource(client_of(gitlab))
    try:
        kind = uploads(source)
        every, failed = RegistrySelection(), RegistrySelection(
            replication_state=SyncState.FAILED)
        # 16.3 has no count: the REST status tells the totals it has.
        assert source.count("upload", every) == 260
        assert source.count("upload", failed) == 10
        assert source.state_counts("upload")["all"] == 260
        # Pages of 100 at most (GitLab's max_page_size), walked by cursor to
        # an offset; the model id is GitLab's fileId on 16.3.
        rows = source.rows("upload", every, "ID_ASC", 245, 20)
        assert [row.registry_id for row in rows] == list(range(246, 261))
        assert [row.model_id for row in rows] == [i + 1000 for i in range(246, 261)]
        assert rows[-1].state == SyncState.FAILED and rows[-1].last_sync_failure == MISMATCH
        # 19.x links each registry's record to its page on the site; 16.3 has no such field.
        assert rows[0].gitlab_page == (
            None if gitlab.generation == "16.3"
            else f"{gitlab.url}/admin/data_management/uploads/{rows[0].model_id}")
        again = source.rows("upload", every, "ID_ASC", 100, 3)
        assert [row.registry_id for row in again] == [101, 102, 103]
        # A failure group is found by its message, which GitLab cannot filter by.
        group = RegistrySelection(sync_failure=DOWNLOAD)
        assert source.count("upload", group) == 6
        assert [r.registry_id for r in source.rows("upload", group, "ID_ASC", 0, 50)] == \
            list(range(251, 257))
        groups = source.failure_groups("upload")
        assert [(g["kind"], g["message"], g["count"]) for g in groups] == [
            ("sync", DOWNLOAD, 6), ("sync", MISMATCH, 4)]
        status = source.overview()  # GET /api/v4/geo_sites/2/status
        assert (status["geo_node_id"], status["uploads_failed_count"]) == (2, 10)
        assert [s["geo_node_id"] for s in source.sites()] == [2]
        assert kind.title_plural == "Uploads"
    finally:
        source.close()
    all_valid(gitlab)


def test_sorts_are_offered_only_where_the_site_has_them(gitlab):
    source = RemoteSource(client_of(gitlab))
    try:
        if gitlab.generation == "16.3":
            assert source.sorts("upload") == ["ID_ASC"]
            with pytest.raises(ValueError, match="by id only"):
                source.rows("upload", RegistrySelection(), "ID_DESC", 0, 5)
        else:
            assert source.sorts("upload") is None
            rows = source.rows("upload", RegistrySelection(), "ID_DESC", 0, 5)
            assert [row.registry_id for row in rows] == [260, 259, 258, 257, 256]
    finally:
        source.close()
    all_valid(gitlab)


def test_resync_and_reverify_change_exactly_the_registries_picked(gitlab):
    source = RemoteSource(client_of(gitlab))
    before = states(gitlab)
    try:
        assert source.can_act
        picked = RegistrySelection(ids=(3, 7, 250))
        assert source.act("upload", "resync", picked) == 3
        after = states(gitlab)
        assert {i for i in after if after[i] != before[i]} == {3, 7, 250}
        assert all(after[i][0] == "PENDING" for i in (3, 7, 250))
        # "Resync all failed": the site's bulk mutation where it has one
        # (19.2), one update per registry where it has none (16.3).
        assert source.act("upload", "resync", RegistrySelection(
            replication_state=SyncState.FAILED)) == 10
        after_failed = states(gitlab)
        assert {i for i in after_failed if after_failed[i] != after[i]} == set(range(251, 261))
        reverified = source.act("upload", "reverify", RegistrySelection(ids=(1, 2)))
        assert reverified == 2
        assert states(gitlab)[1][1] == "PENDING" and states(gitlab)[3][1] == "SUCCEEDED"
        assert states(gitlab, "PackageFile") == {i: ("SYNCED", "SUCCEEDED") for i in range(1, 6)}
    finally:
        source.close()
    if gitlab.generation == "16.3":
        assert gitlab.bulk_calls == []
        assert len(gitlab.update_calls) == 3 + 10 + 2
        assert {call["registry_class"] for call in gitlab.update_calls} == {"UPLOAD_REGISTRY"}
    else:
        assert [(c["action"], c["replication_state"], len(c["ids"] or ()))
                for c in gitlab.bulk_calls] == [
            ("RESYNC_ALL", None, 3), ("RESYNC_ALL", "FAILED", 0), ("REVERIFY_ALL", None, 2)]
    all_valid(gitlab)


class Progress:
    """What the console's progress dialog is told; cancels after `cancel_after` reports."""

    def __init__(self, cancel_after: int) -> None:
        self.reports, self.cancel_after, self.early = [], cancel_after, None

    def report(self, done: int, total: int) -> None:
        self.reports.append((done, total))

    def cancelled(self) -> bool:
        return len(self.reports) >= self.cancel_after

    def stopped(self, early: bool) -> None:
        self.early = early


def test_a_bulk_action_of_single_updates_reports_progress_and_stops_when_cancelled():
    with GitLabSite(generation="16.3", name="geo-2", site_id=2, tokens=TOKENS) as site:
        site.add_registries("Upload", 100)
        source = RemoteSource(client_of(site))
        try:
            progress = Progress(cancel_after=2)
            changed = source.act("upload", "resync", RegistrySelection(), progress=progress)
        finally:
            source.close()
        assert progress.reports == [(0, 100), (20, 100)] and progress.early is True
        # Cancel is asked before each update: the one after the second report
        # was under way, none after it.
        assert changed == 21
        pending = [r["id"] for r in site.registries("Upload") if r["state"] == "PENDING"]
        assert pending == list(range(1, 22))


def test_a_read_api_token_watches_and_is_refused_every_action(gitlab):
    before = states(gitlab)
    source = RemoteSource(client_of(gitlab, READ))
    try:
        assert source.client.check_token(uploads(source)) == "read"
        assert not source.can_act and source.cannot_act_because == READ_ONLY_TOKEN
        assert source.count("upload", RegistrySelection()) == 260
        with pytest.raises(ValueError, match="only reads"):
            source.act("upload", "resync", RegistrySelection(ids=(1,)))
    finally:
        source.close()
    assert states(gitlab) == before and gitlab.update_calls == gitlab.bulk_calls == []


def test_a_wrong_token_is_one_plain_sentence():
    with GitLabSite(generation="19.2", tokens=TOKENS) as site:
        client = client_of(site, "glpat-wrong")
        with pytest.raises(SiteClientError) as refused:
            client.types()
        client.close()
    message = str(refused.value)
    assert "token" in message.lower() and "Traceback" not in message and "Error" not in message


def test_graphql_falls_back_to_api_graphql_where_geo_graphql_is_missing():
    with GitLabSite(generation="19.2", tokens=TOKENS, geo_graphql=False) as site:
        site.add_registries("Upload", 3)
        client = client_of(site)
        try:
            assert [r.registry_id for r in client.registries(
                uploads(RemoteSource(client)), first=10).rows] == [1, 2, 3]
            assert client.graphql_path == "/api/graphql"
        finally:
            client.close()
        # (/api/v4/geo/graphql answered 404 without reading the document)
        assert {path for path, _, _ in site.documents} == {"/api/graphql"}


def test_another_secondarys_registries_through_gitlabs_node_proxy():
    with GitLabSite(generation="19.2", name="geo-2", site_id=2, tokens=TOKENS) as here, \
            GitLabSite(generation="19.2", name="geo-3", site_id=3, tokens=TOKENS) as there:
        here.add_peer(there)
        there.add_registries("LfsObject", 12, state="FAILED", lastSyncFailure=DOWNLOAD)
        source = RemoteSource(client_of(here).through(3))
        try:
            assert source.name == "geo-3"
            assert source.count("lfs_object", RegistrySelection()) == 12
            assert source.overview()["geo_node_id"] == 3
            assert {s["geo_node_id"] for s in source.sites()} == {2, 3}
            assert source.act("lfs_object", "resync", RegistrySelection(ids=(4,))) == 1
        finally:
            source.close()
        assert [r["id"] for r in there.registries("LfsObject") if r["state"] == "PENDING"] \
            == [4]
        assert {path for path, _, _ in here.documents} == {"/api/v4/geo/node_proxy/3/graphql"}
        all_valid(there)


def test_the_console_records_history_for_a_site_that_keeps_none(gitlab, monkeypatch):
    import app.history_store as history_store
    monkeypatch.setattr(history_store, "RECORD_EVERY", 0.0)
    source = RemoteSource(client_of(gitlab))
    start = utcnow() - dt.timedelta(minutes=1)
    try:
        source.overview()
        gitlab.add_registries("Upload", 40)  # synced meanwhile: 300, 290 of them synced
        clock.advance(dt.timedelta(seconds=30))
        source.overview()
        points = source.history("upload", start, start + dt.timedelta(minutes=2), 1000)
    finally:
        source.close()
    assert [(p["registry_count"], p["synced_count"]) for p in points] == [(260, 250),
                                                                          (300, 290)]
    assert points[-1]["synced_percentage"] == 96.66
    # The next console run on the same site finds it (history/<host>-<hash>.db).
    source = RemoteSource(client_of(gitlab))
    try:
        assert len(source.history("upload", start, start + dt.timedelta(minutes=2), 1000)) == 2
    finally:
        source.close()


@pytest.mark.parametrize("generation, shown", [("16.3", "100+"), ("19.2", "1,000+")])
def test_a_count_the_site_cannot_give_is_shown_as_at_least_never_as_exact(generation, shown):
    """1,200 pending syncs: GitLab's status counts no pending registries, so
    the count is what the site can vouch for: more than its count limit
    (19.x) or more than a page (16.3), never a made-up exact figure."""
    with GitLabSite(generation=generation, name="geo-2", site_id=2, tokens=TOKENS) as site:
        site.add_registries("Upload", 1200, state="PENDING", verificationState="PENDING",
                            lastSyncedAt=None, verifiedAt=None)
        source = RemoteSource(client_of(site))
        try:
            pending = source.count("upload", RegistrySelection(
                replication_state=SyncState.PENDING))
            assert f"{pending:,}" == shown
            assert source.count("upload", RegistrySelection()) == 1200  # the status says
            rows = source.rows("upload", RegistrySelection(replication_state=SyncState.PENDING),
                               "ID_ASC", int(pending) - 1, 5)
            assert rows and rows[0].registry_id == int(pending)  # the rows are there
        finally:
            source.close()


def test_ids_narrowed_by_a_state_change_only_those_in_that_state(gitlab):
    source = RemoteSource(client_of(gitlab))
    before = states(gitlab)
    try:
        picked = RegistrySelection(ids=(1, 2, 251, 252), replication_state=SyncState.FAILED)
        assert source.act("upload", "resync", picked) == 2
    finally:
        source.close()
    after = states(gitlab)
    assert {i for i in after if after[i] != before[i]} == {251, 252}
    all_valid(gitlab)
