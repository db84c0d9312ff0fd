"""Downloading one blob: stream into a temporary file beside the destination,
hash that file from disk and check it against the primary's checksum, then
rename it into place atomically. The temporary file never survives, so a
partial or corrupt file is never taken for a blob. The one hash is also the
blob's verification (the stored file re-read and hashed, as GitLab's
verification does), so a secondary hashes each byte once, not twice.

Runs as a coroutine on the sync workers' event loop. A small blob (up to
BUFFER_LIMIT) stays in memory and comes back as a `BufferedBlob`, which the
engine's file writer thread hands to `write_buffered`: creating, writing
and renaming a file are system calls that, on the loop, held up every other
download (docs/PERFORMANCE.md). A larger blob spills into its temporary
file once it outgrows the buffer and streams there on the loop; its large
pieces are written, and the file hashed, in a worker thread, so they
never hold up the loop for long.

An object-stored blob (file_store 2) goes into the secondary's own bucket
when `[secondary.object_store]` is enabled. A bucket has no rename, so a
replica appears under its key only once its bytes are known to be the
primary's: they are hashed first and compared with the primary's
checksum, then sent with that SHA-256, which the service checks again (a
PUT up to the bucket's multipart threshold, 64 MiB by default, carries the
whole hash; a larger upload carries each part's and becomes visible only
when complete). Such blobs stay in memory
up to OBJECT_BUFFER_LIMIT, and spill into a local temporary file beyond.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import hashlib
import itertools
import os
from dataclasses import dataclass

from backend.framework.checksum import checksum_like, file_checksum
from backend.framework.durable import HAVE_SYNCFS, make_folders, sync_descriptor
from backend.framework.failures import MISSING_ON_PRIMARY
from backend.framework.replicator import FileStore
from backend.framework.states import VerificationState
from backend.secondary.blob_client import BlobClient, DownloadHeaders
from backend.secondary.disk_reserve import DiskReserve
from backend.secondary.geo_client import GeoApiError, PrimaryUnreachable
from backend.object_store.errors import ObjectStoreError
from backend.secondary.local_storage import LocalStorage, temporary_prefix

FILE_NOT_FOUND = "FILE_NOT_FOUND"
_serial = itertools.count()  # unique temporary names within this process
INLINE_PIECE = 256 * 1024  # larger pieces are written in a thread
BUFFER_LIMIT = 256 * 1024  # blobs up to this size are written by the file writer
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
OBJECT_BUFFER_LIMIT = 16 * 1024 * 1024  # object-stored blobs up to this stay in memory
UPLOAD_THREADS = 16  # uploads to the bucket at once (the sync workers bound them too)


@dataclass(frozen=True)
class DownloadResult:
    success: bool
    reason: str | None = None
    missing_on_primary: bool = False
    primary_verified: bool = False
    bytes: int = 0
    primary_checksum: str | None = None  # as the primary's response gave them
    file_store: int | None = None
    # The file's own checksum, hashed from disk before the rename (success
    # with a local blob whose primary gave a checksum).
    local_checksum: str | None = None
    # Where the replica was renamed: made durable before its registry says
    # synced (the outcome recorder, once per group).
    folder: str | None = None
    # Failed as an outage of the primary would (no answer, an HTTP 5xx):
    # the circuit breaker decides whether it counts.
    outage: bool = False
    # Failed for want of disk space (ENOSPC, or no room above the reserve):
    # it does not count while the disk is low. `needs`: the blob's size.
    no_space: bool = False
    needs: int = 0


@dataclass(frozen=True)
class BufferedBlob:
    """A small blob downloaded into memory, for `write_buffered`."""
    destination: str
    model_id: int
    pieces: list
    headers: DownloadHeaders
    promised: int = 0  # disk space admitted for it, given back once written
    disk: DiskReserve | None = None


class BlobDownloader:
    def __init__(self, client: BlobClient, storage: LocalStorage,
                 disk: DiskReserve | None = None) -> None:
        self.client = client
        self.storage = storage
        self.bucket = storage.bucket
        self.disk = disk
        self._pieces: concurrent.futures.ThreadPoolExecutor | None = None
        self._uploads: concurrent.futures.ThreadPoolExecutor | None = None

    async def download(self, replicator, model_id: int) -> DownloadResult | BufferedBlob:
        # Runs for every blob: strings, not pathlib, and no system call that
        # can be spared (the folder is made only when missing; a directory
        # in the way shows when the rename fails).
        destination = self.storage.path_text(replicator, model_id)
        pieces: list[bytes] = []
        buffered = 0
        spill: _Spill | None = None
        # What a thread does with the file meanwhile: a large piece, the hash.
        in_thread: concurrent.futures.Future | None = None
        promised = 0  # disk space admitted for the body
        limit = BUFFER_LIMIT  # bytes kept in memory before the body spills
        to_bucket = False

        def admit(length: int | None, headers: DownloadHeaders) -> None:
            """Before the first byte: refuse a blob the disk has no room for
            above the reserve. Admitted bytes count as used until written,
            so downloads at once never take more than there is together.
            A blob for the bucket that fits in memory needs no disk."""
            nonlocal promised, limit, to_bucket
            if self.bucket is not None and headers.file_store == FileStore.REMOTE:
                to_bucket, limit = True, OBJECT_BUFFER_LIMIT
                if length is not None and length <= limit:
                    return
            if self.disk is None or length is None:
                return
            refused = self.disk.admit(length)
            if refused:
                raise _NoRoom(*refused)
            promised = length

        async def consume(piece: bytes) -> None:
            nonlocal buffered, spill, in_thread
            if spill is None:
                buffered += len(piece)
                if buffered <= limit:
                    pieces.append(piece)
                    return
                spill = _Spill(destination, model_id)
                for held in pieces:
                    spill.keep(held)
                pieces.clear()
            if len(piece) <= INLINE_PIECE:
                spill.keep(piece)
            else:
                in_thread = self._piece_writer().submit(spill.keep, piece)
                await asyncio.wrap_future(in_thread)

        try:
            headers = await self.client.download(replicator.replicable_name, model_id, consume,
                                                 admit)
            if to_bucket:
                key = self.storage.object_key(replicator, model_id)
                if spill is None:
                    return await asyncio.wrap_future(self._uploader().submit(
                        _put_buffered, self.bucket, key, pieces, headers))
                in_thread = self._uploader().submit(spill.upload, headers, self.bucket, key)
                return await asyncio.wrap_future(in_thread)
            if spill is None:
                blob = BufferedBlob(destination, model_id, pieces, headers, promised, self.disk)
                promised = 0  # the file writer gives it back
                return blob
            in_thread = self._piece_writer().submit(spill.finish, headers)
            return await asyncio.wrap_future(in_thread)
        except GeoApiError as exc:
            if exc.status == 404 and exc.geo_code == FILE_NOT_FOUND:
                return DownloadResult(False, MISSING_ON_PRIMARY, missing_on_primary=True)
            return DownloadResult(False, f"Non-success HTTP response status code {exc.status}",
                                  outage=exc.status >= 500)
        except PrimaryUnreachable as exc:
            return DownloadResult(False, f"Error downloading file: {exc}", outage=True)
        except _NoRoom as exc:
            return DownloadResult(False, str(exc), no_space=exc.disk_low)
        except (_CannotCreate, OSError) as exc:
            return _file_failed(exc, promised)
        finally:
            if promised:
                self.disk.written(promised)
            if spill is not None:
                if in_thread is not None and not in_thread.done():
                    # Cancelled (a stop's deadline) while a thread works on the
                    # file: it is closed once that is done, so that its
                    # descriptor cannot be reused by another file meanwhile.
                    in_thread.add_done_callback(lambda _: spill.discard())
                else:
                    spill.discard()

    def close(self) -> None:
        """Let the threads for large pieces and uploads go once done."""
        for pool in (self._pieces, self._uploads):
            if pool is not None:
                pool.shutdown(wait=False)
        self._pieces = self._uploads = None

    def _uploader(self) -> concurrent.futures.ThreadPoolExecutor:
        """Threads for boto3's uploads, which wait on the network: more of
        them than cores."""
        if self._uploads is None:
            self._uploads = concurrent.futures.ThreadPoolExecutor(
                max_workers=UPLOAD_THREADS, thread_name_prefix="geo-bucket-upload")
        return self._uploads

    def _piece_writer(self) -> concurrent.futures.ThreadPoolExecutor:
        """One thread per core: with more (asyncio's default executor has
        six on two cores), eight large downloads wrote at once, and the
        threads spent more time queued for a core and in the kernel than
        writing (docs/PERFORMANCE.md)."""
        if self._pieces is None:
            self._pieces = concurrent.futures.ThreadPoolExecutor(
                max_workers=os.cpu_count() or 1, thread_name_prefix="geo-piece-writer")
        return self._pieces

    @staticmethod
    def write_buffered(blob: BufferedBlob) -> DownloadResult:
        """Write a buffered blob into place: the same checks and outcomes as
        a streamed one. Runs in the engine's file writer thread."""
        spill = None
        try:
            spill = _Spill(blob.destination, blob.model_id)
            for piece in blob.pieces:
                spill.keep(piece)
            return spill.finish(blob.headers)
        except (_CannotCreate, OSError) as exc:
            return _file_failed(exc, blob.promised)
        finally:
            if spill is not None:
                spill.discard()
            if blob.promised:
                blob.disk.written(blob.promised)


