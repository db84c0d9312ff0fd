"""GitLab's `GL-Geo` request authentication.

A secondary signs every request to the primary's Geo API with
`Authorization: GL-Geo <access_key>:<JWT>`: HS256 keyed with its secret,
`jti`, `iat`, `nbf = iat - 5 s`, `exp = iat + 60 s`, and a `data` claim
(a JSON string) bound to the request, so a token cannot be reused for
another record or endpoint. The primary also refuses a token seen before.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import re
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from urllib.parse import urlencode

import jwt
import jwt.warnings
from jwt.algorithms import HMACAlgorithm

# Secrets are checked for length by the configuration (MIN_SECRET_LENGTH);
# PyJWT's per-call warning would only flood the logs.
warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)

SCHEME = "GL-Geo"
MIN_SECRET_LENGTH = 32  # RFC 7518 §3.2: an HS256 key of at least 256 bits
TOKEN_LIFETIME = 60
NOT_BEFORE_SKEW = 5
LEEWAY = 60
# RFC 7515 §7.1 compact serialization: base64url without padding, so one
# token has exactly one spelling (PyJWT would also take a trailing '=').
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class GeoAuthError(Exception):
    """The request is not authenticated; the message says why (no secrets)."""


def retrieve_data(replicable_name: str, replicable_id: int) -> dict:
    return {"replicable_name": replicable_name, "replicable_id": int(replicable_id)}


def request_data(method: str, path: str, query: dict | None = None,
                 body: bytes = b"") -> dict:
    """Claims binding a token to one request: method, path, query, body."""
    canonical_query = urlencode(sorted((query or {}).items()))
    return {"request": f"{method.upper()} {path}?{canonical_query}",
            "body_sha256": hashlib.sha256(body).hexdigest()}


class _HS256WithPreparedKeys(HMACAlgorithm):
    """PyJWT's HS256, checking each secret once rather than for every token.

    PyJWT refuses a secret that looks like a PEM, SSH, DER or JWK key; with
    the cryptography package installed those checks cost more than the
    signature, and a secondary signs a token for every blob it downloads
    (docs/PERFORMANCE.md, step 21). A refused secret is not remembered, so
    it is refused every time."""

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._prepared: dict = {}

    def prepare_key(self, key):
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = super().prepare_key(key)
            if len(self._prepared) < 64:  # a site has a handful of secrets
                self._prepared[key] = prepared
        return prepared


_signer = jwt.PyJWS(algorithms=[])
_signer.register_algorithm("HS256", _HS256WithPreparedKeys())


def authorization_header(access_key: str, secret: str, data: dict) -> str:
    issued = int(time.time())
    claims = {"jti": str(uuid.uuid4()), "iat": issued, "nbf": issued - NOT_BEFORE_SKEW,
              "exp": issued + TOKEN_LIFETIME, "data": json.dumps(data, sort_keys=True)}
    # What jwt.encode does for these claims (all plain numbers and text).
    payload = json.dumps(claims, separators=(",", ":")).encode()
    token = _signer.encode(payload, secret, algorithm="HS256")
    return f"{SCHEME} {access_key}:{token}"


@dataclass(frozen=True)
class Peer:
    name: str
    access_key: str
    secret: str


class GeoAuthenticator:
    """Checks GL-Geo headers against the known secondaries' keys."""

    def __init__(self, peers: list[Peer]) -> None:
        self._peers = {peer.access_key: peer for peer in peers}
        # Used token ids until they expire, and the same in expiry order so
        # that forgetting expired ones costs O(log n) per token, not a scan
        # of every token of the last two minutes on every request.
        self._seen: dict[str, float] = {}
        self._expiries: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def authenticate(self, header: str | None, expected: dict) -> Peer:
        if not header:
            raise GeoAuthError("missing Authorization header")
        scheme, _, credentials = header.partition(" ")
        if scheme != SCHEME or ":" not in credentials:
            raise GeoAuthError(f"Authorization must be '{SCHEME} <access_key>:<token>'")
        access_key, _, token = credentials.partition(":")
        peer = self._peers.get(access_key)
        if peer is None:
            raise GeoAuthError("unknown access key")
        if not COMPACT_JWS.fullmatch(token):
            raise GeoAuthError("invalid token: not a base64url JWT without padding")
        try:
            claims = jwt.decode(token, peer.secret, algorithms=["HS256"], leeway=LEEWAY,
                                options={"require": ["exp", "iat", "nbf", "jti", "data"]})
        except jwt.ExpiredSignatureError:
            raise GeoAuthError("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise GeoAuthError(f"invalid token: {exc}") from None
        # PyJWT checked that int() takes both; they may still be strings.
        if int(claims["exp"]) - int(claims["iat"]) > TOKEN_LIFETIME + NOT_BEFORE_SKEW:
            raise GeoAuthError("token lifetime too long")
        try:
            data = json.loads(claims["data"])
        except (TypeError, ValueError, RecursionError):
            raise GeoAuthError("invalid token data") from None
        if data != expected:
            raise GeoAuthError("token does not match the request")
        self._remember(str(claims["jti"]), float(claims["exp"]) + LEEWAY)
        return peer

    def _remember(self, jti: str, expires: float) -> None:
        now = time.time()
        with self._lock:
            while self._expiries and self._expiries[0][0] <= now:
                _, old = heapq.heappop(self._expiries)
                self._seen.pop(old, None)
            if jti in self._seen:
                raise GeoAuthError("token already used")
            self._seen[jti] = expires
            heapq.heappush(self._expiries, (expires, jti))
