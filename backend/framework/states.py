"""Sync and verification states, the one place their numbers are defined.

Values are GitLab's (research/geo-framework.md sections 1 and 2); every other
module refers to them by name.
"""
from __future__ import annotations

import enum


class SyncState(enum.IntEnum):
    PENDING = 0
    STARTED = 1
    SYNCED = 2
    FAILED = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class VerificationState(enum.IntEnum):
    PENDING = 0
    STARTED = 1
    SUCCEEDED = 2
    FAILED = 3
    DISABLED = 4

    @property
    def label(self) -> str:
        return self.name.lower()


# Sync state machine events: event -> states it may fire from.
# "start" is refused from STARTED, so a running sync cannot be started twice.
SYNC_START_FROM = frozenset({SyncState.PENDING, SyncState.SYNCED, SyncState.FAILED})
SYNC_RESYNC_FROM = frozenset({SyncState.SYNCED, SyncState.FAILED})

# Verification: only a started verification may succeed.
VERIFICATION_SUCCEED_FROM = frozenset({VerificationState.STARTED})


def parse_sync_state(text: str) -> SyncState:
    """Parse a user-given sync state name ("failed", "FAILED", "3")."""
    return _parse(SyncState, text)


def parse_verification_state(text: str) -> VerificationState:
    return _parse(VerificationState, text)


def _parse(enum_cls, text: str):
    cleaned = str(text).strip()
    if cleaned.isdigit():
        try:
            return enum_cls(int(cleaned))
        except ValueError:
            pass
    else:
        try:
            return enum_cls[cleaned.upper()]
        except KeyError:
            pass
    names = ", ".join(member.label for member in enum_cls)
    raise ValueError(f"unknown state {text!r}; expected one of: {names}")
