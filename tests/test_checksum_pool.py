"""The checksum pool: worker processes hash like hashlib, requests from many
threads are split and put back together in order, a failed worker's files
are hashed anyway, workers end with their parent, and a closed pool hashes
in the calling thread."""
import concurrent.futures
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from backend.secondary.checksum_pool import CHUNK, ChecksumPool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_blobs(folder, contents) -> list[str]:
    paths = []
    for index, data in enumerate(contents):
        path = folder / f"blob-{index}"
        path.write_bytes(data)
        paths.append(str(path))
    return paths


@pytest.fixture
def pool():
    pool = ChecksumPool(workers=2)
    yield pool
    pool.close()


def test_worker_processes_hash_like_hashlib(tmp_path, pool):
    contents = [b"", b"x", os.urandom(16 * 1024), os.urandom((1 << 20) + 3)]
    paths = write_blobs(tmp_path, contents)
    missing = str(tmp_path / "missing")
    results = pool.checksums(paths + [missing, "nul\0byte"])
    workers = pool.worker_pids()
    assert len(workers) == 2 and os.getpid() not in workers
    assert results[:4] == [hashlib.sha256(data).hexdigest() for data in contents]
    assert isinstance(results[4], OSError) and "No such file" in results[4].strerror
    assert isinstance(results[5], OSError) and "null byte" in results[5].strerror
    pool.close()
    # Closed: still correct, hashed here.
    assert pool.worker_pids() == []
    assert pool.checksums(paths[:2]) == [hashlib.sha256(b"").hexdigest(),
                                         hashlib.sha256(b"x").hexdigest()]


def test_requests_from_many_threads_come_back_whole_and_in_order(tmp_path, pool):
    contents = [os.urandom(64 + index) for index in range(3 * CHUNK + 7)]
    paths = write_blobs(tmp_path, contents)
    expected = [hashlib.sha256(data).hexdigest() for data in contents]
    # Requests of every size, larger than a message and smaller, at once.
    requests = [(start, start + size) for size in (1, 5, CHUNK + 3, 2 * CHUNK, len(paths))
                for start in range(0, len(paths) - size + 1, max(1, len(paths) // 3))]
    with concurrent.futures.ThreadPoolExecutor(8) as threads:
        answers = list(threads.map(lambda r: pool.checksums(paths[r[0]:r[1]]), requests))
    for (start, end), answer in zip(requests, answers):
        assert answer == expected[start:end]


def test_a_killed_worker_is_replaced_and_its_files_still_hashed(tmp_path, pool, caplog):
    contents = [os.urandom(1024) for _ in range(400)]
    paths = write_blobs(tmp_path, contents)
    expected = [hashlib.sha256(data).hexdigest() for data in contents]
    assert pool.checksums(paths) == expected
    victim = pool.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while victim in pool.worker_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    for _ in range(3):
        assert pool.checksums(paths) == expected
    assert "checksum process failed" in caplog.text
    workers = pool.worker_pids()
    assert len(workers) == 2 and victim not in workers


def test_workers_end_when_their_engine_is_killed(tmp_path):
    (tmp_path / "blob").write_bytes(b"data")
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {ROOT!r})
        from backend.secondary.checksum_pool import ChecksumPool
        if __name__ == "__main__":
            pool = ChecksumPool(workers=2)
            pool.checksums([{str(tmp_path / "blob")!r}] * 50)
            print(*pool.worker_pids(), flush=True)
            time.sleep(60)
    """)
    (tmp_path / "engine.py").write_text(script)
    engine = subprocess.Popen([sys.executable, str(tmp_path / "engine.py")],
                              stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in engine.stdout.readline().split()]
        assert len(workers) == 2
    finally:
        engine.kill()
        engine.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)


def alive(pid: int) -> bool:
    """Running (a zombie, reaped by init soon, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
