"""Who may read and who may act through a site's API.

As on GitLab, reads (GraphQL queries, the REST status) need a token: the
site's `api_token`, which may also act (mutations), or its `read_token`,
which only reads. Either comes as `Authorization: Bearer <token>` or
GitLab's `PRIVATE-TOKEN: <token>`. A site with neither configured answers
reads from loopback only, so a fresh install is not open to the network.
`/metrics` answers loopback, and the addresses in `metrics_allow`.
"""
from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

WRITE, READ, WRONG, NONE = "yes", "read", "wrong", "none"  # what a request's token is


def given_token(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    private = request.headers.get("PRIVATE-TOKEN", "").strip()
    return private or None


def token_level(request: web.Request, api_token: str, read_token: str) -> str:
    given = given_token(request)
    if given is None:
        return NONE
    if api_token and hmac.compare_digest(given.encode(), api_token.encode()):
        return WRITE
    if read_token and hmac.compare_digest(given.encode(), read_token.encode()):
        return READ
    return WRONG


def is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    return any(ip in network for network in LOOPBACK)


def read_refusal(request: web.Request, api_token: str, read_token: str) -> str | None:
    """None when the request may read, else why not (for a 401)."""
    level = token_level(request, api_token, read_token)
    if level in (WRITE, READ):
        return None
    if not api_token and not read_token:
        if is_loopback(request.remote):
            return None
        return ("This site answers only on its own machine until it has an api_token or a "
                "read_token; set one and send it as Authorization: Bearer <token>.")
    if level == WRONG:
        return "The token was refused: it is neither this site's api_token nor its read_token."
    return ("This site's API needs a token: Authorization: Bearer <api_token or read_token> "
            "(or the PRIVATE-TOKEN header).")


def metrics_refusal(request: web.Request, allowed: tuple[str, ...]) -> str | None:
    """None when the client may scrape /metrics, else why not (for a 403)."""
    if is_loopback(request.remote):
        return None
    try:
        ip = ipaddress.ip_address((request.remote or "").split("%")[0])
    except ValueError:
        ip = None
    if ip is not None and any(ip in ipaddress.ip_network(entry, strict=False)
                              for entry in allowed):
        return None
    return (f"/metrics answers this machine and the addresses in metrics_allow; "
            f"{request.remote} is not one of them.")


def refused(status: int, message: str, graphql: bool = False) -> web.Response:
    body = {"errors": [{"message": message}]} if graphql else {"message": message}
    return web.json_response(body, status=status)
