"""Property-based tests: the site's GraphQL endpoint answers every bad request
with a readable JSON `errors` list (status 200, 400 or 413, never 500, never
"Internal server error"), and bad mutations change no registry row.

One secondary site per database kind (SQLite, PostgreSQL) serves all the
examples over real HTTP on loopback. Hand-picked cases live in
test_graphql_api.py.
"""
from __future__ import annotations

import base64
import json

import pytest
import urllib3
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from backend.api.graphql.limits import MAX_DEPTH, MAX_PAGE_SIZE
from backend.replicables import replicator_for
from tests.support.module_sites import assert_readable, module_databases  # noqa: F401
from tests.support.sites import READ_TOKEN, secondary_config
from tests.test_graphql_api import ROWS, UPDATE, make_rows

CoolWidgets = replicator_for("cool_widget")
TOKEN = "property-api-token"
CREDENTIALS = {"access_key": "prop-key", "secret": "prop-secret-0123456789abcdef-0123456789"}
GID = "gid://gitlab/Geo::CoolWidgetRegistry/{}"
HTTP = urllib3.PoolManager(retries=False, timeout=20)
PROPERTY = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def site(module_databases, tmp_path_factory):
    from backend.db.migrate import upgrade
    from backend.sites.secondary import SecondarySite
    url = module_databases.url("tracking")
    upgrade(url, "tracking")
    config = secondary_config("http://127.0.0.1:9", url, tmp_path_factory.mktemp("s"),
                              CREDENTIALS, api_token=TOKEN)
    site = SecondarySite(config).start(run_engine=False)
    with site.tracking_engine.begin() as connection:
        connection.execute(insert(CoolWidgets.registry_table()), make_rows())
    yield site
    site.stop()


def rows(site) -> list:
    table = CoolWidgets.registry_table()
    with site.tracking_engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(table).order_by(table.c.id))]


