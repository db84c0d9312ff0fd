"""Where a secondary keeps replicated blobs: `<storage>/<plural>/<bucket>/<id>`.

The path is derived from the record id alone, so a file can be removed even
after its record has vanished from the primary.
"""
from __future__ import annotations

import os
import pathlib

BUCKET = 10_000
TEMP_PREFIX = "tmp_"


class LocalStorage:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = pathlib.Path(root).resolve()

    def path(self, replicator, model_id: int) -> pathlib.Path:
        model_id = int(model_id)
        if model_id <= 0:
            raise ValueError(f"invalid record id {model_id}")
        return self.root / replicator.plural_name / str(model_id // BUCKET) / str(model_id)

    def remove(self, replicator, model_id: int) -> bool:
        try:
            self.path(replicator, model_id).unlink()
            return True
        except FileNotFoundError:
            return False

    def temporary_files(self) -> list[pathlib.Path]:
        """Leftover download files (a crash mid-download leaves one)."""
        if not self.root.exists():
            return []
        return [p for p in self.root.rglob(f"{TEMP_PREFIX}*") if p.is_file()]

    def remove_temporary_files(self) -> int:
        removed = 0
        for path in self.temporary_files():
            path.unlink(missing_ok=True)
            removed += 1
        return removed
