"""Downloading one blob: stream into a temporary file beside the destination,
check the primary's checksum, then rename into place atomically. The
temporary file never survives, so a partial file is never taken for a blob.

Runs as a coroutine on the sync workers' event loop. A small blob is
written and hashed right there (microseconds); pieces of a large one go to
a worker thread, so large downloads hash in parallel and never hold up the
loop for long.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
from dataclasses import dataclass

from backend.framework.checksum import size_checksum
from backend.framework.replicator import FileStore
from backend.framework.states import VerificationState
from backend.secondary.blob_client import BlobClient
from backend.secondary.geo_client import GeoApiError, PrimaryUnreachable
from backend.secondary.local_storage import LocalStorage, temporary_prefix

FILE_NOT_FOUND = "FILE_NOT_FOUND"
MISSING_ON_PRIMARY = "The file is missing on the Geo primary site"
_serial = itertools.count()  # unique temporary names within this process
INLINE_PIECE = 256 * 1024  # larger pieces are written and hashed in a thread


@dataclass(frozen=True)
class DownloadResult:
    success: bool
    reason: str | None = None
    missing_on_primary: bool = False
    primary_verified: bool = False
    bytes: int = 0
    primary_checksum: str | None = None  # as the primary's response gave them
    file_store: int | None = None


class BlobDownloader:
    def __init__(self, client: BlobClient, storage: LocalStorage) -> None:
        self.client = client
        self.storage = storage

    async def download(self, replicator, model_id: int) -> DownloadResult:
        # Runs for every blob: strings, not pathlib, and no system call that
        # can be spared (the folder is made only when missing; a directory
        # in the way shows when the rename fails).
        destination = self.storage.path_text(replicator, model_id)
        folder = os.path.dirname(destination)
        digest = hashlib.sha256()
        temporary = f"{folder}/{temporary_prefix()}{model_id}_{next(_serial)}"
        try:
            handle = _create(temporary)
        except FileNotFoundError:
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                return DownloadResult(False, f"Cannot create folder for the file: {exc.strerror}")
            try:
                handle = _create(temporary)
            except OSError as exc:
                return DownloadResult(False, f"Cannot create the file: {exc.strerror or exc}")
        except OSError as exc:
            return DownloadResult(False, f"Cannot create the file: {exc.strerror or exc}")
        size = 0
        renamed = False
        try:
            with handle:
                def keep(piece: bytes) -> None:
                    nonlocal size
                    handle.write(piece)
                    digest.update(piece)
                    size += len(piece)

                async def consume(piece: bytes) -> None:
                    if len(piece) <= INLINE_PIECE:
                        keep(piece)
                    else:
                        await asyncio.get_running_loop().run_in_executor(None, keep, piece)

                headers = await self.client.download(replicator.replicable_name, model_id,
                                                     consume)
            if headers.checksum:
                local = (size_checksum(size) if headers.file_store == FileStore.REMOTE
                         else digest.hexdigest())
                if local != headers.checksum:
                    return DownloadResult(False, "Downloaded file checksum mismatch")
            try:
                os.replace(temporary, destination)
            except IsADirectoryError:
                return DownloadResult(False, f"Destination {destination} is a directory")
            renamed = True
            return DownloadResult(
                True, primary_verified=headers.verification_state == VerificationState.SUCCEEDED,
                bytes=size, primary_checksum=headers.checksum, file_store=headers.file_store)
        except GeoApiError as exc:
            if exc.status == 404 and exc.geo_code == FILE_NOT_FOUND:
                return DownloadResult(False, MISSING_ON_PRIMARY, missing_on_primary=True)
            return DownloadResult(False, f"Non-success HTTP response status code {exc.status}")
        except PrimaryUnreachable as exc:
            return DownloadResult(False, f"Error downloading file: {exc}")
        except OSError as exc:
            return DownloadResult(False, f"Error downloading file: {exc.strerror or exc}")
        finally:
            if not renamed:
                try:
                    os.unlink(temporary)
                except FileNotFoundError:
                    pass


def _create(path: str):
    """A new file, never one that exists (another engine's download)."""
    return open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb", buffering=0)
