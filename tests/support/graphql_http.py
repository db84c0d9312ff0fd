"""Posting GraphQL to a site over real HTTP (tests of the server itself; the
console's gql client has tests of its own)."""
from __future__ import annotations

import json

import urllib3

from tests.support.sites import READ_TOKEN

HTTP = urllib3.PoolManager()


def post(url: str, query: str, variables: dict | None = None, token: str | None = READ_TOKEN,
         raw: bytes | None = None) -> tuple[int, dict]:
    """`token` None or "": none sent."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = raw if raw is not None else json.dumps({"query": query,
                                                   "variables": variables or {}}).encode()
    response = HTTP.request("POST", url + "/api/graphql", body=body, headers=headers)
    return response.status, json.loads(response.data)


def data(url: str, query: str, variables: dict | None = None, token: str | None = READ_TOKEN):
    status, body = post(url, query, variables, token)
    assert status == 200, body
    assert "errors" not in body, body["errors"]
    return body["data"]


def error_messages(url: str, query: str, variables: dict | None = None,
                   token: str | None = READ_TOKEN) -> list[str]:
    status, body = post(url, query, variables, token)
    assert status == 200, body
    assert body.get("errors"), body
    return [error["message"] for error in body["errors"]]