class _CannotCreate(Exception):
    """The temporary file could not be made; the message is the outcome's."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class _NoRoom(Exception):
    """Not started for want of disk space; the message is the outcome's."""

    def __init__(self, message: str, disk_low: bool) -> None:
        super().__init__(message)
        self.disk_low = disk_low


def _file_failed(exc: Exception, size: int) -> DownloadResult:
    """The outcome of a blob of `size` bytes whose file could not be made or
    written, on either path (streamed or buffered)."""
    no_space = exc.errno in NO_SPACE
    reason = str(exc) if isinstance(exc, _CannotCreate) else \
        f"Error downloading file: {exc.strerror or exc}"
    return DownloadResult(False, reason, no_space=no_space, needs=size)


class _Spill:
    """A blob's temporary file beside its destination: written piece by
    piece, then hashed, checked and renamed into place, or removed."""

    def __init__(self, destination: str, model_id: int) -> None:
        self.destination = destination
        folder = os.path.dirname(destination)
        self.temporary = f"{folder}/{temporary_prefix()}{model_id}_{next(_serial)}"
        self.size = 0
        self.renamed = False
        try:
            self.descriptor = _create(self.temporary)
        except FileNotFoundError:
            try:
                make_folders(folder)
            except OSError as exc:
                raise _CannotCreate(
                    f"Cannot create folder for the file: {exc.strerror}", exc.errno) from None
            try:
                self.descriptor = _create(self.temporary)
            except OSError as exc:
                raise _CannotCreate(f"Cannot create the file: {exc.strerror or exc}",
                                    exc.errno) from None
        except OSError as exc:
            raise _CannotCreate(f"Cannot create the file: {exc.strerror or exc}",
                                exc.errno) from None

    def keep(self, piece: bytes) -> None:
        view = memoryview(piece)
        while view:
            view = view[os.write(self.descriptor, view):]
        self.size += len(piece)

    def finish(self, headers: DownloadHeaders) -> DownloadResult:
        """Hash the file as written, check the primary's checksum and rename
        into place; the outcome recorder makes it durable before its
        registry says synced (framework/durable.py). Not on the event loop:
        a large file takes a while."""
        if not HAVE_SYNCFS:  # else the recorder's syncfs covers the data too
            sync_descriptor(self.descriptor)
        os.close(self.descriptor)
        self.descriptor = None
        local = None
        if headers.checksum:
            local = checksum_like(headers.checksum, self.size,
                                  lambda: file_checksum(self.temporary))
            if local != headers.checksum:
                return DownloadResult(False, "Downloaded file checksum mismatch")
        try:
            os.replace(self.temporary, self.destination)
        except IsADirectoryError:
            return DownloadResult(False, f"Destination {self.destination} is a directory")
        self.renamed = True
        return _succeeded(headers, self.size, local, folder=os.path.dirname(self.destination))

    def upload(self, headers: DownloadHeaders, bucket, key: str) -> DownloadResult:
        """Hash the file, check it against the primary's checksum and only
        then upload it under `key`, carrying its SHA-256. The temporary
        file stays local (discarded after), so it is not synced to disk."""
        os.close(self.descriptor)
        self.descriptor = None
        sha256 = file_checksum(self.temporary)
        local = checksum_like(headers.checksum, self.size, lambda: sha256)
        if headers.checksum and local != headers.checksum:
            return DownloadResult(False, "Downloaded file checksum mismatch")
        try:
            bucket.upload_file(key, self.temporary, sha256, self.size)
        except ObjectStoreError as exc:
            return DownloadResult(False, f"Error uploading the replica: {exc}")
        return _succeeded(headers, self.size, local if headers.checksum else None)

    def discard(self) -> None:
        """Close and remove the temporary file unless it was renamed."""
        if self.descriptor is not None:
            os.close(self.descriptor)
            self.descriptor = None
        if not self.renamed:
            try:
                os.unlink(self.temporary)
            except FileNotFoundError:
                pass


def _succeeded(headers: DownloadHeaders, size: int, local: str | None,
               folder: str | None = None) -> DownloadResult:
    return DownloadResult(
        True, primary_verified=headers.verification_state == VerificationState.SUCCEEDED,
        bytes=size, primary_checksum=headers.checksum, file_store=headers.file_store,
        local_checksum=local, folder=folder)


def _put_buffered(bucket, key: str, pieces: list, headers: DownloadHeaders) -> DownloadResult:
    """A blob held in memory into the bucket: hashed, checked against the
    primary's checksum, then one PUT carrying its SHA-256."""
    data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    sha256 = hashlib.sha256(data).hexdigest()
    local = checksum_like(headers.checksum, len(data), lambda: sha256)
    if headers.checksum and local != headers.checksum:
        return DownloadResult(False, "Downloaded file checksum mismatch")
    try:
        bucket.put_bytes(key, data, sha256)
    except ObjectStoreError as exc:
        return DownloadResult(False, f"Error uploading the replica: {exc}")
    return _succeeded(headers, len(data), local if headers.checksum else None)


def _create(path: str) -> int:
    """A new file, never one that exists (another engine's download)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
