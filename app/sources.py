"""Where the console's data comes from: the engine it hosts (direct access to
the tracking DB) or a remote secondary's API. Both offer the same calls,
each taking the type it is about (a `ReplicableType`'s name), all blocking:
the console runs every one of them on a worker thread.

Registries come back as `RegistryRow`s and are picked by a
`RegistrySelection`, whatever the source.
"""
from __future__ import annotations

import datetime as dt
import itertools
import re

from backend.framework.states import SyncState, VerificationState
from backend.replicables import registered
from backend.secondary import registry_query, status_history
from backend.secondary.registry_actions import RegistryActions
from backend.secondary.registry_row import RegistryRow
from backend.secondary.registry_selection import RegistrySelection

SYNC_STATES = [state.label for state in SyncState]
VERIFICATION_STATES = [state.label for state in VerificationState]
ACTION_CHUNK = 1000  # registry ids per bulk mutation of a remote site
REMOTE_PAGE = 500    # the API's largest page


def empty_state_counts() -> dict[str, int]:
    """'all', every sync state's label, and 'v_<verification state>'."""
    return dict.fromkeys(["all", *SYNC_STATES, *(f"v_{s}" for s in VERIFICATION_STATES)], 0)


class LocalSource:
    """The engine this console hosts, and its tracking DB."""

    remote = False

    def __init__(self, site, primary=None) -> None:
        self.site = site          # backend.sites.secondary.SecondarySite
        self.primary = primary    # the demo's PrimarySite, when there is one
        self.engine = site.tracking_engine
        self._replicators = {r.replicable_name: r for r in site.replicators}
        self.types = [r.describe() for r in site.replicators]

    @property
    def name(self) -> str:
        return self.site.name

    def replicator(self, replicable: str):
        try:
            return self._replicators[replicable]
        except KeyError:
            raise ValueError(f"this site does not replicate {replicable!r}") from None

    # --- reading -------------------------------------------------------------------

    def overview(self) -> dict:
        status = self.site.rest_status()
        if self.primary is not None:
            status["primary_status"] = self.primary.rest_status()
        return status

    def sites(self) -> list[dict]:
        """Every site's status from the primary's `GET
        /api/v4/geo_sites/status`, asked over HTTP at the hosted
        secondary's `primary_url` (the endpoint is open, as every query)."""
        return self.site.all_rest_statuses()

    def history(self, replicable: str, start: dt.datetime, end: dt.datetime,
                buckets: int) -> list[dict]:
        self.replicator(replicable)
        return status_history.read(self.engine, replicable, start, end, buckets)

    def state_counts(self, replicable: str) -> dict[str, int]:
        counts = empty_state_counts()
        for state, vstate, number in registry_query.state_groups(
                self.engine, self.replicator(replicable)):
            counts["all"] += number
            counts[SyncState(state).label] += number
            counts[f"v_{VerificationState(vstate).label}"] += number
        return counts

    def count(self, replicable: str, selection: RegistrySelection) -> int:
        return registry_query.exact_count(self.engine, self.replicator(replicable), selection)

    def rows(self, replicable: str, selection: RegistrySelection, sort: str, offset: int,
             limit: int) -> list[RegistryRow]:
        page = registry_query.fetch_page(self.engine, self.replicator(replicable), selection,
                                         sort, first=limit, offset=offset,
                                         max_page_size=max(limit, 1))
        return page.rows

    def export_rows(self, replicable: str, selection: RegistrySelection):
        return registry_query.stream(self.engine, self.replicator(replicable), selection,
                                     chunk=2000)

    def failure_groups(self, replicable: str, limit: int = 100) -> list[dict]:
        return registry_query.failure_groups(self.engine, self.replicator(replicable), limit)

    def failed_ids(self, replicable: str, limit: int) -> list[int]:
        return registry_query.failed_ids(self.engine, self.replicator(replicable), limit)

    # --- actions ---------------------------------------------------------------------

    def act(self, replicable: str, action: str, selection: RegistrySelection,
            progress=None) -> int:
        """resync / reverify what the selection picks, decided by the
        database, 1,000 registries a transaction; `progress` (a
        BulkProgress) is told after each and may cancel the rest."""
        result = RegistryActions(self.engine, self.replicator(replicable)).run(
            action, selection,
            progress=progress.report if progress else lambda done, total: None,
            cancelled=progress.cancelled if progress else lambda: False)
        if progress is not None:
            progress.stopped(result.cancelled)
        self.site.registries_changed()
        return result.changed

    @property
    def can_pause(self) -> bool:
        return True

    def pause(self) -> None:
        self.site.engine.pause()

    def resume(self) -> None:
        self.site.engine.resume()

    def apply_live(self, secondary: dict, flags: dict[str, bool]) -> None:
        """What the settings change that a running secondary takes at once:
        its capacities and feature flags (`settings.LIVE_SETTINGS`)."""
        self.site.set_capacities(int(secondary["files_max_capacity"]),
                                 int(secondary["verification_max_capacity"]))
        self.site.engine.set_feature_flags(flags)


