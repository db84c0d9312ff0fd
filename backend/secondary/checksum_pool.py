"""Checksums of many local files, computed in worker processes.

Hashing a small blob is mostly Python work around the hash (open, read,
close), which threads do one at a time under the GIL; processes do it on
every core. A batch of paths goes to a worker in one message, so the
messaging costs little next to the files (bench/verification.py).

If the pool cannot be used (it broke, or processes cannot be started), the
files are hashed in the calling thread: slower, never wrong.
"""
from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures.process import BrokenProcessPool

from backend.framework.checksum import file_checksum

log = logging.getLogger(__name__)


def checksums(paths: list[str]) -> list[str | OSError]:
    """Each file's checksum, or the OSError that prevented it."""
    results: list[str | OSError] = []
    for path in paths:
        try:
            results.append(file_checksum(path))
        except OSError as exc:
            results.append(OSError(exc.errno, exc.strerror or str(exc)))
    return results


def _exit_with_parent(parent: int) -> None:
    """In a worker: end when the engine's process is gone (killed, crashed);
    idle workers would otherwise wait on their queue for ever."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class ChecksumPool:
    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(1, os.cpu_count() or 1)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def checksums(self, paths: list[str]) -> list[str | OSError]:
        pool = self._get()
        if pool is not None:
            try:
                return pool.submit(checksums, paths).result()
            except (BrokenProcessPool, RuntimeError, OSError) as exc:
                log.warning("checksum processes failed (%s); hashing in this process", exc)
                self._discard(pool)
        return checksums(paths)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _get(self) -> concurrent.futures.ProcessPoolExecutor | None:
        with self._lock:
            if self._closed:
                return None
            if self._pool is None:
                try:
                    # spawn: forking a process that runs threads (the engine,
                    # Qt) could copy a held lock into the child, and spawned
                    # workers end by themselves when their engine is killed
                    # (forkserver's outlive it).
                    context = multiprocessing.get_context("spawn")
                    self._pool = concurrent.futures.ProcessPoolExecutor(
                        self.workers, mp_context=context, initializer=_exit_with_parent,
                        initargs=(os.getpid(),))
                except (OSError, ValueError) as exc:
                    log.warning("cannot start checksum processes: %s", exc)
                    self._closed = True
                    return None
            return self._pool

    def _discard(self, pool) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)
