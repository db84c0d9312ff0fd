"""Export from the console: the current filter to CSV or JSON through
backend.reports (on a worker, with progress and cancel), and a PDF report
(status summary, charts, top failure groups) with QTextDocument + QPdfWriter.
"""
from __future__ import annotations

import datetime as dt
import html
import threading

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QUrl
from PySide6.QtGui import QImage, QPageLayout, QPageSize, QPdfWriter, QTextDocument

from backend import reports


def report_rows(rows, replicator):
    """Console rows (app.sources) as report rows (backend.reports)."""
    for row in rows:
        out = {"registry_id": row["registry_id"], replicator.registry_fk: row["model_id"]}
        for name in reports.columns(replicator)[2:]:
            value = row.get(name)
            out[name] = reports.iso(value) if isinstance(value, dt.datetime) else value
        yield out


class ExportJob:
    """One CSV/JSON export; `cancel()` may be called from any thread."""

    def __init__(self, source, view, fmt: str, path: str) -> None:
        self.source, self.view, self.fmt, self.path = source, view, fmt, path
        self._cancelled = threading.Event()
        self.progress = (0, 0)

    def cancel(self) -> None:
        self._cancelled.set()

    def run(self) -> int:
        replicator = self.source.replicators[0]
        total = self.source.count(self.view)
        summary = self.source.overview()
        summary.pop("primary_status", None)
        return reports.write_report(
            replicator, report_rows(self.source.export_rows(self.view), replicator), total,
            self.fmt, self.path,
            filter_description=reports.describe_filter(
                self.view.replication_state, self.view.verification_state,
                search=self.view.search or None),
            summary=summary, site_name=self.source.name,
            progress=lambda done, of: setattr(self, "progress", (done, of)),
            cancelled=self._cancelled.is_set)


def _image_bytes(image: QImage) -> QByteArray:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    image.save(buffer, "PNG")
    return data


def report_html(status: dict, groups: list[dict], replicators, charts: list[str],
                site_name: str) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for replicator in replicators:
        p = replicator.plural_name
        for label, key in (("Registries", "registry_count"), ("Synced", "synced_count"),
                           ("Failed", "failed_count"), ("Verified", "verified_count"),
                           ("Verification failed", "verification_failed_count"),
                           ("Synced %", "synced_in_percentage"),
                           ("Verified %", "verified_in_percentage")):
            value = status.get(f"{p}_{key}")
            rows.append(f"<tr><td>{html.escape(replicator.title_plural)}</td>"
                        f"<td>{label}</td><td align='right'>"
                        f"{html.escape(str(value if value is not None else '—'))}</td></tr>")
    failure_rows = "".join(
        f"<tr><td align='right'>{g['count']:,}</td><td>{html.escape(g['message'] or '—')}</td>"
        f"<td>{html.escape(reports.iso(g['last_seen_at']) or '—')}</td></tr>"
        for g in groups[:15]) or "<tr><td colspan='3'>No failures.</td></tr>"
    images = "".join(f"<p><img src='{name}' width='640'></p>" for name in charts)
    health = html.escape(status.get("health") or "Unknown")
    return f"""
    <h1>Geo replication report — {html.escape(site_name)}</h1>
    <p>Generated {now}. Health: <b>{health}</b>.
       Last event {status.get('last_event_id')}, processed {status.get('cursor_last_event_id')}.</p>
    <h2>Status</h2>
    <table border='1' cellspacing='0' cellpadding='4'>
      <tr><th>Data type</th><th>Measure</th><th>Value</th></tr>{''.join(rows)}</table>
    <h2>Charts</h2>{images}
    <h2>Top failure groups</h2>
    <table border='1' cellspacing='0' cellpadding='4'>
      <tr><th>Registries</th><th>Failure</th><th>Last seen</th></tr>{failure_rows}</table>
    """


def write_pdf(path: str, status: dict, groups: list[dict], replicators,
              chart_images: dict[str, QImage], site_name: str) -> None:
    """Must run on the GUI thread (QTextDocument and images are GUI objects)."""
    document = QTextDocument()
    names = []
    for index, (title, image) in enumerate(chart_images.items()):
        name = f"chart://{index}"
        document.addResource(QTextDocument.ImageResource, QUrl(name), image)
        names.append(name)
    document.setHtml(report_html(status, groups, replicators, names, site_name))
    writer = QPdfWriter(path)
    writer.setTitle(f"Geo replication report — {site_name}")
    writer.setCreator("Geo Console")
    writer.setPageSize(QPageSize(QPageSize.A4))
    writer.setPageMargins(QMarginsF(15, 15, 15, 15), QPageLayout.Millimeter)
    writer.setResolution(96)
    document.setPageSize(writer.pageLayout().paintRectPixels(96).size().toSizeF())
    document.print_(writer)
