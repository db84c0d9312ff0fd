"""Export from the console: the registries of the current type and filter to
CSV or JSON through backend.reports (on a worker, with progress and
cancel), and a PDF report (the status of every type, the current type's
charts, every type's top failure groups) with QTextDocument + QPdfWriter.
"""
from __future__ import annotations

import datetime as dt
import html
import threading

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QUrl
from PySide6.QtGui import QImage, QPageLayout, QPageSize, QPdfWriter, QTextDocument

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


def _image_bytes(image: QImage) -> QByteArray:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    image.save(buffer, "PNG")
    return data


def report_html(status: dict, groups: dict, types, charts: list[str], site_name: str,
                charted=None) -> str:
    """`groups`: type name -> its failure groups; `charted`: the type the
    charts show."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for replicator in types:
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
        f"<tr><td>{html.escape(kind.title_plural)}</td><td align='right'>{g['count']:,}</td>"
        f"<td>{html.escape(g['message'] or '—')}</td>"
        f"<td>{html.escape(reports.iso(g['last_seen_at']) or '—')}</td></tr>"
        for kind in types for g in groups.get(kind.replicable_name, [])[:15]) \
        or "<tr><td colspan='4'>No failures.</td></tr>"
    chart_title = f"Charts: {html.escape(charted.title_plural)}" if charted else "Charts"
    images = "".join(f"<p><img src='{name}' width='640'></p>" for name in charts)
    health = html.escape(status.get("health") or "Unknown")
    return f"""
    <h1>Geo replication report — {html.escape(site_name)}</h1>
    <p>Generated {now}. Health: <b>{health}</b>.
       Last event {status.get('last_event_id')}, processed {status.get('cursor_last_event_id')}.</p>
    <h2>Status</h2>
    <table border='1' cellspacing='0' cellpadding='4'>
      <tr><th>Data type</th><th>Measure</th><th>Value</th></tr>{''.join(rows)}</table>
    <h2>{chart_title}</h2>{images}
    <h2>Top failure groups</h2>
    <table border='1' cellspacing='0' cellpadding='4'>
      <tr><th>Data type</th><th>Registries</th><th>Failure</th><th>Last seen</th></tr>
      {failure_rows}</table>
    """


def write_pdf(path: str, status: dict, groups: dict, types,
              chart_images: dict[str, QImage], site_name: str, charted=None) -> None:
    """Must run on the GUI thread (QTextDocument and images are GUI objects)."""
    document = QTextDocument()
    names = []
    for index, (title, image) in enumerate(chart_images.items()):
        name = f"chart://{index}"
        document.addResource(QTextDocument.ImageResource, QUrl(name), image)
        names.append(name)
    document.setHtml(report_html(status, groups, types, names, site_name, charted))
    writer = QPdfWriter(path)
    writer.setTitle(f"Geo replication report — {site_name}")
    writer.setCreator("Geo Console")
    writer.setPageSize(QPageSize(QPageSize.A4))
    writer.setPageMargins(QMarginsF(15, 15, 15, 15), QPageLayout.Millimeter)
    writer.setResolution(96)
    document.setPageSize(writer.pageLayout().paintRectPixels(96).size().toSizeF())
    document.print_(writer)
