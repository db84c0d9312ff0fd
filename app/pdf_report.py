"""The PDF status report: the status of every type, the history charts of
the charted types over a stated range (clock times with the zone, fitted to
the page width), and every type's top failure groups.

`gather_status_report` reads a source (blocking: on a worker);
`write_pdf` draws on the GUI thread (QTextDocument, QPdfWriter and the
charts are GUI objects). The command line gathers from the tracking DB
(backend.reports.status_report) and calls `write_pdf_report`, which makes
the offscreen application Qt needs when there is none.
"""
from __future__ import annotations

import datetime as dt
import html
import logging
import os
import pathlib
import tempfile

from PySide6.QtCore import QMarginsF, QPoint, Qt, QUrl, qInstallMessageHandler
from PySide6.QtGui import QColor, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, \
    QTextDocument
from PySide6.QtWidgets import QApplication

import resources
from app.history_charts import fill_charts, make_charts, title_charts
from backend.reports import REPORTED_FAILURE_GROUPS, StatusReport, source_status_report
from widgets.chart_axes import zone_name

log = logging.getLogger(__name__)

RESOLUTION = 96          # the document's pixels per inch
CHART_HEIGHT = 250       # logical pixels, at the page's width
IMAGE_SCALE = 2          # chart images drawn at twice that for print
STATUS_ROWS = (("Registries", "registry_count"), ("Synced", "synced_count"),
               ("Failed", "failed_count"), ("Verified", "verified_count"),
               ("Verification failed", "verification_failed_count"),
               ("Synced %", "synced_in_percentage"), ("Verified %", "verified_in_percentage"))


def gather_status_report(source, charted: list, start: dt.datetime,
                         end: dt.datetime) -> StatusReport:
    """Everything the report shows, from a console source (blocking)."""
    return source_status_report(source, source.types, charted, start, end)


def local(moment: dt.datetime | None) -> str:
    """"2026-06-01 14:02" in the local zone (a naive time is UTC)."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def range_text(start: dt.datetime, end: dt.datetime) -> str:
    return f"from {local(start)} to {local(end)} ({zone_name(at=end)})"


def chart_images(report: StatusReport, kind, width: int) -> list[QImage]:
    """The type's three charts, light, `width` logical pixels wide."""
    charts = make_charts(relative=False)
    title_charts(charts, kind.title_plural)
    fill_charts(charts, report.histories.get(kind.replicable_name, []), report.start,
                report.end)
    colours = resources.chart_colours("light")
    images = []
    for chart in charts.values():
        chart.set_colours(colours["background"], colours["foreground"], colours["grid"])
        images.append(_draw(chart, width, CHART_HEIGHT))
        chart.deleteLater()
    return images


def _draw(widget, width: int, height: int) -> QImage:
    widget.setAttribute(Qt.WA_DontShowOnScreen)
    widget.resize(width, height)
    widget.show()  # lays it out; never on screen
    QApplication.processEvents()
    image = QImage(width * IMAGE_SCALE, height * IMAGE_SCALE, QImage.Format_ARGB32)
    image.setDevicePixelRatio(IMAGE_SCALE)
    image.fill(QColor("white"))
    painter = QPainter(image)
    try:
        widget.render(painter, QPoint(0, 0))
    finally:
        painter.end()
        widget.hide()
    return image


def report_html(report: StatusReport, images: dict[str, list[str]], width: int) -> str:
    """`images`: replicable name -> the resource names of its chart images."""
    rows = []
    for kind in report.types:
        for label, key in STATUS_ROWS:
            value = report.status.get(f"{kind.plural_name}_{key}")
            rows.append(f"<tr><td>{html.escape(kind.title_plural)}</td><td>{label}</td>"
                        f"<td align='right'>{html.escape(_number(value))}</td></tr>")
    failure_rows = "".join(
        f"<tr><td>{html.escape(kind.title_plural)}</td><td align='right'>{g['count']:,}</td>"
        f"<td>{html.escape(g['message'] or '—')}</td>"
        f"<td>{html.escape(local(g['last_seen_at']))}</td></tr>"
        for kind in report.types
        for g in report.failure_groups.get(kind.replicable_name, [])[:REPORTED_FAILURE_GROUPS]) \
        or "<tr><td colspan='4'>No failures.</td></tr>"
    charts = "".join(
        # A page per type: its three charts fit on it.
        f"<h3 style='page-break-before: always'>{html.escape(kind.title_plural)}: history "
        f"{range_text(report.start, report.end)}</h3>"
        + "".join(f"<p><img src='{name}' width='{width}'></p>"
                  for name in images.get(kind.replicable_name, []))
        for kind in report.charted)
    zone = zone_name(at=report.generated_at)
    health = html.escape(report.status.get("health") or "Unknown")
    status = report.status
    return f"""
    <h1>Geo replication report — {html.escape(report.site_name)}</h1>
    <p>Generated {local(report.generated_at)} ({zone}). Health: <b>{health}</b>.
       Last event {_number(status.get('last_event_id'))},
       processed {_number(status.get('cursor_last_event_id'))}.</p>
    <h2>Status</h2>
    <table border='1' cellspacing='0' cellpadding='4'>
      <tr><th>Data type</th><th>Measure</th><th>Value</th></tr>{''.join(rows)}</table>
    <h2>History</h2>
    <p>History {range_text(report.start, report.end)}. Times are local ({zone}).
       Where a burst would flatten the rest, a rate chart's scale is cut and
       the higher points are marked ▲ at its top.</p>
    {charts}
    <h2>Top failure groups</h2>
    <p>Last seen in local time ({zone}).</p>
    <table border='1' cellspacing='0' cellpadding='4'>
      <tr><th>Data type</th><th>Registries</th><th>Failure</th><th>Last seen</th></tr>
      {failure_rows}</table>
    """


def _number(value) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else str(value)


def write_pdf(path: str | os.PathLike, report: StatusReport) -> None:
    """Write the report, all or nothing (a temporary file renamed into
    place). Must run on the GUI thread."""
    path = pathlib.Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".pdf")
    os.close(handle)
    try:
        writer = QPdfWriter(temporary)
        writer.setTitle(f"Geo replication report — {report.site_name}")
        writer.setCreator("Geo Console")
        writer.setPageSize(QPageSize(QPageSize.A4))
        writer.setPageMargins(QMarginsF(15, 15, 15, 15), QPageLayout.Millimeter)
        writer.setResolution(RESOLUTION)
        page = writer.pageLayout().paintRectPixels(RESOLUTION).size()
        document = QTextDocument()
        document.setDocumentMargin(0)
        document.setPageSize(page.toSizeF())
        width = page.width()
        names: dict[str, list[str]] = {}
        for kind in report.charted:
            for index, image in enumerate(chart_images(report, kind, width)):
                name = f"chart://{kind.replicable_name}/{index}"
                document.addResource(QTextDocument.ImageResource, QUrl(name), image)
                names.setdefault(kind.replicable_name, []).append(name)
        document.setHtml(report_html(report, names, width))
        document.print_(writer)
        del writer  # closes the file
        os.chmod(temporary, 0o666 & ~_umask())  # as any file the user writes
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_pdf_report(path: str | os.PathLike, report: StatusReport) -> None:
    """The command line's entry: an offscreen application when there is
    none (no window is shown, so no display is needed)."""
    global _application
    if QApplication.instance() is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        # Qt's own notes (the offscreen platform's) are not the user's business.
        qInstallMessageHandler(lambda _kind, _context, text: log.debug("Qt: %s", text))
        _application = QApplication(["geo-console"])
    write_pdf(path, report)


_application = None  # the command line's, kept for the process' life
