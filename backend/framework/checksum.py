"""Checksums as GitLab computes them for blobs."""
from __future__ import annotations

import hashlib
import os

# hashlib releases the GIL for updates of 2 KiB or more; 1 MiB reads keep
# per-call overhead negligible and let verification threads run in parallel.
READ_SIZE = 1 << 20


def file_checksum(path: str | os.PathLike) -> str:
    """Lower-case hex SHA-256 of a local file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(READ_SIZE)
        view = memoryview(buffer)
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
    return digest.hexdigest()


def size_checksum(size: int) -> str:
    """Object-storage blobs: the decimal size, '0'-padded to even length (valid hex)."""
    text = str(int(size))
    return "0" + text if len(text) % 2 else text
