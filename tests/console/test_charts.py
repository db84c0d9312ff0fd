"""The Overview's history charts, offscreen, against real tracking DBs and a
real remote secondary: the range, the scale, bytes, hover, legends, themes,
the empty chart, and the PDF report's charts."""
from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage, QPainter

import resources
from app.overview_page import OverviewPage
from app.tasks import TaskRunner
from backend.secondary import status_history
from widgets.chart_axes import TimeAxis, ago, zone_name

NOW = dt.datetime.now(dt.timezone.utc)


def drawn_labels(axis) -> list[str]:
    """The tick labels the axis draws now (pyqtgraph drops some at the ends)."""
    image = QImage(10, 10, QImage.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for _rect, _flags, text in specs[2]] if specs else []


def record(site, minutes_ago: float, synced: int, verified: int, syncs: int = 3,
           bytes_downloaded: int = 2_000_000, registries: int = 100) -> None:
    status_history.record(site.tracking_engine, "cool_widget",
                          {"registry_count": registries, "synced_count": synced,
                           "verified_count": verified},
                          {"syncs_succeeded": syncs, "verifications_succeeded": 2,
                           "syncs_failed": 1, "bytes_downloaded": bytes_downloaded}, 60.0,
                          now=NOW - dt.timedelta(minutes=minutes_ago))


@pytest.fixture
def page(qtbot, source):
    runner = TaskRunner()
    page = OverviewPage(runner, source)
    qtbot.addWidget(page)
    page.resize(1280, 640)
    page.show()
    yield page
    runner.close()


def load(qtbot, page, index: int = 0) -> None:
    """Choose range `index` and wait for its history to be shown."""
    shown = []
    original = page.show_history
    page.show_history = lambda *args: (original(*args), shown.append(True))
    if page.range_box.currentIndex() == index:
        page.refresh_history()
    else:
        page.range_box.setCurrentIndex(index)
    qtbot.waitUntil(lambda: bool(shown), timeout=10000)
    page.show_history = original


def test_the_time_axis_spans_the_chosen_range_whatever_the_data(qtbot, page, local_site):
    record(local_site, 0.5, 50, 40)  # one snapshot, 30 s ago
    load(qtbot, page, 2)  # Last week
    for chart in page.charts.values():
        low, high = chart.plot.viewRange()[0]
        assert high - low == pytest.approx(7 * 86400, abs=2)
        assert abs(high - dt.datetime.now(dt.timezone.utc).timestamp()) < 60
    labels = drawn_labels(page.progress_chart.time_axis)
    assert labels[-1] == "now" and len(labels) >= 3
    assert all(label.endswith(" d ago") for label in labels[:-1]), labels
    assert f"({zone_name()}" in page.progress_chart.time_axis.labelText or \
        f", {zone_name()})" in page.progress_chart.time_axis.labelText
    # The one snapshot is a dot, not a line of no length.
    assert len(page.progress_chart.lone_points.data) == 2
    load(qtbot, page, 0)  # Last hour: the same point, an hour wide
    low, high = page.work_chart.plot.viewRange()[0]
    assert high - low == pytest.approx(3600, abs=2)
    assert drawn_labels(page.work_chart.time_axis)[0] == "1 h ago"


def test_the_initial_backlog_does_not_flatten_the_rest(qtbot, page, local_site):
    record(local_site, 50, 0, 0, syncs=1750, bytes_downloaded=900_000_000)
    for minute in range(49, 0, -1):
        record(local_site, minute, 50, 40, syncs=4 + minute % 3)
    load(qtbot, page)
    chart = page.work_chart
    top = chart.plot.viewRange()[1][1]
    assert 6 <= top < 20  # the rest (4-6 a minute) fills the chart, not 1,750
    assert drawn_labels(chart.value_axis)[-1] in ("6", "8", "10")
    assert len(chart.off_scale.data) == 1  # the backlog, marked at the top
    assert chart.off_scale.data[0]["y"] > chart.scale.top
    assert chart.note.isVisible() and "up to 1,750/min" in chart.note.text()
    # The bytes chart likewise: a 900 MB first minute does not hide 33 kB/s.
    assert page.bytes_chart.plot.viewRange()[1][1] < 1_000_000
    # Its value is still there, on hover.
    chart.show_values_at(chart.times[0])
    assert "syncs 1,750/min" in chart.values_text


