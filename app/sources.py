"""Where the console's data comes from: the engine it hosts (direct access to
the tracking DB) or a remote secondary's API. Both offer the same calls, all
blocking: the console runs every one of them on a worker thread.

Rows are plain dicts with snake_case keys, state names as text and times as
aware datetimes, whatever the source.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from backend.replicables import registered
from backend.framework.states import SyncState, VerificationState
from backend.secondary import registry_query, status_history
from backend.secondary.registry_query import RegistryQuery
from backend.secondary.registry_store import RegistryFilter, RegistryStore

SYNC_STATES = [state.label for state in SyncState]
VERIFICATION_STATES = [state.label for state in VerificationState]
ACTION_CHUNK = 1000


@dataclass(frozen=True)
class Filter:
    """What the registry table shows."""

    replication_state: str | None = None
    verification_state: str | None = None
    search: str = ""
    sort: str = "ID_ASC"

    def query(self) -> RegistryQuery:
        return RegistryQuery(
            replication_state=SyncState[self.replication_state.upper()]
            if self.replication_state else None,
            verification_state=VerificationState[self.verification_state.upper()]
            if self.verification_state else None,
            keyword=self.search.strip() or None, sort=self.sort)

    def describe(self) -> str:
        parts = []
        if self.replication_state:
            parts.append(f"replication {self.replication_state}")
        if self.verification_state:
            parts.append(f"verification {self.verification_state}")
        if self.search.strip():
            parts.append(f"search “{self.search.strip()}”")
        return ", ".join(parts) or "all registries"


def display_row(row: dict, replicator) -> dict:
    """A tracking-DB row as the console shows it."""
    def text(value):
        return bytes(value).decode("ascii", "replace") if value is not None else None

    return {
        "registry_id": row["id"], "model_id": row[replicator.registry_fk],
        "state": SyncState(row["state"]).label,
        "verification_state": VerificationState(row["verification_state"]).label,
        "retry_count": row["retry_count"], "retry_at": row["retry_at"],
        "last_synced_at": row["last_synced_at"], "last_sync_failure": row["last_sync_failure"],
        "verified_at": row["verified_at"], "verification_started_at": row["verification_started_at"],
        "verification_retry_at": row["verification_retry_at"],
        "verification_retry_count": row["verification_retry_count"],
        "verification_failure": row["verification_failure"],
        "verification_checksum": text(row["verification_checksum"]),
        "verification_checksum_mismatched": text(row["verification_checksum_mismatched"]),
        "checksum_mismatch": bool(row["checksum_mismatch"]), "created_at": row["created_at"],
    }


class LocalSource:
    """The engine this console hosts, and its tracking DB."""

    remote = False

    def __init__(self, site, primary=None) -> None:
        self.site = site          # backend.sites.secondary.SecondarySite
        self.primary = primary    # the demo's PrimarySite, when there is one
        self.engine = site.tracking_engine
        self.replicators = site.replicators

    @property
    def name(self) -> str:
        return self.site.name

    def replicator(self, replicable: str | None = None):
        for replicator in self.replicators:
            if replicable in (None, replicator.replicable_name):
                return replicator
        raise ValueError(f"unknown replicable {replicable!r}")

    # --- reading -------------------------------------------------------------------

    def overview(self) -> dict:
        status = self.site.rest_status()
        if self.primary is not None:
            status["primary_status"] = self.primary.rest_status()
        return status

    def history(self, start: dt.datetime, end: dt.datetime, buckets: int,
                replicable: str | None = None) -> list[dict]:
        replicator = self.replicator(replicable)
        return status_history.read(self.engine, replicator.replicable_name, start, end, buckets)

    def state_counts(self, replicable: str | None = None) -> dict[str, int]:
        from sqlalchemy import func, select
        table = self.replicator(replicable).registry_table()
        counts = dict.fromkeys(["all", *SYNC_STATES, *(f"v_{s}" for s in VERIFICATION_STATES)], 0)
        with self.engine.connect() as connection:
            for state, vstate, number in connection.execute(
                    select(table.c.state, table.c.verification_state, func.count())
                    .group_by(table.c.state, table.c.verification_state)):
                counts["all"] += number
                counts[SyncState(state).label] += number
                counts[f"v_{VerificationState(vstate).label}"] += number
        return counts

    def count(self, view: Filter, replicable: str | None = None) -> int:
        return registry_query.exact_count(self.engine, self.replicator(replicable), view.query())

    def rows(self, view: Filter, offset: int, limit: int,
             replicable: str | None = None) -> list[dict]:
        replicator = self.replicator(replicable)
        page = registry_query.fetch_page(self.engine, replicator, view.query(), first=limit,
                                         offset=offset, max_page_size=max(limit, 1))
        return [display_row(row, replicator) for row in page.rows]

    def failure_groups(self, replicable: str | None = None, limit: int = 100) -> list[dict]:
        return registry_query.failure_groups(self.engine, self.replicator(replicable), limit)

    # --- actions ---------------------------------------------------------------------

    def act(self, action: str, *, ids: list[int] | None = None, view: Filter | None = None,
            replicable: str | None = None) -> int:
        """resync / reverify registry ids, or everything a filter shows."""
        store = RegistryStore(self.engine, self.replicator(replicable))
        run = store.resync if action == "resync" else store.reverify
        if ids is not None:
            changed = sum(run(RegistryFilter(ids=tuple(ids[i:i + ACTION_CHUNK])))
                          for i in range(0, len(ids), ACTION_CHUNK))
        else:
            query = (view or Filter()).query()
            if query.keyword:
                matching = self._ids(query, replicable)
                return self.act(action, ids=matching, replicable=replicable)
            changed = run(RegistryFilter(replication_state=query.replication_state,
                                         verification_state=query.verification_state))
        self.site.registries_changed()
        return changed

    def _ids(self, query: RegistryQuery, replicable) -> list[int]:
        from sqlalchemy import select
        replicator = self.replicator(replicable)
        table = replicator.registry_table()
        with self.engine.connect() as connection:
            return list(connection.execute(select(table.c.id).where(
                *query.clauses(table, table.c[replicator.registry_fk]))).scalars())

    def failure_group_ids(self, message: str | None, replicable: str | None = None):
        return registry_query.failure_group_ids(self.engine, self.replicator(replicable),
                                                message)

    @property
    def can_pause(self) -> bool:
        return True

    def pause(self) -> None:
        self.site.engine.pause()

    def resume(self) -> None:
        self.site.engine.resume()

    def export_rows(self, view: Filter, replicable: str | None = None):
        return rows_in_chunks(self, view, replicable, chunk=2000)


class RemoteSource:
    """A headless secondary, through its GraphQL API (app.site_client)."""

    remote = True
    can_pause = False

    def __init__(self, client) -> None:
        self.client = client
        self.replicators = registered()
        self._name = None

    @property
    def name(self) -> str:
        if self._name is None:
            self._name = self.client.node()["name"]
        return self._name

    def overview(self) -> dict:
        return self.client.status()

    def history(self, start, end, buckets, replicable=None):
        points = self.client.history(start, end, buckets, replicable or "cool_widget")
        return [_snake_point(point) for point in points]

    def state_counts(self, replicable=None) -> dict[str, int]:
        counts = {"all": self.count(Filter())}
        for state in SYNC_STATES:
            counts[state] = self.count(Filter(replication_state=state))
        for state in VERIFICATION_STATES:
            counts[f"v_{state}"] = self.count(Filter(verification_state=state))
        return counts

    def count(self, view: Filter, replicable=None) -> int:
        # The API caps counts at 1000 (GitLab's rule); above that the status
        # totals give the size of unfiltered and single-state views.
        page = self.client.registries(replicable or "cool_widget", first=0, **_arguments(view))
        if page.count is not None and page.count <= 1000:
            return page.count
        status = self.client.status()
        p = "cool_widgets"
        if not view.search and not view.verification_state:
            key = {None: "registry_count", "synced": "synced_count",
                   "failed": "failed_count"}.get(view.replication_state)
            if key and status.get(f"{p}_{key}") is not None:
                return status[f"{p}_{key}"]
        return page.count

    def rows(self, view: Filter, offset: int, limit: int, replicable=None) -> list[dict]:
        page = self.client.registries(replicable or "cool_widget", first=limit,
                                      **_arguments(view), offset=offset)
        return [_snake_row(node) for node in page.nodes]

    def failure_groups(self, replicable=None, limit=100) -> list[dict]:
        data = self.client.execute(
            "query($limit: Int) { geoNode { registryFailureGroups(limit: $limit) "
            "{ message count lastSeenAt } } }", {"limit": limit})
        groups = (data["geoNode"] or {}).get("registryFailureGroups") or []
        return [{"message": g["message"], "count": g["count"],
                 "last_seen_at": _time(g["lastSeenAt"])} for g in groups]

    def failure_group_ids(self, message, replicable=None) -> list[int]:
        ids, offset = [], 0
        while True:
            page = self.client.registries(replicable or "cool_widget", first=500, offset=offset,
                                          replication_state="failed")
            ids += [n["registryId"] for n in page.nodes
                    if (n["lastSyncFailure"] or n["verificationFailure"]) == message]
            if not page.has_next_page:
                return ids
            offset += 500

    def act(self, action: str, *, ids=None, view: Filter | None = None, replicable=None) -> int:
        bulk = "resync_all" if action == "resync" else "reverify_all"
        if ids is not None:
            return sum(self.client.bulk_update(bulk, replicable or "cool_widget",
                                               ids=ids[i:i + ACTION_CHUNK])
                       for i in range(0, len(ids), ACTION_CHUNK))
        view = view or Filter()
        if view.search.strip():
            matching, offset = [], 0
            while True:
                page = self.client.registries(replicable or "cool_widget", first=500,
                                              offset=offset, **_arguments(view))
                matching += [n["registryId"] for n in page.nodes]
                if not page.has_next_page:
                    break
                offset += 500
            return self.act(action, ids=matching, replicable=replicable)
        return self.client.bulk_update(bulk, replicable or "cool_widget",
                                       replication_state=view.replication_state,
                                       verification_state=view.verification_state)

    def pause(self) -> None:
        raise RuntimeError("a remote secondary is paused on its own machine")

    resume = pause

    def export_rows(self, view: Filter, replicable=None):
        return rows_in_chunks(self, view, replicable, chunk=500)


def rows_in_chunks(source, view: Filter, replicable, chunk: int):
    """Every row of the filter, `chunk` at a time (for reports)."""
    offset = 0
    while True:
        rows = source.rows(view, offset, chunk, replicable)
        yield from rows
        if len(rows) < chunk:
            return
        offset += chunk


def _arguments(view: Filter) -> dict:
    return {"replication_state": view.replication_state,
            "verification_state": view.verification_state,
            "keyword": view.search.strip() or None, "sort": view.sort}


def _time(value):
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _snake_row(node: dict) -> dict:
    return {
        "registry_id": node["registryId"], "model_id": node["modelRecordId"],
        "state": node["state"].lower(), "verification_state": node["verificationState"].lower(),
        "retry_count": node["retryCount"], "retry_at": _time(node["retryAt"]),
        "last_synced_at": _time(node["lastSyncedAt"]),
        "last_sync_failure": node["lastSyncFailure"], "verified_at": _time(node["verifiedAt"]),
        "verification_started_at": _time(node["verificationStartedAt"]),
        "verification_retry_at": _time(node["verificationRetryAt"]),
        "verification_retry_count": node["verificationRetryCount"],
        "verification_failure": node["verificationFailure"],
        "verification_checksum": node["verificationChecksum"],
        "verification_checksum_mismatched": node["verificationChecksumMismatched"],
        "checksum_mismatch": bool(node["checksumMismatch"]),
        "created_at": _time(node["createdAt"]),
    }


def _snake_point(point: dict) -> dict:
    import re
    out = {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): value for key, value in point.items()}
    out["time"] = _time(point["time"])
    return out
