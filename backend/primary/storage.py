"""The primary's blob storage: a folder for local blobs (file_store 1) and,
when `[primary.object_store]` is enabled, a bucket for object-stored ones
(file_store 2), both addressed by the record's relative path."""
from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import uuid

from backend.framework.durable import make_folders, replace_durably, sync_descriptor
from backend.framework.paths import resolve_inside
from backend.framework.replicator import FileStore
from backend.object_store.bucket import Bucket
from backend.object_store.errors import ObjectStoreError


CHUNK = 1024 * 1024
NOT_CONFIGURED = ("object storage is not configured: enable [primary.object_store] with a "
                  "bucket and its connection (docs/OBJECT_STORAGE.md)")


class ObjectStorageNotConfigured(ObjectStoreError):
    def __init__(self) -> None:
        super().__init__(NOT_CONFIGURED)


class BlobStorage:
    def __init__(self, root: str | os.PathLike, bucket: Bucket | None = None) -> None:
        self.root = pathlib.Path(root).resolve()
        self.local_root = self.root / "local"
        self.bucket = bucket

    def path(self, relative: str) -> pathlib.Path:
        """Where a local blob lives (file_store 1)."""
        return resolve_inside(self.local_root, relative)

    def object_bucket(self) -> Bucket:
        if self.bucket is None:
            raise ObjectStorageNotConfigured()
        return self.bucket

    def new_relative_path(self, plural_name: str, filename: str) -> str:
        key = uuid.uuid4().hex
        safe_name = pathlib.PurePath(filename).name or "blob"
        return f"{plural_name}/{key[:2]}/{key}/{safe_name}"

    def store_copy(self, source: str | os.PathLike, relative: str, file_store: int) -> int:
        """Copy `source` into storage, durably; returns its size."""
        if file_store == FileStore.REMOTE:
            size = os.stat(source).st_size
            self.object_bucket().upload_file(relative, os.fspath(source), None, size)
            return size
        with open(source, "rb") as reading:
            return self._store(relative, lambda writing: shutil.copyfileobj(reading, writing,
                                                                            CHUNK))

    def store_bytes(self, data: bytes, relative: str, file_store: int) -> int:
        if file_store == FileStore.REMOTE:
            self.object_bucket().put_bytes(relative, data, hashlib.sha256(data).hexdigest())
            return len(data)
        return self._store(relative, lambda writing: writing.write(data))

    def _store(self, relative: str, write) -> int:
        """Write a blob to a temporary file, fsync it, rename it into place
        and fsync its folder (framework/durable.py), so what the primary
        then checksums and offers is on disk: after a crash it is never an
        empty file both sites would agree on."""
        destination = self.path(relative)
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
        if file_store == FileStore.REMOTE:
            self.object_bucket().delete(relative)
            return True
        path = self.path(relative)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        # Drop now-empty key folders, never the root.
        parent = path.parent
        root = self.local_root
        while parent != root and root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
        return True
