"""Overview: site health, engine state, event lag, progress bars and
percentages of every type (with how many of its blobs are in object
storage, where there are any), and history charts (synced %, verified %,
throughput and failures, bytes per second) of the current type over the
chosen range (app.history_charts)."""
from __future__ import annotations

import datetime as dt
import html

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QFrame, QGridLayout, QGroupBox, QHBoxLayout,
                               QLabel, QPushButton, QVBoxLayout, QWidget)

import resources
from app.history_charts import fill_charts, make_charts, title_charts
from widgets.stacked_bar import StackedBar

RANGES = [("Last hour", dt.timedelta(hours=1)), ("Last day", dt.timedelta(days=1)),
          ("Last week", dt.timedelta(days=7)), ("Last month", dt.timedelta(days=30))]


def event_lag(status: dict) -> str:
    """How far the event log's cursor is behind the primary's newest event:
    in events, and in seconds when both times are known ("unknown" when
    one is not, never a difference with a missing time); and the ids the
    cursor passed that are still looked for (event log gaps)."""
    last, cursor = status.get("last_event_id"), status.get("cursor_last_event_id")
    if last is None:
        return "No events seen yet"
    behind = max(last - (cursor or 0), 0)
    last_at, cursor_at = status.get("last_event_timestamp"), \
        status.get("cursor_last_event_timestamp")
    if behind == 0:
        seconds = "up to date"
    elif last_at is None or cursor_at is None:
        seconds = "time behind unknown"
    else:
        seconds = f"{max(last_at - cursor_at, 0):,} s behind"
    events = "1 event" if behind == 1 else f"{behind:,} events"
    gaps = status.get("event_log_gap_count")
    skipped = (f"; {gaps:,} skipped {'id' if gaps == 1 else 'ids'} awaited"
               if isinstance(gaps, int) and gaps > 0 else "")
    return f"last event {last}, processed {cursor if cursor is not None else '—'} " \
           f"({events}, {seconds}){skipped}"


def object_storage_line(status: dict, primary: dict, plural: str) -> str:
    """How many of a type's registries (this secondary) and records (the
    primary, when known) are in object storage: "Object storage: 12 of 40
    registries, 10 synced; 40 of 400 records on the primary". Empty when
    none are, or the site does not say (GitLab's, or an older one)."""
    parts = []
    stored, registries = status.get(f"{plural}_object_storage_count"), \
        status.get(f"{plural}_registry_count")
    if isinstance(stored, int) and stored > 0:
        synced = status.get(f"{plural}_object_storage_synced_count") or 0
        parts.append(f"{stored:,} of {registries or 0:,} registries, {synced:,} synced")
    on_primary, records = primary.get(f"{plural}_object_storage_count"), \
        primary.get(f"{plural}_count")
    if isinstance(on_primary, int) and on_primary > 0:
        parts.append(f"{on_primary:,} of {records or 0:,} records"
                     + (" on the primary" if parts else ""))
    return "Object storage: " + "; ".join(parts) if parts else ""


