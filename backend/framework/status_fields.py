"""The REST status document of a site (GitLab's GeoNodeStatus fields).

Per-type fields come from the site's role (primary: checksum counts;
secondary: registry counts); fields that do not apply are null.
"""
from __future__ import annotations

import datetime as dt
import zlib

VERSION = "0.2.0"
# GitLab counts a site's status older than 10 minutes as out of date: the
# site is then unhealthy, whatever it last said (GeoNodeStatus#outdated?).
OUTDATED_AFTER = 600  # seconds
REVISION = "geo-console"

PER_TYPE_FIELDS = ("count", "checksum_total_count", "checksummed_count",
                   "checksum_failed_count", "synced_count", "failed_count", "registry_count",
                   "verification_total_count", "verified_count", "verification_failed_count",
                   "synced_in_percentage", "verified_in_percentage", "oldest_unsynced_time",
                   # Geo Console's: how many of the records (primary) or
                   # registries (secondary) are object-stored, and synced.
                   "object_storage_count", "object_storage_synced_count")

# A secondary's event log ids passed by its cursor and not yet seen (Geo
# Console's, GitLab keeps them in Redis and folds the lowest into
# cursor_last_event_id): how many are open and the lowest, which the
# primary's pruning keeps. Null on a primary.
EVENT_LOG_GAP_FIELDS = ("event_log_gap_count", "event_log_oldest_gap_id")

# Fields GitLab reports for repositories, replication slots and usage, which
# do not apply to a blob-only site: always null.
NOT_APPLICABLE = ("db_replication_lag_seconds", "replication_slots_count",
                  "replication_slots_used_count", "replication_slots_used_in_percentage",
                  "replication_slots_max_retained_wal_bytes", "repositories_count",
                  "repositories_checked_count", "repositories_checked_failed_count",
                  "repositories_checked_in_percentage", "projects_count",
                  "container_repositories_replication_enabled", "git_fetch_event_count_weekly",
                  "git_push_event_count_weekly", "proxy_remote_requests_event_count_weekly",
                  "proxy_local_requests_event_count_weekly", "storage_shards_match")


def site_id(name: str) -> int:
    """A stable numeric id for a site name."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def empty_type_fields(replicator) -> dict:
    return {f"{replicator.plural_name}_{name}": None for name in PER_TYPE_FIELDS}


def unix(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    return int(value)


def general_fields(*, name: str, url: str, primary: bool, health_problems: list[str],
                   last_event_id, last_event_timestamp, cursor_last_event_id,
                   cursor_last_event_timestamp, last_status_check, selective_sync_type: str,
                   namespaces) -> dict:
    healthy = not health_problems
    fields = {
        "geo_node_id": site_id(name), "name": name, "url": url, "primary": primary,
        "healthy": healthy,
        "health": "Healthy" if healthy else "; ".join(health_problems),
        "health_status": "Healthy" if healthy else "Unhealthy",
        "missing_oauth_application": False,
        "last_event_id": last_event_id,
        "last_event_timestamp": unix(last_event_timestamp),
        "cursor_last_event_id": cursor_last_event_id,
        "cursor_last_event_timestamp": unix(cursor_last_event_timestamp),
        **dict.fromkeys(EVENT_LOG_GAP_FIELDS),
        "last_successful_status_check_timestamp": unix(last_status_check),
        "version": VERSION, "revision": REVISION,
        "selective_sync_type": selective_sync_type or None,
        "namespaces": list(namespaces),
        "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    fields.update(dict.fromkeys(NOT_APPLICABLE))
    fields["_links"] = {"self": f"{url.rstrip('/')}/api/v4/geo_sites/current/status",
                        "site": f"{url.rstrip('/')}/api/v4/geo_sites/current"}
    return fields


def site_object(status: dict, current_name: str) -> dict:
    """GitLab's site object (`GET /api/v4/geo_sites`) of a site, from its
    status document; `current` for the site named `current_name`."""
    url = (status.get("url") or "").rstrip("/")
    return {"id": status.get("geo_node_id"), "name": status.get("name"),
            "url": url or None, "internal_url": url or None,
            "primary": bool(status.get("primary")), "enabled": True,
            "current": status.get("name") == current_name,
            "selective_sync_type": status.get("selective_sync_type"),
            "selective_sync_namespace_ids": status.get("namespaces") or [],
            "_links": {"status": f"/api/v4/geo_sites/{status.get('geo_node_id')}/status"}}