class RemoteSource:
    """A headless secondary, through its GraphQL API (app.site_client). Its
    types are those its schema has registries for."""

    remote = True
    can_pause = False

    def __init__(self, client) -> None:
        self.client = client
        self.types = client.types()
        self._types = {t.replicable_name: t for t in self.types}
        self._name = None

    @property
    def name(self) -> str:
        if self._name is None:
            self._name = self.client.node()["name"]
        return self._name

    def _type(self, replicable: str):
        try:
            return self._types[replicable]
        except KeyError:
            raise ValueError(f"{self.client.url} does not replicate {replicable!r}") from None

    def overview(self) -> dict:
        return self.client.status()

    def sites(self) -> list[dict]:
        """Every site's status: the secondary's `GET /api/v4/geo_sites/status`,
        which it answers by asking its primary (the console may have no
        route to the primary itself)."""
        return self.client.all_statuses()

    def history(self, replicable: str, start, end, buckets):
        points = self.client.history(start, end, buckets, self._type(replicable))
        return [_snake_point(point) for point in points]

    def state_counts(self, replicable: str) -> dict[str, int]:
        counts = {"all": self.count(replicable, RegistrySelection())}
        for state in SyncState:
            counts[state.label] = self.count(replicable,
                                             RegistrySelection(replication_state=state))
        for state in VerificationState:
            counts[f"v_{state.label}"] = self.count(
                replicable, RegistrySelection(verification_state=state))
        return counts

    def count(self, replicable: str, selection: RegistrySelection) -> int:
        # The API caps counts at 1000 (GitLab's rule); above that the status
        # totals give the size of unfiltered and single-state views.
        kind = self._type(replicable)
        page = self.client.registries(kind, selection, first=0)
        if page.count is not None and page.count <= 1000:
            return page.count
        if not selection.keyword and selection.verification_state is None \
                and selection.ids is None:
            key = {None: "registry_count", SyncState.SYNCED: "synced_count",
                   SyncState.FAILED: "failed_count"}.get(selection.replication_state)
            total = self.client.status().get(f"{kind.plural_name}_{key}") if key else None
            if total is not None:
                return total
        return page.count

    def rows(self, replicable: str, selection: RegistrySelection, sort: str, offset: int,
             limit: int) -> list[RegistryRow]:
        kind = self._type(replicable)
        rows = []
        while limit > 0:  # in pages the API allows
            page = self.client.registries(kind, selection, sort=sort,
                                          first=min(limit, REMOTE_PAGE), offset=offset)
            rows += page.rows
            if len(page.rows) < min(limit, REMOTE_PAGE):
                break
            offset, limit = offset + len(page.rows), limit - len(page.rows)
        return rows

    def export_rows(self, replicable: str, selection: RegistrySelection):
        offset = 0
        while True:
            rows = self.rows(replicable, selection, registry_query.DEFAULT_SORT, offset,
                             REMOTE_PAGE)
            yield from rows
            if len(rows) < REMOTE_PAGE:
                return
            offset += len(rows)

    def failure_groups(self, replicable: str, limit: int = 100) -> list[dict]:
        return self.client.failure_groups(self._type(replicable), limit)

    def failed_ids(self, replicable: str, limit: int) -> list[int]:
        failed = RegistrySelection(replication_state=SyncState.FAILED)
        return [row.registry_id for row in itertools.islice(
            self.export_rows(replicable, failed), limit)]

    def act(self, replicable: str, action: str, selection: RegistrySelection,
            progress=None) -> int:
        """The bulk mutation narrows by ids and states; a keyword it does not
        know is turned into the ids it matches first. Ids go ACTION_CHUNK a
        mutation, each reported to `progress`, which may cancel the rest; a
        mutation by states runs on the site, in the background."""
        kind = self._type(replicable)
        if not selection.narrows_by_ids_and_states_only:
            ids = tuple(row.registry_id for row in self.export_rows(replicable, selection))
            if not ids:
                return 0
            selection = RegistrySelection(ids=ids)
        if selection.ids is not None:
            changed = 0
            for start in range(0, len(selection.ids), ACTION_CHUNK):
                if progress is not None:
                    if progress.cancelled():
                        progress.stopped(True)
                        break
                    progress.report(start, len(selection.ids))
                changed += self.client.bulk_update(action, kind, selection.narrowed(
                    ids=selection.ids[start:start + ACTION_CHUNK]))
            return changed
        return self.client.bulk_update(action, kind, selection)

    def pause(self) -> None:
        raise RuntimeError("a remote secondary is paused on its own machine")

    resume = pause


def local_types() -> list:
    """Every type this console knows, for settings of a site it will run."""
    return [r.describe() for r in registered()]


def _snake_point(point: dict) -> dict:
    out = {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): value for key, value in point.items()}
    out["time"] = dt.datetime.fromisoformat(point["time"].replace("Z", "+00:00")) \
        if point.get("time") else None
    return out
