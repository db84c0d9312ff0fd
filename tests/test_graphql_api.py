"""The secondary's GraphQL API over HTTP: every field, argument, enum value,
filter, sort order, pagination direction, the count cap, both mutations,
token refusal and bad requests (SQLite and PostgreSQL)."""
import datetime as dt

import pytest
from sqlalchemy import insert, select

from backend.replicables import replicator_for
from backend.framework.states import SyncState, VerificationState
from tests.support.graphql_http import data, error_messages, post
from tests.support.sites import READ_TOKEN, secondary_config

CoolWidgets = replicator_for("cool_widget")
TOKEN = "api-token-for-tests"
GID = "gid://gitlab/Geo::CoolWidgetRegistry/{}"
T0 = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)
ROWS = 40

# GitLab's Replication details page query (replicable_type_query_builder.js),
# built for Cool Widgets with verification enabled.
GITLAB_LIST_QUERY = """
query($first: Int, $last: Int, $before: String!, $after: String!, $sort: GeoRegistrySort,
      $replicationState: ReplicationStateEnum, $verificationState: VerificationStateEnum,
      $ids: [GeoCoolWidgetRegistryID!]) {
  geoNode {
    coolWidgetRegistries(first: $first, last: $last, before: $before, after: $after,
                         sort: $sort, replicationState: $replicationState,
                         verificationState: $verificationState, ids: $ids) {
      pageInfo { ...PageInfo }
      count
      nodes {
        id
        state
        retryCount
        lastSyncFailure
        retryAt
        lastSyncedAt
        modelRecordId
        createdAt
        verifiedAt @include(if: true)
        verificationState @include(if: true)
        verificationFailure @include(if: true)
      }
    }
  }
}
fragment PageInfo on PageInfo { hasNextPage hasPreviousPage startCursor endCursor }
"""

ALL_FIELDS = """id coolWidgetId modelRecordId createdAt lastSyncedAt retryAt state retryCount
lastSyncFailure missingOnPrimary verificationState verifiedAt verificationStartedAt
verificationRetryAt verificationRetryCount verificationFailure verificationChecksum
verificationChecksumMismatched checksumMismatch forceToRedownload"""


def make_rows():
    """Registries 1..40 in every combination of states, some times NULL."""
    rows = []
    for n in range(1, ROWS + 1):
        state = SyncState(n % 4)
        vstate = VerificationState(n % 5)
        rows.append({
            "cool_widget_id": 1000 + n, "created_at": T0,
            "state": state, "verification_state": vstate,
            "last_synced_at": None if n % 7 == 0 else T0 + dt.timedelta(minutes=(n * 37) % 50),
            "verified_at": None if n % 3 == 0 else T0 + dt.timedelta(minutes=(n * 11) % 20),
            "retry_count": n % 3, "retry_at": T0 + dt.timedelta(hours=1) if state == 3 else None,
            "last_sync_failure": ("The file is missing on the Geo primary site" if n == 3
                                  else "Non-success HTTP response status code 500"
                                  if state == SyncState.FAILED else None),
            "verification_failure": "Checksum does not match" if vstate == 3 else None,
            "verification_checksum": b"ab" * 32 if vstate == 2 else None,
            "verification_checksum_mismatched": b"cd" * 32 if vstate == 3 else None,
            "checksum_mismatch": vstate == 3,
        })
    return rows


@pytest.fixture
def site(tracking_url, tmp_path, credentials):
    from backend.sites.secondary import SecondarySite
    config = secondary_config("http://127.0.0.1:9", tracking_url, tmp_path / "s", credentials,
                              api_token=TOKEN)
    site = SecondarySite(config).start(run_engine=False)
    with site.tracking_engine.begin() as connection:
        connection.execute(insert(CoolWidgets.registry_table()), make_rows())
    yield site
    site.stop()


def registries(site, arguments="", fields="id", extra=""):
    query = f"{{ geoNode {{ coolWidgetRegistries{arguments} {{ {extra} nodes {{ {fields} }} }} }} }}"
    return data(site.url, query)["geoNode"]["coolWidgetRegistries"]


def ids_of(nodes):
    return [int(node["id"].rsplit("/", 1)[1]) for node in nodes]


def db_rows(site):
    table = CoolWidgets.registry_table()
    with site.tracking_engine.connect() as connection:
        return {row.id: row for row in connection.execute(select(table))}


