"""Tests of the GitLab Geo stand-in itself (tests/support/gitlab_site.py and
gitlab_schema.py): that it accepts and refuses GraphQL documents as the two
GitLab generations do, pages and counts as GitLab does, and answers the
REST routes our client uses.

The fidelity tests compare the generated schema with GitLab's published SDL
when GEO_CONSOLE_GITLAB_SDL_16_3 / GEO_CONSOLE_GITLAB_SDL_19_2 name a copy.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import urllib3
from graphql import build_schema

from tests.support import gitlab_schema
from tests.support.gitlab_schema import RESOURCE_ACCESS_ERROR
from tests.support.gitlab_site import GitLabSite

HTTP = urllib3.PoolManager()
API_TOKEN = "glpat-api"
READ_TOKEN = "glpat-read"
TOKENS = {API_TOKEN: ["api"], READ_TOKEN: ["read_api"]}

REGISTRIES_19_2 = """
query($first: Int, $after: String, $sort: GeoRegistrySort, $limit: Int) {
  geoNode {
    name
    packageFileRegistries(first: $first, after: $after, sort: $sort) {
      count(limit: $limit)
      nodes { id packageFileId state verificationState lastSyncFailure modelRecordId }
      pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
    }
  }
}"""

REGISTRIES_16_3 = """
query($first: Int, $after: String, $last: Int, $before: String) {
  geoNode {
    packageFileRegistries(first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { id packageFileId state } }
      pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
    }
  }
}"""

UPDATE = """
mutation($id: GeoBaseRegistryID!, $action: GeoRegistryAction!) {
  geoRegistriesUpdate(input: {registryId: $id, action: $action}) {
    errors
    registry { ... on PackageFileRegistry { id state verificationState } }
  }
}"""

UPDATE_WITH_CLASS = """
mutation($id: GeoBaseRegistryID!, $class: GeoRegistryClass!) {
  geoRegistriesUpdate(input: {registryId: $id, action: RESYNC, registryClass: $class}) {
    errors
    registry { ... on PackageFileRegistry { id state retryCount } }
  }
}"""


@pytest.fixture
def start_site():
    """Start GitLab sites for one test (keywords of GitLabSite); all are
    stopped afterwards."""
    started: list[GitLabSite] = []

    def start(**options) -> GitLabSite:
        options.setdefault("tokens", TOKENS)
        site = GitLabSite(**options).start()
        started.append(site)
        return site

    yield start
    for site in started:
        site.stop()


def post_graphql(site: GitLabSite, query: str, variables: dict | None = None,
                 token: str | None = API_TOKEN, path: str = "/api/v4/geo/graphql",
                 header: str = "Authorization") -> tuple[int, dict]:
    """POST one GraphQL document; returns (HTTP status, JSON body)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers[header] = f"Bearer {token}" if header == "Authorization" else token
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    response = HTTP.request("POST", site.url + path, body=body, headers=headers)
    return response.status, json.loads(response.data)


def data(site: GitLabSite, query: str, variables: dict | None = None, **options) -> dict:
    status, body = post_graphql(site, query, variables, **options)
    assert status == 200, body
    assert "errors" not in body, body["errors"]
    return body["data"]


def error_messages(site: GitLabSite, query: str, variables: dict | None = None,
                   **options) -> list[str]:
    status, body = post_graphql(site, query, variables, **options)
    assert status == 200, body
    assert body.get("errors"), body
    return [error["message"] for error in body["errors"]]


def get(site: GitLabSite, path: str, token: str | None = READ_TOKEN) -> tuple[int, object]:
    headers = {"PRIVATE-TOKEN": token} if token else {}
    response = HTTP.request("GET", site.url + path, headers=headers)
    return response.status, json.loads(response.data)


# ------------------------------------------------------------------ the schema

