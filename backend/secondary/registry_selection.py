"""Which registries of one type: the one selection that reads, actions,
reports, GraphQL and the console narrow registries by.

A selection is turned into WHERE clauses on the registry table, so what it
picks is decided by the database: a resync narrowed by a keyword is one
UPDATE, never a million ids loaded into Python first.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlalchemy import false, func, or_, select

from backend.db.types import MAX_ID
from backend.framework.states import SyncState, VerificationState


def _is_text(value: str) -> bool:
    """Whether `value` can be stored and compared as UTF-8 (a lone surrogate,
    which JSON can carry, cannot)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class RegistrySelection:
    """Registries matching every given part (None: not narrowed by it).

    `keyword` is what an administrator types in a search box: registry or
    model ids ("12 15 300", commas allowed), or else a piece of a file name
    or of failure text.
    """

    ids: tuple[int, ...] | None = None          # registry ids
    model_ids: tuple[int, ...] | None = None    # ids of the replicated records
    replication_state: SyncState | None = None
    verification_state: VerificationState | None = None
    keyword: str | None = None
    # Exactly this failure message (a group of the Failures view).
    sync_failure: str | None = None
    verification_failure: str | None = None

    def __post_init__(self) -> None:
        # Normalised once, so equal selections compare equal.
        for name in ("ids", "model_ids"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(int(i) for i in value))
        for name, kind in (("replication_state", SyncState),
                           ("verification_state", VerificationState)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                object.__setattr__(self, name, kind(value))
        keyword = (self.keyword or "").strip() or None
        for name, text in (("search text", keyword), ("failure", self.sync_failure),
                           ("failure", self.verification_failure)):
            if text is not None and not _is_text(text):
                raise ValueError(f"the {name} holds a character that is not text (a lone "
                                 "UTF-16 surrogate); type it again")
        object.__setattr__(self, "keyword", keyword)

    def narrowed(self, **changes) -> "RegistrySelection":
        return dataclasses.replace(self, **changes)

    @property
    def narrows_by_ids_and_states_only(self) -> bool:
        """What GitLab's bulk mutation can narrow by: registry ids and states."""
        return (self.keyword is None and self.model_ids is None and self.sync_failure is None
                and self.verification_failure is None)

    @property
    def is_everything(self) -> bool:
        return self == RegistrySelection()

    def clauses(self, table, fk, details=None) -> list:
        """WHERE clauses on the registry `table` whose model id column is `fk`;
        with its `details` table, a keyword also finds file names."""
        clauses = []
        if self.ids is not None:
            clauses.append(table.c.id.in_(self.ids) if self.ids else false())
        if self.model_ids is not None:
            clauses.append(fk.in_(self.model_ids) if self.model_ids else false())
        if self.replication_state is not None:
            clauses.append(table.c.state == int(self.replication_state))
        if self.verification_state is not None:
            clauses.append(table.c.verification_state == int(self.verification_state))
        # As registry_query.failure_groups groups them ("" for no message).
        if self.sync_failure is not None:
            clauses += [table.c.state == int(SyncState.FAILED),
                        table.c.verification_state != int(VerificationState.FAILED),
                        func.coalesce(table.c.last_sync_failure, "") == self.sync_failure]
        if self.verification_failure is not None:
            clauses += [table.c.verification_state == int(VerificationState.FAILED),
                        func.coalesce(table.c.verification_failure, "")
                        == self.verification_failure]
        if self.keyword:
            numbers = self.keyword.replace(",", " ").split()
            if all(part.isascii() and part.isdigit() for part in numbers):
                values = [int(part) for part in numbers if int(part) <= MAX_ID]
                clauses.append(or_(table.c.id.in_(values), fk.in_(values)))
            else:
                # The typed text is matched as written: % and _ are not wildcards.
                typed = self.keyword.lower()
                for special in ("\\", "%", "_"):
                    typed = typed.replace(special, "\\" + special)
                pattern = f"%{typed}%"

                def contains(column):
                    return func.lower(column).like(pattern, escape="\\")
                found = [contains(table.c.last_sync_failure),
                         contains(table.c.verification_failure)]
                if details is not None:
                    key = details.c[fk.name]
                    found.append(fk.in_(select(key).where(contains(details.c.file_name))))
                clauses.append(or_(*found))
        return clauses

    def describe(self) -> str:
        """In words, for confirmations and status lines."""
        parts = []
        if self.replication_state is not None:
            parts.append(f"replication {self.replication_state.label}")
        if self.verification_state is not None:
            parts.append(f"verification {self.verification_state.label}")
        if self.keyword:
            parts.append(f"search “{self.keyword}”")
        if self.sync_failure is not None:
            parts.append(f"sync failure “{self.sync_failure}”")
        if self.verification_failure is not None:
            parts.append(f"verification failure “{self.verification_failure}”")
        if self.ids is not None:
            parts.append(f"{len(self.ids):,} chosen {'registry' if len(self.ids) == 1 else 'registries'}")
        if self.model_ids is not None:
            parts.append(f"{len(self.model_ids):,} chosen records")
        return ", ".join(parts) or "all registries"

    def as_dict(self) -> dict:
        """For a report's header: states by name."""
        described = {
            "replication_state": self.replication_state.label
            if self.replication_state is not None else None,
            "verification_state": self.verification_state.label
            if self.verification_state is not None else None,
            "ids": list(self.ids) if self.ids is not None else None,
            "model_ids": list(self.model_ids) if self.model_ids is not None else None,
            "search": self.keyword,
        }
        for name in ("sync_failure", "verification_failure"):  # a failure group's
            if getattr(self, name) is not None:
                described[name] = getattr(self, name)
        return described


def table_clauses(replicator, selection: RegistrySelection) -> list:
    """`selection`'s clauses on `replicator`'s registry table."""
    table = replicator.registry_table()
    return selection.clauses(table, table.c[replicator.registry_fk],
                             replicator.details_table())
