"""Verification throughput against `openssl dgst -sha256` in two processes.

    python bench/verification.py [--small N] [--large N] [--rounds R]

Writes N small files of 16 KiB (default 10,000) and N large files of
256 MiB (default 4) into a temporary folder, reads them once so that every
tool finds them in the page cache, then times on the same files:
  - baseline: `openssl dgst -sha256` run as two parallel processes, each
    given half of the files;
  - Geo Console's verifier: the secondary's verification threads (as many
    as the engine starts with the default capacity) having each batch
    hashed by the engine's checksum processes (`Verifier.local_checksums`),
    fed batches as the engine's scheduler feeds them.
The engine's bookkeeping around verification (claims, the primary's
checksums, recording outcomes) is measured by bench/sync_and_verify.py.
Rounds alternate between the two; prints the best of R rounds of each,
their ratio, and the spread of the round-by-round ratios. Not a test; not run in CI.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import math
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.framework.replicator import FileStore  # noqa: E402
from backend.replicables import replicator_for  # noqa: E402
from backend.secondary.checksum_pool import ChecksumPool  # noqa: E402
from backend.secondary.verification_pipeline import (  # noqa: E402
    HASH_BATCH, verification_rows, verification_threads)
from backend.secondary.local_storage import LocalStorage  # noqa: E402
from backend.secondary.verifier import Verifier  # noqa: E402

CoolWidgets = replicator_for("cool_widget")
SMALL = 16 * 1024
LARGE = 256 * 1024 * 1024


def write_files(storage: LocalStorage, count: int, size: int, first_id: int) -> list[int]:
    """Blobs where the secondary keeps them; returns their model ids."""
    block = os.urandom(min(size, 1 << 20))
    ids = []
    for model_id in range(first_id, first_id + count):
        path = storage.path(CoolWidgets, model_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            written = 0
            while written < size:
                # Distinct content per file and per block.
                piece = (model_id.to_bytes(8, "little") + written.to_bytes(8, "little")
                         + block[16:])[:size - written]
                handle.write(piece)
                written += len(piece)
        ids.append(model_id)
    return ids


def openssl_two_processes(paths: list[str]) -> float:
    halves = [paths[0::2], paths[1::2]]
    started = time.perf_counter()
    processes = [subprocess.Popen(["openssl", "dgst", "-sha256", *half],
                                  stdout=subprocess.DEVNULL) for half in halves if half]
    for process in processes:
        if process.wait() != 0:
            raise SystemExit("openssl dgst failed")
    return time.perf_counter() - started


def geo_console_verifier(storage: LocalStorage, ids: list[int], threads: int,
                         rows: int, pool: ChecksumPool | None) -> float:
    verifier = Verifier(client=None, storage=storage, pool=pool)
    # As the engine splits each claim of `rows` registries over its threads.
    batches = []
    for start in range(0, len(ids), rows):
        claim = ids[start:start + rows]
        size = max(1, min(HASH_BATCH, math.ceil(len(claim) / threads)))
        batches += [claim[i:i + size] for i in range(0, len(claim), size)]

    def verify(batch):
        found = verifier.local_checksums(CoolWidgets, [(i, FileStore.LOCAL) for i in batch])
        if any(isinstance(value, OSError) for value in found.values()):
            raise SystemExit("a file could not be read")

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool_of_threads:
        list(pool_of_threads.map(verify, batches))
    return time.perf_counter() - started


def report(name: str, count: int, size: int, rounds: list[tuple[float, float]]) -> None:
    total = count * size
    openssl = min(theirs for theirs, _ in rounds)
    ours = min(mine for _, mine in rounds)
    each = sorted(theirs / mine for theirs, mine in rounds)
    print(f"{name}: {count} files x {size:,} bytes, best of {len(rounds)} alternating rounds")
    print(f"  openssl dgst -sha256, 2 processes  {openssl:7.3f} s  {total / openssl / 1e6:8.0f} MB/s"
          f"  {count / openssl:9.0f} files/s")
    print(f"  Geo Console verifier               {ours:7.3f} s  {total / ours / 1e6:8.0f} MB/s"
          f"  {count / ours:9.0f} files/s")
    print(f"  ratio (Geo Console / openssl)      {openssl / ours:7.2f}x throughput"
          f"  (round by round: {each[0]:.2f} to {each[-1]:.2f}, median {each[len(each) // 2]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-processes", action="store_true",
                        help="hash in the verification threads, without the checksum processes")
    parser.add_argument("--capacity", type=int, default=100,
                        help="verification_max_capacity, in jobs of 10 rows "
                             "(default %(default)s, the engine's)")
    parser.add_argument("--threads", type=int, default=0,
                        help="verification threads (default: the engine's for the capacity)")
    args = parser.parse_args()
    if not shutil.which("openssl"):
        raise SystemExit("openssl is not installed")
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="geo-verify-bench-"))
    try:
        storage = LocalStorage(workdir)
        for name, count, size, first in (("small", args.small, SMALL, 1),
                                         ("large", args.large, LARGE, 10_000_000)):
            if not count:
                continue
            ids = write_files(storage, count, size, first)
            paths = [str(storage.path(CoolWidgets, i)) for i in ids]
            openssl_two_processes(paths)  # page cache warm for both
            pool = None if args.no_processes else ChecksumPool()
            threads = args.threads or verification_threads(args.capacity)
            rows = verification_rows(args.capacity)
            geo_console_verifier(storage, ids[:100], threads, rows, pool)  # warm
            # Rounds alternate, so that both meet the same machine.
            rounds = [(openssl_two_processes(paths),
                       geo_console_verifier(storage, ids, threads, rows, pool))
                      for _ in range(args.rounds)]
            if pool:
                pool.close()
            report(name, count, size, rounds)
            for path in paths:
                os.unlink(path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