def test_bytes_per_second_beside_counts_from_a_remote_secondary(qtbot, tracking_url, tmp_path,
                                                               credentials):
    from app.site_client import SiteClient
    from app.sources import RemoteSource
    from backend.sites.secondary import SecondarySite
    from tests.support.sites import secondary_config
    site = SecondarySite(secondary_config("http://127.0.0.1:9", tracking_url, tmp_path / "s",
                                          credentials, api_token="remote-token")
                         ).start(run_engine=False)
    runner = TaskRunner()
    try:
        for minute in (20, 10):
            record(site, minute, 50, 40, bytes_downloaded=3_000_000 * 60)  # 3 MB/s
        page = OverviewPage(runner, RemoteSource(SiteClient(site.url, "remote-token")))
        qtbot.addWidget(page)
        page.resize(1280, 640)
        page.show()
        load(qtbot, page)
        chart = page.bytes_chart
        assert chart.values["downloaded"] == [pytest.approx(3_000_000)] * 2
        assert chart.value_axis.labelText == "MB/s"
        assert drawn_labels(chart.value_axis) == ["0", "1", "2", "3"]
        assert "downloaded 3.0 MB/s" in chart.values_text or \
            "downloaded 3 MB/s" in chart.values_text
        assert page.work_chart.values["syncs"] == [pytest.approx(3.0)] * 2
    finally:
        runner.close()
        site.stop()


def test_hover_shows_the_time_with_its_zone_and_every_value(qtbot, page, local_site):
    record(local_site, 20, 50, 40)
    record(local_site, 10, 60, 60)
    load(qtbot, page)
    chart = page.progress_chart
    qtbot.waitUntil(lambda: chart.plot.plotItem.vb.width() > 100, timeout=5000)
    box = chart.plot.plotItem.vb
    hovered = chart.times[1]
    # The real mouse path: the scene's move signal at the point's position.
    chart.plot.scene().sigMouseMoved.emit(box.mapViewToScene(QPointF(hovered, 50)))
    when = dt.datetime.fromtimestamp(hovered, dt.timezone.utc).astimezone()
    assert chart.values_text == (f"{when:%Y-%m-%d %H:%M:%S} {zone_name(at=when)}: "
                                 "synced 60.00 %, verified 60.00 %")
    assert chart.cursor.isVisible() and chart.cursor.value() == hovered
    # Over a stretch with no snapshots: said so, no value made up.
    chart.show_values_at(hovered - 45 * 60)  # 35 min before the first point
    assert chart.values_text.endswith(": no data")
    # Off the plot: back to the latest point.
    chart.plot.scene().sigMouseMoved.emit(QPointF(-50, -50))
    assert not chart.cursor.isVisible()
    assert chart.values_text.startswith("Latest (") and "synced 60.00 %" in chart.values_text


def test_legends_sit_below_the_plot_and_follow_the_theme(qtbot, page, local_site):
    record(local_site, 5, 50, 40)
    load(qtbot, page)
    for chart in page.charts.values():
        assert chart.plotItem.legend is None  # nothing drawn over the data
        assert chart.legend.parent() is chart
        assert chart.legend.geometry().top() >= chart.plot.geometry().bottom()
        assert chart.legend.isVisible()
    for scheme in ("dark", "light"):
        page.set_theme(scheme)
        colours = resources.chart_colours(scheme)
        for chart in page.charts.values():
            assert chart.palette().window().color().name() == colours["background"]
            assert all(f"color:{colours['foreground']}" in label.text()
                       for label in chart.legend_labels.values())
            assert chart.backgroundBrush().color().name() == colours["background"]
    texts = [label.text() for label in page.work_chart.legend_labels.values()]
    assert any("sync failures" in text for text in texts)


def test_synced_and_verified_both_show_where_they_coincide(qtbot, page, local_site):
    for minute in (30, 20, 10):
        record(local_site, minute, 80, 80)
    load(qtbot, page)
    synced = page.progress_chart.curves["synced %"]
    verified = page.progress_chart.curves["verified %"]
    assert list(synced.getData()[1]) == list(verified.getData()[1]) == [80.0] * 3
    assert synced.opts["pen"].widthF() > verified.opts["pen"].widthF()
    assert verified.opts["pen"].style() == Qt.DashLine
    assert verified.zValue() > synced.zValue()  # the thin dashes drawn over the wide line


