"""Free space the engine leaves alone on the replicas' file system.

Before, a full disk failed registries one by one ("No space left on
device"), each backing off on its own, while the site said "Healthy". Now,
as Syncthing stops a folder below its minimum free space: while the free
space is under the reserve, the larger of `min_free_space_mb` and
`min_free_space_percent` of the file system, the engine starts no
download (a sync hold, `engine_control.SyncHolds`), says why, and resumes
by itself once there is room again. Each download is admitted before its
first byte: one that would take the free space under the reserve is not
started, and syncs wait until there is room for it too ("low disk space
(X free, Y needed)"). A blob the file system could never hold above the
reserve fails with the sizes as its reason and backs off like any failure.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

LOW_DISK = "low_disk"  # the sync hold's cause


@dataclass(frozen=True)
class DiskSpace:
    free: int   # bytes an unprivileged writer may still use
    total: int
    reserve: int



class DiskReserve:
    def __init__(self, root: str | os.PathLike, min_free_mb: int, min_free_percent: float) -> None:
        self.root = os.fspath(root)
        self.min_free_bytes = int(min_free_mb) * 1024 * 1024
        self.min_free_percent = float(min_free_percent)
        # Bytes of downloads admitted and not yet in their files: the free
        # space the file system reports does not know them yet.
        self._promised = 0
        # Free bytes the download refused last needs (the reserve and its
        # size): syncs stay paused until there are as many.
        self._needed = 0
        self._lock = threading.Lock()

    def space(self) -> DiskSpace:
        """Free space now, less what admitted downloads will still write.
        Raises OSError if the storage folder cannot be looked at."""
        stats = os.statvfs(self.root)
        total = stats.f_blocks * stats.f_frsize
        reserve = max(self.min_free_bytes, int(total * self.min_free_percent / 100))
        return DiskSpace(max(0, stats.f_bavail * stats.f_frsize - self._promised), total,
                         reserve)

    def low_space_reason(self) -> str | None:
        """Why syncs wait for disk space: the free space is under the
        reserve, or under what the last refused download needs. None once
        there is that much again."""
        with self._lock:
            space = self.space()
            needed = max(space.reserve, self._needed)
            if space.free >= needed:
                self._needed = 0
                return None
            return _low(space.free, needed)

    def admit(self, size: int) -> tuple[str, bool] | None:
        """Before a download of `size` bytes starts: None if it fits above
        the reserve (its bytes are then promised until `written(size)`);
        otherwise (why not, True) when it must wait for space, and
        (why not, False) when this file system can never hold it above the
        reserve: that blob's own failure."""
        with self._lock:
            space = self.space()
            if size > space.total - space.reserve:
                return (f"Not enough disk space for this file: it needs {size_text(size)}, and "
                        f"the file system holds at most {size_text(space.total - space.reserve)}"
                        f" above the reserve of {size_text(space.reserve)}"), False
            needed = max(space.reserve + size, self._needed)
            if space.free < needed:
                self._needed = space.reserve + size
                return _low(space.free, self._needed), True
            self._promised += size
        return None

    def ran_out(self, size: int) -> None:
        """A write failed for want of space (another writer filled the disk):
        syncs wait until there is room for this blob above the reserve."""
        with self._lock:
            space = self.space()
            self._needed = max(self._needed, space.reserve + max(size, 1))

    def written(self, size: int) -> None:
        """An admitted download is in its file, or was given up."""
        with self._lock:
            self._promised -= size


def _low(free: int, needed: int) -> str:
    return f"low disk space ({size_text(free)} free, {size_text(needed)} needed)"


def size_text(size: int) -> str:
    """1,536 -> "1.5 KiB": binary units, one decimal, as `df -h` shows them.
    (The console's table has its own: widgets never import the backend.)"""
    if size < 1024:
        return f"{size} B"
    exponent = min(4, (size.bit_length() - 1) // 10)
    return f"{size / 1024 ** exponent:.1f} {'KMGT'[exponent - 1]}iB"
