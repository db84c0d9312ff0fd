"""One site of the Sites view as a card (GitLab's Admin > Geo > Sites): its
name, URL and role badge, its health, a few facts, and a table of its data
types. It shows the texts it is given; what they say is decided elsewhere.

Tones ("good", "bad", "warn", "unknown") are drawn in colours that read on
the application's palette, light or dark (`restyle()` after it changes).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QFrame, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout

# Text colours of each tone, per scheme; each meets 4.5:1 on its card.
TONES = {
    "light": {"good": "#1b7340", "bad": "#b3261e", "warn": "#8a5300", "unknown": "#5c636d"},
    "dark": {"good": "#5cc98a", "bad": "#f28b82", "warn": "#e6b450", "unknown": "#a2a8b0"},
}


@dataclass
class SiteCardData:
    name: str
    url: str
    badge: str                      # "Primary" or "Secondary"
    health: str                     # "Healthy", "Unhealthy", "Last known: Healthy"…
    tone: str = "unknown"           # of the health
    reason: str = ""                # why it is unhealthy, in the site's words
    marks: list[str] = field(default_factory=list)   # small extra badges ("This console")
    facts: list[tuple[str, str]] = field(default_factory=list)  # (label, text)
    note: str = ""                  # a warning about the card (out of date…)
    note_tone: str = "warn"
    columns: tuple[str, ...] = ()   # headers of the type table
    rows: list[tuple[str, ...]] = field(default_factory=list)


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


class SiteCard(QFrame):
    def __init__(self, data: SiteCardData, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("siteCard")
        self.data = data
        self.setFrameShape(QFrame.StyledPanel)
        self.setAccessibleName(f"Site {data.name}")
        layout = QVBoxLayout(self)
        layout.setSpacing(6)

        header = QHBoxLayout()
        self.name_label = QLabel(f"<b>{_html(data.name)}</b>")
        self.name_label.setTextFormat(Qt.RichText)
        font = self.name_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.name_label.setFont(font)
        self.badge_label = QLabel(data.badge)
        self.badge_label.setObjectName("siteBadge")
        self.mark_labels = [QLabel(mark) for mark in data.marks]
        for mark in self.mark_labels:
            mark.setObjectName("siteMark")
        self.health_label = QLabel()
        self.health_label.setTextFormat(Qt.RichText)
        self.health_label.setAccessibleName(f"{data.name} health")
        header.addWidget(self.name_label)
        header.addWidget(self.badge_label)
        for mark in self.mark_labels:
            header.addWidget(mark)
        header.addStretch(1)
        header.addWidget(self.health_label)
        layout.addLayout(header)

        self.url_label = QLabel(_html(data.url) if data.url else "URL not reported")
        self.url_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.url_label)
        self.reason_label = QLabel(data.reason)
        self.reason_label.setWordWrap(True)
        self.reason_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.reason_label.setVisible(bool(data.reason))
        layout.addWidget(self.reason_label)
        self.note_label = QLabel(data.note)
        self.note_label.setWordWrap(True)
        self.note_label.setVisible(bool(data.note))
        layout.addWidget(self.note_label)

        facts = QGridLayout()
        facts.setHorizontalSpacing(16)
        self.fact_labels: dict[str, QLabel] = {}
        for row, (label, text) in enumerate(data.facts):
            title = QLabel(f"{label}:")
            value = QLabel(text)
            value.setTextInteractionFlags(Qt.TextSelectableByMouse)
            value.setAccessibleName(f"{data.name} {label}")
            facts.addWidget(title, row, 0)
            facts.addWidget(value, row, 1)
            self.fact_labels[label] = value
        facts.setColumnStretch(1, 1)
        layout.addLayout(facts)

        self.cells: list[list[QLabel]] = []
        self._painted: tuple | None = None  # the palette the colours were chosen for
        if data.columns:
            table = QGridLayout()
            table.setHorizontalSpacing(24)
            table.setVerticalSpacing(3)
            for column, title in enumerate(data.columns):
                table.addWidget(QLabel(f"<b>{_html(title)}</b>"), 0, column)
            for row, values in enumerate(data.rows, start=1):
                cells = []
                for column, text in enumerate(values):
                    cell = QLabel(text)
                    cell.setAccessibleName(f"{data.name} {values[0]} {data.columns[column]}")
                    table.addWidget(cell, row, column)
                    cells.append(cell)
                self.cells.append(cells)
            for column in range(1, len(data.columns)):
                table.setColumnStretch(column, 1)
            layout.addLayout(table)
        self.restyle()

    # --- what tests and screen readers read ---------------------------------------------

    def cell(self, data_type: str, column: str) -> str:
        """The text of a type's cell, by the type's title and the column's."""
        index = self.data.columns.index(column)
        for cells in self.cells:
            if cells[0].text() == data_type:
                return cells[index].text()
        raise KeyError(data_type)

    def fact(self, label: str) -> str:
        return self.fact_labels[label].text()

    # --- colours --------------------------------------------------------------------------

    def restyle(self) -> None:
        """Colours for the application's palette. Call it when that palette
        changes: a card's style sheet makes its palette its own, so Qt does
        not pass the change on to it (nor to its labels)."""
        palette = QApplication.palette()
        roles = (QPalette.ColorRole.Window, QPalette.ColorRole.Base, QPalette.ColorRole.Mid,
                 QPalette.ColorRole.Highlight, QPalette.ColorRole.HighlightedText,
                 QPalette.ColorRole.Button, QPalette.ColorRole.ButtonText)
        key = tuple(palette.color(role).name() for role in roles)
        if key == self._painted:
            return
        self._painted = key
        tones = TONES["dark" if is_dark(palette) else "light"]
        _window, base, mid, highlight, on_highlight, button, text = key
        if self.data.badge == "Primary":  # the primary's badge stands out
            button, text = highlight, on_highlight
        self.setStyleSheet(
            f"QFrame#siteCard {{ background: {base}; border: 1px solid {mid};"
            f" border-radius: 6px; }}"
            f"QLabel#siteBadge {{ background: {button}; color: {text};"
            f" border-radius: 8px; padding: 1px 8px; }}"
            f"QLabel#siteMark {{ border: 1px solid {mid}; border-radius: 8px;"
            f" padding: 0px 7px; }}")
        colour = tones.get(self.data.tone, tones["unknown"])
        symbol = {"good": "●", "bad": "▲", "warn": "▲"}.get(self.data.tone, "○")
        self.health_label.setText(f"<span style='color:{colour}'>{symbol} "
                                  f"<b>{_html(self.data.health)}</b></span>")
        self.reason_label.setStyleSheet(f"color: {colour}")
        self.note_label.setStyleSheet(
            f"color: {tones.get(self.data.note_tone, tones['warn'])}; font-weight: bold")


def _html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