def test_each_generation_has_its_registry_fields_classes_and_id_scalars():
    old = build_schema(gitlab_schema.sdl("16.3"))
    new = build_schema(gitlab_schema.sdl("19.2"))
    registry_fields = [name for name in new.type_map["GeoNode"].fields
                       if name.endswith("Registries")]
    assert len([name for name in old.type_map["GeoNode"].fields
                if name.endswith("Registries")]) == 17
    assert len(registry_fields) == 40
    assert len(old.type_map["GeoRegistryClass"].values) == 17
    assert "SUPPLY_CHAIN_ATTESTATION_REGISTRY" in new.type_map["GeoRegistryClass"].values
    assert len(new.type_map["GeoRegistryClass"].values) == 41
    assert str(new.type_map["GeoNode"].fields["packageFileRegistries"].args["ids"].type) == \
        "[GeoPackageFileRegistryID!]"
    assert str(old.type_map["GeoNode"].fields["packageFileRegistries"].args["ids"].type) == \
        "[ID!]"
    assert "ProjectRepositoryRegistry" not in {t.name for t in old.type_map["Registrable"].types}
    assert "uploadRegistries" in registry_fields
    assert "fileId" in new.type_map["UploadRegistry"].fields
    assert '"' not in gitlab_schema.sdl("19.2")  # no descriptions, no GitLab text


def test_the_comparison_finds_what_differs():
    """Comparing 19.2 against 16.3 as if 16.3 were the published schema
    must report 19.2's additions (so the fidelity tests can fail)."""
    result = gitlab_schema.compare_with_published(gitlab_schema.sdl("19.2"),
                                                  gitlab_schema.sdl("16.3"))
    found = "\n".join(result.mismatches)
    assert "GeoNode.packageFileRegistries(sort:) is not in the published schema" in found
    assert "PackageFileRegistryConnection.count is not in the published schema" in found
    assert "GeoRegistriesUpdateInput(registryClass:) of the published schema is missing" in found
    assert "type GeoRegistrySort is not in the published schema" in found


@pytest.mark.parametrize("generation", gitlab_schema.GENERATIONS)
def test_schema_matches_the_published_sdl(generation):
    variable = "GEO_CONSOLE_GITLAB_SDL_" + generation.replace(".", "_")
    path = os.environ.get(variable)
    if not path:
        pytest.skip(f"{variable} does not name GitLab's published {generation} SDL file")
    result = gitlab_schema.compare_with_published(gitlab_schema.sdl(generation),
                                                  Path(path).read_text(encoding="utf-8"))
    assert result.mismatches == []
    assert set(result.omissions) <= {"GeoNode.selectiveSyncNamespaces"}, result.omissions


# ------------------------------------------------------------------ GraphQL

def test_19_2_registries_query_with_count_and_sort(start_site):
    site = start_site(generation="19.2", name="geo-2", site_id=2)
    site.add_registries("PackageFile", 3)
    site.add_registries("PackageFile", 1, state="FAILED",
                        lastSyncFailure="Error downloading file")
    answer = data(site, REGISTRIES_19_2, {"sort": "ID_DESC", "first": 2})["geoNode"]
    registries = answer["packageFileRegistries"]
    assert answer["name"] == "geo-2"
    assert registries["count"] == 4
    assert [node["id"] for node in registries["nodes"]] == [
        "gid://gitlab/Geo::PackageFileRegistry/4", "gid://gitlab/Geo::PackageFileRegistry/3"]
    assert registries["nodes"][0] == {
        "id": "gid://gitlab/Geo::PackageFileRegistry/4", "packageFileId": "1004",
        "state": "FAILED", "verificationState": "SUCCEEDED",
        "lastSyncFailure": "Error downloading file", "modelRecordId": 1004}
    assert registries["pageInfo"]["hasNextPage"] is True
    rest = data(site, REGISTRIES_19_2, {"sort": "ID_DESC",
                                        "after": registries["pageInfo"]["endCursor"]})
    assert [node["packageFileId"] for node in
            rest["geoNode"]["packageFileRegistries"]["nodes"]] == ["1002", "1001"]
    assert site.documents[0][0] == "/api/v4/geo/graphql"
    assert site.documents[0][2] == {"sort": "ID_DESC", "first": 2}


def test_16_3_refuses_sort_and_count_and_runs_nothing(start_site):
    site = start_site(generation="16.3")
    site.add_registries("PackageFile", 2)
    status, body = post_graphql(site, REGISTRIES_19_2, {"sort": "ID_ASC"})
    assert status == 200 and "data" not in body
    messages = " | ".join(error["message"] for error in body["errors"])
    assert "'sort'" in messages and "'count'" in messages and "GeoRegistrySort" in messages
    assert site.documents[-1][1] == REGISTRIES_19_2  # received, recorded, not run
    assert data(site, REGISTRIES_16_3)["geoNode"]["packageFileRegistries"]["edges"][1][
        "node"]["packageFileId"] == "1002"


