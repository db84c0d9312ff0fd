"""Multipart uploads into the secondary's bucket that no live engine owns.

An upload killed with its engine (SIGKILL, a power cut) leaves its parts in
the bucket: invisible as an object, but stored and billed until aborted.
One begun before the oldest live engine started cannot be any live
engine's (the same rule hands back dead engines' claims), so it is
aborted: when an engine starts, and by the `temporary files` housekeeping
job after. Only the replica keys of this secondary's types are looked at.
"""
from __future__ import annotations

import datetime as dt
import logging

from backend.secondary.heartbeat import oldest_live_start

log = logging.getLogger(__name__)


def abort_abandoned_uploads(storage, engine, replicators) -> int:
    """Abort the abandoned uploads; returns how many. Raises
    ObjectStoreError when the bucket cannot be listed."""
    bucket = storage.bucket
    if bucket is None:
        return 0
    cutoff = oldest_live_start(engine)
    if cutoff is None:
        return 0
    if cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=dt.timezone.utc)
    aborted = 0
    for replicator in replicators:
        for upload in bucket.pending_uploads(prefix=f"{replicator.plural_name}/"):
            initiated = upload.initiated
            if initiated.tzinfo is None:
                initiated = initiated.replace(tzinfo=dt.timezone.utc)
            if initiated < cutoff:
                bucket.abort_upload(upload)
                aborted += 1
    if aborted:
        log.info("aborted %d abandoned multipart uploads in the %s", aborted, bucket.described)
    return aborted
