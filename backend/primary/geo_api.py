"""The primary's Geo API (aiohttp), every call authenticated with GL-Geo.

  GET  /api/v4/geo/retrieve/<replicable>/<id>      the blob (FILE_NOT_FOUND when gone)
  GET  /api/v4/geo/events?after=N&limit=M           event log after a cursor
  POST /api/v4/geo/events/find?<scope>  {"ids": [...]}  those log ids that exist (gaps)
  GET  /api/v4/geo/replicables/<replicable>?after_id=N&batch_size=M&<scope>
  GET  /api/v4/geo/replicables/<replicable>/count?<scope>  records in the scope
  POST /api/v4/geo/replicables/<replicable>/states  {"ids": [...]} primary checksums
  POST /api/v4/geo/status                           a secondary's status report
Database work runs on worker threads so the event loop keeps serving.
"""
from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import stat

from aiohttp import web

from backend.framework.geo_auth import GeoAuthError, request_data, retrieve_data
from backend.framework.replicator import FileStore
from backend.framework.scope import ScopeError, SyncScope
from backend.framework.site_identity import SiteNameTaken
from backend.framework.states import VerificationState
from backend.object_store.errors import ObjectStoreError
from backend.primary import events, replicables_query

log = logging.getLogger(__name__)
# One line per request: method, path, status, authenticated secondary.
access_log = logging.getLogger("backend.primary.access")
PEER = web.RequestKey("geo_peer", str)

MAX_STATE_IDS = 10_000
MAX_BODY = 8 * 1024 * 1024
INLINE_BODY = 1 << 20  # blobs up to this size are read and sent from memory


def json_error(status: int, message: str, **extra) -> web.Response:
    return web.json_response({"message": message, **extra}, status=status)


@web.middleware
async def errors_as_json(request: web.Request, handler):
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    except GeoAuthError as exc:
        response = json_error(401, f"401 Unauthorized: {exc}")
    except (ScopeError, ValueError) as exc:
        response = json_error(400, f"400 Bad request: {exc}")
    except Exception:  # never leak a traceback to a client
        log.exception("Geo API request %s %s failed", request.method, request.path)
        response = json_error(500, "500 Internal Server Error")
    access_log.info("%s %s %s %s", request.method, request.path, response.status,
                    request.get(PEER, "-"))
    if isinstance(response, web.HTTPException):
        raise response
    return response


