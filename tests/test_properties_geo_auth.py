"""Property-based tests: the GL-Geo verifier and the primary's Geo API refuse
every bad request, and stored blob paths never leave the storage root.

In process, the verifier must raise GeoAuthError (never another exception)
for tampered, wrong-key, expired, replayed and misdirected tokens and for
arbitrary header text. Over real HTTP on loopback (SQLite and PostgreSQL),
the primary must answer such requests with 400/401/403, never 500 and never
the blob. Hand-picked cases live in test_geo_auth.py and test_geo_api.py.
"""
from __future__ import annotations

import base64
import json
import os
import pathlib
import time


import jwt
import pytest
import urllib3
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from backend.framework.geo_auth import (LEEWAY, NOT_BEFORE_SKEW, TOKEN_LIFETIME, GeoAuthenticator,
                                  GeoAuthError, Peer, authorization_header, request_data,
                                  retrieve_data)
from backend.framework.paths import UnsafePathError, resolve_inside
from backend.framework.replicator import FileStore
from backend.replicables import replicator_for
from backend.primary.storage import BlobStorage
from tests.support.module_sites import module_databases  # noqa: F401 (fixture)
from tests.support.sites import object_store, start_primary

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
CoolWidgets = replicator_for("cool_widget")
SECRET = "s" * 32
PEER = Peer("s1", "key1", SECRET)
IN_PROCESS = settings(max_examples=150, deadline=None)
OVER_HTTP = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])

# --- strategies -------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10)
record_ids = st.integers(min_value=1, max_value=2**63 - 1)
replicable_names = st.sampled_from(["cool_widget", "gadget", "upload", ""]) | st.text(max_size=12)


@st.composite
def mutations(draw, original: bytes) -> bytes:
    """One to three byte flips, truncations, appends, insertions or deletions."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "append", "insert", "delete"]))
        if kind == "flip" and data:
            index = draw(st.integers(0, len(data) - 1))
            data[index] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[draw(st.integers(0, max(len(data) - 1, 0))):]
        elif kind == "append":
            data += draw(st.binary(min_size=1, max_size=16))
        elif kind == "insert":
            index = draw(st.integers(0, len(data)))
            data[index:index] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            start = draw(st.integers(0, len(data) - 1))
            del data[start:draw(st.integers(start + 1, len(data)))]
    return bytes(data)


def refusal(auth: GeoAuthenticator, header, expected: dict) -> str:
    """The verifier's refusal message; any other exception fails the test."""
    try:
        peer = auth.authenticate(header, expected)
    except GeoAuthError as exc:
        return str(exc)
    raise AssertionError(f"accepted as {peer.name}: {header!r}")


def signed(claims: dict, secret: str = SECRET, algorithm: str = "HS256",
           access_key: str = "key1") -> str:
    return f"GL-Geo {access_key}:" + jwt.encode(claims, secret, algorithm=algorithm)


def good_claims(request: dict, now: int | None = None, **overrides) -> dict:
    now = int(time.time()) if now is None else now
    values = {"jti": os.urandom(8).hex(), "iat": now, "nbf": now - NOT_BEFORE_SKEW,
              "exp": now + TOKEN_LIFETIME, "data": json.dumps(request, sort_keys=True)}
    values.update(overrides)
    return values


# --- the verifier, in process ---------------------------------------------------------

@IN_PROCESS
@given(st.data(), record_ids)
def test_tampered_headers_are_refused(data, model_id):
    expected = retrieve_data("cool_widget", model_id)
    original = authorization_header("key1", SECRET, expected).encode()
    tampered = data.draw(mutations(original))
    assume(tampered != original)
    refusal(GeoAuthenticator([PEER]), tampered.decode("latin-1"), expected)


@IN_PROCESS
@given(st.data(), record_ids)
def test_tampered_copies_of_a_used_token_are_refused(data, model_id):
    """What an eavesdropper can do with a token it saw: nothing."""
    auth = GeoAuthenticator([PEER])
    expected = retrieve_data("cool_widget", model_id)
    original = authorization_header("key1", SECRET, expected).encode()
    auth.authenticate(original.decode(), expected)
    tampered = data.draw(mutations(original))
    refusal(auth, tampered.decode("latin-1"), expected)


