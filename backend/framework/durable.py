"""Files that survive a power loss once they are said to be there.

A rename is atomic but not durable: after a crash the new name may point
at a file whose data never reached the disk, or the rename itself may be
lost. What holds here: nothing records a file as present before its data
and its name are on disk.

- A blob the primary stores is written to a temporary file, fsynced,
  renamed into place and its folder fsynced, in that order, before the
  catalog records it (and the checksummer reads it).
- A replica is renamed into place when it has been checked, and made
  durable before its registry says synced: on Linux by one syncfs of its
  filesystem for every group of outcomes the recorder writes (up to 500
  replicas, where fsyncing each file and folder cost a fifth of the sync
  rate); elsewhere its data is fsynced before the rename and its folder
  before the group is written. A replica renamed but not yet on disk is
  never trusted: after a crash its registry is not synced, and it is
  downloaded again over it.

New folders on the way have their parents fsynced, so the path is on disk.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os


def _syncfs():
    """libc's syncfs(2) where there is one (Linux), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        call = libc.syncfs
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int]
    return call


_SYNCFS = _syncfs()
HAVE_SYNCFS = _SYNCFS is not None


def sync_descriptor(descriptor: int) -> None:
    os.fsync(descriptor)


def sync_folder(path: str | os.PathLike) -> None:
    """fsync a folder, so the names in it (a rename, a new file) are on disk."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def make_folders(path: str | os.PathLike) -> None:
    """os.makedirs, with every folder it creates made durable in its parent."""
    path = os.path.abspath(path)
    missing = []
    probe = path
    while not os.path.isdir(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    os.makedirs(path, exist_ok=True)
    for created in reversed(missing):
        sync_folder(os.path.dirname(created))


def replace_durably(temporary: str | os.PathLike, destination: str | os.PathLike) -> None:
    """Rename a file whose data is already fsynced into place, and make the
    rename durable."""
    os.replace(temporary, destination)
    sync_folder(os.path.dirname(os.path.abspath(destination)))


def sync_filesystems(folders) -> None:
    """Make everything written and renamed in these folders durable: one
    syncfs per filesystem they are on, or an fsync of each folder where
    there is no syncfs (the files' data was fsynced before their rename)."""
    if not HAVE_SYNCFS:
        for folder in sorted(folders):
            sync_folder(folder)
        return
    devices: dict[int, str] = {}
    for folder in sorted(folders):
        devices.setdefault(os.stat(folder).st_dev, folder)
    for folder in devices.values():
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            if _SYNCFS(descriptor) != 0:
                error = ctypes.get_errno()
                raise OSError(error, os.strerror(error), folder)
        finally:
            os.close(descriptor)
