"""GL-Geo request authentication: what the primary accepts and refuses."""
import json
import time

import jwt
import pytest

from backend.framework.geo_auth import (GeoAuthenticator, GeoAuthError, Peer, authorization_header,
                                  request_data, retrieve_data)

SECRET = "s" * 32
PEER = Peer("s1", "key1", SECRET)


@pytest.fixture
def auth():
    return GeoAuthenticator([PEER])


def token(claims, secret=SECRET):
    return "GL-Geo key1:" + jwt.encode(claims, secret, algorithm="HS256")


def claims(data, **overrides):
    now = int(time.time())
    values = {"jti": "j-" + str(time.monotonic_ns()), "iat": now, "nbf": now - 5,
              "exp": now + 60, "data": json.dumps(data, sort_keys=True)}
    values.update(overrides)
    return values


def test_valid_token_identifies_the_secondary(auth):
    data = retrieve_data("cool_widget", 5)
    assert auth.authenticate(authorization_header("key1", SECRET, data), data) == PEER


def test_each_secret_signs_its_own_tokens(auth):
    """Secrets are checked once and remembered: each token is still signed
    with the secret it was made with."""
    other = "o" * 32
    data = retrieve_data("cool_widget", 5)
    for _ in range(2):
        for secret, wrong in ((SECRET, other), (other, SECRET)):
            encoded = authorization_header("key1", secret, data).split(":", 1)[1]
            assert jwt.decode(encoded, secret, algorithms=["HS256"])["data"]
            with pytest.raises(jwt.InvalidSignatureError):
                jwt.decode(encoded, wrong, algorithms=["HS256"])


def test_a_secret_shaped_like_a_public_key_is_refused_every_time():
    key_like = "-----BEGIN PUBLIC KEY-----\n" + "A" * 64 + "\n-----END PUBLIC KEY-----"
    for _ in range(2):
        with pytest.raises(jwt.InvalidKeyError):
            authorization_header("key1", key_like, retrieve_data("cool_widget", 5))


def test_token_claims_follow_gitlab(auth):
    header = authorization_header("key1", SECRET, retrieve_data("cool_widget", 5))
    scheme, _, rest = header.partition(" ")
    decoded = jwt.decode(rest.split(":", 1)[1], SECRET, algorithms=["HS256"])
    assert scheme == "GL-Geo"
    assert decoded["exp"] - decoded["iat"] == 60 and decoded["iat"] - decoded["nbf"] == 5
    assert json.loads(decoded["data"]) == {"replicable_name": "cool_widget", "replicable_id": 5}
    assert decoded["jti"]


@pytest.mark.parametrize("header,reason", [
    (None, "missing Authorization"),
    ("Bearer abc", "must be 'GL-Geo"),
    ("GL-Geo nokey", "must be 'GL-Geo"),
    ("GL-Geo other:abc", "unknown access key"),
    ("GL-Geo key1:not-a-jwt", "invalid token"),
])
def test_malformed_headers_are_refused(auth, header, reason):
    with pytest.raises(GeoAuthError, match=reason):
        auth.authenticate(header, {})


def test_wrong_secret_is_refused(auth):
    data = retrieve_data("cool_widget", 1)
    with pytest.raises(GeoAuthError, match="invalid token"):
        auth.authenticate(token(claims(data), secret="x" * 32), data)


def test_token_for_another_record_is_refused(auth):
    header = authorization_header("key1", SECRET, retrieve_data("cool_widget", 1))
    with pytest.raises(GeoAuthError, match="does not match the request"):
        auth.authenticate(header, retrieve_data("cool_widget", 2))


def test_token_for_another_request_is_refused(auth):
    header = authorization_header("key1", SECRET, request_data("GET", "/api/v4/geo/events",
                                                               {"after": "1"}))
    with pytest.raises(GeoAuthError, match="does not match"):
        auth.authenticate(header, request_data("GET", "/api/v4/geo/events", {"after": "0"}))


def test_expired_token_is_refused(auth):
    data = retrieve_data("cool_widget", 1)
    old = int(time.time()) - 500
    with pytest.raises(GeoAuthError, match="expired"):
        auth.authenticate(token(claims(data, iat=old, nbf=old - 5, exp=old + 60)), data)


def test_overlong_lifetime_is_refused(auth):
    data = retrieve_data("cool_widget", 1)
    now = int(time.time())
    with pytest.raises(GeoAuthError, match="lifetime"):
        auth.authenticate(token(claims(data, exp=now + 3600)), data)


def test_tampered_payload_is_refused(auth):
    data = retrieve_data("cool_widget", 1)
    good = token(claims(data)).split(":", 1)[1]
    header, payload, signature = good.split(".")
    other = jwt.encode(claims(retrieve_data("cool_widget", 2)), SECRET, algorithm="HS256")
    forged = ".".join([header, other.split(".")[1], signature])
    with pytest.raises(GeoAuthError, match="invalid token"):
        auth.authenticate("GL-Geo key1:" + forged, retrieve_data("cool_widget", 2))


def test_replayed_token_is_refused(auth):
    data = retrieve_data("cool_widget", 1)
    header = authorization_header("key1", SECRET, data)
    auth.authenticate(header, data)
    with pytest.raises(GeoAuthError, match="already used"):
        auth.authenticate(header, data)


def test_missing_claims_are_refused(auth):
    data = retrieve_data("cool_widget", 1)
    values = claims(data)
    del values["jti"]
    with pytest.raises(GeoAuthError, match="invalid token"):
        auth.authenticate(token(values), data)


def test_request_data_binds_body_and_canonical_query():
    a = request_data("post", "/x", {"b": "2", "a": "1"}, b"{}")
    b = request_data("POST", "/x", {"a": "1", "b": "2"}, b"{}")
    assert a == b and a["request"] == "POST /x?a=1&b=2"
    assert request_data("POST", "/x", {}, b"{1}") != request_data("POST", "/x", {}, b"{2}")