@IN_PROCESS
@given(header=st.none() | st.text() | st.text().map(lambda t: "GL-Geo " + t)
       | st.text().map(lambda t: "GL-Geo key1:" + t)
       | st.from_regex(r"\AGL-Geo key1:[A-Za-z0-9_=-]{0,40}\.[A-Za-z0-9_=-]{0,60}"
                       r"\.[A-Za-z0-9_=-]{0,50}\Z"),
       expected=st.dictionaries(st.text(max_size=8), json_values, max_size=3))
def test_arbitrary_header_text_is_refused(header, expected):
    refusal(GeoAuthenticator([PEER]), header, expected)


@IN_PROCESS
@given(claims=st.dictionaries(st.sampled_from(["jti", "iat", "nbf", "exp", "data"])
                              | st.text(max_size=6), json_values, max_size=7),
       complete=st.booleans(), model_id=record_ids,
       secret=st.text(min_size=1, max_size=40).filter(lambda s: s != SECRET),
       algorithm=st.sampled_from(["HS256", "HS384", "HS512"]))
def test_any_claims_signed_with_the_wrong_key_are_refused(claims, complete, model_id, secret,
                                                          algorithm):
    expected = retrieve_data("cool_widget", model_id)
    if complete:  # otherwise perfect claims: only the key is wrong
        claims = {**good_claims(expected), **claims}
    message = refusal(GeoAuthenticator([PEER]), signed(claims, secret, algorithm), expected)
    assert message.startswith("invalid token")


@IN_PROCESS
@given(claims=st.dictionaries(st.text(max_size=6), json_values, max_size=3),
       model_id=record_ids, algorithm=st.sampled_from(["HS384", "HS512", "none"]))
def test_other_algorithms_are_refused_even_with_the_right_key(claims, model_id, algorithm):
    expected = retrieve_data("cool_widget", model_id)
    claims = {**good_claims(expected), **claims}
    token = signed(claims, None if algorithm == "none" else SECRET, algorithm)
    assert refusal(GeoAuthenticator([PEER]), token, expected).startswith("invalid token")


claim_values = json_values | st.integers(-2**70, 2**70) | st.integers().map(str) \
    | st.just(float("inf")) | st.just(float("nan")) | st.just(float("-inf"))


@IN_PROCESS
@given(overrides=st.dictionaries(st.sampled_from(["jti", "iat", "nbf", "exp", "data"]),
                                 claim_values, min_size=1),
       removed=st.sets(st.sampled_from(["jti", "iat", "nbf", "exp", "data"]), max_size=2),
       model_id=record_ids)
def test_junk_claims_with_the_right_key_are_refused_or_valid(overrides, removed, model_id):
    """A peer that holds the key but sends junk claims gets a GeoAuthError;
    the only tokens accepted are those whose claims are all valid."""
    expected = retrieve_data("cool_widget", model_id)
    claims = {**good_claims(expected), **overrides}
    for name in removed:
        claims.pop(name, None)
    try:
        GeoAuthenticator([PEER]).authenticate(signed(claims), expected)
    except GeoAuthError:
        return
    assert acceptable(claims, expected), claims


def acceptable(claims: dict, expected: dict) -> bool:
    """Whether a correctly signed token with these claims may pass."""
    now = time.time()
    try:
        times = {name: int(claims[name]) for name in ("exp", "iat", "nbf")}
        return (isinstance(claims["jti"], str) and json.loads(claims["data"]) == expected
                and not isinstance(claims["data"], bool)
                and times["exp"] > now - LEEWAY and times["iat"] <= now + LEEWAY
                and times["nbf"] <= now + LEEWAY
                and times["exp"] - times["iat"] <= TOKEN_LIFETIME + NOT_BEFORE_SKEW)
    except (KeyError, TypeError, ValueError, OverflowError):
        return False


@IN_PROCESS
@given(age=st.integers(min_value=LEEWAY + 1, max_value=10**10),
       lifetime=st.integers(0, TOKEN_LIFETIME), model_id=record_ids)
def test_expired_tokens_are_refused(age, lifetime, model_id):
    expected = retrieve_data("cool_widget", model_id)
    exp = int(time.time()) - age
    claims = good_claims(expected, now=exp - lifetime, exp=exp)
    assert refusal(GeoAuthenticator([PEER]), signed(claims), expected) == "token expired"


@IN_PROCESS
@given(signed_for=st.tuples(replicable_names, record_ids),
       asked_for=st.tuples(replicable_names, record_ids))
