"""Where a secondary keeps replicated blobs: `<storage>/<plural>/<bucket>/<id>`,
and, when `[secondary.object_store]` is enabled, replicas of object-stored
blobs under the same key (`<plural>/<bucket>/<id>`) in its own bucket.

The path and key are derived from the record id alone, so a replica can be
removed even after its record has vanished from the primary.
"""
from __future__ import annotations

import os
import pathlib
import socket
import time
from typing import Callable

BUCKET = 10_000
TEMP_PREFIX = "tmp_"
# A temporary file of another machine sharing the storage is only taken for
# abandoned once nothing has written to it for this long (downloads stream
# continuously and time out after 60 s without data).
FOREIGN_TEMP_AGE = 600.0


def _host() -> str:
    return socket.gethostname().replace("_", "-")


_prefix: str | None = None  # cached: each blob's temporary name starts with it


def temporary_prefix() -> str:
    """`tmp_<host>_<pid>_`: tells whose download a temporary file is."""
    global _prefix
    if _prefix is None:
        _prefix = f"{TEMP_PREFIX}{_host()}_{os.getpid()}_"
    return _prefix


def _forget_prefix() -> None:
    global _prefix
    _prefix = None


os.register_at_fork(after_in_child=_forget_prefix)  # a child has its own pid


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalStorage:
    def __init__(self, root: str | os.PathLike, bucket=None) -> None:
        self.root = pathlib.Path(root).resolve()
        self._root_text = str(self.root).rstrip("/")
        self.bucket = bucket  # backend.object_store.bucket.Bucket, or None

    def path(self, replicator, model_id: int) -> pathlib.Path:
        return pathlib.Path(self.path_text(replicator, model_id))

    def path_text(self, replicator, model_id: int) -> str:
        """`path` as text, for the per-blob hot paths (pathlib costs ~10 µs)."""
        model_id = int(model_id)
        if model_id <= 0:
            raise ValueError(f"invalid record id {model_id}")
        return f"{self._root_text}/{replicator.plural_name}/{model_id // BUCKET}/{model_id}"

    def object_key(self, replicator, model_id: int) -> str:
        """The replica's key in the secondary's bucket."""
        return self.path_text(replicator, model_id)[len(self._root_text) + 1:]

    def remove(self, replicator, model_id: int) -> bool:
        """Remove the replica wherever it is: the file, and the object when
        there is a bucket (where it lives depended on the primary's
        file_store, which a deleted record no longer tells). Raises
        OSError (ObjectStoreError for the bucket) when either cannot go."""
        if self.bucket is not None:
            self.bucket.delete(self.object_key(replicator, model_id))
        try:
            self.path(replicator, model_id).unlink()
            return True
        except FileNotFoundError:
            return self.bucket is not None

    def temporary_files(self) -> list[pathlib.Path]:
        """Leftover download files (a crash mid-download leaves one)."""
        if not self.root.exists():
            return []
        return [p for p in self.root.rglob(f"{TEMP_PREFIX}*") if p.is_file()]

    def remove_abandoned_temporary_files(
            self, on_error: Callable[[OSError], None] | None = None) -> int:
        """Delete temporary files no live download owns.

        Engines may share the storage (scale-out), so a file is removed only
        when its process on this host is gone, or, for other hosts, when it
        has not been written to for FOREIGN_TEMP_AGE seconds. A file that
        cannot be removed is passed to `on_error` (or raised without one)
        and the walk goes on: it is tried again on the next walk.
        """
        removed = 0
        host = _host()
        now = time.time()
        for path in self.temporary_files():
            parts = path.name[len(TEMP_PREFIX):].split("_")
            try:
                if len(parts) >= 3 and parts[0] == host and parts[1].isdigit():
                    abandoned = int(parts[1]) != os.getpid() and not _pid_alive(int(parts[1]))
                else:
                    abandoned = now - path.stat().st_mtime > FOREIGN_TEMP_AGE
                if abandoned:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                if on_error is None:
                    raise
                on_error(exc)
        return removed
