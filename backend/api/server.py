"""Running an aiohttp application on its own thread and event loop.

Sites serve HTTP from a background thread so the same code runs headless
(CLI), inside the console and inside tests.
"""
from __future__ import annotations

import asyncio
import logging
import threading

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

log = logging.getLogger(__name__)


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
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
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