def test_tokens_for_another_record_are_refused(signed_for, asked_for):
    assume(signed_for != asked_for)
    header = authorization_header("key1", SECRET, retrieve_data(*signed_for))
    message = refusal(GeoAuthenticator([PEER]), header, retrieve_data(*asked_for))
    assert message == "token does not match the request"


requests = st.tuples(st.sampled_from(["GET", "POST", "PUT"]),
                     st.sampled_from(["/api/v4/geo/events", "/api/v4/geo/status",
                                      "/api/v4/geo/replicables/cool_widget"]),
                     st.dictionaries(st.sampled_from(["after", "limit", "after_id"]),
                                     st.integers(0, 999).map(str), max_size=2),
                     st.binary(max_size=20))


@IN_PROCESS
@given(signed_for=requests, asked_for=requests)
def test_tokens_for_another_request_are_refused(signed_for, asked_for):
    assume(request_data(*signed_for) != request_data(*asked_for))
    header = authorization_header("key1", SECRET, request_data(*signed_for))
    message = refusal(GeoAuthenticator([PEER]), header, request_data(*asked_for))
    assert message == "token does not match the request"


@IN_PROCESS
@given(uses=st.lists(st.integers(0, 4), min_size=2, max_size=20))
def test_every_replay_is_refused(uses):
    """Five tokens used in any order: each works once, every repeat is refused."""
    auth = GeoAuthenticator([PEER])
    data = retrieve_data("cool_widget", 1)
    headers = [authorization_header("key1", SECRET, data) for _ in range(5)]
    seen = set()
    for index in uses:
        if index in seen:
            assert refusal(auth, headers[index], data) == "token already used"
        else:
            assert auth.authenticate(headers[index], data) == PEER
            seen.add(index)


# --- stored paths -----------------------------------------------------------------------

segments = st.sampled_from(["..", ".", "", "a", "b.bin", "escape", "inside", "~", "...",
                            "outside", "secret.bin", "local", "blobs",
                            "\x00", "é", "C:", "..\\..", " ", "%2e%2e"]) | st.text(max_size=6)
stored_paths = (st.text()
                | st.text(alphabet=st.characters(codec=None, categories=["Cs", "L", "P"]))
                | st.tuples(st.sampled_from(["", "/", "\\", "//", "C:\\", "./"]),
                            st.lists(segments, max_size=8),
                            st.sampled_from(["/", "\\", "//"]))
                .map(lambda t: t[0] + t[2].join(t[1])))


@pytest.fixture(scope="module")
def storage_root(tmp_path_factory):
    """A root holding a symlink out of it and one to a folder inside it."""
    base = tmp_path_factory.mktemp("paths")
    root, outside = base / "root", base / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    (outside / "b.bin").write_bytes(b"outside")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "inside").symlink_to(root / "a", target_is_directory=True)
    return root


def inside(path: pathlib.Path, root: pathlib.Path) -> bool:
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    return real == real_root or real.startswith(real_root + os.sep)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(relative=stored_paths)
@example(relative="escape/b.bin")
@example(relative="inside/../../outside/b.bin")
@example(relative="a/\x00/../b.bin")
def test_stored_paths_resolve_inside_the_root_or_are_refused(storage_root, relative):
    try:
        resolved = resolve_inside(storage_root, relative)
    except UnsafePathError as exc:
        assert str(exc).startswith(("invalid blob path", "blob path"))
        return
    assert inside(resolved, storage_root), (relative, resolved)
    assert resolved.is_absolute()


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(relative=stored_paths)
def test_blob_storage_paths_stay_in_their_store(storage_root, relative):
    storage = BlobStorage(storage_root)
    try:
        resolved = storage.path(relative)
    except UnsafePathError:
        return
    assert inside(resolved, storage.local_root), (relative, resolved)


# --- the primary's Geo API over HTTP -------------------------------------------------------

BLOB = b"the-secret-widget-bytes-" * 40
OUTSIDE = b"a file outside the storage root"
CREDENTIALS = {"access_key": "prop-key", "secret": "prop-secret-0123456789abcdef-0123456789"}
HTTP = urllib3.PoolManager(retries=False, timeout=10)


