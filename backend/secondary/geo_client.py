"""The secondary's client for the primary's JSON Geo API (urllib3, pooled):
events, replicables, states and status reports, called from the engine's
threads. Blobs come through `blob_client.py` on an event loop.

Every request carries a GL-Geo token bound to it.
"""
from __future__ import annotations

import http.client
import json
import socket
from urllib.parse import urlencode, urljoin

import urllib3

from backend.framework.geo_auth import authorization_header, request_data

TIMEOUT = urllib3.Timeout(connect=60.0, read=60.0)


class GeoApiError(Exception):
    """The primary answered with an error status."""

    def __init__(self, status: int, message: str, geo_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.geo_code = geo_code


class PrimaryUnreachable(Exception):
    """No answer from the primary (refused, reset, timed out)."""


class GeoClient:
    def __init__(self, primary_url: str, access_key: str, secret: str,
                 max_connections: int = 16, timeout: urllib3.Timeout = TIMEOUT) -> None:
        self.base = primary_url.rstrip("/") + "/"
        self.access_key = access_key
        self._secret = secret
        self.http = urllib3.PoolManager(num_pools=4, maxsize=max_connections, block=False,
                                        timeout=timeout, retries=False)

    def close(self) -> None:
        self.http.clear()

    # --- JSON endpoints ---------------------------------------------------------

    def _json(self, method: str, path: str, query: dict | None = None,
              body: dict | None = None) -> dict:
        query = {k: str(v) for k, v in (query or {}).items()}
        payload = json.dumps(body).encode() if body is not None else b""
        url_path = "/" + path.lstrip("/")
        header = authorization_header(self.access_key, self._secret,
                                      request_data(method, url_path, query, payload))
        url = urljoin(self.base, path.lstrip("/"))
        if query:
            url += "?" + urlencode(query)
        headers = {"Authorization": header}
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = self._request(method, url, headers=headers, body=payload or None,
                                 preload_content=True)
        data = _decode(response)
        if response.status >= 400:
            raise api_error(response.status, data)
        return data

    def _request(self, method: str, url: str, **kwargs):
        try:
            return self.http.request(method, url, redirect=False, **kwargs)
        except urllib3.exceptions.HTTPError as exc:
            raise PrimaryUnreachable(_reason(exc)) from exc

    def events(self, after: int, limit: int = 500, scope_params: dict | None = None) -> dict:
        query = {"after": after, "limit": limit, **(scope_params or {})}
        return self._json("GET", "api/v4/geo/events", query)

    def find_events(self, ids: list[int], scope_params: dict | None = None) -> list[dict]:
        """The events of these log ids that exist now (the cursor's gaps)."""
        return self._json("POST", "api/v4/geo/events/find", scope_params or {},
                          body={"ids": list(ids)})["events"]

    def replicables(self, replicable_name: str, after_id: int, batch_size: int,
                    scope_params: dict) -> dict:
        query = {"after_id": after_id, "batch_size": batch_size, **scope_params}
        return self._json("GET", f"api/v4/geo/replicables/{replicable_name}", query)

    def count(self, replicable_name: str, scope_params: dict) -> int:
        """Records of the type in the scope, on the primary."""
        return int(self._json("GET", f"api/v4/geo/replicables/{replicable_name}/count",
                              scope_params)["count"])

    def states(self, replicable_name: str, ids: list[int]) -> dict[int, dict]:
        data = self._json("POST", f"api/v4/geo/replicables/{replicable_name}/states",
                          body={"ids": list(ids)})
        return {int(key): value for key, value in data["states"].items()}

    def post_status(self, status: dict) -> None:
        self._json("POST", "api/v4/geo/status", body=status)

    def site_statuses(self) -> list:
        """The primary's site API: every site's latest status."""
        return self._json("GET", "api/v4/geo_sites/status")


def _decode(response):
    try:
        data = response.data if response.data is not None else response.read()
        return json.loads(data) if data else {}
    except (ValueError, urllib3.exceptions.HTTPError):
        return {}


def api_error(status: int, data) -> GeoApiError:
    """The error for an answer of `status` whose decoded body is `data`."""
    if isinstance(data, dict):
        return GeoApiError(status, str(data.get("message") or f"HTTP {status}"),
                           data.get("geo_code"))
    return GeoApiError(status, f"HTTP {status}")


def _reason(exc: BaseException) -> str:
    """One readable line for a failed exchange with the primary."""
    errors = urllib3.exceptions
    if isinstance(exc, errors.MaxRetryError) and exc.reason is not None:
        return _reason(exc.reason)
    if isinstance(exc, errors.ReadTimeoutError):
        return "read timed out"
    # Before ConnectTimeoutError: urllib3 derives NewConnectionError from it,
    # so a refused connection would read as a timeout.
    if isinstance(exc, errors.NewConnectionError):
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, (TimeoutError, socket.timeout)):
            return "connection timed out"
        return f"cannot connect: {getattr(cause, 'strerror', None) or 'connection failed'}"
    if isinstance(exc, errors.ConnectTimeoutError):
        return "connection timed out"
    if isinstance(exc, errors.ProtocolError) and len(exc.args) > 1:
        return _reason(exc.args[1])
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the primary closed the connection without answering"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else exc.__class__.__name__
