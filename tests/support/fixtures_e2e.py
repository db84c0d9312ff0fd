"""Helpers for end-to-end replication tests."""
from __future__ import annotations

import random

from sqlalchemy import func, select

from backend.framework.states import SyncState, VerificationState


def registries(engine, replicator) -> dict[int, dict]:
    """Rows by model id; `engine` is a SecondaryEngine or a SQLAlchemy engine
    (whose `.engine` is itself)."""
    t = replicator.registry_table()
    with engine.engine.connect() as connection:
        rows = connection.execute(select(t)).mappings().all()
    return {row[replicator.registry_fk]: dict(row) for row in rows}


def counted(engine, replicator, *where) -> int:
    """Registries of the type matching `where` (clauses on its table)."""
    t = replicator.registry_table()
    with engine.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(t).where(*where)).scalar()


def all_synced_and_verified(engine, replicator, expected_ids) -> bool:
    rows = registries(engine, replicator)
    return set(rows) == set(expected_ids) and all(
        r["state"] == SyncState.SYNCED and r["verification_state"] == VerificationState.SUCCEEDED
        for r in rows.values())


def varied_blobs(count: int, seed: int = 7) -> list[bytes]:
    """Empty, tiny, page-sized and multi-megabyte blobs."""
    rng = random.Random(seed)
    sizes = [0, 1, 4095, 4096, 65537, 1 << 20, 3 * (1 << 20) + 7]
    sizes += [rng.randint(1, 200_000) for _ in range(count - len(sizes))]
    return [rng.randbytes(size) for size in sizes[:count]]
