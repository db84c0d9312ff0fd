"""Per-type status fields with GitLab's names (research §9), from the
tracking DB, plus the `geo:status` text layout."""
from __future__ import annotations

from sqlalchemy import func, select

from backend.framework.replicator import FileStore
from backend.framework.status_fields import empty_type_fields
from backend.framework.states import SyncState, VerificationState
from backend.secondary.registry_query import state_groups


def registry_counts(engine, replicator) -> dict:
    """All registry counts from one GROUP BY over (state, verification_state),
    which the registry's composite index answers with an index-only scan."""
    t = replicator.registry_table()
    groups = state_groups(engine, replicator)
    oldest = select(func.min(t.c.created_at)).where(
        t.c.state.in_([SyncState.PENDING, SyncState.STARTED, SyncState.FAILED]))
    with engine.connect() as connection:
        oldest_unsynced = connection.execute(oldest).scalar()
    counts = {"registry_count": 0, "synced_count": 0, "failed_count": 0,
              "verification_total_count": 0, "verified_count": 0,
              "verification_failed_count": 0}
    for state, vstate, number in groups:
        counts["registry_count"] += number
        if state == SyncState.FAILED:
            counts["failed_count"] += number
        if state != SyncState.SYNCED:
            continue
        counts["synced_count"] += number
        if vstate != VerificationState.DISABLED:
            counts["verification_total_count"] += number
        if vstate == VerificationState.SUCCEEDED:
            counts["verified_count"] += number
        elif vstate == VerificationState.FAILED:
            counts["verification_failed_count"] += number
    counts["oldest_unsynced_time"] = oldest_unsynced
    counts.update(object_storage_counts(engine, replicator))
    return counts


def object_storage_counts(engine, replicator) -> dict:
    """Registries of object-stored records (file_store 2, as the primary
    describes them), and how many of them are synced."""
    t = replicator.registry_table()
    details = replicator.details_table()
    fk = replicator.registry_fk
    statement = (select(t.c.state, func.count())
                 .select_from(t.join(details, details.c[fk] == t.c[fk]))
                 .where(details.c.file_store == FileStore.REMOTE).group_by(t.c.state))
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    return {"object_storage_count": sum(number for _, number in rows),
            "object_storage_synced_count": sum(number for state, number in rows
                                               if state == SyncState.SYNCED)}


def percentage(part: int, whole: int) -> str:
    """`part` of `whole` as "97.50%", rounded down as GitLab's Sites page
    does: 100.00% only when every registry is there."""
    hundredths = part * 10_000 // whole if whole else 0
    return f"{hundredths // 100}.{hundredths % 100:02d}%"


def secondary_type_status(engine, replicator, enabled: bool) -> dict:
    """The `<plural>_*` fields of a secondary; null when replication is off."""
    p = replicator.plural_name
    if not enabled:
        return empty_type_fields(replicator)
    counts = registry_counts(engine, replicator)
    registry = counts["registry_count"]
    oldest = counts["oldest_unsynced_time"]
    return {
        f"{p}_count": registry,  # a secondary reports its registry count
        f"{p}_checksum_total_count": None,
        f"{p}_checksummed_count": None,
        f"{p}_checksum_failed_count": None,
        f"{p}_synced_count": counts["synced_count"],
        f"{p}_failed_count": counts["failed_count"],
        f"{p}_registry_count": registry,
        f"{p}_verification_total_count": counts["verification_total_count"],
        f"{p}_verified_count": counts["verified_count"],
        f"{p}_verification_failed_count": counts["verification_failed_count"],
        f"{p}_synced_in_percentage": percentage(counts["synced_count"], registry),
        f"{p}_verified_in_percentage": percentage(counts["verified_count"], registry),
        f"{p}_oldest_unsynced_time": oldest.isoformat() if oldest else None,
        f"{p}_object_storage_count": counts["object_storage_count"],
        f"{p}_object_storage_synced_count": counts["object_storage_synced_count"],
    }


def status_lines(replicators, status: dict) -> list[str]:
    """The `geo:status` "Replication Status" and "Verification Status" lines."""
    lines = []
    for title, synced_key, label in (("Replication Status", "synced_count", "replicated"),
                                     ("Verification Status", "verified_count", "verified")):
        lines.append(title)
        for replicator in replicators:
            p = replicator.plural_name
            total = status.get(f"{p}_registry_count")
            if total is None:
                lines.append(f"{replicator.title_plural + ' ' + label + ':':>44} disabled")
                continue
            succeeded = status[f"{p}_{synced_key}"]
            failed_key = "failed_count" if label == "replicated" else "verification_failed_count"
            failed = status[f"{p}_{failed_key}"]
            percent = int(succeeded * 100 // total) if total else 0
            failed_text = f"failed {failed} / " if failed else ""
            lines.append(f"{replicator.title_plural + ' ' + label + ':':>44} "
                         f"{failed_text}succeeded {succeeded} / total {total} ({percent}%)")
    return lines
