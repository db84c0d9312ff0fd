"""Column values of each state transition, the one place they are spelled out.

The hooks of research/geo-framework.md sections 1-2, as dictionaries for
SQL UPDATEs. Stores (registry_store, primary verification) combine them with
the WHERE guards that make each transition safe under concurrency.
"""
from __future__ import annotations

import datetime as dt

from backend.framework.backoff import DEFAULT_CAP, next_retry_time
from backend.framework.failures import truncate_failure
from backend.framework.states import SyncState, VerificationState

SYNC_TIMEOUT = dt.timedelta(hours=8)
VERIFICATION_TIMEOUT = dt.timedelta(hours=8)


def _hours(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} hours"


SYNC_TIMEOUT_MESSAGE = f"Sync timed out after {_hours(SYNC_TIMEOUT)}"
VERIFICATION_TIMEOUT_MESSAGE = f"Verification timed out after {_hours(VERIFICATION_TIMEOUT)}"


# --- sync (registries) -------------------------------------------------------

def sync_started(now: dt.datetime) -> dict:
    # last_synced_at records the start of the latest attempt.
    return {"state": SyncState.STARTED, "last_synced_at": now}


def sync_pending() -> dict:
    # A registry set pending loses its retry state and, in the same save,
    # its verification is disabled until the next sync decides again.
    return {"state": SyncState.PENDING, "retry_at": None, "retry_count": 0,
            "verification_state": VerificationState.DISABLED}


def sync_failed(retry_count_before: int, message: str, *, cap: dt.timedelta = DEFAULT_CAP,
                now: dt.datetime) -> dict:
    count = retry_count_before + 1
    return {"state": SyncState.FAILED, "retry_count": min(count, 32767),
            "retry_at": next_retry_time(count, cap, now=now),
            "last_sync_failure": truncate_failure(message)}


def sync_succeeded_cleanup() -> dict:
    """Step 1 of the guarded synced!: counters only, never the state."""
    return {"retry_count": 0, "retry_at": None, "last_sync_failure": None}


# --- verification (primary state rows and registries) -------------------------

def verification_started(now: dt.datetime) -> dict:
    return {"verification_state": VerificationState.STARTED, "verification_started_at": now}


def verification_pending(from_failed: bool, registry: bool) -> dict:
    values = {"verification_state": VerificationState.PENDING, "verification_failure": None}
    if not from_failed:
        # From failed the retry counters stay so the backoff keeps growing.
        values.update(verification_retry_count=0, verification_retry_at=None)
        if registry:
            values.update(checksum_mismatch=False, verification_checksum_mismatched=None)
    return values


def verification_succeeded(checksum: str, now: dt.datetime) -> dict:
    return {"verification_state": VerificationState.SUCCEEDED,
            "verification_checksum": checksum.encode("ascii"),
            "verified_at": now, "verification_failure": None,
            "verification_retry_count": 0, "verification_retry_at": None}


def verification_failed(retry_count_before: int, failure: str, *, checksum: str | None,
                        now: dt.datetime) -> dict:
    count = retry_count_before + 1
    return {"verification_state": VerificationState.FAILED,
            "verification_retry_count": min(count, 32767),
            "verification_retry_at": next_retry_time(count, now=now),
            "verified_at": now,
            "verification_failure": truncate_failure(failure),
            "verification_checksum": checksum.encode("ascii") if checksum else None}


def registry_verification_failed(verification_retry_count_before: int, failure: str, *,
                                 checksum: str | None, now: dt.datetime) -> dict:
    """A verification failure on a secondary also fails the sync (re-download).

    GitLab sets retry_count to verification_retry_count - 1 and then fires the
    sync `failed` event, which adds one: both counters end equal.
    """
    values = verification_failed(verification_retry_count_before, failure,
                                 checksum=checksum, now=now)
    count = values["verification_retry_count"]
    values.update(sync_failed(count - 1, f"Verification failed with: {failure}", now=now))
    return values


def disabled() -> dict:
    return {"verification_state": VerificationState.DISABLED}


def mismatch_failure(local: str, primary: str, registry_id: int) -> str:
    return truncate_failure(
        "Checksum does not match the primary checksum "
        f"{{checksum: {local}, primary_checksum: {primary}, registry_id: {registry_id}}}")