def test_an_empty_chart_has_plain_axes_and_says_so(qtbot, page):
    load(qtbot, page)
    work, progress = page.work_chart, page.progress_chart
    assert work.empty_text.isVisible()
    assert drawn_labels(work.value_axis) == ["0", "1"]
    assert drawn_labels(progress.value_axis) == ["0", "25", "50", "75", "100"]
    assert drawn_labels(page.bytes_chart.value_axis) == ["0", "1"]
    for chart in page.charts.values():
        axis = chart.value_axis
        assert "x0.001" not in axis.labelString() and "(x" not in axis.labelString()
        assert chart.plot.viewRange()[1][0] > -0.05 * chart.scale.top  # hardly below zero
        assert all(not label.startswith("-") for label in drawn_labels(axis))
    assert work.values_text == ""


def test_percentages_are_shown_as_given_never_rounded_up(qtbot, page, local_site):
    record(local_site, 5, 9999, 9998, registries=10000)
    load(qtbot, page)
    chart = page.progress_chart
    assert chart.values["synced %"] == [99.99]
    assert "synced 99.99 %" in chart.values_text and "100" not in chart.values_text
    assert chart.value_axis.tickValues(0, 200, 300)[0][1][-1] == 100  # no tick above 100


def test_time_labels_relative_on_screen_and_clock_times_in_print(qapp):
    assert [ago(s) for s in (0, 45, 120, 3600, 5400, 3 * 3600, 2 * 86400)] == [
        "now", "45 s ago", "2 min ago", "1 h ago", "1 h 30 min ago", "3 h ago", "2 d ago"]
    plus_one = dt.timezone(dt.timedelta(hours=1))
    axis = TimeAxis(relative=False, zone=plus_one)
    end = dt.datetime(2026, 6, 2, 6, 0, tzinfo=plus_one).timestamp()
    axis.set_end(end)
    assert axis.labelText == "time (UTC+01:00)"
    values = axis.tickValues(end - 86400, end, 600)[0][1]
    labels = axis.tickStrings(values, 1, values[1] - values[0])
    assert "2 Jun" in labels and "12:00" in labels  # midnight is its date
    relative = TimeAxis(relative=True, zone=plus_one)
    relative.set_end(end)
    assert relative.labelText == "time before now (now: 06:00, UTC+01:00)"


def test_the_pdf_report_states_its_range_and_fits_its_charts(qtbot, source, local_site,
                                                             tmp_path):
    from app.pdf_report import chart_images, gather_status_report, report_html, write_pdf
    record(local_site, 50, 0, 0, syncs=1750)
    record(local_site, 30, 50, 40)
    start, end = NOW - dt.timedelta(hours=1), NOW
    runner = TaskRunner()
    reports = []
    runner.submit("pdf", lambda: gather_status_report(source, source.types[:1], start, end),
                  reports.append)
    qtbot.waitUntil(lambda: bool(reports), timeout=10000)
    runner.close()
    report = reports[0]
    images = chart_images(report, source.types[0], 680)
    assert [(image.width(), image.height()) for image in images] == [(1360, 500)] * 3
    assert images[0].devicePixelRatio() == 2
    text = report_html(report, {"cool_widget": ["chart://a"]}, 680)
    local = start.astimezone()
    assert f"from {local:%Y-%m-%d %H:%M} to {end.astimezone():%Y-%m-%d %H:%M} " \
           f"({zone_name(at=end)})" in text
    assert "width='680'" in text
    folder = tmp_path / "reports"
    folder.mkdir()
    write_pdf(folder / "report.pdf", report)
    data = (folder / "report.pdf").read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 20000  # the chart images are in it
    assert [p.name for p in folder.iterdir()] == ["report.pdf"]  # no temporary left
    with pytest.raises(OSError):
        write_pdf(tmp_path / "no" / "such" / "r.pdf", report)
    assert not (tmp_path / "no").exists()