def test_registry_class_is_refused_in_19_2_and_required_in_16_3(start_site):
    new = start_site(generation="19.2")
    old = start_site(generation="16.3", site_id=3, name="geo-3")
    for site in (new, old):
        site.add_registries("PackageFile", 2)
    gid = "gid://gitlab/Geo::PackageFileRegistry/2"
    refused = error_messages(new, UPDATE_WITH_CLASS, {"id": gid, "class": "PACKAGE_FILE_REGISTRY"})
    assert any("registryClass" in message for message in refused)
    assert any("registryClass" in message for message in error_messages(
        old, UPDATE, {"id": gid, "action": "RESYNC"}))
    assert new.registry("PackageFile", 2)["state"] == "SYNCED"

    assert old.registry("PackageFile", 2)["state"] == "SYNCED"
    result = data(old, UPDATE_WITH_CLASS, {"id": gid, "class": "PACKAGE_FILE_REGISTRY"})
    assert result["geoRegistriesUpdate"] == {
        "errors": [], "registry": {"id": gid, "state": "PENDING", "retryCount": 0}}
    mismatch = data(old, UPDATE_WITH_CLASS, {"id": gid, "class": "LFS_OBJECT_REGISTRY"})
    assert mismatch["geoRegistriesUpdate"]["errors"] and \
        mismatch["geoRegistriesUpdate"]["registry"] is None

    reverified = data(new, UPDATE, {"id": gid, "action": "REVERIFY"})["geoRegistriesUpdate"]
    assert reverified["registry"]["verificationState"] == "PENDING"
    assert error_messages(new, UPDATE, {"id": "gid://gitlab/Geo::PackageFileRegistry/99",
                                        "action": "RESYNC"}) == [RESOURCE_ACCESS_ERROR]


def test_first_500_yields_100_nodes_and_paging_goes_on(start_site):
    site = start_site(generation="16.3")
    site.add_registries("PackageFile", 130)
    page = data(site, REGISTRIES_16_3, {"first": 500})["geoNode"]["packageFileRegistries"]
    assert len(page["edges"]) == 100
    assert page["pageInfo"]["hasNextPage"] is True and page["pageInfo"]["hasPreviousPage"] is False
    default = data(site, REGISTRIES_16_3)["geoNode"]["packageFileRegistries"]
    assert len(default["edges"]) == 100
    rest = data(site, REGISTRIES_16_3, {"first": 500, "after": page["pageInfo"]["endCursor"]})
    rest = rest["geoNode"]["packageFileRegistries"]
    assert len(rest["edges"]) == 30 and rest["pageInfo"]["hasNextPage"] is False
    assert rest["pageInfo"]["hasPreviousPage"] is True
    back = data(site, REGISTRIES_16_3, {"last": 2, "before": rest["pageInfo"]["startCursor"]})
    assert [edge["node"]["packageFileId"] for edge in
            back["geoNode"]["packageFileRegistries"]["edges"]] == ["1099", "1100"]
    assert error_messages(site, REGISTRIES_16_3, {"after": "not-a-cursor"}) == \
        ["Please provide a valid cursor"]


def test_count_above_the_limit_is_limit_plus_one(start_site):
    site = start_site(generation="19.2")
    site.add_registries("PackageFile", 25)
    count = data(site, REGISTRIES_19_2, {"first": 1, "limit": 10})
    assert count["geoNode"]["packageFileRegistries"]["count"] == 11
    assert data(site, REGISTRIES_19_2, {"first": 1})["geoNode"]["packageFileRegistries"][
        "count"] == 25
    for limit in (0, 1001):
        assert error_messages(site, REGISTRIES_19_2, {"first": 1, "limit": limit})


