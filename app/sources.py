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

from app.history_store import HistoryStore
from backend.framework.states import SyncState, VerificationState
from backend.replicables import registered
from backend.secondary import registry_query, status_history
from backend.secondary.bulk_actions import BulkAction
from backend.secondary.registry_row import RegistryRow
from backend.secondary.registry_selection import RegistrySelection

SYNC_STATES = [state.label for state in SyncState]
VERIFICATION_STATES = [state.label for state in VerificationState]
ACTION_CHUNK = 1000  # registry ids per bulk mutation of a remote site
COUNT_LIMIT = 1000  # GitLab's count(limit) answers at most this, else limit + 1
UPDATES_PER_REPORT = 20  # single-registry mutations between two progress reports
READ_ONLY_TOKEN = ("The access token only reads: resync and reverify need a token with "
                   "GitLab's api scope, or the site's api_token (Settings).")


def empty_state_counts() -> dict[str, int]:
    """'all', every sync state's label, and 'v_<verification state>'."""
    return dict.fromkeys(["all", *SYNC_STATES, *(f"v_{s}" for s in VERIFICATION_STATES)], 0)


class TrackingDatabaseReads:
    """Reads and actions on a tracking database, straight with the backend's
    queries: this console's own (LocalSource) or a GitLab site's
    (GitLabDatabaseSource). Subclasses set `engine`, `types` and
    `_replicators` (replicator-shaped tables by type name)."""

    engine = None
    types: list = []
    _replicators: dict = {}
    bulk_leased = True  # this product's tables have a lease table; GitLab's do not

    def replicator(self, replicable: str):
        try:
            return self._replicators[replicable]
        except KeyError:
            raise ValueError(f"this site does not replicate {replicable!r}") from None

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

    def act(self, replicable: str, action: str, selection: RegistrySelection,
            progress=None) -> int:
        """resync / reverify what the selection picks, decided by the
        database, 1,000 registries a transaction; `progress` (a
        BulkProgress) is told after each and may cancel the rest."""
        result = BulkAction(self.engine, self.replicator(replicable),
                            leased=self.bulk_leased).run(
            action, selection,
            progress=progress.report if progress else lambda done, total: None,
            cancelled=progress.cancelled if progress else lambda: False)
        if progress is not None:
            progress.stopped(result.cancelled)
        self.registries_changed()
        return result.changed

    def registries_changed(self) -> None:
        """Told after an action changed registries."""


