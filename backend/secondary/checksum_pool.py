"""Checksums of many local files, computed in worker processes.

Hashing a small blob is mostly Python work around the hash (open, read,
close), which threads do one at a time under the GIL; processes do it on
every core. The verification threads put their paths on one shared queue;
each worker process has a feeder thread here that sends it the next chunk
of paths (from whichever requests are waiting) while it still hashes the
previous one, so a worker never waits for a round trip and many small
requests travel as a few messages (bench/verification.py).

A worker reads its paths from a pipe and ends when the pipe closes, so the
workers go with their engine however it ends. If a worker cannot be started
or dies, its feeder hashes in this process instead: slower, never wrong.
"""
from __future__ import annotations

import collections
import errno
import logging
import math
import multiprocessing
import os
import threading

from backend.framework.checksum import file_checksum

log = logging.getLogger(__name__)

CHUNK = 128         # at most this many paths per message to a worker
IN_FLIGHT = 2       # messages a worker may hold: one hashing, one waiting
SEND_AHEAD_MIN = 32  # paths that must wait before a busy worker gets a second
                     # message (many small files; a few large ones go to
                     # whichever worker is free)


def checksums(paths: list[str]) -> list[str | OSError]:
    """Each file's checksum, or the OSError that prevented it."""
    results: list[str | OSError] = []
    for path in paths:
        try:
            results.append(file_checksum(path))
        except OSError as exc:
            results.append(OSError(exc.errno, exc.strerror or str(exc)))
        except ValueError as exc:  # a path no file can have (a NUL byte)
            results.append(OSError(errno.EINVAL, str(exc)))
    return results


def _serve(connection) -> None:
    """A worker process: hash each list of paths received, until the pipe
    closes (the pool closed it, or the engine's process is gone)."""
    try:
        while (paths := connection.recv()) is not None:
            connection.send(checksums(paths))
    except (EOFError, OSError):
        pass


class _Request:
    """One caller's paths; feeders fill in `results` piece by piece."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.results: list = [None] * len(paths)
        self.missing = len(paths)
        self.done = threading.Event()


class ChecksumPool:
    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(1, os.cpu_count() or 1)
        self._pending: collections.deque = collections.deque()  # [request, next index]
        self._pending_paths = 0
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._feeders: list[threading.Thread] = []
        self._processes: list = []
        self._closed = False

    def checksums(self, paths: list[str]) -> list[str | OSError]:
        if not paths:
            return []
        request = _Request(paths)
        with self._work:
            if self._closed:
                return checksums(paths)
            if not self._feeders:
                self._start_feeders()
            self._pending.append([request, 0])
            self._pending_paths += len(paths)
            self._work.notify_all()
        request.done.wait()
        return request.results

    def worker_pids(self) -> list[int]:
        """Worker processes alive now."""
        with self._lock:
            return [p.pid for p in self._processes if p is not None and p.is_alive()]

    def close(self) -> None:
        """Finish what was asked, then end the workers; later calls hash in
        the calling thread."""
        with self._work:
            self._closed = True
            self._work.notify_all()
            feeders = list(self._feeders)
        for feeder in feeders:
            feeder.join()

    # --- feeders ------------------------------------------------------------------

    def _start_feeders(self) -> None:
        for index in range(self.workers):
            self._processes.append(None)
            feeder = threading.Thread(target=self._feed, args=(index,), daemon=True,
                                      name=f"checksum-feeder-{index}")
            self._feeders.append(feeder)
            feeder.start()

    def _take(self, busy: bool) -> list[tuple[_Request, int, int]]:
        """The next chunk of waiting paths as (request, start, end) pieces,
        at most an even share per worker. For an idle worker (not `busy`),
        blocks until there is work or the pool closes."""
        with self._work:
            while not busy and not self._pending and not self._closed:
                self._work.wait()
            if busy and self._pending_paths < SEND_AHEAD_MIN:
                return []
            wanted = min(CHUNK, math.ceil(self._pending_paths / self.workers))
            pieces = []
            while self._pending and wanted > 0:
                entry = self._pending[0]
                request, start = entry
                end = min(len(request.paths), start + wanted)
                pieces.append((request, start, end))
                wanted -= end - start
                self._pending_paths -= end - start
                if end == len(request.paths):
                    self._pending.popleft()
                else:
                    entry[1] = end
            return pieces

    def _feed(self, index: int) -> None:
        connection = self._start_worker(index)
        sent: collections.deque = collections.deque()  # pieces the worker is hashing
        while True:
            while len(sent) < IN_FLIGHT:
                pieces = self._take(busy=bool(sent))
                if not pieces:
                    break
                if connection is None:
                    self._deliver(pieces, checksums(_paths(pieces)))
                    continue
                sent.append(pieces)
                try:
                    connection.send(_paths(pieces))
                except Exception as exc:  # any failure leaves the worker unusable
                    connection = self._replace_worker(index, connection, sent, exc)
            if not sent:
                if self._closed:
                    break
                continue
            try:
                results = connection.recv()
            except Exception as exc:
                connection = self._replace_worker(index, connection, sent, exc)
                continue
            self._deliver(sent.popleft(), results)
        self._stop_worker(index, connection)

    def _deliver(self, pieces, results: list) -> None:
        offset = 0
        for request, start, end in pieces:
            request.results[start:end] = results[offset:offset + end - start]
            offset += end - start
            with self._lock:
                request.missing -= end - start
                finished = request.missing == 0
            if finished:
                request.done.set()

    # --- worker processes ---------------------------------------------------------

    def _start_worker(self, index: int):
        """A new worker and this side of its pipe, or None when processes
        cannot be started (hash here)."""
        try:
            # spawn: forking a process that runs threads (the engine, Qt) could
            # copy a held lock into the child.
            context = multiprocessing.get_context("spawn")
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs,), daemon=True,
                                      name=f"geo-checksum-{index}")
            process.start()
            theirs.close()  # the worker's end: once it exits, recv here ends
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("cannot start a checksum process (%s); hashing in this process", exc)
            return None
        with self._lock:
            self._processes[index] = process
        return ours

    def _replace_worker(self, index: int, connection, unanswered: collections.deque,
                        exc: Exception):
        """The worker failed: hash what it had here, start another."""
        log.warning("a checksum process failed (%s); hashing its files in this process",
                    str(exc) or type(exc).__name__)
        while unanswered:
            pieces = unanswered.popleft()
            self._deliver(pieces, checksums(_paths(pieces)))
        self._stop_worker(index, connection)
        return self._start_worker(index)

    def _stop_worker(self, index: int, connection) -> None:
        if connection is not None:
            try:
                connection.send(None)
            except (OSError, ValueError):
                pass
            try:
                connection.close()
            except OSError:
                pass
        with self._lock:
            process, self._processes[index] = self._processes[index], None
        if process is not None:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()


def _paths(pieces) -> list[str]:
    return [path for request, start, end in pieces for path in request.paths[start:end]]
