"""The primary's blob storage: a folder for local blobs and one standing in
for object storage (file_store 2), both addressed by relative paths."""
from __future__ import annotations

import os
import pathlib
import shutil
import uuid

from backend.framework.durable import make_folders, replace_durably, sync_descriptor
from backend.framework.paths import resolve_inside
from backend.framework.replicator import FileStore


CHUNK = 1024 * 1024


class BlobStorage:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = pathlib.Path(root).resolve()
        self.local_root = self.root / "local"
        self.remote_root = self.root / "object_storage"

    def _root_for(self, file_store: int) -> pathlib.Path:
        return self.remote_root if file_store == FileStore.REMOTE else self.local_root

    def path(self, relative: str, file_store: int = FileStore.LOCAL) -> pathlib.Path:
        return resolve_inside(self._root_for(file_store), relative)

    def new_relative_path(self, plural_name: str, filename: str) -> str:
        key = uuid.uuid4().hex
        safe_name = pathlib.PurePath(filename).name or "blob"
        return f"{plural_name}/{key[:2]}/{key}/{safe_name}"

    def store_copy(self, source: str | os.PathLike, relative: str, file_store: int) -> int:
        """Copy `source` into storage, durably; returns its size."""
        with open(source, "rb") as reading:
            return self._store(relative, file_store,
                               lambda writing: shutil.copyfileobj(reading, writing, CHUNK))

    def store_bytes(self, data: bytes, relative: str, file_store: int) -> int:
        return self._store(relative, file_store, lambda writing: writing.write(data))

    def _store(self, relative: str, file_store: int, write) -> int:
        """Write a blob to a temporary file, fsync it, rename it into place
        and fsync its folder (framework/durable.py), so what the primary
        then checksums and offers is on disk: after a crash it is never an
        empty file both sites would agree on."""
        destination = self.path(relative, file_store)
        make_folders(destination.parent)
        temporary = destination.with_name(f".tmp_{uuid.uuid4().hex}")
        try:
            with open(temporary, "xb") as writing:
                write(writing)
                writing.flush()
                sync_descriptor(writing.fileno())
            replace_durably(temporary, destination)
        finally:
            temporary.unlink(missing_ok=True)
        return destination.stat().st_size

    def delete(self, relative: str, file_store: int) -> bool:
        path = self.path(relative, file_store)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        # Drop now-empty key folders, never the roots.
        parent = path.parent
        root = self._root_for(file_store)
        while parent != root and root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
        return True
