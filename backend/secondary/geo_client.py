"""The secondary's client for the primary's Geo API (urllib3, pooled).

Every request carries a GL-Geo token bound to it. Blob downloads stream in
1 MiB reads straight into a file object given by the caller.
"""
from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import BinaryIO, Callable
from urllib.parse import urlencode, urljoin, urlsplit

import urllib3

from backend.api.geo_auth import authorization_header, request_data, retrieve_data

READ_SIZE = 1 << 20
TIMEOUT = urllib3.Timeout(connect=60.0, read=60.0)


class GeoApiError(Exception):
    """The primary answered with an error status."""

    def __init__(self, status: int, message: str, geo_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.geo_code = geo_code


class PrimaryUnreachable(Exception):
    """No answer from the primary (refused, reset, timed out)."""


@dataclass(frozen=True)
class DownloadHeaders:
    file_store: int | None
    verification_state: int | None
    checksum: str | None


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
            raise GeoApiError(response.status, _message(data, response.status),
                              data.get("geo_code") if isinstance(data, dict) else None)
        return data

    def _request(self, method: str, url: str, **kwargs):
        try:
            return self.http.request(method, url, redirect=False, **kwargs)
        except urllib3.exceptions.HTTPError as exc:
            raise PrimaryUnreachable(_reason(exc)) from exc

    def events(self, after: int, limit: int = 500, scope_params: dict | None = None) -> dict:
        query = {"after": after, "limit": limit, **(scope_params or {})}
        return self._json("GET", "api/v4/geo/events", query)

    def replicables(self, replicable_name: str, after_id: int, batch_size: int,
                    scope_params: dict) -> dict:
        query = {"after_id": after_id, "batch_size": batch_size, **scope_params}
        return self._json("GET", f"api/v4/geo/replicables/{replicable_name}", query)

    def states(self, replicable_name: str, ids: list[int]) -> dict[int, dict]:
        data = self._json("POST", f"api/v4/geo/replicables/{replicable_name}/states",
                          body={"ids": list(ids)})
        return {int(key): value for key, value in data["states"].items()}

    def post_status(self, status: dict) -> None:
        self._json("POST", "api/v4/geo/status", body=status)

    # --- blobs ------------------------------------------------------------------

    def download(self, replicable_name: str, model_id: int, sink: BinaryIO,
                 on_chunk: Callable[[bytes], None] | None = None) -> DownloadHeaders:
        """Stream one blob into `sink`; raises GeoApiError on non-2xx."""
        path = f"api/v4/geo/retrieve/{replicable_name}/{model_id}"
        header = authorization_header(self.access_key, self._secret,
                                      retrieve_data(replicable_name, model_id))
        response = self._request("GET", urljoin(self.base, path),
                                 headers={"Authorization": header,
                                          "X-Sendfile-Type": "X-Sendfile"},
                                 preload_content=False)
        completed = False
        try:
            headers = _download_headers(response)
            if response.status in (301, 302, 303, 307, 308):
                # Object storage: follow without the Geo credentials, URL as given.
                location = urljoin(self.base, response.headers.get("Location", ""))
                response.drain_conn()
                response.release_conn()
                if urlsplit(location).scheme not in ("http", "https"):
                    raise GeoApiError(response.status, "Redirect to an invalid location")
                response = self._request("GET", location, preload_content=False)
            if response.status >= 400 or response.status < 200:
                data = _decode(response)
                raise GeoApiError(response.status, _message(data, response.status),
                                  data.get("geo_code") if isinstance(data, dict) else None)
            expected = response.headers.get("Content-Length")
            received = 0
            try:
                while True:
                    chunk = response.read(READ_SIZE)
                    if not chunk:
                        break
                    received += len(chunk)
                    sink.write(chunk)
                    if on_chunk:
                        on_chunk(chunk)
            except urllib3.exceptions.HTTPError as exc:
                raise PrimaryUnreachable(_reason(exc)) from exc
            if expected is not None and received != int(expected):
                raise PrimaryUnreachable(
                    f"truncated body: {received} of {expected} bytes received")
            completed = True
            return headers
        finally:
            if completed:
                response.release_conn()
            else:
                # A connection with unread or broken data must not be reused.
                response.close()


def _download_headers(response) -> DownloadHeaders:
    def number(name):
        value = response.headers.get(name)
        return int(value) if value and value.lstrip("-").isdigit() else None

    checksum = response.headers.get("X-Geo-Checksum") or None
    return DownloadHeaders(number("X-Geo-File-Store"), number("X-Geo-Verification-State"),
                           checksum)


def _decode(response):
    try:
        data = response.data if response.data is not None else response.read()
        return json.loads(data) if data else {}
    except (ValueError, urllib3.exceptions.HTTPError):
        return {}


def _message(data, status: int) -> str:
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return f"HTTP {status}"


def _reason(exc: BaseException) -> str:
    """One readable line for a failed exchange with the primary."""
    errors = urllib3.exceptions
    if isinstance(exc, errors.MaxRetryError) and exc.reason is not None:
        return _reason(exc.reason)
    if isinstance(exc, errors.ReadTimeoutError):
        return "read timed out"
    if isinstance(exc, errors.ConnectTimeoutError):
        return "connection timed out"
    if isinstance(exc, errors.NewConnectionError):
        cause = exc.__cause__ or exc.__context__
        return f"cannot connect: {getattr(cause, 'strerror', None) or 'connection failed'}"
    if isinstance(exc, errors.ProtocolError) and len(exc.args) > 1:
        return _reason(exc.args[1])
    if isinstance(exc, (errors.IncompleteRead, http.client.IncompleteRead)):
        partial = exc.partial if isinstance(exc.partial, int) else len(exc.partial)
        expected = exc.expected if isinstance(exc.expected, int) else 0
        return f"truncated body: {partial} of {partial + expected} bytes received"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the primary closed the connection without answering"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else exc.__class__.__name__
