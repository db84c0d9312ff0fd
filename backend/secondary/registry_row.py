"""One registry, as every reader sees it: the console's table and detail
panel, reports, the CLI and the GraphQL API.

A row comes from the tracking database (`from_record`) or from a site's
GraphQL API (`from_graphql`) and reads the same either way: states as
enums, times as aware datetimes, checksums as text. Views (`report`,
`json`) shape it for output without a second row type.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from backend.framework.failures import MISSING_ON_PRIMARY
from backend.framework.states import SyncState, VerificationState


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return bytes(value).decode("ascii", "replace")


def _time(value) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _number(value) -> int | None:
    """An id GitLab may give as an ID string ("12")."""
    return int(value) if isinstance(value, str) and value.isdigit() else value


def iso(value: dt.datetime | None) -> str | None:
    """A time as reports write it: UTC, microseconds, Z."""
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class RegistryRow:
    replicable: str  # the type's name: `cool_widget`
    registry_id: int
    model_id: int
    state: SyncState
    verification_state: VerificationState
    retry_count: int
    retry_at: dt.datetime | None
    last_synced_at: dt.datetime | None
    last_sync_failure: str | None
    verification_retry_count: int
    verification_retry_at: dt.datetime | None
    verified_at: dt.datetime | None
    verification_started_at: dt.datetime | None
    verification_failure: str | None
    checksum_mismatch: bool
    verification_checksum: str | None
    verification_checksum_mismatched: str | None
    created_at: dt.datetime | None
    # What the record is, as the primary describes it (registry_details.py);
    # None until the primary has been asked.
    file_name: str | None = None
    size: int | None = None
    file_store: int | None = None
    project_id: int | None = None
    project_path: str | None = None
    shard: str | None = None
    primary_checksum: str | None = None
    # GitLab's missingOnPrimary, where a site says so; else read from the failure.
    missing_flag: bool | None = None
    # GitLab 19.x's page of the record (dataManagementDetailsPath, on the site's URL).
    gitlab_page: str | None = None

    @classmethod
    def from_record(cls, record, replicator) -> "RegistryRow":
        """From a row mapping of `replicator`'s registry table."""
        return cls(
            replicable=replicator.replicable_name,
            registry_id=record["id"], model_id=record[replicator.registry_fk],
            state=SyncState(record["state"]),
            verification_state=VerificationState(record["verification_state"]),
            retry_count=record["retry_count"], retry_at=record["retry_at"],
            last_synced_at=record["last_synced_at"],
            last_sync_failure=record["last_sync_failure"],
            verification_retry_count=record["verification_retry_count"],
            verification_retry_at=record["verification_retry_at"],
            verified_at=record["verified_at"],
            verification_started_at=record["verification_started_at"],
            verification_failure=record["verification_failure"],
            checksum_mismatch=bool(record["checksum_mismatch"]),
            verification_checksum=_text(record["verification_checksum"]),
            verification_checksum_mismatched=_text(record["verification_checksum_mismatched"]),
            created_at=record["created_at"],
            **{name: record.get(name) for name in DETAIL_FIELDS},
            missing_flag=record.get("missing_on_primary"))  # GitLab's tables have it

    @classmethod
    def from_graphql(cls, node: dict, replicable: str) -> "RegistryRow":
        """From a registry node of a site's GraphQL API: Geo Console's, or
        GitLab's, whose older releases lack some fields (16.3 has no
        modelRecordId, missingOnPrimary or checksum mismatch fields; the
        client puts the model id under modelRecordId)."""
        get = node.get
        return cls(
            replicable=replicable,
            registry_id=int(str(node["id"]).rsplit("/", 1)[1]), model_id=get("modelRecordId"),
            state=SyncState[get("state") or "PENDING"],
            verification_state=VerificationState[get("verificationState") or "DISABLED"],
            retry_count=get("retryCount") or 0, retry_at=_time(get("retryAt")),
            last_synced_at=_time(get("lastSyncedAt")),
            last_sync_failure=get("lastSyncFailure"),
            verification_retry_count=get("verificationRetryCount") or 0,
            verification_retry_at=_time(get("verificationRetryAt")),
            verified_at=_time(get("verifiedAt")),
            verification_started_at=_time(get("verificationStartedAt")),
            verification_failure=get("verificationFailure"),
            checksum_mismatch=bool(get("checksumMismatch")),
            verification_checksum=get("verificationChecksum"),
            verification_checksum_mismatched=get("verificationChecksumMismatched"),
            created_at=_time(get("createdAt")),
            **{name: _number(get(graphql)) if name == "project_id" else get(graphql)
               for name, graphql in DETAIL_FIELDS.items()},
            missing_flag=get("missingOnPrimary"), gitlab_page=get("gitlabPage"))

    @property
    def missing_on_primary(self) -> bool:
        if self.missing_flag is not None:
            return self.missing_flag
        return self.state == SyncState.FAILED and self.last_sync_failure == MISSING_ON_PRIMARY

    @property
    def storage(self) -> str | None:
        """"local" or "object storage" (GitLab's file_store 1 and 2)."""
        return STORAGE_NAMES.get(self.file_store)

    @property
    def failure(self) -> str | None:
        """What went wrong, sync first."""
        return self.last_sync_failure or self.verification_failure

    def report(self, fk: str) -> dict:
        """The row as reports write it (REPORT_COLUMNS, with `fk` naming the
        model id): states by name, ISO times, text."""
        out = {}
        for name in REPORT_COLUMNS:
            value = self.replicable if name == "type" else getattr(self, name)
            if isinstance(value, (SyncState, VerificationState)):
                value = value.label
            elif isinstance(value, dt.datetime):
                value = iso(value)
            out[fk if name == "model_id" else name] = value
        return out


# Reports, the console's exports and the CLI's JSON write these, in this
# order: the same names everywhere.
REPORT_COLUMNS = ("type", "registry_id", "model_id", "file_name", "size", "storage",
                  "project_id", "project_path", "shard", "state", "verification_state",
                  "retry_count", "retry_at", "last_synced_at", "last_sync_failure",
                  "missing_on_primary",
                  "verification_retry_count", "verification_retry_at", "verified_at",
                  "verification_started_at", "verification_failure", "checksum_mismatch",
                  "verification_checksum", "verification_checksum_mismatched",
                  "primary_checksum", "created_at")

# The details of a row and their GraphQL names (extensions of GitLab's API).
DETAIL_FIELDS = {"file_name": "fileName", "size": "size", "file_store": "fileStore",
                 "project_id": "projectId", "project_path": "projectPath", "shard": "shard",
                 "primary_checksum": "primaryChecksum"}
STORAGE_NAMES = {1: "local", 2: "object storage"}
