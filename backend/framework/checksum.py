"""Checksums as GitLab computes them for blobs."""
from __future__ import annotations

import hashlib
import os
from typing import Callable

# hashlib releases the GIL for updates of 2 KiB or more; 1 MiB reads keep
# per-call overhead negligible and let verification threads run in parallel.
READ_SIZE = 1 << 20


def file_checksum(path: str | os.PathLike) -> str:
    """Lower-case hex SHA-256 of a local file's bytes."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        # Most blobs are small: one read of exactly their size (a 1 MiB read
        # would cost a 1 MiB allocation per file, more than the hashing).
        size = os.fstat(descriptor).st_size
        first = os.read(descriptor, min(READ_SIZE, size + 1))
        digest = hashlib.sha256(first)
        if len(first) == READ_SIZE or len(first) > size:  # more to come
            buffer = bytearray(READ_SIZE)
            view = memoryview(buffer)
            while count := os.readv(descriptor, [buffer]):
                digest.update(view[:count])
    finally:
        os.close(descriptor)
    return digest.hexdigest()


def size_checksum(size: int) -> str:
    """Object-storage blobs: the decimal size, '0'-padded to even length (valid hex)."""
    text = str(int(size))
    return "0" + text if len(text) % 2 else text


def is_size_checksum(checksum: str) -> bool:
    """Whether a primary's checksum is a formatted size (an object-stored
    blob checksummed as GitLab does) rather than a SHA-256 (64 hex digits)."""
    return len(checksum) != 64


def checksum_like(primary_checksum: str | None, size: int, sha256: Callable[[], str]) -> str:
    """This replica's checksum in the primary's kind: its formatted size if
    the primary's is one, else its SHA-256 (`sha256()`, asked only then)."""
    if primary_checksum and is_size_checksum(primary_checksum):
        return size_checksum(size)
    return sha256()
