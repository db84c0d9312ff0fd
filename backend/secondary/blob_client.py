"""Blob downloads from the primary's Geo API on an asyncio event loop (aiohttp).

Why not the urllib3 client of `geo_client.py`: a blob is one small request
per record, and the engine makes hundreds a second. urllib3 spends most of
its CPU (and GIL) per request in http.client's header parsing; aiohttp's
parser is compiled, about a third of the cost (docs/PERFORMANCE.md, step
8). Handing each request from a thread to a loop and back costs most of
that gain again, so the sync workers are coroutines on the loop themselves
(`sync_workers.py`).

Every request carries a GL-Geo token bound to it, like the JSON calls.
A body is handed to `consume` in pieces of up to about 1 MiB.
"""
from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Awaitable, Callable
from urllib.parse import urljoin, urlsplit

import aiohttp
from yarl import URL

from backend.framework.geo_auth import authorization_header, request_data, retrieve_data
from backend.secondary.geo_client import GeoApiError, PrimaryUnreachable, api_error

READ_SIZE = 1 << 20
REDIRECTS = (301, 302, 303, 307, 308)
MAX_ERROR_BODY = 64 * 1024
PROBE_AFTER = 2**62  # an event id above every real one: the probe reads no event


@dataclass(frozen=True)
class DownloadHeaders:
    file_store: int | None
    verification_state: int | None
    checksum: str | None


class BlobClient:
    """Must be opened and used on one event loop."""

    def __init__(self, primary_url: str, access_key: str, secret: str,
                 max_connections: int | None = 16, timeout: float = 60.0) -> None:
        """`max_connections` None: as many as requests at once (the engine's
        sync workers bound them, however many a capacity change makes)."""
        self.base = primary_url.rstrip("/") + "/"
        self.access_key = access_key
        self._secret = secret
        self.max_connections = max_connections
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> "BlobClient":
        # sock_read: like urllib3's read timeout, the longest wait for data,
        # so a large blob that keeps streaming never times out.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout,
                                        sock_read=self.timeout)
        # read_bufsize: aiohttp stops reading a connection once twice this
        # is buffered; at its default of 64 KiB a large blob streams in
        # thousands of pauses and resumes.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.max_connections or 0),
            timeout=timeout, cookie_jar=aiohttp.DummyCookieJar(), read_bufsize=READ_SIZE)
        return self

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "BlobClient":
        return await self.open()

    async def __aexit__(self, *_exc) -> None:
        await self.close()

    async def download(self, replicable_name: str, model_id: int,
                       consume: Callable[[bytes], Awaitable[None]],
                       on_length: Callable[[int | None, DownloadHeaders], None]
                       = lambda *_: None) -> DownloadHeaders:
        """Stream one blob into `consume`; raises GeoApiError on a non-2xx
        answer and PrimaryUnreachable when the exchange breaks. `on_length`
        gets the body's announced size and the primary's headers before the
        first byte is read (and may raise to refuse it)."""
        url = f"{self.base}api/v4/geo/retrieve/{replicable_name}/{int(model_id)}"
        header = authorization_header(self.access_key, self._secret,
                                      retrieve_data(replicable_name, model_id))
        try:
            async with self._session.get(url, allow_redirects=False, headers={
                    "Authorization": header, "X-Sendfile-Type": "X-Sendfile"}) as response:
                headers = _download_headers(response.headers)
                if response.status not in REDIRECTS:
                    await _stream(response, consume, on_length, headers)
                    return headers
                location = response.headers.get("Location", "")
            # Object storage: a presigned URL, followed without the Geo
            # credentials and byte for byte (encoded=True: yarl would
            # otherwise re-quote it, and its signature covers the text).
            if not urlsplit(location).scheme:
                location = urljoin(self.base, location)
            if urlsplit(location).scheme not in ("http", "https"):
                raise GeoApiError(response.status, "Redirect to an invalid location")
            async with self._session.get(URL(location, encoded=True),
                                         allow_redirects=False) as redirected:
                await _stream(redirected, consume, on_length, headers)
            return headers
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise PrimaryUnreachable(reason(exc)) from exc

    async def probe(self) -> None:
        """One small authenticated request (the newest event, none read):
        returns if the primary answers 2xx, raises GeoApiError or
        PrimaryUnreachable otherwise. For the circuit breaker."""
        path = "/api/v4/geo/events"
        query = {"after": str(PROBE_AFTER), "limit": "1"}
        header = authorization_header(self.access_key, self._secret,
                                      request_data("GET", path, query, b""))
        try:
            async with self._session.get(
                    self.base + path.lstrip("/"), params=query, allow_redirects=False,
                    headers={"Authorization": header},
                    timeout=aiohttp.ClientTimeout(total=self.timeout)) as response:
                if not 200 <= response.status < 300:
                    raise api_error(response.status, await _error_body(response))
                await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise PrimaryUnreachable(reason(exc)) from exc


async def _stream(response: aiohttp.ClientResponse, consume, on_length,
                  headers: DownloadHeaders) -> None:
    if not 200 <= response.status < 300:
        data = await _error_body(response)
        raise api_error(response.status, data)
    expected = response.content_length
    on_length(expected, headers)
    received = 0
    parts: list[bytes] = []
    buffered = 0
    try:
        while True:
            part = await response.content.readany()
            if part:
                parts.append(part)
                buffered += len(part)
            if parts and (buffered >= READ_SIZE or not part):
                chunk = parts[0] if len(parts) == 1 else b"".join(parts)
                parts, buffered = [], 0
                received += len(chunk)
                await consume(chunk)
            if not part:
                break
    except aiohttp.ClientPayloadError:
        raise PrimaryUnreachable(_truncated(received + buffered, expected)) from None
    if expected is not None and received != expected:
        raise PrimaryUnreachable(_truncated(received, expected))


def _truncated(received: int, expected: int | None) -> str:
    if expected is None:
        return f"truncated body: the connection broke after {received} bytes"
    return f"truncated body: {received} of {expected} bytes received"


async def _error_body(response: aiohttp.ClientResponse):
    try:
        data = await response.content.read(MAX_ERROR_BODY)
        return json.loads(data) if data else {}
    except (ValueError, aiohttp.ClientError, asyncio.TimeoutError):
        return {}


def _download_headers(headers) -> DownloadHeaders:
    def number(name):
        value = headers.get(name)
        return int(value) if value and value.lstrip("-").isdigit() else None

    return DownloadHeaders(number("X-Geo-File-Store"), number("X-Geo-Verification-State"),
                           headers.get("X-Geo-Checksum") or None)


def reason(exc: BaseException) -> str:
    """One readable line for a failed exchange with the primary."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "connection timed out"
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's read timeouts are these too
        return "read timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        # asyncio's strerror names the address; the errno's text is the reason.
        number = exc.os_error.errno
        return f"cannot connect: {os.strerror(number) if number else 'connection failed'}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the primary closed the connection without answering"
    if isinstance(exc, OSError) and exc.strerror:  # ClientOSError: reset, refused...
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else exc.__class__.__name__
