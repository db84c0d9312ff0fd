"""Sites: every site of the Geo deployment at a glance, as GitLab's Admin >
Geo > Sites shows them, from the primary's `GET /api/v4/geo_sites/status`
(`source.sites()`, on the task runner).

The list is asked for every POLL_INTERVAL while the page is shown (and
once when it is started), one request at a time. When the primary (or,
for a remote source, the secondary passing the request on) does not
answer, the last list stays with its age, marked not current, and no site
in it is shown healthy; the reason is said plainly.
"""
from __future__ import annotations

import datetime as dt
import time

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QScrollArea, QVBoxLayout, QWidget

from app.connection import NO_ANSWER_AFTER
from app.site_summaries import cards, duration, local_time
from widgets.site_card import TONES, SiteCard, is_dark

POLL_INTERVAL = 5000  # ms between lists of sites while the page is shown
KEY = "sites"


class SitesPage(QWidget):
    def __init__(self, runner, source, parent=None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.source = source
        self.statuses: list[dict] = []
        self.this_site: str | None = None
        self.answered_at: dt.datetime | None = None  # wall clock of the last list
        self.problem: str | None = None                # why the last ask failed
        self.started = False
        self.cards: list[SiteCard] = []

        self.summary = QLabel("Asking the primary for every site's status…")
        self.summary.setAccessibleName("Sites summary")
        self.summary.setWordWrap(True)
        self.problem_label = QLabel("")
        self.problem_label.setAccessibleName("Sites problem")
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.problem_label.hide()
        self.list_widget = QWidget()
        self.list_layout = QVBoxLayout(self.list_widget)
        self.list_layout.setContentsMargins(0, 0, 0, 0)
        self.list_layout.setSpacing(10)
        self.list_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setWidget(self.list_widget)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.problem_label)
        layout.addWidget(scroll, 1)

        self.timer = QTimer(self)
        self.timer.setObjectName("sites poll")
        self.timer.setInterval(POLL_INTERVAL)
        self.timer.timeout.connect(self.refresh)

    # --- life ---------------------------------------------------------------------------

    def start(self) -> None:
        """Ask now; then again every few seconds while the page is shown."""
        self.started = True
        self.refresh()
        if self.isVisible():
            self.timer.start()

    def stop(self) -> None:
        self.started = False
        self.timer.stop()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.started:
            self.refresh()
            self.timer.start()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self.timer.stop()

    def changeEvent(self, event) -> None:
        """A new theme: the cards and the problem line take its colours."""
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange:
            for site_card in self.cards:
                site_card.restyle()
            if self.problem is not None:
                self._show_summary(dt.datetime.now(dt.timezone.utc))

    # --- asking ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Ask for the list, unless an ask is on its way (then say how long
        it has waited, once that is long)."""
        source = self.source

        def ask():  # on a worker: a remote site's name is a request too
            return source.sites(), source.name

        if not self.runner.poll(KEY, ask, self._answered, self._failed):
            started = self.runner.in_flight_since(KEY)
            if started is not None and time.monotonic() - started > NO_ANSWER_AFTER:
                self.problem = (f"no answer for {duration(time.monotonic() - started)}; "
                                "still waiting")
                self._show()

    def _answered(self, result) -> None:
        self.statuses, self.this_site = list(result[0]), result[1]
        self.answered_at = dt.datetime.now(dt.timezone.utc)
        self.problem = None
        self._show()

    def _failed(self, message: str) -> None:
        self.problem = message
        self._show()

    # --- showing ----------------------------------------------------------------------------

    @property
    def current(self) -> bool:
        return self.problem is None and self.answered_at is not None

    def _show(self) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        self._show_summary(now)
        for old in self.cards:
            self.list_layout.removeWidget(old)
            old.deleteLater()
        self.cards = [SiteCard(data) for data in cards(
            self.statuses, self.source.types, now, current=self.current,
            this_site=self.this_site)]
        for index, site_card in enumerate(self.cards):
            self.list_layout.insertWidget(index, site_card)

    def _show_summary(self, now: dt.datetime) -> None:
        secondaries = [s for s in self.statuses if not s.get("primary")]
        primary = next((s for s in self.statuses if s.get("primary")), None)
        if self.answered_at is not None:
            where = f" at {primary['url']}" if primary and primary.get("url") else ""
            self.summary.setText(
                f"{len(secondaries)} secondary site{'s' if len(secondaries) != 1 else ''}, "
                f"as the primary{where} lists them · asked at {local_time(self.answered_at)}")
        if self.problem is None:
            self.problem_label.hide()
            return
        tones = TONES["dark" if is_dark(QApplication.palette()) else "light"]
        if self.answered_at is None:
            text = (f"The sites cannot be listed: {self.problem}. Nothing to show until "
                    "the primary answers.")
        else:
            age = (now - self.answered_at).total_seconds()
            text = (f"Not current: {self.problem}. Shown as the primary listed them at "
                    f"{local_time(self.answered_at)} ({duration(age)} ago); no site is "
                    "shown healthy until it answers again.")
        self.problem_label.setText(text)
        self.problem_label.setStyleSheet(f"color: {tones['bad']}; font-weight: bold")
        self.problem_label.show()
