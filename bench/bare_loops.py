"""The bare download-and-hash loops that bench/sync_and_verify.py measures
the engine against, each run as its own process (as the engine and rclone
are), so that its start-up counts as theirs does:

    python bench/bare_loops.py threads|asyncio PORT DESTINATION CHECKSUMS.json

Each downloads every blob named in CHECKSUMS.json ({"id": "sha256 hex"})
from the primary's Geo API, hashes it while writing it into DESTINATION
and compares with the primary's checksum, CAPACITY blobs at a time; no
database, no state. `threads` uses a thread pool and urllib3, `asyncio`
coroutines on one event loop and aiohttp (the engine's own transport, so
the engine's ratio to it is the cost of its bookkeeping). Only what a loop
needs is imported here. Exits non-zero if a blob comes back wrong.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.framework.geo_auth import authorization_header, retrieve_data  # noqa: E402

ACCESS_KEY = "bench-key"
SECRET = "bench-secret-" + "x" * 32
CAPACITY = int(os.environ.get("GEO_BENCH_CAPACITY", "10"))
PIECE = 1 << 20


def retrieve_url(port: int, model_id: int) -> str:
    return f"http://127.0.0.1:{port}/api/v4/geo/retrieve/cool_widget/{model_id}"


def auth(model_id: int) -> dict:
    return {"Authorization": authorization_header(ACCESS_KEY, SECRET,
                                                  retrieve_data("cool_widget", model_id))}


def check(model_id: int, status: int, digest, checksums: dict[int, str]) -> None:
    if status != 200 or digest.hexdigest() != checksums[model_id]:
        raise SystemExit(f"blob {model_id} came back wrong (HTTP {status})")


def with_threads(port: int, destination: pathlib.Path, checksums: dict[int, str]) -> None:
    import concurrent.futures

    import urllib3
    http = urllib3.PoolManager(maxsize=CAPACITY, retries=False)

    def fetch(model_id: int) -> None:
        response = http.request("GET", retrieve_url(port, model_id), headers=auth(model_id),
                                preload_content=False)
        digest = hashlib.sha256()
        with open(destination / str(model_id), "wb") as handle:
            while chunk := response.read(PIECE):
                digest.update(chunk)
                handle.write(chunk)
        response.release_conn()
        check(model_id, response.status, digest, checksums)

    with concurrent.futures.ThreadPoolExecutor(CAPACITY) as pool:
        list(pool.map(fetch, checksums))


def with_asyncio(port: int, destination: pathlib.Path, checksums: dict[int, str]) -> None:
    import asyncio

    import aiohttp

    async def main() -> None:
        ids = iter(checksums)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CAPACITY),
                                         cookie_jar=aiohttp.DummyCookieJar()) as session:
            async def worker() -> None:
                for model_id in ids:
                    digest = hashlib.sha256()
                    async with session.get(retrieve_url(port, model_id),
                                           headers=auth(model_id)) as response:
                        with open(destination / str(model_id), "wb") as handle:
                            async for chunk in response.content.iter_chunked(PIECE):
                                digest.update(chunk)
                                handle.write(chunk)
                    check(model_id, response.status, digest, checksums)
            await asyncio.gather(*(worker() for _ in range(CAPACITY)))

    asyncio.run(main())


LOOPS = {"threads": with_threads, "asyncio": with_asyncio}


def main() -> None:
    if len(sys.argv) != 5 or sys.argv[1] not in LOOPS:
        raise SystemExit(__doc__)
    kind, port, destination, listing = sys.argv[1:]
    checksums = {int(k): v for k, v in json.loads(pathlib.Path(listing).read_text()).items()}
    pathlib.Path(destination).mkdir(parents=True, exist_ok=True)
    LOOPS[kind](int(port), pathlib.Path(destination), checksums)


if __name__ == "__main__":
    main()