class LocalSource(TrackingDatabaseReads):
    """The engine this console hosts, and its tracking DB."""

    remote = False
    can_act = True   # resync and reverify
    cannot_act_because = ""

    def __init__(self, site, primary=None) -> None:
        self.site = site          # backend.sites.secondary.SecondarySite
        self.primary = primary    # the demo's PrimarySite, when there is one
        self.engine = site.tracking_engine
        self._replicators = {r.replicable_name: r for r in site.replicators}
        self.types = [r.describe() for r in site.replicators]

    @property
    def name(self) -> str:
        return self.site.name

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

    def registries_changed(self) -> None:
        self.site.registries_changed()

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
    """A remote secondary, Geo Console's or GitLab's, through its GraphQL API
    (app.site_client). Its types are those its schema has registries for.

    What the site's schema lacks is done here, never sent: a page at an
    offset is reached by the cursors of the pages before it (`CursorWalk`);
    a narrowing by failure message is applied to the registries the site
    narrows by state; failures are grouped from the failed registries; a
    bulk action the site has no mutation for is one update per registry,
    in batches, reported to the progress and cancellable between them."""

    remote = True
    can_pause = False

    def __init__(self, client) -> None:
        self.client = client
        self.types = client.types()
        self._types = {t.replicable_name: t for t in self.types}
        self._name = client.identity()["name"]
        self._walks: dict = {}
        # What the token may do, asked once: GitLab's read_api scope, or a
        # site's read_token, only reads.
        self.can_act = client.check_token(self.types[0]) == "write"
        self.cannot_act_because = "" if self.can_act else READ_ONLY_TOKEN
        # A site that keeps no history (GitLab) gets one recorded here.
        self.history_store = None if client.schema().has_history else HistoryStore(client.url)

    def close(self) -> None:
        self.client.close()
        if self.history_store is not None:
            self.history_store.close()

    @property
    def name(self) -> str:
        return self._name

    def _type(self, replicable: str):
        try:
            return self._types[replicable]
        except KeyError:
            raise ValueError(f"{self.client.url} does not replicate {replicable!r}") from None

    def overview(self) -> dict:
        status = self.client.status()
        # GitLab's status names neither the site nor an engine (its Sidekiq
        # jobs are the engine): say which site, and that it is GitLab's.
        status.setdefault("name", self.name)
        status.setdefault("engine_state", "gitlab")
        if self.history_store is not None:
            self.history_store.record(status, self.types)
        return status

    def sites(self) -> list[dict]:
        """Every site's status: the secondary's `GET /api/v4/geo_sites/status`,
        which it answers by asking its primary (the console may have no
        route to the primary itself). GitLab's statuses name no site: names,
        URLs and roles come from its site list (`GET /api/v4/geo_sites`)."""
        statuses = self.client.all_statuses()
        if any(isinstance(s, dict) and "name" not in s for s in statuses):
            objects = {site.get("id"): site for site in self.client.sites()}
            for status in statuses:
                site = objects.get(status.get("geo_node_id")) or {}
                for key in ("name", "url", "primary"):
                    status.setdefault(key, site.get(key))
        return statuses

    def history(self, replicable: str, start, end, buckets):
        kind = self._type(replicable)
        if self.history_store is not None:
            return self.history_store.read(kind.replicable_name, start, end, buckets)
        points = self.client.history(start, end, buckets, kind)
        return [_snake_point(point) for point in points or []]

    def sorts(self, replicable: str) -> list[str] | None:
        """The orders the site can list registries in; None: any of ours."""
        kind = self._type(replicable)
        return None if self.client.can_narrow(kind, "sort") else [registry_query.DEFAULT_SORT]

    def state_counts(self, replicable: str) -> dict[str, int]:
        counts = {"all": self.count(replicable, RegistrySelection())}
        for state in SyncState:
            counts[state.label] = self.count(replicable,
                                             RegistrySelection(replication_state=state))
        for state in VerificationState:
            counts[f"v_{state.label}"] = self.count(
                replicable, RegistrySelection(verification_state=state))
        return counts

    def count(self, replicable: str, selection: RegistrySelection) -> int | None:
        """Exact where the site can say: its count up to 1,000 (GitLab's
        limit), else its status totals for what they cover; else, for a
        selection the site cannot narrow by, the registries matched by
        walking them. None where nothing tells (GitLab 16.x, more than a
        page of a state its status does not count)."""
        kind = self._type(replicable)
        server, keep = self._split(kind, selection)
        if keep is not None:
            return sum(1 for _ in self._walk_all(kind, server, keep))
        page = self.client.registries(kind, selection, first=0 if self.client.counts(kind)
                                      else self.client.page_size(kind))
        if page.count is not None and page.count <= COUNT_LIMIT:
            return page.count
        if page.count is None and not page.has_next_page:
            return len(page.rows)
        total = self._status_total(kind, selection)
        if total is not None:
            return total
        # More than the site counts (19.x answers limit + 1), or more than a
        # page (16.x): that many at least, shown "1,000+", as GitLab does.
        return AtLeast(page.count if page.count is not None else len(page.rows) + 1)

    def _status_total(self, kind, selection: RegistrySelection) -> int | None:
        if selection.keyword or selection.ids is not None:
            return None
        by_state = {(None, None): "registry_count", (SyncState.SYNCED, None): "synced_count",
                    (SyncState.FAILED, None): "failed_count",
                    (None, VerificationState.SUCCEEDED): "verified_count",
                    (None, VerificationState.FAILED): "verification_failed_count"}
        key = by_state.get((selection.replication_state, selection.verification_state))
        return self.client.status().get(f"{kind.plural_name}_{key}") if key else None

    def _split(self, kind, selection: RegistrySelection):
        """(what the site narrows by, a test for the rest or None)."""
        if (selection.sync_failure is None or self.client.can_narrow(kind, "syncFailure")) \
                and (selection.verification_failure is None
                     or self.client.can_narrow(kind, "verificationFailure")) \
                and selection.model_ids is None:
            return selection, None
        server = selection.narrowed(sync_failure=None, verification_failure=None,
                                    model_ids=None)
        if selection.sync_failure is not None and server.replication_state is None:
            server = server.narrowed(replication_state=SyncState.FAILED)
        if selection.verification_failure is not None and server.verification_state is None:
            server = server.narrowed(verification_state=VerificationState.FAILED)

        def keep(row) -> bool:
            return ((selection.sync_failure is None
                     or row.last_sync_failure == selection.sync_failure)
                    and (selection.verification_failure is None
                         or row.verification_failure == selection.verification_failure)
                    and (selection.model_ids is None or row.model_id in selection.model_ids))
        return server, keep

    def _walk_all(self, kind, selection: RegistrySelection, keep=None,
                  sort: str = registry_query.DEFAULT_SORT):
        """Every registry the site lists for the selection, page by page."""
        after = None
        while True:
            page = self.client.registries(kind, selection, sort=sort, after=after,
                                          first=self.client.page_size(kind))
            yield from (row for row in page.rows if keep is None or keep(row))
            if not page.has_next_page or not page.rows:
                return
            after = page.end_cursor

    def rows(self, replicable: str, selection: RegistrySelection, sort: str, offset: int,
             limit: int) -> list[RegistryRow]:
        kind = self._type(replicable)
        if sort != registry_query.DEFAULT_SORT and not self.client.can_narrow(kind, "sort"):
            raise ValueError(f"{self.client.url} lists {kind.title_plural} by id only")
        server, keep = self._split(kind, selection)
        if keep is not None:
            return list(itertools.islice(self._walk_all(kind, server, keep, sort), offset,
                                         offset + limit))
        if not self.client.can_narrow(kind, "offset"):
            return self._walk(kind, selection, sort).rows(offset, limit)
        rows, size = [], self.client.page_size(kind)
        while limit > 0:  # in pages the API allows
            page = self.client.registries(kind, selection, sort=sort,
                                          first=min(limit, size), offset=offset)
            rows += page.rows
            if not page.has_next_page or not page.rows:
                break
            offset, limit = offset + len(page.rows), limit - len(page.rows)
        return rows

    def _walk(self, kind, selection, sort) -> "CursorWalk":
        key = (kind.replicable_name, selection, sort)
        walk = self._walks.get(key)
        if walk is None:
            if len(self._walks) >= 16:
                self._walks.pop(next(iter(self._walks)))
            walk = self._walks[key] = CursorWalk(
                lambda after, first: self.client.registries(kind, selection, sort=sort,
                                                            after=after, first=first),
                self.client.page_size(kind))
        return walk

    def export_rows(self, replicable: str, selection: RegistrySelection):
        kind = self._type(replicable)
        server, keep = self._split(kind, selection)
        yield from self._walk_all(kind, server, keep)

    def failure_groups(self, replicable: str, limit: int = 100) -> list[dict]:
        kind = self._type(replicable)
        groups = self.client.failure_groups(kind, limit)
        if groups is not None:
            return groups
        return _grouped_failures(itertools.chain(
            (("sync", row) for row in self._walk_all(
                kind, RegistrySelection(replication_state=SyncState.FAILED))),
            (("verification", row) for row in self._walk_all(
                kind, RegistrySelection(verification_state=VerificationState.FAILED)))),
            limit)

    def failed_ids(self, replicable: str, limit: int) -> list[int]:
        failed = RegistrySelection(replication_state=SyncState.FAILED)
        return [row.registry_id for row in itertools.islice(
            self.export_rows(replicable, failed), limit)]

    def act(self, replicable: str, action: str, selection: RegistrySelection,
            progress=None) -> int:
        """Resync or reverify exactly what the selection picks. One bulk
        mutation where the site has one that narrows as the selection does
        (a state, or ACTION_CHUNK ids a mutation); else the ids are listed
        first and each is updated on its own. `progress` is told after each
        step and may cancel the rest."""
        if not self.can_act:
            raise ValueError(READ_ONLY_TOKEN)
        kind = self._type(replicable)
        client = self.client
        states = [name for name, value in (
            ("replicationState", selection.replication_state),
            ("verificationState", selection.verification_state)) if value is not None]
        if selection.narrows_by_ids_and_states_only and selection.ids is None \
                and client.schema().bulk_narrows_by(*states):
            # GitLab says not how many it schedules: those the selection
            # matched just before.
            matched = None if "updatedCount" in client.schema().bulk_payload \
                else self.count(replicable, selection)
            changed = client.bulk_update(action, kind, selection)
            return matched if changed is None else changed
        # Ids alone are exactly those; anything more narrows them on the site.
        if selection.ids is not None and selection == RegistrySelection(ids=selection.ids):
            ids = selection.ids
        else:
            ids = tuple(row.registry_id for row in self.export_rows(replicable, selection))
        if not ids:
            return 0
        chunked = client.schema().bulk_narrows_by("ids")
        step = ACTION_CHUNK if chunked else 1
        report_every = ACTION_CHUNK if chunked else UPDATES_PER_REPORT
        changed = 0
        for start in range(0, len(ids), step):
            if progress is not None:
                if progress.cancelled():
                    progress.stopped(True)
                    return changed
                if start % report_every == 0:
                    progress.report(start, len(ids))
            if chunked:
                part = ids[start:start + step]
                done = client.bulk_update(action, kind, RegistrySelection(ids=part))
                changed += len(part) if done is None else done
            else:
                client.update(action, kind, ids[start])
                changed += 1
        if progress is not None:
            progress.stopped(False)
        return changed

    def pause(self) -> None:
        raise RuntimeError("a remote secondary is paused on its own machine")

    resume = pause