def test_filters_and_ids_of_another_class(start_site):
    new = start_site(generation="19.2")
    old = start_site(generation="16.3", site_id=3, name="geo-3")
    for site in (new, old):
        site.add_registries("PackageFile", 3)
        site.add_registries("PackageFile", 2, state="FAILED", verificationState="FAILED",
                            lastSyncFailure="Error downloading file")
    query = """query($ids: [%s!], $state: ReplicationStateEnum, $keyword: String) {
      geoNode { packageFileRegistries(ids: $ids, replicationState: $state, keyword: $keyword) {
        nodes { id } } } }"""
    failed = data(new, query % "GeoPackageFileRegistryID", {"state": "FAILED"})
    assert len(failed["geoNode"]["packageFileRegistries"]["nodes"]) == 2
    found = data(old, query % "ID", {"keyword": "downloading"})
    assert len(found["geoNode"]["packageFileRegistries"]["nodes"]) == 2
    wanted = ["gid://gitlab/Geo::PackageFileRegistry/2", "gid://gitlab/Geo::LfsObjectRegistry/3"]
    picked = data(old, query % "ID", {"ids": wanted})["geoNode"]["packageFileRegistries"]
    assert picked["nodes"] == [{"id": wanted[0]}]  # 16.3's [ID!]: another class matches nothing
    refused = error_messages(new, query % "GeoPackageFileRegistryID", {"ids": wanted})
    assert "does not represent an instance of Geo::PackageFileRegistry" in refused[0]


def test_tokens_and_scopes_on_graphql(start_site):
    site = start_site(generation="19.2")
    site.add_registries("PackageFile", 1)
    status, body = post_graphql(site, "{ geoNode { name } }", token="glpat-unknown")
    assert (status, body) == (401, {"errors": [{"message": "Invalid token"}]})
    assert data(site, "{ geoNode { name } }", token=None) == {"geoNode": None}
    assert data(site, "{ geoNode { name } }", token=READ_TOKEN, header="PRIVATE-TOKEN",
                path="/api/graphql") == {"geoNode": {"name": "geo-1"}}
    gid = "gid://gitlab/Geo::PackageFileRegistry/1"
    for token in (READ_TOKEN, None):
        assert error_messages(site, UPDATE, {"id": gid, "action": "RESYNC"}, token=token) == \
            [RESOURCE_ACCESS_ERROR]
    assert site.registry("PackageFile", 1)["state"] == "SYNCED"


def test_another_site_by_name_has_no_registries(start_site):
    primary = start_site(generation="19.2", name="geo-1", site_id=1, primary=True)
    secondary = start_site(generation="19.2", name="geo-2", site_id=2, peers=[primary])
    secondary.add_registries("PackageFile", 2)
    query = """query($name: String) { geoNode(name: $name) { name primary
      packageFileRegistries { nodes { id } } } }"""
    assert data(secondary, query, {"name": "geo-1"}) == {
        "geoNode": {"name": "geo-1", "primary": True, "packageFileRegistries": None}}
    assert len(data(secondary, query, {"name": "geo-2"})["geoNode"][
        "packageFileRegistries"]["nodes"]) == 2
    assert data(secondary, query, {"name": "nowhere"}) == {"geoNode": None}


def test_bulk_update_exists_in_19_2_only(start_site):
    new = start_site(generation="19.2")
    old = start_site(generation="16.3", site_id=3, name="geo-3")
    new.add_registries("LfsObject", 2)
    new.add_registries("LfsObject", 2, state="FAILED")
    mutation = """mutation { geoRegistriesBulkUpdate(input: {registryClass: LFS_OBJECT_REGISTRY,
      action: RESYNC_ALL, replicationState: FAILED}) { errors registryClass } }"""
    assert data(new, mutation) == {"geoRegistriesBulkUpdate": {
        "errors": [], "registryClass": "LFS_OBJECT_REGISTRY"}}
    assert [r["state"] for r in new.registries("LfsObject")] == \
        ["SYNCED", "SYNCED", "PENDING", "PENDING"]
    assert new.bulk_calls == [{"registry_class": "LFS_OBJECT_REGISTRY", "action": "RESYNC_ALL",
                               "ids": None, "replication_state": "FAILED",
                               "verification_state": None}]
    assert any("geoRegistriesBulkUpdate" in m for m in error_messages(old, mutation))
    assert error_messages(new, mutation, token=READ_TOKEN) == [RESOURCE_ACCESS_ERROR]
    assert len(new.bulk_calls) == 1