@pytest.fixture(scope="module")
def primary(module_databases, tmp_path_factory, s3_server):
    from backend.db.migrate import upgrade
    url = module_databases.url("primary")
    upgrade(url, "primary")
    base = tmp_path_factory.mktemp("primary")
    (base / "outside").mkdir()
    (base / "outside" / "secret.bin").write_bytes(OUTSIDE)
    site = start_primary(url, base / "blobs", CREDENTIALS, object_store=object_store(s3_server))
    site.s3_endpoint = s3_server.endpoint
    catalog = site.catalog()
    site.model_id = catalog.add_bytes(BLOB, "w.bin")
    site.hostile_id = catalog.add_bytes(b"replaced below", "h.bin")
    site.hostile_path = site.blob_path(CoolWidgets, site.hostile_id)[1]
    site.storage.local_root.mkdir(parents=True, exist_ok=True)
    (site.storage.local_root / "escape").symlink_to(base / "outside",
                                                    target_is_directory=True)
    site.db_kind = module_databases.kind
    yield site
    site.stop()


def retrieve(site, model_id: int, authorization: bytes | None):
    headers = {} if authorization is None else {"Authorization": authorization}
    return HTTP.request("GET", f"{site.url}/api/v4/geo/retrieve/cool_widget/{model_id}",
                        headers=headers)


def assert_refused(response, *allowed) -> None:
    assert response.status in (allowed or (400, 401, 403)), (response.status, response.data)
    assert BLOB[:24] not in response.data and OUTSIDE not in response.data
    if response.status in (401, 403):  # the Geo API's own answers are JSON
        assert json.loads(response.data)["message"]


def header_bytes(text: bytes) -> bytes:
    """What an HTTP client can send at all: no line breaks; and whitespace
    at the ends, which HTTP drops, does not count as tampering."""
    return text.replace(b"\r", b"").replace(b"\n", b"")


@OVER_HTTP
@given(data=st.data())
def test_tampered_headers_get_no_blob(primary, data):
    expected = retrieve_data("cool_widget", primary.model_id)
    original = authorization_header(CREDENTIALS["access_key"], CREDENTIALS["secret"],
                                    expected).encode()
    tampered = header_bytes(data.draw(mutations(original)))
    assume(tampered.strip(b" \t") != original)
    assert_refused(retrieve(primary, primary.model_id, tampered))


@OVER_HTTP
@given(header=st.binary(max_size=120).map(header_bytes)
       | st.text(max_size=60).map(lambda t: header_bytes(("GL-Geo prop-key:" + t).encode())))
def test_arbitrary_headers_get_no_blob(primary, header):
    assert_refused(retrieve(primary, primary.model_id, header))


@OVER_HTTP
@given(kind=st.sampled_from(["other record", "expired", "wrong key", "junk claims"]),
       other_id=record_ids, age=st.integers(LEEWAY + 1, 10**9),
       junk=st.dictionaries(st.sampled_from(["iat", "nbf", "exp", "data"]),  # jti: replays
                            claim_values, min_size=1),
       secret=st.text(min_size=1, max_size=40))
def test_misdirected_expired_and_forged_tokens_get_no_blob(primary, kind, other_id, age,
                                                            junk, secret):
    expected = retrieve_data("cool_widget", primary.model_id)
    if kind == "other record":
        assume(other_id != primary.model_id)
        claims = good_claims(retrieve_data("cool_widget", other_id))
    elif kind == "expired":
        exp = int(time.time()) - age
        claims = good_claims(expected, now=exp - TOKEN_LIFETIME, exp=exp)
    elif kind == "junk claims":
        claims = {**good_claims(expected), **junk}
    else:
        assume(secret != CREDENTIALS["secret"])
        claims = good_claims(expected)
    key = secret if kind == "wrong key" else CREDENTIALS["secret"]
    header = signed(claims, key, access_key=CREDENTIALS["access_key"]).encode()
    response = retrieve(primary, primary.model_id, header)
    if kind == "junk claims" and acceptable(claims, expected):
        assert response.status == 200
    else:
        assert_refused(response, 401)


