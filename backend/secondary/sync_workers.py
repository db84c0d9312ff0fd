"""The engine's sync workers: coroutines on one event loop thread.

`count` workers (`files_max_capacity`, changed while running by
`resize`) take claimed syncs from the
ClaimedWork that the sync scheduler fills, and run `handle(store, claim)`
for each, one at a time per worker. `handle` returns True when it passed
the claim on (the engine's file writer), which then marks it done. A blob download is mostly waiting for
the primary, and on a loop that waiting costs no thread and no hand-over
between threads (see blob_client.py for what that saves).

`open_resources` and `close_resources` run on the loop at start and stop
(the HTTP session lives there). Stopping lets downloads in flight finish
until the deadline, then cancels them; claims not yet taken stay in the
ClaimedWork for the engine to hand back.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Awaitable, Callable

from backend.secondary.claimed_work import ClaimedWork

log = logging.getLogger(__name__)


class SyncWorkers:
    def __init__(self, work: ClaimedWork, count: int,
                 handle: Callable[..., Awaitable[None]],
                 on_error: Callable[[Exception], None],
                 open_resources: Callable[[], Awaitable[None]],
                 close_resources: Callable[[], Awaitable[None]]) -> None:
        self.work = work
        self.count = max(1, count)
        self.handle = handle
        self.on_error = on_error
        self.open_resources = open_resources
        self.close_resources = close_resources
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready: asyncio.Event | None = None  # claims may be waiting
        self._stopping = False
        self._workers: dict[int, asyncio.Task] = {}  # by index
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stopping = False
        self._start_error = None
        self._started.clear()
        self._thread = threading.Thread(target=self._run, name="geo-sync-workers", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            self._thread.join()
            self._thread = None
            raise self._start_error

    def claims_added(self) -> None:
        """Called by the scheduler thread after it added claims."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop closed meanwhile: stopping
                pass

    def stop(self, timeout: float) -> None:
        """Finish downloads in flight (cancelled after `timeout` seconds)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        deadline = time.monotonic() + timeout
        try:
            loop.call_soon_threadsafe(self._begin_stop, deadline)
        except RuntimeError:
            pass
        thread.join(timeout=max(0.1, timeout + 5))
        if not thread.is_alive():
            self._thread = None

    # --- on the loop ---------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start() when it has not returned
            if not self._started.is_set():
                self._start_error = exc
            else:
                log.exception("sync workers stopped")
        finally:
            self._started.set()
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _main(self) -> None:
        self._ready = asyncio.Event()
        await self.open_resources()
        try:
            self._workers = {index: asyncio.create_task(self._worker(index))
                             for index in range(self.count)}
            self._started.set()
            self._wake()  # claims added before the loop ran
            while True:  # until every worker has ended, those a resize added too
                running = [task for task in self._workers.values() if not task.done()]
                if not running:
                    break
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await self.close_resources()

    def resize(self, count: int) -> None:
        """`count` workers from now on: more start at once; the ones above
        `count` end after the download they are doing."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self.count = max(1, count)
            return
        try:
            loop.call_soon_threadsafe(self._resize, max(1, count))
        except RuntimeError:  # the loop closed meanwhile: stopping
            pass

    def _resize(self, count: int) -> None:
        self.count = count
        if self._stopping:
            return
        for index in range(count):
            task = self._workers.get(index)
            if task is None or task.done():
                self._workers[index] = asyncio.create_task(self._worker(index))
        self._wake()  # the ones above `count` that wait for claims end now

    def _wake(self) -> None:
        if self._ready is not None:
            self._ready.set()

    def _begin_stop(self, deadline: float) -> None:
        self._stopping = True
        self._wake()
        self._loop.call_later(max(0.0, deadline - time.monotonic()), self._cancel)

    def _cancel(self) -> None:
        for task in self._workers.values():
            task.cancel()

    async def _worker(self, index: int) -> None:
        while not self._stopping and index < self.count:
            item = self.work.take_nowait()
            if item is None:
                self._ready.clear()
                item = self.work.take_nowait()  # added between the two looks
                if item is None:
                    await self._ready.wait()
                    continue
            passed_on = False
            try:
                passed_on = await self.handle(*item)
            except Exception as exc:  # a bug: the claim times out
                self.on_error(exc)
            finally:
                if not passed_on:
                    self.work.done(1)