def test_geo_graphql_route_can_be_off_and_failures_can_be_injected(start_site):
    site = start_site(generation="19.2", geo_graphql=False)
    status, body = post_graphql(site, "{ geoNode { name } }")
    assert (status, body) == (404, {"message": "404 Not Found"})
    assert data(site, "{ geoNode { name } }", path="/api/graphql")["geoNode"]["name"] == "geo-1"
    site.fail_next(status=503)
    assert post_graphql(site, "{ geoNode { name } }", path="/api/graphql")[0] == 503
    assert post_graphql(site, "{ geoNode { name } }", path="/api/graphql")[0] == 200


# ------------------------------------------------------------------ REST

def test_rest_routes_and_their_401s(start_site):
    primary = start_site(generation="19.2", name="geo-1", site_id=1, primary=True)
    secondary = start_site(generation="19.2", name="geo-2", site_id=2)
    secondary.add_peer(primary)
    secondary.add_registries("PackageFile", 17)
    secondary.add_registries("PackageFile", 3, state="FAILED", verificationState="FAILED")
    primary.add_registries("PackageFile", 20)

    status, sites = get(secondary, "/api/v4/geo_sites")
    assert status == 200
    assert [(s["id"], s["name"], s["primary"], s["current"]) for s in sites] == \
        [(1, "geo-1", True, False), (2, "geo-2", False, True)]
    assert sites[1]["url"] == secondary.url + "/"
    assert set(sites[0]["_links"]) == {"self", "status", "repair"}

    status, statuses = get(secondary, "/api/v4/geo_sites/status")
    assert status == 200 and [s["geo_node_id"] for s in statuses] == [1, 2]
    status, own = get(secondary, "/api/v4/geo_sites/2/status")
    assert own["package_files_count"] == 20 and own["package_files_synced_count"] == 17
    assert own["package_files_failed_count"] == 3
    assert own["package_files_synced_in_percentage"] == "85.00%"
    assert own["package_files_verification_failed_count"] == 3
    assert own["version"] == "19.2.0-ee" and own["health_status"] == "Healthy"
    _, other = get(secondary, "/api/v4/geo_sites/1/status")
    assert other["package_files_count"] == 20 and other["package_files_synced_count"] is None
    assert "lfs_objects_count" in other and "container_repositories_count" in other

    assert get(secondary, "/api/v4/geo_sites/9/status") == \
        (404, {"message": "404 GeoNode Not Found"})
    assert get(secondary, "/api/v4/geo_sites/current/status") == (400, {"error": "id is invalid"})
    status, token = get(secondary, "/api/v4/personal_access_tokens/self", token=API_TOKEN)
    assert status == 200 and token["scopes"] == ["api"] and token["active"] is True
    assert get(secondary, "/api/v4/version") == \
        (200, {"version": "19.2.0-ee", "revision": "abc"})
    for path in ("/api/v4/geo_sites", "/api/v4/version", "/api/v4/geo_sites/status"):
        assert get(secondary, path, token=None) == (401, {"message": "401 Unauthorized"})
        assert get(secondary, path, token="glpat-unknown") == \
            (401, {"message": "401 Unauthorized"})

    secondary.set_status(healthy=False, health="Geo log cursor is not running")
    _, sick = get(primary, "/api/v4/geo_sites/2/status")
    assert sick["healthy"] is False and sick["health_status"] == "Unhealthy"


def test_node_proxy_forwards_to_the_peer(start_site):
    primary = start_site(generation="19.2", name="geo-1", site_id=1, primary=True)
    secondary = start_site(generation="19.2", name="geo-2", site_id=2, peers=[primary],
                           tokens={"glpat-secondary": ["read_api"]})
    secondary.add_registries("PackageFile", 4)
    body = json.dumps({"query": "{ geoNode { name packageFileRegistries { count } } }"})

    def proxy(site_id: int, token: str | None = READ_TOKEN):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = HTTP.request("POST", f"{primary.url}/api/v4/geo/node_proxy/{site_id}/graphql",
                                body=body, headers=headers)
        return response.status, json.loads(response.data)

    assert proxy(2) == (200, {"data": {"geoNode": {
        "name": "geo-2", "packageFileRegistries": {"count": 4}}}})
    assert secondary.documents[-1][0] == "/api/v4/geo/graphql"
    assert primary.documents[-1][0] == "/api/v4/geo/node_proxy/2/graphql"
    assert proxy(7) == (404, {"message": "404 GeoNode Not Found"})
    assert proxy(2, token=None)[0] == 401