@OVER_HTTP
@given(relative=stored_paths, file_store=st.sampled_from([FileStore.LOCAL, FileStore.REMOTE]))
@example(relative="escape/secret.bin", file_store=FileStore.LOCAL)
@example(relative="../../outside/secret.bin", file_store=FileStore.LOCAL)
@example(relative="../../outside/secret.bin", file_store=FileStore.REMOTE)
@example(relative="..\\..\\outside\\secret.bin", file_store=FileStore.LOCAL)
def test_hostile_stored_paths_are_never_served(primary, relative, file_store):
    """A record whose stored path escapes the storage root, through '..', an
    absolute path or a symlink, is answered FILE_NOT_FOUND, never served. An
    object-stored record's path is a key of the bucket, where no path
    leads out: it is answered with a presigned URL of that bucket."""
    if primary.db_kind == "postgresql":
        relative = relative.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    relative = relative.encode("utf-8", "replace").decode("utf-8")
    table = CoolWidgets.model_table()
    with primary.engine.begin() as connection:
        connection.execute(update(table).where(table.c.id == primary.hostile_id)
                           .values(file=relative, file_store=int(file_store)))
    data = retrieve_data("cool_widget", primary.hostile_id)
    header = authorization_header(CREDENTIALS["access_key"], CREDENTIALS["secret"], data)
    response = retrieve(primary, primary.hostile_id, header.encode())
    assert response.status in (200, 302, 404), (response.status, response.data)
    assert OUTSIDE not in response.data
    if file_store == FileStore.REMOTE and response.status == 302:
        # Signed for a key of the primary's bucket, never one a `..` leads out to.
        location = urllib3.util.parse_url(response.headers["Location"])
        assert location.path.startswith(f"/{primary.bucket.name}/")
        assert "/../" not in location.path + "/" and "/./" not in location.path + "/"
    elif response.status == 404:
        assert json.loads(response.data)["geo_code"] == "FILE_NOT_FOUND"
    else:  # only a real file inside the store can be served
        resolved = primary.storage.path(relative)
        assert inside(resolved, primary.storage.local_root) and resolved.is_file()


def test_a_safe_stored_path_is_served(primary):
    """The control for the property above: a path inside the store is served."""
    table = CoolWidgets.model_table()
    with primary.engine.begin() as connection:
        connection.execute(update(table).where(table.c.id == primary.hostile_id)
                           .values(file=primary.hostile_path, file_store=FileStore.LOCAL))
    data = retrieve_data("cool_widget", primary.hostile_id)
    header = authorization_header(CREDENTIALS["access_key"], CREDENTIALS["secret"], data)
    response = retrieve(primary, primary.hostile_id, header.encode())
    assert response.status == 200 and response.data == b"replaced below"


# --- hand-picked cases the properties found or rarely reach --------------------------------

def test_a_padded_copy_of_a_token_is_refused():
    """base64url JWTs carry no padding: `token=` would otherwise verify as
    the same token under a second spelling (found by the mutation property)."""
    data = retrieve_data("cool_widget", 1)
    header = authorization_header("key1", SECRET, data)
    assert refusal(GeoAuthenticator([PEER]), header + "=", data).startswith("invalid token")


def test_times_given_as_strings_are_refused():
    """PyJWT accepts `"iat": "0"` (int() takes it); the lifetime check must too
    (found by the junk-claims property: it raised TypeError, a 500 over HTTP)."""
    data = retrieve_data("cool_widget", 1)
    now = int(time.time())
    for overrides in ({"iat": "0"}, {"iat": str(now - 3600)}, {"exp": str(now + 3600)}):
        token = signed(good_claims(data, **overrides))
        assert refusal(GeoAuthenticator([PEER]), token, data) == "token lifetime too long"


def test_deeply_nested_data_claim_is_refused():
    """A `data` claim nested past Python's recursion limit: GeoAuthError, not
    RecursionError (a 500 over HTTP)."""
    data = retrieve_data("cool_widget", 1)
    token = signed(good_claims(data, data="[" * 5000))
    assert refusal(GeoAuthenticator([PEER]), token, data) == "invalid token data"


def test_deeply_nested_jwt_header_is_refused_before_the_signature():
    segment = base64.urlsafe_b64encode(b"[" * 5000).decode().rstrip("=")
    assert refusal(GeoAuthenticator([PEER]), f"GL-Geo key1:{segment}.e30.AAAA",
                   {}).startswith("invalid token")


@pytest.mark.parametrize("path", ["/api/v4/geo/status",
                                  "/api/v4/geo/replicables/cool_widget/states"])
def test_authenticated_bodies_nested_past_the_recursion_limit_are_400(primary, path):
    """json.loads raised RecursionError: a 500 for a correctly signed request."""
    body = b'{"ids": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    header = authorization_header(CREDENTIALS["access_key"], CREDENTIALS["secret"],
                                  request_data("POST", path, {}, body))
    response = HTTP.request("POST", primary.url + path, body=body,
                            headers={"Authorization": header,
                                     "Content-Type": "application/json"})
    assert response.status == 400 and json.loads(response.data)["message"]