def read_if_small(path) -> bytes | None:
    """A regular file's bytes if it is at most INLINE_BODY long, else None
    (served with sendfile); raises IsADirectoryError for anything else.
    O_NONBLOCK: opening a FIFO put in the storage must not hang the thread."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise IsADirectoryError(path)
        if status.st_size > INLINE_BODY:
            return None
        chunks = []
        while chunk := os.read(descriptor, max(status.st_size, 1 << 16)):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


class GeoApi:
    def __init__(self, site) -> None:
        self.site = site

    def application(self) -> web.Application:
        app = web.Application(middlewares=[errors_as_json], client_max_size=MAX_BODY)
        app.add_routes([
            web.get("/api/v4/geo/retrieve/{replicable}/{id}", self.retrieve),
            web.get("/api/v4/geo/events", self.events),
            web.post("/api/v4/geo/events/find", self.find_events),
            web.get("/api/v4/geo/replicables/{replicable}", self.replicables),
            web.get("/api/v4/geo/replicables/{replicable}/count", self.count),
            web.post("/api/v4/geo/replicables/{replicable}/states", self.states),
            web.post("/api/v4/geo/status", self.status),
        ])
        return app

    # --- helpers ------------------------------------------------------------

    def _authenticate(self, request: web.Request, data: dict):
        peer = self.site.authenticator.authenticate(request.headers.get("Authorization"), data)
        request[PEER] = peer.name
        return peer

    async def _authenticate_request(self, request: web.Request, body: bytes = b""):
        data = request_data(request.method, request.path, dict(request.query), body)
        return self._authenticate(request, data)

    def _replicator(self, request: web.Request):
        name = request.match_info["replicable"]
        replicator = self.site.replicators_by_name.get(name)
        if replicator is None:
            raise web.HTTPNotFound(text=json.dumps({"message": f"unknown replicable {name!r}"}),
                                   content_type="application/json")
        return replicator

    @staticmethod
    def _int(value: str | None, name: str, default: int | None = None) -> int:
        if value is None or value == "":
            if default is None:
                raise ValueError(f"{name} is required")
            return default
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{name} must be an integer") from None

    # --- endpoints ------------------------------------------------------------

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["replicable"]
        try:
            model_id = int(request.match_info["id"])
        except ValueError:
            return json_error(400, "400 Bad request: id must be an integer")
        self._authenticate(request, retrieve_data(name, model_id))
        replicator = self._replicator(request)
        found = await asyncio.to_thread(self._find_blob, replicator, model_id)
        if found is None:
            return json_error(404, "404 Not found")
        row, path, body = found
        headers = {"X-Geo-File-Store": str(row["file_store"]),
                   "X-Geo-Verification-State": str(row["verification_state"]),
                   "X-Geo-Checksum": row["checksum"] or ""}
        if row["file_store"] == FileStore.REMOTE:
            return await self._object(request, replicator, model_id, row, headers, body)
        if path is None:
            return json_error(404, f"{replicator.graphql_name} #{model_id} file not found",
                              geo_code="FILE_NOT_FOUND")
        if body is not None:
            return web.Response(body=body, headers=headers,
                                content_type="application/octet-stream")
        return web.FileResponse(path, headers=headers)

    def _find_blob(self, replicator, model_id: int):
        """(state row, path or None if the file is missing, the bytes of a
        small local file or None; for an object-stored blob, its presigned
        URL, or None to stream it, or False for a key that cannot be an
        object's) in one trip to a worker thread: most blobs
        are small, and reading them here costs less than the two more trips
        and the sendfile set-up of a FileResponse."""
        record = self.site.blob_for_download(replicator, model_id)
        if record is None:
            return None
        row, path = record
        if row["file_store"] == FileStore.REMOTE:
            # The presigned URL (no request to the service: it is signed here).
            bucket = self.site.bucket
            if bucket is None or self.site.config.object_store.proxy_download:
                return row, None, None
            try:
                return row, None, bucket.presigned_url(row["file"])
            except ObjectStoreError:
                return row, None, False
        if path is None:
            return row, None, None
        try:
            return row, path, read_if_small(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return row, None, None

    async def _object(self, request: web.Request, replicator, model_id: int, row: dict,
                      headers: dict, url: str | None) -> web.StreamResponse:
        """An object-stored blob: as GitLab does, a redirect to a presigned
        URL of the bucket, which the secondary fetches without its Geo
        credentials; with `proxy_download`, its bytes streamed from the
        bucket through this site."""
        if url is False:
            return json_error(404, f"{replicator.graphql_name} #{model_id} file not found",
                              geo_code="FILE_NOT_FOUND")
        if url is not None:
            # Not web.HTTPFound: it passes the URL through yarl, which decodes
            # %3D, %40 and the like, and the signature covers the text.
            return web.Response(status=302, headers={**headers, "Location": url})
        bucket = self.site.bucket
        if bucket is None:
            return json_error(503, "503 Service Unavailable: object storage is not "
                                   "configured on the primary")
        try:
            size, pieces = await asyncio.to_thread(bucket.open_read, row["file"])
        except ObjectStoreError as exc:
            if exc.errno == errno.ENOENT:
                return json_error(404, f"{replicator.graphql_name} #{model_id} file not found",
                                  geo_code="FILE_NOT_FOUND")
            log.warning("object storage read for %s #%s failed: %s",
                        replicator.title, model_id, exc)
            return json_error(503, f"503 Service Unavailable: {exc}")
        response = web.StreamResponse(headers={**headers,
                                               "Content-Type": "application/octet-stream"})
        response.content_length = size
        await response.prepare(request)
        try:
            while piece := await asyncio.to_thread(next, pieces, b""):
                await response.write(piece)
        except ObjectStoreError as exc:
            # Headers are gone: cut the body short so the secondary sees a
            # truncated download, never a complete-looking one.
            log.warning("object storage read for %s #%s broke off: %s",
                        replicator.title, model_id, exc)
            if request.transport is not None:
                request.transport.abort()
            return response
        finally:
            pieces.close()
        await response.write_eof()
        return response

    async def events(self, request: web.Request) -> web.Response:
        await self._authenticate_request(request)
        after = self._int(request.query.get("after"), "after", 0)
        limit = self._int(request.query.get("limit"), "limit", 100)
        scope = SyncScope.from_params(request.query)
        rows = await asyncio.to_thread(events.read_after, self.site.engine, after, limit)
        await asyncio.to_thread(self._mark_scope, rows, scope)
        last_id, last_at = await asyncio.to_thread(events.last_event, self.site.engine)
        return web.json_response({
            "events": rows, "last_event_id": last_id,
            "last_event_timestamp": int(last_at.timestamp()) if last_at else None})

    async def find_events(self, request: web.Request) -> web.Response:
        """The events of the given log ids that exist now: a secondary
        asking for the ids its cursor passed without seeing."""
        body = await request.read()
        await self._authenticate_request(request, body)
        ids = _ids_of(body)
        if len(ids) > events.MAX_READ:
            raise ValueError(f"at most {events.MAX_READ} event ids per request")
        scope = SyncScope.from_params(request.query)
        rows = await asyncio.to_thread(events.find, self.site.engine, ids)
        await asyncio.to_thread(self._mark_scope, rows, scope)
        return web.json_response({"events": rows})

    def _mark_scope(self, rows: list[dict], scope: SyncScope) -> None:
        """Tell the secondary which `created` records are in its scope."""
        for name, replicator in self.site.replicators_by_name.items():
            ids = [row["payload"].get("model_record_id") for row in rows
                   if row["replicable_name"] == name and row["event_name"] == events.CREATED]
            ids = [i for i in ids if isinstance(i, int)]
            in_scope = replicables_query.in_scope_ids(self.site.engine, replicator, scope, ids)
            for row in rows:
                if row["replicable_name"] == name and row["event_name"] == events.CREATED:
                    row["in_scope"] = row["payload"].get("model_record_id") in in_scope

    async def replicables(self, request: web.Request) -> web.Response:
        await self._authenticate_request(request)
        replicator = self._replicator(request)
        scope = SyncScope.from_params(request.query)
        after_id = self._int(request.query.get("after_id"), "after_id", 0)
        batch = self._int(request.query.get("batch_size"), "batch_size",
                          replicables_query.MAX_BATCH)
        result = await asyncio.to_thread(replicables_query.list_range, self.site.engine,
                                         replicator, scope, after_id, batch)
        return web.json_response(result)

    async def count(self, request: web.Request) -> web.Response:
        """How many records of a type a secondary of this scope replicates:
        what its registries must number once it has caught up."""
        await self._authenticate_request(request)
        replicator = self._replicator(request)
        scope = SyncScope.from_params(request.query)
        total = await asyncio.to_thread(replicables_query.count_in_scope, self.site.engine,
                                        replicator, scope)
        return web.json_response({"count": total})

    async def states(self, request: web.Request) -> web.Response:
        body = await request.read()
        await self._authenticate_request(request, body)
        replicator = self._replicator(request)
        ids = _ids_of(body)
        if len(ids) > MAX_STATE_IDS:
            raise ValueError(f"at most {MAX_STATE_IDS} ids per request")
        found = await asyncio.to_thread(replicables_query.states, self.site.engine,
                                        replicator, ids)
        return web.json_response({"states": {str(k): v for k, v in found.items()}})

    async def status(self, request: web.Request) -> web.Response:
        body = await request.read()
        peer = await self._authenticate_request(request, body)
        try:
            status = json.loads(body)
            if not isinstance(status, dict):
                raise TypeError
        except (ValueError, TypeError, RecursionError):
            raise ValueError("body must be a JSON object") from None
        try:
            await asyncio.to_thread(self.site.store_secondary_status, peer.name, status)
        except SiteNameTaken as exc:
            return web.json_response({"message": str(exc), "geo_code": "SITE_NAME_TAKEN"},
                                     status=409)
        return web.json_response({"stored": True}, status=201)


def _ids_of(body: bytes) -> list[int]:
    """The `ids` of a `{"ids": [integers]}` body; ValueError (a 400) otherwise."""
    try:
        ids = json.loads(body)["ids"]
        if not isinstance(ids, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise TypeError
    except (ValueError, KeyError, TypeError, RecursionError):
        raise ValueError('body must be {"ids": [integers]}') from None
    return ids


def verification_succeeded(row: dict) -> bool:
    return row.get("verification_state") == VerificationState.SUCCEEDED
