"""Selective sync: which records a secondary replicates.

The secondary sends its scope with each listing request; the primary turns
it into SQL (backend/primary/replicables_query.py).
"""
from __future__ import annotations

from dataclasses import dataclass

SELECTIVE_SYNC_TYPES = ("", "namespaces", "shards")


class ScopeError(ValueError):
    pass


@dataclass(frozen=True)
class SyncScope:
    selective_sync_type: str = ""
    namespace_ids: tuple[int, ...] = ()
    shards: tuple[str, ...] = ()
    sync_object_storage: bool = False

    def __post_init__(self) -> None:
        if self.selective_sync_type not in SELECTIVE_SYNC_TYPES:
            raise ScopeError(
                f"selective_sync_type must be one of "
                f"{', '.join(repr(t) for t in SELECTIVE_SYNC_TYPES)}, "
                f"not {self.selective_sync_type!r}")

    @property
    def is_selective(self) -> bool:
        return bool(self.selective_sync_type)

    def to_params(self) -> dict[str, str]:
        return {
            "selective_sync_type": self.selective_sync_type,
            "namespace_ids": ",".join(str(i) for i in self.namespace_ids),
            "shards": ",".join(self.shards),
            "sync_object_storage": "1" if self.sync_object_storage else "0",
        }

    @classmethod
    def from_params(cls, params) -> "SyncScope":
        try:
            ids = tuple(int(part) for part in params.get("namespace_ids", "").split(",")
                        if part.strip())
        except ValueError:
            raise ScopeError("namespace_ids must be a comma-separated list of integers") from None
        shards = tuple(part for part in params.get("shards", "").split(",") if part.strip())
        flag = params.get("sync_object_storage", "0")
        if flag not in ("0", "1"):
            raise ScopeError("sync_object_storage must be 0 or 1")
        return cls(params.get("selective_sync_type", ""), ids, shards, flag == "1")
