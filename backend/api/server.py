"""Running an aiohttp application on its own thread and event loop.

Sites serve HTTP from a background thread so the same code runs headless
(CLI), inside the console and inside tests.

A client has HEADER_TIMEOUT seconds from connecting (or from the end of its
last answer) to send a whole request head, and BODY_TIMEOUT seconds to send
the body: before, 50 connections sending a header line a minute stayed open
as long as they liked.
"""
from __future__ import annotations

import asyncio
import logging
import threading

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

log = logging.getLogger(__name__)
HEADER_TIMEOUT = 15.0  # seconds: aiohttp's keep-alive timeout, which runs until a request is read
BODY_TIMEOUT = 30.0    # seconds to send a request's body


class BadRequestsInOneLine(logging.Filter):
    """aiohttp logs a request it cannot parse (a header line over 8 KiB, a
    malformed request line) with its traceback, once per request; such a
    request is the client's fault, so it becomes one warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BadHttpMessage):
            record.msg, record.args = "refused a malformed HTTP request: %s", (
                " ".join(str(error.message).split())[:200],)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


logging.getLogger("aiohttp.server").addFilter(BadRequestsInOneLine())


class ServerError(RuntimeError):
    pass


@web.middleware
async def body_in_time(request: web.Request, handler):
    """Read a request's body within BODY_TIMEOUT (aiohttp keeps it for the
    handler), or answer 408 and close the connection."""
    if request.body_exists:
        try:
            await asyncio.wait_for(request.read(), BODY_TIMEOUT)
        except asyncio.TimeoutError:
            log.warning("closed a connection from %s: its request body took over %g s",
                        request.remote, BODY_TIMEOUT)
            return web.json_response(
                {"message": f"The request body did not arrive within {BODY_TIMEOUT:g} s."},
                status=408, headers={"Connection": "close"})
    return await handler(request)


class BackgroundServer:
    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "BackgroundServer":
        self._thread = threading.Thread(target=self._run, name=f"http-{self.host}",
                                        daemon=True)
        self._thread.start()
        self._started.wait(timeout=30)
        if self._error is not None:
            raise ServerError(f"cannot listen on {self.host}:{self.requested_port}: "
                              f"{self._error}") from self._error
        if self.port is None:
            raise ServerError(f"server on {self.host}:{self.requested_port} did not start")
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    async def _serve(self) -> None:
        self.app.middlewares.append(body_in_time)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     keepalive_timeout=HEADER_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.requested_port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets  # the bound socket tells the real port
        self.port = sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=15)
        self._thread = None
