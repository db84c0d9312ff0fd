"""A TCP proxy that plays a slow link: every answer from upstream reaches
the client `delay` seconds late. It counts the connections clients open
and the HTTP requests they send, to tell a client that reuses its
connection from one that opens one per request, and keeps the head
(request line and headers) of each request that starts a read from the
client, in `heads`."""
from __future__ import annotations

import asyncio
import threading


class DelayProxy:
    def __init__(self, upstream_port: int, delay: float) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.connections = 0
        self.requests = 0
        self.heads: list[bytes] = []
        self.port = 0
        self._writers: set = set()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delay-proxy", daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    async def _handle(self, client_reader, client_writer) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, upstream_writer}
        await asyncio.gather(self._pipe(client_reader, upstream_writer, 0.0),
                             self._pipe(upstream_reader, client_writer, self.delay),
                             return_exceptions=True)

    async def _pipe(self, reader, writer, delay: float) -> None:
        try:
            while data := await reader.read(65536):
                if not delay:
                    self.requests += data.count(b" HTTP/1.1\r\n")
                    if data[:4] in (b"GET ", b"PUT ", b"HEAD", b"POST", b"DELE"):
                        self.heads.append(data.partition(b"\r\n\r\n")[0])
                else:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            self._writers.discard(writer)

    def stop(self) -> None:
        """Close every connection (so no client waits on it), then stop."""
        def shut():
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            self._loop.call_later(0.2, self._loop.stop)
        self._loop.call_soon_threadsafe(shut)
        self._thread.join(10)