def post_raw(site, body: bytes, token: str | bytes | None = READ_TOKEN) -> tuple[int, dict]:
    """With the read token unless told otherwise (a refused token: 401)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = token if isinstance(token, bytes) else f"Bearer {token}"
    response = HTTP.request("POST", site.url + "/api/graphql", body=body, headers=headers)
    assert response.status in (200, 400, 401, 413), (response.status, response.data[:500])
    try:
        answer = json.loads(response.data)
    except ValueError:
        pytest.fail(f"not JSON ({response.status}): {response.data[:300]!r}")
    assert isinstance(answer, dict), answer
    return response.status, answer


def post(site, query: str, variables=None, token=READ_TOKEN) -> tuple[int, dict]:
    body = json.dumps({"query": query, "variables": variables}).encode()
    return post_raw(site, body, token)


def messages(status: int, answer: dict, required: bool = True) -> list[str]:
    """The error messages, each checked to be for a person, not a crash."""
    errors = answer.get("errors")
    if errors is None:
        assert not required and status == 200 and "data" in answer, answer
        return []
    assert isinstance(errors, list) and errors, answer
    found = [error.get("message") for error in errors]
    for message in found:
        assert_readable(message)
        assert message != "Internal server error", answer
    return found


def unchanged(site, before: list) -> None:
    assert rows(site) == before, "a refused request changed registry rows"


def sendable(header: bytes) -> bytes:
    """Header bytes an HTTP server reads at all (no control characters)."""
    return bytes(c for c in header if c >= 32 and c != 127)


# --- strategies ---------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)

VOCABULARY = ["{", "}", "(", ")", "[", "]", ":", "...", "on", "query", "mutation",
              "fragment", "F", "$x", "$first", "geoNode", "coolWidgetRegistries", "nodes",
              "edges", "node", "cursor", "pageInfo", "endCursor", "count", "limit", "id",
              "name", "state", "first", "last", "after", "before", "ids", "keyword", "sort",
              "offset", "ID_ASC", "FAILED", "SYNCED", "NOPE", '"x"', '""', '"gid://gitlab/x/1"',
              "1", "-1", "0", "2147483648", "1e9", "true", "null", "Int", "String!",
              "@include(if: true)", "@skip", "__typename", "__schema", "types",
              "statusHistory", "registryFailureGroups", "from", "buckets",
              "geoRegistriesUpdate", "geoRegistriesBulkUpdate", "input", "registryId",
              "action", "RESYNC", "RESYNC_ALL", "errors", "#", ",", "=", "\\u0000", "\n"]
token_soup = st.lists(st.sampled_from(VOCABULARY) | st.text(max_size=4), max_size=40) \
    .map(" ".join)

int_values = (st.integers(-2**40, 2**40) | st.sampled_from(
    [-1, 0, 1, MAX_PAGE_SIZE, MAX_PAGE_SIZE + 1, 2**31 - 1, 2**31, -2**31 - 1, 2**63, 10**30]))
gid_like = (st.from_regex(r"\Agid://gitlab/[A-Za-z:]{1,30}/[0-9]{1,22}\Z")
            | st.integers(1, 2**70).map(GID.format)
            | st.sampled_from(["gid://gitlab/Geo::UploadRegistry/1", "gid://gitlab/GeoNode/1",
                               GID.format(0), GID.format("01"), GID.format(-1),
                               GID.format(2**63), GID.format(10**19 - 1), "7", ""]))
enum_junk = st.text(max_size=12) | st.sampled_from(
    ["PENDING", "pending", "SYNCED ", "DONE", "ID_ASC", "REVERIFY_ALL", "RESYNC",
     "COOL_WIDGET_REGISTRY", "UPLOAD_REGISTRY", "STARTED"])
cursor_junk = (st.text(max_size=40)
               | st.builds(lambda value: base64.urlsafe_b64encode(
                   json.dumps(value).encode()).decode().rstrip("="),
                   st.fixed_dictionaries({"id": int_values | json_values,
                                          "v": json_values | st.just("2026-05-01T00:00:00"),
                                          "s": st.sampled_from(["ID_ASC", "VERIFIED_AT_DESC",
                                                                "LAST_SYNCED_AT_ASC"])
                                          | st.text(max_size=5)})))
anything = st.none() | json_values | int_values | gid_like | enum_junk  # null: explicitly

LIST_QUERY = """
query($first: Int, $last: Int, $before: String, $after: String, $sort: GeoRegistrySort,
      $replicationState: ReplicationStateEnum, $verificationState: VerificationStateEnum,
      $ids: [GeoCoolWidgetRegistryID!], $keyword: String, $offset: Int, $limit: Int) {
  geoNode {
    coolWidgetRegistries(first: $first, last: $last, before: $before, after: $after,
                         sort: $sort, replicationState: $replicationState,
                         verificationState: $verificationState, ids: $ids,
                         keyword: $keyword, offset: $offset) {
      count(limit: $limit)
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      nodes { id state verificationState lastSyncedAt verifiedAt }
    }
  }
}"""

list_variables = st.fixed_dictionaries({}, optional={
    "first": int_values | anything, "last": int_values | anything,
    "before": cursor_junk | anything, "after": cursor_junk | anything,
    "sort": enum_junk | anything, "replicationState": enum_junk | anything,
    "verificationState": enum_junk | anything,
    "ids": st.lists(gid_like | anything, max_size=4) | anything,
    "keyword": st.text(max_size=30) | st.integers(0, 10**30).map(str)
    | st.lists(st.integers(0, 10**25), max_size=3).map(lambda n: " ".join(map(str, n))),
    "offset": int_values | anything, "limit": int_values | anything,
})


# --- any request at all ------------------------------------------------------------------

@PROPERTY
@given(query=st.text(max_size=300) | token_soup)
def test_arbitrary_query_text_is_answered_with_errors_not_a_crash(site, query):
    before = rows(site)
    status, answer = post(site, query)
    messages(status, answer, required=False)
    unchanged(site, before)


@PROPERTY
@given(body=st.binary(max_size=200)
       | json_values.map(lambda v: json.dumps(v).encode())
       | st.fixed_dictionaries({}, optional={"query": json_values | token_soup,
                                             "variables": json_values,
                                             "operationName": json_values})
       .map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bodies_are_answered_with_errors_not_a_crash(site, body):
    before = rows(site)
    status, answer = post_raw(site, body, token=TOKEN)
    messages(status, answer, required=False)
    unchanged(site, before)


@PROPERTY
@given(variables=list_variables)
def test_arbitrary_list_variables_give_a_page_or_readable_errors(site, variables):
    status, answer = post(site, LIST_QUERY, variables)
    if messages(status, answer, required=False):
        return
    page = answer["data"]["geoNode"]["coolWidgetRegistries"]
    assert len(page["nodes"]) <= MAX_PAGE_SIZE and 0 <= page["count"] <= ROWS


@PROPERTY
@given(argument=st.sampled_from(["first", "last", "offset"]),
       value=st.integers(-2**64, 2**64) | st.sampled_from(
           [-1, 0, MAX_PAGE_SIZE, MAX_PAGE_SIZE + 1, 2**31 - 1, 2**31]),
       literal=st.booleans())
def test_page_sizes_outside_the_limits_are_refused(site, argument, value, literal):
    page = f"first: {MAX_PAGE_SIZE}, " if argument == "offset" else ""
    if literal:
        query = (f"{{ geoNode {{ coolWidgetRegistries({page}{argument}: {value}) "
                 "{ nodes { id } } } }")
        status, answer = post(site, query)
    else:
        query = (f"query($v: Int) {{ geoNode {{ coolWidgetRegistries({page}{argument}: $v) "
                 "{ nodes { id } } } }")
        status, answer = post(site, query, {"v": value})
    found = messages(status, answer, required=False)
    allowed = 0 <= value <= (2**31 - 1 if argument == "offset" else MAX_PAGE_SIZE)
    if allowed:
        assert not found, found
        nodes = answer["data"]["geoNode"]["coolWidgetRegistries"]["nodes"]
        if argument == "offset":
            assert len(nodes) == max(0, ROWS - value)
        else:
            assert len(nodes) == min(value, ROWS)
    else:
        assert found


@PROPERTY
@given(ids=st.lists(gid_like, min_size=1, max_size=4), literal=st.booleans())
def test_unknown_and_foreign_ids_are_refused_or_match_nothing(site, ids, literal):
    if literal:
        query = ("{ geoNode { coolWidgetRegistries(ids: " + json.dumps(ids)
                 + ") { nodes { id } } } }")
        status, answer = post(site, query)
    else:
        query = ("query($ids: [GeoCoolWidgetRegistryID!]) { geoNode { "
                 "coolWidgetRegistries(ids: $ids) { nodes { id } } } }")
        status, answer = post(site, query, {"ids": ids})
    if messages(status, answer, required=False):
        return
    wanted = {gid for gid in ids if gid in {GID.format(n) for n in range(1, ROWS + 1)}}
    found = {node["id"] for node in answer["data"]["geoNode"]["coolWidgetRegistries"]["nodes"]}
    assert found == wanted


@st.composite
def deep_queries(draw):
    """Field nesting deeper than the limit, through aliases, inline fragments
    and named fragments (which count), up to parser-breaking depths."""
    depth = draw(st.integers(MAX_DEPTH + 1, 60) | st.integers(61, 3000))
    names = st.sampled_from(["geoNode", "coolWidgetRegistries", "nodes", "a", "b_c"])
    opening = []
    for level in range(depth):
        name = draw(names) if depth <= 60 else "a"
        if depth <= 60 and draw(st.booleans()):
            name = f"x{level}: {name}"
        if depth <= 60 and draw(st.integers(0, 4)) == 0:
            name = "... on GeoNode { " + name
            opening.append((name, 2))
        else:
            opening.append((name, 1))
    text = "".join(part + " { " for part, _ in opening) + "id" + "".join(
        " }" * closes for _, closes in reversed(opening))
    split = draw(st.integers(0, 3))
    if split and depth <= 60:  # move the innermost part into a named fragment
        return f"query Deep {{ ...F }} fragment F on Query {{ {text} }}"
    return "{ " + text + " }"


@PROPERTY
@given(query=deep_queries())
def test_over_deep_queries_are_refused(site, query):
    status, answer = post(site, query)
    found = messages(status, answer)
    assert any("deep" in message for message in found), found


history_variables = st.fixed_dictionaries({}, optional={
    "from": st.datetimes().map(lambda d: d.isoformat()) | st.text(max_size=30) | anything,
    "to": st.datetimes().map(lambda d: d.isoformat() + "Z") | st.text(max_size=30) | anything,
    "buckets": int_values | anything, "replicable": st.text(max_size=12) | anything,
    "limit": int_values | anything, "failuresFor": st.text(max_size=12) | anything})
HISTORY_QUERY = """query($from: Time!, $to: Time, $buckets: Int, $replicable: String,
                         $limit: Int, $failuresFor: String) {
  geoNode {
    statusHistory(from: $from, to: $to, buckets: $buckets, replicable: $replicable) {
      time registryCount syncedPercentage }
    registryFailureGroups(replicable: $failuresFor, limit: $limit) { message count }
  } }"""


@PROPERTY
@given(variables=history_variables)
def test_arbitrary_history_and_failure_group_arguments(site, variables):
    status, answer = post(site, HISTORY_QUERY, variables)
    messages(status, answer, required=False)


# --- mutations with bad input change nothing ------------------------------------------------

ACTIONS = ["RESYNC", "REVERIFY"]
BULK_ACTIONS = ["RESYNC_ALL", "REVERIFY_ALL"]
STATES = ["PENDING", "STARTED", "SYNCED", "FAILED"]
VERIFICATION_STATES = ["PENDING", "STARTED", "SUCCEEDED", "FAILED", "DISABLED"]


def well_formed(gid) -> bool:
    """A Cool Widget registry global id the API must take (existing or not)."""
    prefix = GID.format("")
    number = gid[len(prefix):] if isinstance(gid, str) and gid.startswith(prefix) else ""
    return number.isascii() and number.isdigit() and number[0] != "0" and int(number) < 2**63


bad_ids = (gid_like.filter(lambda g: not well_formed(g))
           | json_values.filter(lambda v: not isinstance(v, (str, list))))


@PROPERTY
@given(bad=st.sets(st.sampled_from(["registryId", "action"]), min_size=1),
       registry_id=st.integers(1, ROWS), good_action=st.sampled_from(ACTIONS),
       bad_id=bad_ids, bad_action=enum_junk.filter(lambda v: v not in ACTIONS) | json_values)
def test_update_with_bad_input_changes_nothing(site, bad, registry_id, good_action, bad_id,
                                              bad_action):
    variables = {"id": bad_id if "registryId" in bad else GID.format(registry_id),
                 "action": bad_action if "action" in bad else good_action}
    before = rows(site)
    status, answer = post(site, UPDATE, variables, token=TOKEN)
    found = messages(status, answer, required=False)
    if not found:  # a well-formed id of no registry: the payload says so
        payload = answer["data"]["geoRegistriesUpdate"]
        assert payload["errors"] and payload["registry"] is None, payload
        for message in payload["errors"]:
            assert_readable(message)
    unchanged(site, before)


BULK = """mutation($class: GeoRegistryClass!, $action: GeoRegistriesBulkAction!,
  $replicationState: ReplicationStateEnum, $verificationState: VerificationStateEnum,
  $ids: [GeoBaseRegistryID!]) {
  geoRegistriesBulkUpdate(input: {registryClass: $class, action: $action,
    replicationState: $replicationState, verificationState: $verificationState, ids: $ids}) {
    errors registryClass updatedCount } }"""


@PROPERTY
@given(bad=st.sets(st.sampled_from(["class", "action", "replicationState",
                                    "verificationState", "ids"]), min_size=1),
       good=st.fixed_dictionaries({
           "class": st.just("COOL_WIDGET_REGISTRY"), "action": st.sampled_from(BULK_ACTIONS),
           "replicationState": st.sampled_from(STATES) | st.none(),
           "verificationState": st.sampled_from(VERIFICATION_STATES) | st.none(),
           "ids": st.lists(st.integers(1, ROWS).map(GID.format), max_size=3) | st.none()}),
       junk=st.fixed_dictionaries({
           "class": enum_junk.filter(lambda v: v != "COOL_WIDGET_REGISTRY") | json_values,
           "action": enum_junk.filter(lambda v: v not in BULK_ACTIONS) | json_values,
           "replicationState": enum_junk.filter(lambda v: v not in STATES)
           | json_values.filter(lambda v: v is not None),
           "verificationState": enum_junk.filter(lambda v: v not in VERIFICATION_STATES)
           | json_values.filter(lambda v: v is not None),
           "ids": st.tuples(st.lists(st.integers(1, ROWS).map(GID.format), max_size=2),
                            bad_ids.filter(lambda v: v is not None))
           .map(lambda t: [*t[0], t[1]])}))
def test_bulk_update_with_bad_input_changes_nothing(site, bad, good, junk):
    variables = {name: junk[name] if name in bad else good[name] for name in good}
    assume(variables["class"] is not None and variables["action"] is not None)
    before = rows(site)
    status, answer = post(site, BULK, variables, token=TOKEN)
    assert messages(status, answer), answer
    unchanged(site, before)


@PROPERTY
@given(header=(st.binary(max_size=60) | st.text(max_size=40).map(
           lambda t: ("Bearer " + t).encode("utf-8"))).map(sendable),
       bulk=st.booleans())
def test_mutations_with_any_other_token_change_nothing(site, header, bulk):
    assume(header.strip() != f"Bearer {TOKEN}".encode())
    before = rows(site)
    query, variables = ((BULK, {"class": "COOL_WIDGET_REGISTRY", "action": "RESYNC_ALL"})
                        if bulk else (UPDATE, {"id": GID.format(4), "action": "RESYNC"}))
    body = json.dumps({"query": query, "variables": variables}).encode()
    status, answer = post_raw(site, body, token=header)
    # Refused at the door (no token, or a wrong one: 401) or by the
    # mutation (the read token: it only reads).
    assert any("token" in message for message in messages(status, answer)), answer
    unchanged(site, before)


# --- hand-picked cases the properties found ------------------------------------------------

@pytest.mark.parametrize("query,variables", [
    # A Cool Widget global id past BIGINT: SQLite raised OverflowError.
    ("query($ids: [GeoCoolWidgetRegistryID!]) { geoNode { coolWidgetRegistries(ids: $ids) "
     "{ nodes { id } } } }", {"ids": [GID.format(2**63)]}),
    # A cursor naming a registry id past BIGINT.
    ("query($a: String) { geoNode { coolWidgetRegistries(after: $a) { nodes { id } } } }",
     {"a": base64.urlsafe_b64encode(b'{"id": 10000000000000000000000, "v": null, '
                                    b'"s": "ID_ASC"}').decode()}),
    # A cursor with a time without zone: SQLAlchemy raised StatementError.
    ("query($a: String) { geoNode { coolWidgetRegistries(after: $a, sort: VERIFIED_AT_ASC) "
     "{ nodes { id } } } }",
     {"a": base64.urlsafe_b64encode(b'{"id": 1, "v": "2026-01-01", '
                                    b'"s": "VERIFIED_AT_ASC"}').decode()}),
])
def test_out_of_range_ids_and_cursors_are_client_errors(site, query, variables):
    found = messages(*post(site, query, variables))
    assert any("global id" in m or "invalid cursor" in m for m in found), found


@pytest.mark.parametrize("keyword", ["99999999999999999999999", "\u00b2", "1 99999999999999999999"])
def test_keywords_that_are_not_ids_match_nothing(site, keyword):
    """Digits past BIGINT (OverflowError on SQLite) and non-ASCII digits
    (int() refused '²') are searched for, not crashed on."""
    query = "query($k: String) { geoNode { coolWidgetRegistries(keyword: $k) { nodes { id } } } }"
    status, answer = post(site, query, {"k": keyword})
    assert not messages(status, answer, required=False)
    nodes = answer["data"]["geoNode"]["coolWidgetRegistries"]["nodes"]
    assert nodes == ([{"id": GID.format(1)}] if keyword.startswith("1 ") else [])


def test_json_nested_past_the_recursion_limit_is_a_400(site):
    """json.loads raised RecursionError: aiohttp answered a plain-text 500."""
    nested = b"[" * 20000 + b"]" * 20000
    status, answer = post_raw(site, b'{"query": "{ geoNode { name } }", "variables": {"a": '
                              + nested + b"}}")
    assert status == 400 and messages(status, answer)


@pytest.mark.parametrize("query", [
    "{ geoNode { coolWidgetRegistries { count(limit: null) } } }",
    "{ geoNode { registryFailureGroups(limit: null) { count } } }",
])
def test_explicit_null_arguments_mean_the_default(site, query):
    """`limit: null` reached the resolver as None (TypeError: Internal server error)."""
    status, answer = post(site, query)
    assert not messages(status, answer, required=False)
