"""The API every site serves on its `listen` address (SPEC §6):

  POST /api/graphql  (also /api/v4/graphql, /api/v4/geo/graphql)
  GET  /api/v4/geo_sites               (every site, GitLab's site objects)
  GET  /api/v4/geo_sites/:id/status    (one site's status, by its GeoNode id)
  GET  /api/v4/geo_sites/current/status (this site's: Geo Console's own route)
  GET  /api/v4/geo_sites/status        (every site: the primary's list; a secondary
                                        asks its primary for it)
  GET  /metrics                        (Prometheus)

Reads need the site's api_token or read_token, mutations its api_token;
/metrics answers loopback and `metrics_allow` (`access.py`). Every bad
request is answered with a GraphQL error or a JSON message, never a stack
trace.
"""
from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from backend.api.access import metrics_refusal, read_refusal, refused, token_level
from backend.api.graphql.limits import (GRAPHQL_BUDGET, GRAPHQL_QUEUE, GRAPHQL_THREADS,
                                        MAX_QUERY_BYTES)
from backend.framework.geo_auth import GeoAuthError, request_data
from backend.framework.status_fields import site_id, site_object

GRAPHQL_PATHS = ("/api/graphql", "/api/v4/graphql", "/api/v4/geo/graphql")


class UpstreamUnavailable(Exception):
    """A secondary could not get from its primary what it was asked for; the
    message says why, in plain words."""