def test_gitlab_replication_details_query_runs_unchanged(site):
    variables = {"first": 20, "last": None, "before": "", "after": "", "sort": "ID_ASC",
                 "replicationState": None, "verificationState": None, "ids": None}
    result = data(site.url, GITLAB_LIST_QUERY, variables)["geoNode"]["coolWidgetRegistries"]
    assert result["count"] == ROWS
    assert ids_of(result["nodes"]) == list(range(1, 21))
    first = result["nodes"][0]
    assert first["id"] == GID.format(1) and first["modelRecordId"] == 1001
    assert first["state"] == "STARTED" and first["verificationState"] == "STARTED"
    assert first["createdAt"] == "2026-05-01T00:00:00Z"
    assert result["pageInfo"]["hasNextPage"] is True
    assert result["pageInfo"]["hasPreviousPage"] is False
    # The next page, as the UI asks for it.
    variables.update(after=result["pageInfo"]["endCursor"])
    second = data(site.url, GITLAB_LIST_QUERY, variables)["geoNode"]["coolWidgetRegistries"]
    assert ids_of(second["nodes"]) == list(range(21, 41))
    assert second["pageInfo"]["hasNextPage"] is False
    assert second["pageInfo"]["hasPreviousPage"] is True
    # Filtered by state and by ids, the other UI variables.
    variables.update(after="", replicationState="FAILED", ids=[GID.format(3), GID.format(4)])
    filtered = data(site.url, GITLAB_LIST_QUERY, variables)["geoNode"]["coolWidgetRegistries"]
    assert ids_of(filtered["nodes"]) == [3] and filtered["count"] == 1


def test_every_registry_field(site):
    node = registries(site, f'(ids: ["{GID.format(3)}"])', ALL_FIELDS)["nodes"][0]
    row = db_rows(site)[3]
    assert node == {
        "id": GID.format(3), "coolWidgetId": "1003", "modelRecordId": 1003,
        "createdAt": "2026-05-01T00:00:00Z",
        "lastSyncedAt": (row.last_synced_at.isoformat().replace("+00:00", "Z")),
        "retryAt": "2026-05-01T01:00:00Z", "state": "FAILED", "retryCount": 0,
        "lastSyncFailure": "The file is missing on the Geo primary site",
        "missingOnPrimary": True, "verificationState": "FAILED",
        "verifiedAt": None, "verificationStartedAt": None, "verificationRetryAt": None,
        "verificationRetryCount": 0, "verificationFailure": "Checksum does not match",
        "verificationChecksum": None, "verificationChecksumMismatched": "cd" * 32,
        "checksumMismatch": True, "forceToRedownload": None}


def test_geo_node_fields(site):
    node = data(site.url, """{ geoNode { id name url internalUrl primary enabled
        filesMaxCapacity reposMaxCapacity verificationMaxCapacity
        containerRepositoriesMaxCapacity syncObjectStorage selectiveSyncType
        selectiveSyncShards minimumReverificationInterval } }""")["geoNode"]
    assert node["id"].startswith("gid://gitlab/GeoNode/")
    assert node["name"] == "secondary-1" and node["primary"] is False
    assert node["url"] == site.url and node["enabled"] is True
    assert (node["filesMaxCapacity"], node["verificationMaxCapacity"],
            node["minimumReverificationInterval"]) == (10, 100, 7)
    assert node["syncObjectStorage"] is False and node["selectiveSyncShards"] == []


def test_geo_node_of_another_site_is_null(site):
    assert data(site.url, '{ geoNode(name: "elsewhere") { name } }')["geoNode"] is None
    assert data(site.url, '{ geoNode(name: "secondary-1") { name } }')["geoNode"]["name"] \
        == "secondary-1"


@pytest.mark.parametrize("state", list(SyncState))
def test_replication_state_filter(site, state):
    nodes = registries(site, f"(replicationState: {state.name}, first: 100)", "id state")["nodes"]
    assert ids_of(nodes) == [n for n in range(1, ROWS + 1) if n % 4 == state]
    assert {node["state"] for node in nodes} == {state.name}


@pytest.mark.parametrize("state", list(VerificationState))
def test_verification_state_filter(site, state):
    nodes = registries(site, f"(verificationState: {state.name}, first: 100)",
                       "id verificationState")["nodes"]
    assert ids_of(nodes) == [n for n in range(1, ROWS + 1) if n % 5 == state]