class AtLeast(int):
    """A count known only from below: more than int(self) - 1 registries.
    It is used as the number it is (the table shows that many rows) and
    reads "1,000+" wherever it is written."""

    def __format__(self, spec: str) -> str:
        return format(int(self) - 1, spec) + "+"

    def __str__(self) -> str:
        return f"{self:,}"


class CursorWalk:
    """Offsets over a site that pages by cursor only (GitLab): the end
    cursor of every page read is kept, so a page asked for again, or the
    one after, costs one request, and a jump walks only from the nearest
    page read before it."""

    def __init__(self, fetch, size: int) -> None:
        self.fetch = fetch          # (after, first) -> RegistryPage
        self.size = size
        self.after = {0: None}      # offset -> the cursor the page there starts after
        self.ended_at: int | None = None  # the offset past the last registry, once seen

    def rows(self, offset: int, limit: int) -> list[RegistryRow]:
        if offset == 0:
            self.after, self.ended_at = {0: None}, None  # a view read anew
        start = max(known for known in self.after if known <= offset)
        out: list[RegistryRow] = []
        while start < offset + limit and (self.ended_at is None or start < self.ended_at):
            page = self.fetch(self.after[start], self.size)
            out += page.rows[max(0, offset - start):offset + limit - start]
            if not page.has_next_page or not page.rows:
                self.ended_at = start + len(page.rows)
                break
            start += len(page.rows)
            self.after[start] = page.end_cursor
        return out


def _grouped_failures(failures, limit: int) -> list[dict]:
    """Failed registries grouped by kind and message, largest first."""
    groups: dict[tuple[str, str], dict] = {}
    for kind, row in failures:
        message = (row.last_sync_failure if kind == "sync" else row.verification_failure) \
            or "Unknown"
        group = groups.setdefault((kind, message), {"kind": kind, "message": message,
                                                    "count": 0, "last_seen_at": None})
        group["count"] += 1  # GitLab records no time of a failure: last_seen_at stays None
    ordered = sorted(groups.values(), key=lambda g: (-g["count"], g["kind"], g["message"]))
    return ordered[:limit]


def local_types() -> list:
    """Every type this console knows, for settings of a site it will run."""
    return [r.describe() for r in registered()]


def _snake_point(point: dict) -> dict:
    out = {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): value for key, value in point.items()}
    out["time"] = dt.datetime.fromisoformat(point["time"].replace("Z", "+00:00")) \
        if point.get("time") else None
    return out
