"""Checksums computed by worker processes equal hashlib's, a missing file
is reported as such, and a closed pool hashes in the calling thread."""
import hashlib
import os

from backend.secondary.checksum_pool import ChecksumPool


def test_worker_processes_hash_like_hashlib(tmp_path):
    contents = [b"", b"x", os.urandom(16 * 1024), os.urandom((1 << 20) + 3)]
    paths = []
    for index, data in enumerate(contents):
        path = tmp_path / f"blob-{index}"
        path.write_bytes(data)
        paths.append(str(path))
    missing = str(tmp_path / "missing")
    pool = ChecksumPool(workers=2)
    try:
        results = pool.checksums(paths + [missing])
        assert pool._pool is not None  # the work went to the processes
    finally:
        pool.close()
    assert results[:-1] == [hashlib.sha256(data).hexdigest() for data in contents]
    assert isinstance(results[-1], OSError) and "No such file" in results[-1].strerror
    # Closed: still correct, hashed here.
    assert pool.checksums(paths[:2]) == [hashlib.sha256(b"").hexdigest(),
                                         hashlib.sha256(b"x").hexdigest()]
