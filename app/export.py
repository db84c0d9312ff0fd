"""Export from the console: the registries of the current type and filter to
CSV or JSON through backend.reports (on a worker, with progress and
cancel). The PDF status report is app/pdf_report.py.
"""
from __future__ import annotations

import threading

from backend import reports


class ExportJob:
    """One CSV/JSON export; `cancel()` may be called from any thread."""

    def __init__(self, source, data_type, selection, fmt: str, path: str) -> None:
        self.source, self.data_type, self.selection = source, data_type, selection
        self.fmt, self.path = fmt, path
        self._cancelled = threading.Event()
        self.progress = (0, 0)

    def cancel(self) -> None:
        self._cancelled.set()

    def run(self) -> int:
        replicable = self.data_type.replicable_name
        total = self.source.count(replicable, self.selection)
        summary = self.source.overview()
        summary.pop("primary_status", None)
        return reports.write_report(
            self.data_type, self.source.export_rows(replicable, self.selection), total,
            self.fmt, self.path, selection=self.selection, summary=summary,
            site_name=self.source.name,
            progress=lambda done, of: setattr(self, "progress", (done, of)),
            cancelled=self._cancelled.is_set)