def test_both_state_filters_together(site):
    nodes = registries(site, "(replicationState: SYNCED, verificationState: SUCCEEDED)")["nodes"]
    assert ids_of(nodes) == [n for n in range(1, ROWS + 1) if n % 4 == 2 and n % 5 == 2]


def test_keyword_matches_ids_and_failure_texts(site):
    assert ids_of(registries(site, '(keyword: "1007")')["nodes"]) == [7]
    assert ids_of(registries(site, '(keyword: "12")')["nodes"]) == [12]
    missing = registries(site, '(keyword: "MISSING on the geo")')["nodes"]
    assert ids_of(missing) == [3]


def test_ids_filter_takes_global_ids(site):
    nodes = registries(site, f'(ids: ["{GID.format(5)}", "{GID.format(9)}"])')["nodes"]
    assert ids_of(nodes) == [5, 9]
    assert registries(site, "(ids: [])")["nodes"] == []


@pytest.mark.parametrize("value", ["gid://gitlab/Geo::UploadRegistry/1", "7", "gid://x/1"])
def test_ids_of_another_type_or_malformed_are_refused(site, value):
    messages = error_messages(site.url, f'{{ geoNode {{ coolWidgetRegistries(ids: ["{value}"]) '
                                        "{ nodes { id } } } }")
    assert any("global id" in m or "does not identify" in m for m in messages)


def expected_order(site, sort):
    """The order the API must give: NULL times last ascending, first descending."""
    column, _, direction = sort.rpartition("_")
    column = column.lower()
    rows = db_rows(site).values()

    def key(row):
        value = getattr(row, column)
        return (value is None, value or T0, row.id)

    return [row.id for row in sorted(rows, key=key, reverse=direction == "DESC")]


@pytest.mark.parametrize("sort", ["ID_ASC", "ID_DESC", "VERIFIED_AT_ASC", "VERIFIED_AT_DESC",
                                  "LAST_SYNCED_AT_ASC", "LAST_SYNCED_AT_DESC"])