class OverviewPage(QWidget):
    pauseToggled = Signal(bool)  # True: pause

    def __init__(self, runner, source, parent=None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.source = source
        self.data_type = source.types[0]
        self.status: dict = {}
        layout = QVBoxLayout(self)

        site = QGroupBox("Site")
        grid = QGridLayout(site)
        self.name_label = QLabel("—")
        self.health_label = QLabel("—")
        self.engine_label = QLabel("—")
        self.lag_label = QLabel("—")
        self.stale_label = QLabel("")
        self.stale_label.setStyleSheet("color: #c98a12; font-weight: bold")
        self.stale_label.hide()
        self.pause_button = QPushButton("Pause engine")
        self.pause_button.setEnabled(source.can_pause)
        self.pause_button.setToolTip("Stop taking new work; syncs in flight finish"
                                     if source.can_pause else
                                     "A remote secondary is paused on its own machine")
        self.pause_button.clicked.connect(self._toggle_pause)
        for row, (title, widget) in enumerate((("Name", self.name_label),
                                               ("Health", self.health_label),
                                               ("Engine", self.engine_label),
                                               ("Event log", self.lag_label))):
            grid.addWidget(QLabel(f"{title}:"), row, 0)
            grid.addWidget(widget, row, 1)
        grid.addWidget(self.pause_button, 2, 2)
        grid.addWidget(self.stale_label, 4, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        layout.addWidget(site)

        types = QGroupBox("Data types")
        self.type_grid = QGridLayout(types)
        for column, title in enumerate(("Data type", "Synchronization", "Verification",
                                        "Primary checksums", "Synced / verified")):
            self.type_grid.addWidget(QLabel(f"<b>{title}</b>"), 0, column)
        self.bars = {}
        self.percentages = {}
        self.object_storage = {}  # plural -> the line under its bars, shown when there is one
        for index, data_type in enumerate(source.types):
            row = 1 + 2 * index
            self.type_grid.addWidget(QLabel(data_type.title_plural), row, 0)
            bars = (StackedBar("Synced"), StackedBar("Verified"), StackedBar("Checksummed"))
            for column, (bar, part) in enumerate(zip(bars, ("synchronization", "verification",
                                                            "checksums")), start=1):
                bar.setAccessibleName(f"{data_type.title_plural} {part}")
                self.type_grid.addWidget(bar, row, column)
            self.bars[data_type.plural_name] = bars
            self.percentages[data_type.plural_name] = QLabel("—")
            self.type_grid.addWidget(self.percentages[data_type.plural_name], row, 4)
            stored = QLabel("")
            stored.setObjectName("objectStorage")
            stored.setAccessibleName(f"{data_type.title_plural} in object storage")
            stored.hide()
            self.type_grid.addWidget(stored, row + 1, 1, 1, 4)
            self.object_storage[data_type.plural_name] = stored
        # Registry tables a source found but does not read, and why (a GitLab
        # tracking database's older tables).
        self.left_out_label = QLabel("")
        self.left_out_label.setWordWrap(True)
        self.left_out_label.setObjectName("leftOut")
        self.left_out_label.hide()
        self.type_grid.addWidget(self.left_out_label, 2 * len(source.types) + 1, 0, 1, 5)
        layout.addWidget(types)

        picker = QHBoxLayout()
        picker.addWidget(QLabel("History:"))
        self.range_box = QComboBox()
        self.range_box.addItems([name for name, _ in RANGES])
        self.range_box.setAccessibleName("History range")
        self.range_box.currentIndexChanged.connect(lambda _i: self.refresh_history())
        picker.addWidget(self.range_box)
        picker.addStretch(1)
        layout.addLayout(picker)
        charts = QHBoxLayout()
        self.charts = make_charts()
        self.progress_chart = self.charts["progress"]
        self.work_chart = self.charts["work"]
        self.bytes_chart = self.charts["bytes"]
        for chart in self.charts.values():
            chart.setMinimumHeight(260)
            frame = QFrame()
            frame_layout = QVBoxLayout(frame)
            frame_layout.setContentsMargins(0, 0, 0, 0)
            frame_layout.addWidget(chart)
            charts.addWidget(frame)
        layout.addLayout(charts, 1)
        self._title_charts()

        self.history_timer = QTimer(self)
        self.history_timer.setInterval(5000)
        self.history_timer.timeout.connect(self.refresh_history)

    # --- refreshing -------------------------------------------------------------------

    def start(self) -> None:
        """The history now and every few seconds; the status arrives from the
        window's connection (show_status), or once from refresh()."""
        self.refresh()
        self.refresh_history()
        self.history_timer.start()

    def stop(self) -> None:
        self.history_timer.stop()

    def refresh(self) -> None:
        self.runner.submit("overview", self.source.overview, self.show_status)

    def set_stale(self, since: str | None) -> None:
        """Say that what is shown is old (`since`: "as the site answered at
        10:42:03"), or that it is current (None)."""
        self.stale_label.setVisible(since is not None)
        self.stale_label.setText(f"Not current: shown {since}." if since else "")

    def set_type(self, data_type) -> None:
        """Chart another type's history."""
        if data_type != self.data_type:
            self.data_type = data_type
            self._title_charts()
            self.show_history([])
            self.refresh_history()

    def _title_charts(self) -> None:
        title_charts(self.charts, self.data_type.title_plural)

    def history_range(self) -> tuple[dt.datetime, dt.datetime]:
        """The range the selector chooses, ending now (UTC)."""
        end = dt.datetime.now(dt.timezone.utc)
        return end - RANGES[self.range_box.currentIndex()][1], end

    def refresh_history(self) -> None:
        start, end = self.history_range()
        source, replicable = self.source, self.data_type.replicable_name
        self.runner.submit("history", lambda: source.history(replicable, start, end, 240),
                           lambda points: self.show_history(points, start, end))

    def show_status(self, status: dict) -> None:
        self.status = status
        self.name_label.setText(status.get("name") or "—")
        healthy = status.get("healthy")
        colour = "#2e9e5b" if healthy else "#d9534f"
        self.health_label.setText(f"<span style='color:{colour}'>●</span> "
                                  f"{status.get('health') or 'Unknown'}")
        state = status.get("engine_state", "unknown")
        holds = status.get("sync_holds") or {}
        if state == "running" and holds:
            # Not a pause an administrator made: it ends by itself.
            self.engine_label.setText(
                "<span style='color:#c98a12'>●</span> <b>Syncs paused</b>: " + "; ".join(
                    html.escape(hold["reason"]) for hold in holds.values())
                + "; they resume by themselves when that ends (verifications go on)")
        else:
            self.engine_label.setText({
                "running": "Running",
                "paused": "<span style='color:#c98a12'>●</span> <b>Paused</b>: no new syncs "
                          "or verifications until resumed",
                "stopped": "Stopped",
                "gitlab database": "none in the database: GitLab's background jobs sync "
                                   "and verify; actions here set registries pending for them",
                "gitlab": f"GitLab {html.escape(str(status.get('version') or ''))}: its "
                          "background jobs sync and verify (no engine state is reported)",
                }.get(state, "Unknown"))
        self.pause_button.setText("Resume engine" if state == "paused" else "Pause engine")
        self.pause_button.setEnabled(self.source.can_pause and state in ("running", "paused"))
        # A source that knows only part of the event log says it itself.
        self.lag_label.setText(status.get("event_log_text") or event_lag(status))
        left_out = status.get("left_out") or []
        self.left_out_label.setVisible(bool(left_out))
        self.left_out_label.setText("Not shown: " + "; ".join(left_out) if left_out else "")
        primary = status.get("primary_status") or {}
        for data_type in self.source.types:
            p = data_type.plural_name
            sync, verify, checksum = self.bars[p]
            sync.set_counts(status.get(f"{p}_registry_count"), status.get(f"{p}_synced_count"),
                            status.get(f"{p}_failed_count"))
            verify.set_counts(status.get(f"{p}_verification_total_count"),
                              status.get(f"{p}_verified_count"),
                              status.get(f"{p}_verification_failed_count"))
            checksum.set_counts(primary.get(f"{p}_checksum_total_count"),
                                primary.get(f"{p}_checksummed_count"),
                                primary.get(f"{p}_checksum_failed_count"))
            synced, verified = (status.get(f"{p}_synced_in_percentage"),
                                status.get(f"{p}_verified_in_percentage"))
            if synced is None:
                text = "replication off"
            elif status.get(f"{p}_registry_count") == 0:
                text = "nothing to sync"  # not "0.00 %": none of none is missing
            else:
                text = f"{synced} / {verified}"
            self.percentages[p].setText(text)
            stored = object_storage_line(status, primary, p)
            self.object_storage[p].setText(stored)
            self.object_storage[p].setVisible(bool(stored))

    def show_history(self, points: list[dict], start: dt.datetime | None = None,
                     end: dt.datetime | None = None) -> None:
        """The charts over [start, end] (the selector's range ending now when
        not given), whatever part of it the points cover."""
        if start is None or end is None:
            start, end = self.history_range()
        fill_charts(self.charts, points, start, end)

    def _toggle_pause(self) -> None:
        pause = self.status.get("engine_state") != "paused"
        self.pauseToggled.emit(pause)

    def set_theme(self, scheme: str) -> None:
        """The charts in a palette's colours ("light" or "dark")."""
        colours = resources.chart_colours(scheme)
        for chart in self.charts.values():
            chart.set_colours(colours["background"], colours["foreground"], colours["grid"])