class SiteApi:
    def __init__(self, site) -> None:
        self.site = site
        self._endpoint = None  # GraphQLEndpoint, built on the first request
        self._endpoint_lock = threading.Lock()
        # GraphQL's own threads (limits.py): a flood of expensive queries
        # waits for these, never for the threads that serve blobs and status.
        self._graphql_pool = ThreadPoolExecutor(GRAPHQL_THREADS, thread_name_prefix="graphql")
        self._graphql_waiting = 0  # requests on or waiting for those threads

    def routes(self) -> list:
        routes = [web.post(path, self.graphql) for path in GRAPHQL_PATHS]
        routes += [web.get("/api/v4/geo_sites/current/status", self.current_status),
                   web.get("/api/v4/geo_sites/status", self.all_statuses),
                   web.get("/api/v4/geo_sites", self.site_list),
                   web.get(r"/api/v4/geo_sites/{id:\d+}/status", self.status_by_id),
                   web.get("/metrics", self.metrics)]
        return routes

    # --- GraphQL ----------------------------------------------------------------

    def _tokens(self) -> tuple[str, str]:
        return self.site.api_token, getattr(self.site, "read_token", "")

    def _read_refusal(self, request: web.Request) -> str | None:
        return read_refusal(request, *self._tokens())

    async def graphql(self, request: web.Request) -> web.Response:
        if request.content_length and request.content_length > MAX_QUERY_BYTES * 4:
            return _errors(413, "Request body too large.")
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _errors(400, "The body must be JSON: {\"query\": ..., \"variables\": ...}.")
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return _errors(400, "The body must be a JSON object with a \"query\" string.")
        variables = body.get("variables")
        variables = {} if variables is None else variables
        operation = body.get("operationName")
        if not isinstance(variables, dict) or not (operation is None
                                                   or isinstance(operation, str)):
            return _errors(400, "\"variables\" must be an object and \"operationName\" a string.")
        if len(body["query"].encode()) > MAX_QUERY_BYTES:
            return _errors(413, f"The query is longer than {MAX_QUERY_BYTES} bytes.")
        refusal = self._read_refusal(request)
        if refusal:
            return _errors(401, refusal)
        token = token_level(request, *self._tokens())
        if self._graphql_waiting >= GRAPHQL_THREADS + GRAPHQL_QUEUE:
            return _errors(503, "The site is answering many GraphQL requests; "
                                "try again in a moment.")
        self._graphql_waiting += 1
        try:
            running = asyncio.get_running_loop().run_in_executor(
                self._graphql_pool, self._run, body["query"], variables, operation, token)
            result = await asyncio.wait_for(running, GRAPHQL_BUDGET)
        except asyncio.TimeoutError:
            return _errors(503, f"The query did not finish within {GRAPHQL_BUDGET:g} s "
                                "(waiting included); ask for less, or try again.")
        finally:
            self._graphql_waiting -= 1
        return web.json_response(result)

    def _run(self, query: str, variables: dict, operation, token: str) -> dict:
        return self.graphql_endpoint().run(query, variables, operation, token)

    def graphql_endpoint(self):
        """Imported and built on first use (see graphql/endpoint.py)."""
        with self._endpoint_lock:
            if self._endpoint is None:
                from backend.api.graphql.endpoint import GraphQLEndpoint
                self._endpoint = GraphQLEndpoint(self.site)
            return self._endpoint

    # --- REST and metrics ---------------------------------------------------------

    async def current_status(self, request: web.Request) -> web.Response:
        refusal = self._read_refusal(request)
        if refusal:
            return refused(401, refusal)
        status = await asyncio.to_thread(self.site.rest_status)
        return web.json_response(status, dumps=_dumps)

    async def status_by_id(self, request: web.Request) -> web.Response:
        """GitLab's `GET /api/v4/geo_sites/:id/status`: this site's own
        status at once, another's as the primary last stored it."""
        refusal = self._read_refusal(request)
        if refusal:
            return refused(401, refusal)
        wanted = int(request.match_info["id"])
        if wanted == site_id(self.site.name):
            return await self.current_status(request)
        statuses, failure = await self._statuses()
        if failure is not None:
            return failure
        for status in statuses:
            if status.get("geo_node_id") == wanted:
                return web.json_response(status, dumps=_dumps)
        return web.json_response({"message": "404 GeoNode Not Found"}, status=404)

    async def site_list(self, request: web.Request) -> web.Response:
        """GitLab's `GET /api/v4/geo_sites`: a site object for every site,
        `current` for this one."""
        refusal = self._read_refusal(request)
        if refusal:
            return refused(401, refusal)
        statuses, failure = await self._statuses()
        if failure is not None:
            return failure
        return web.json_response([site_object(status, self.site.name)
                                  for status in statuses], dumps=_dumps)

    async def _statuses(self):
        """(every site's status, None), or (None, the answer to give)."""
        try:
            statuses = await asyncio.to_thread(self.site.all_rest_statuses)
        except UpstreamUnavailable as exc:
            return None, web.json_response({"message": str(exc)}, status=502)
        if statuses is None:  # a site that lists no others
            statuses = [await asyncio.to_thread(self.site.rest_status)]
        return statuses, None

    async def all_statuses(self, request: web.Request) -> web.Response:
        """The primary answers itself; a secondary asks its primary (which
        takes its GL-Geo token, as the Geo API does)."""
        refusal = self._read_refusal(request)
        if refusal and not await asyncio.to_thread(self._signed_by_a_secondary, request):
            return refused(401, refusal)
        try:
            statuses = await asyncio.to_thread(self.site.all_rest_statuses)
        except UpstreamUnavailable as exc:
            return web.json_response({"message": str(exc)}, status=502)
        if statuses is None:
            return web.json_response(
                {"message": "Only the primary lists every site; ask it, or use "
                            "/api/v4/geo_sites/current/status."}, status=404)
        return web.json_response(statuses, dumps=_dumps)

    def _signed_by_a_secondary(self, request: web.Request) -> bool:
        authenticator = getattr(self.site, "authenticator", None)
        header = request.headers.get("Authorization", "")
        if authenticator is None or not header.startswith("GL-Geo "):
            return False
        try:
            authenticator.authenticate(header, request_data(
                request.method, request.path, dict(request.query), b""))
        except GeoAuthError:
            return False
        return True

    async def metrics(self, request: web.Request) -> web.Response:
        refusal = metrics_refusal(request, self.site.config.metrics_allow)
        if refusal:
            return refused(403, refusal)
        body = await asyncio.to_thread(generate_latest, self.site.metrics_registry)
        response = web.Response(body=body)
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response


def _errors(status: int, message: str) -> web.Response:
    return web.json_response({"errors": [{"message": message}]}, status=status)


def _dumps(value) -> str:
    return json.dumps(value, default=str)