def test_sort_orders_forward_and_backward(site, sort):
    expected = expected_order(site, sort)
    seen, after = [], None
    while True:
        argument = f'(first: 7, sort: {sort}{f", after: {chr(34)}{after}{chr(34)}" if after else ""})'
        page = registries(site, argument, "id", "pageInfo { hasNextPage endCursor }")
        seen += ids_of(page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected
    # Backwards from the end with `last` and `before`.
    back, before = [], None
    while True:
        argument = f'(last: 6, sort: {sort}{f", before: {chr(34)}{before}{chr(34)}" if before else ""})'
        page = registries(site, argument, "id", "pageInfo { hasPreviousPage startCursor }")
        back = ids_of(page["nodes"]) + back
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert back == expected


def test_edges_carry_cursors(site):
    page = registries(site, "(first: 3)", "id", "edges { cursor node { id } }")
    assert [ids_of([e["node"]])[0] for e in page["edges"]] == [1, 2, 3]
    after = page["edges"][1]["cursor"]
    assert ids_of(registries(site, f'(first: 1, after: "{after}")')["nodes"]) == [3]


def test_pages_stay_correct_while_rows_change_state(site):
    query = '(first: 10, replicationState: FAILED{})'
    first = registries(site, query.format(""), "id", "pageInfo { endCursor }")
    # Rows of the first page leave the filter; rows of the next stay put.
    from backend.secondary.registry_actions import RegistryActions
    from backend.secondary.registry_selection import RegistrySelection
    RegistryActions(site.tracking_engine, CoolWidgets).resync(
        RegistrySelection(ids=tuple(ids_of(first["nodes"])[:5])))
    cursor = first["pageInfo"]["endCursor"]
    second = registries(site, query.format(f', after: "{cursor}"'))
    assert ids_of(second["nodes"]) == [n for n in range(1, ROWS + 1) if n % 4 == 3][10:]


def test_count_is_capped_like_gitlab(site):
    assert registries(site, "", "id", "count(limit: 5)")["count"] == 6
    assert registries(site, "", "id", "count(limit: 1000)")["count"] == ROWS
    assert registries(site, "(replicationState: PENDING)", "id", "count(limit: 10)")["count"] == 10
    for bad in (0, 1001):
        messages = error_messages(site.url, "{ geoNode { coolWidgetRegistries { "
                                            f"count(limit: {bad}) }} }} }}")
        assert "count limit must be between 1 and 1000" in messages[0]


def test_page_size_is_limited(site):
    messages = error_messages(site.url, "{ geoNode { coolWidgetRegistries(first: 501) "
                                        "{ nodes { id } } } }")
    assert "between 0 and 500" in messages[0]
    messages = error_messages(site.url, "{ geoNode { coolWidgetRegistries(first: 1, last: 1) "
                                        "{ nodes { id } } } }")
    assert "first or last" in messages[0]


def test_bad_cursor_is_an_error(site):
    messages = error_messages(site.url, '{ geoNode { coolWidgetRegistries(after: "zzz") '
                                        "{ nodes { id } } } }")
    assert "invalid cursor" in messages[0]


UPDATE = """mutation($id: GeoBaseRegistryID!, $action: GeoRegistryAction!) {
  geoRegistriesUpdate(input: {registryId: $id, action: $action, clientMutationId: "m1"}) {
    errors clientMutationId registry { ... on CoolWidgetRegistry { id state verificationState } }
  } }"""
BULK = """mutation($action: GeoRegistriesBulkAction!, $replicationState: ReplicationStateEnum,
  $verificationState: VerificationStateEnum, $ids: [GeoBaseRegistryID!]) {
  geoRegistriesBulkUpdate(input: {registryClass: COOL_WIDGET_REGISTRY, action: $action,
    replicationState: $replicationState, verificationState: $verificationState, ids: $ids}) {
    errors registryClass updatedCount } }"""


@pytest.mark.parametrize("token,status,says", [
    ("", 401, "This site's API needs a token: Authorization: Bearer <api_token or read_token>"),
    ("wrong-token", 401, "The token was refused: it is neither this site's api_token nor "
                         "its read_token."),
    (READ_TOKEN, 200, "This token only reads (it is the site's read_token): mutations need "
                      "its api_token.")])
def test_mutations_need_the_api_token(site, token, status, says):
    before = db_rows(site)
    code, body = post(site.url, UPDATE, {"id": GID.format(4), "action": "RESYNC"}, token=token)
    assert code == status and body["errors"][0]["message"].startswith(says), body
    assert db_rows(site) == before


def test_reads_need_a_token_too(site):
    query = "{ geoNode { name } }"
    assert post(site.url, query, token="")[0] == 401
    assert post(site.url, query, token="nope")[0] == 401
    assert data(site.url, query, token=READ_TOKEN)["geoNode"]["name"]
    assert data(site.url, query, token=TOKEN)["geoNode"]["name"]


def test_resync_one_registry(site):
    result = data(site.url, UPDATE, {"id": GID.format(3), "action": "RESYNC"}, token=TOKEN)
    payload = result["geoRegistriesUpdate"]
    assert payload["errors"] == [] and payload["clientMutationId"] == "m1"
    assert payload["registry"] == {"id": GID.format(3), "state": "PENDING",
                                   "verificationState": "DISABLED"}
    row = db_rows(site)[3]
    assert row.state == SyncState.PENDING and row.retry_count == 0 and row.retry_at is None


def test_reverify_one_registry(site):
    result = data(site.url, UPDATE, {"id": GID.format(2), "action": "REVERIFY"}, token=TOKEN)
    assert result["geoRegistriesUpdate"]["registry"]["verificationState"] == "PENDING"
    assert db_rows(site)[2].verification_state == VerificationState.PENDING


def test_reverify_of_an_unsynced_registry_reports_an_error(site):
    result = data(site.url, UPDATE, {"id": GID.format(1), "action": "REVERIFY"}, token=TOKEN)
    assert "only synced registries" in result["geoRegistriesUpdate"]["errors"][0]


def test_update_of_an_unknown_registry(site):
    result = data(site.url, UPDATE, {"id": GID.format(999), "action": "RESYNC"}, token=TOKEN)
    assert result["geoRegistriesUpdate"]["errors"] == ["Registry 999 not found."]


@pytest.mark.parametrize("variables,expected", [
    ({"action": "RESYNC_ALL"}, lambda n: True),
    ({"action": "RESYNC_ALL", "replicationState": "FAILED"}, lambda n: n % 4 == 3),
    ({"action": "RESYNC_ALL", "verificationState": "FAILED"}, lambda n: n % 5 == 3),
    ({"action": "RESYNC_ALL", "ids": [GID.format(1), GID.format(2)]}, lambda n: n in (1, 2)),
])
def test_bulk_resync(site, variables, expected):
    result = data(site.url, BULK, variables, token=TOKEN)["geoRegistriesBulkUpdate"]
    touched = [n for n in range(1, ROWS + 1) if expected(n)]
    assert result == {"errors": [], "registryClass": "COOL_WIDGET_REGISTRY",
                      "updatedCount": len(touched)}
    rows = db_rows(site)
    for n in touched:
        assert rows[n].state == SyncState.PENDING


@pytest.mark.parametrize("variables,expected", [
    ({"action": "REVERIFY_ALL"}, lambda n: n % 4 == 2),
    ({"action": "REVERIFY_ALL", "verificationState": "FAILED"}, lambda n: n % 4 == 2 and n % 5 == 3),
    ({"action": "REVERIFY_ALL", "replicationState": "SYNCED"}, lambda n: n % 4 == 2),
    ({"action": "REVERIFY_ALL", "ids": [GID.format(2), GID.format(3)]}, lambda n: n == 2),
])
def test_bulk_reverify(site, variables, expected):
    result = data(site.url, BULK, variables, token=TOKEN)["geoRegistriesBulkUpdate"]
    touched = [n for n in range(1, ROWS + 1) if expected(n)]
    assert result["updatedCount"] == len(touched)
    rows = db_rows(site)
    for n in touched:
        assert rows[n].verification_state == VerificationState.PENDING


def test_bulk_update_needs_the_token(site):
    before = db_rows(site)
    messages = error_messages(site.url, BULK, {"action": "RESYNC_ALL"})  # the read token
    assert "mutations need its api_token" in messages[0] and db_rows(site) == before


@pytest.mark.parametrize("query,fragment", [
    ("{ geoNode { coolWidgetRegistries { nodes { id } }", "Syntax Error"),
    ("{ geoNode { nope } }", "Cannot query field 'nope'"),
    ("{ geoNode { coolWidgetRegistries(replicationState: DONE) { nodes { id } } } }",
     "DONE"),
    ("{ geoNode { coolWidgetRegistries(sort: SIDEWAYS) { nodes { id } } } }", "SIDEWAYS"),
    ("{ geoNode { coolWidgetRegistries(first: \"ten\") { nodes { id } } } }", "Int"),
    ("query { ...F } fragment F on Query { ...F }", "F"),
])
def test_malformed_queries_are_graphql_errors(site, query, fragment):
    messages = error_messages(site.url, query)
    assert any(fragment in message for message in messages), messages


def test_fragments_count_towards_depth_but_normal_queries_pass(site):
    through_fragments = ("query Deep { geoNode { coolWidgetRegistries { ...A } } } "
                         "fragment A on CoolWidgetRegistryConnection { edges { node { ...B } } } "
                         "fragment B on CoolWidgetRegistry { id }")
    assert data(site.url, through_fragments)["geoNode"]["coolWidgetRegistries"]["edges"]


def test_over_deep_queries_are_refused(site):
    from backend.api.graphql import limits
    too_deep = "{ " + "geoNode { " * (limits.MAX_DEPTH + 1) + "id" + " }" * (
        limits.MAX_DEPTH + 2)
    messages = error_messages(site.url, too_deep)
    assert any("levels deep; the limit is 10" in m for m in messages), messages


@pytest.mark.parametrize("raw,status", [
    (b"not json", 400), (b'["query"]', 400), (b'{"query": 5}', 400),
    (b'{"query": "{ geoNode { name } }", "variables": []}', 400),
])
def test_bad_http_bodies(site, raw, status):
    code, body = post(site.url, "", raw=raw)
    assert code == status and body["errors"][0]["message"]


def test_oversized_query_is_refused(site):
    huge = "{ geoNode { " + "name " * 20000 + "} }"
    code, body = post(site.url, huge)
    assert code == 413 and "longer than" in body["errors"][0]["message"]


def test_resolver_failures_do_not_leak_internals(site, monkeypatch):
    from backend.secondary import registry_query

    def broken(*args, **kwargs):
        raise RuntimeError("connection to server at 10.0.0.5 password=hunter2 failed")

    monkeypatch.setattr(registry_query, "fetch_page", broken)
    messages = error_messages(site.url, "{ geoNode { coolWidgetRegistries { nodes { id } } } }")
    assert messages == ["Internal server error"]


def test_status_history_is_served(site):
    from backend.secondary import status_history
    base = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    for minute in range(120):
        status_history.record(site.tracking_engine, "cool_widget",
                              {"registry_count": 100, "synced_count": minute // 2,
                               "verified_count": minute // 3},
                              {"syncs_succeeded": 6, "bytes_downloaded": 600}, 60.0,
                              now=base + dt.timedelta(minutes=minute))
    query = """query($from: Time!) { geoNode { statusHistory(from: $from, buckets: 4) {
        time registryCount syncedPercentage verifiedPercentage syncsSucceededPerMinute
        bytesPerSecond } } }"""
    points = data(site.url, query, {"from": base.isoformat()})["geoNode"]["statusHistory"]
    assert 4 <= len(points) <= 5
    assert all(p["registryCount"] == 100 for p in points)
    assert points[0]["syncsSucceededPerMinute"] == pytest.approx(6.0, rel=0.05)
    assert points[0]["bytesPerSecond"] == pytest.approx(10.0, rel=0.05)
    # Each point shows its bucket's newest snapshot: the last one is now.
    assert points[-1]["syncedPercentage"] == 59.0
    assert points[-1]["verifiedPercentage"] == 39.0
    assert points[0]["syncedPercentage"] < points[-1]["syncedPercentage"]


def test_a_second_replicable_type_appears_in_the_schema_by_declaration():
    from graphql import print_schema

    from backend.api.graphql.schema import build_schema
    from tests.support.gadgets import GadgetReplicator
    schema = print_schema(build_schema([CoolWidgets, GadgetReplicator]))
    assert "gadgetRegistries(" in schema and "scalar GeoGadgetRegistryID" in schema
    assert "type GadgetRegistry {" in schema and "gadgetId: ID!" in schema
    assert "GADGET_REGISTRY" in schema and "union Registrable = CoolWidgetRegistry | " \
                                           "GadgetRegistry" in schema


def test_offset_jumps_to_any_row(site):
    nodes = registries(site, "(first: 5, offset: 30, sort: ID_DESC)")["nodes"]
    assert ids_of(nodes) == [10, 9, 8, 7, 6]
    messages = error_messages(site.url, "{ geoNode { coolWidgetRegistries(last: 2, offset: 3) "
                                        "{ nodes { id } } } }")
    assert "offset" in messages[0]


def test_keyword_with_several_ids(site):
    assert ids_of(registries(site, '(keyword: "2, 1005 40")')["nodes"]) == [2, 5, 40]


def test_failure_groups_keep_sync_and_verification_failures_apart(site):
    groups = data(site.url, "{ geoNode { registryFailureGroups { kind message count "
                            "lastSeenAt } } }")["geoNode"]["registryFailureGroups"]
    sync = {g["message"]: g["count"] for g in groups if g["kind"] == "SYNC"}
    verification = {g["message"]: g["count"] for g in groups if g["kind"] == "VERIFICATION"}
    expected: dict[str, int] = {}
    for row in make_rows():
        if row["state"] == SyncState.FAILED and row["verification_state"] != 3:
            expected[row["last_sync_failure"]] = expected.get(row["last_sync_failure"], 0) + 1
    assert sync == expected and sum(expected.values()) == 8
    assert verification == {"Checksum does not match":
                            len([n for n in range(1, ROWS + 1) if n % 5 == 3])}
    seen = [g["lastSeenAt"] for g in groups]
    assert seen == sorted(seen, reverse=True)  # newest first, whichever kind
    # Each group's registries, exactly: the selection the Failures view opens.
    for kind, argument in (("SYNC", "syncFailure"), ("VERIFICATION", "verificationFailure")):
        for group in (g for g in groups if g["kind"] == kind):
            found = registries(site, f'(first: 100, {argument}: "{group["message"]}")')
            assert len(found["nodes"]) == group["count"], group


def test_sites_start_without_importing_graphql():
    """graphql-core and the schema are imported and built on the first
    GraphQL request, not while a site and its engine start."""
    import pathlib
    import subprocess
    import sys
    check = ("import sys; import backend.sites.secondary, backend.sites.primary; "
             "print('graphql' in sys.modules)")
    answer = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                            cwd=pathlib.Path(__file__).parent.parent, timeout=60)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == "False"
