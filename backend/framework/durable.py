"""Files that survive a power loss once they are said to be there.

A rename is atomic but not durable: after a crash the new name may point
at a file whose data never reached the disk, or the rename itself may be
lost. A replica (and a blob the primary stores) is therefore written to a
temporary file, fsynced, renamed into place, and its folder fsynced, in
that order, before anything records it as present; new folders on the way
have their parents fsynced too, so the path itself is on disk.
"""
from __future__ import annotations

import os


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
