"""The strip above the tabs that says what the console cannot show: the
site is being connected to, does not answer, or cannot be reached, with
Retry and Settings within reach. Hidden while the site answers."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton

from app.connection import CONNECTED, CONNECTING, NO_ANSWER, UNREACHABLE

# state -> (background, border) colours readable in both themes
LOOKS = {CONNECTING: ("#e8f0fb", "#3b82c4"), NO_ANSWER: ("#fff4dc", "#c98a12"),
         UNREACHABLE: ("#fdecea", "#d9534f")}


class ConnectionBanner(QFrame):
    retryRequested = Signal()
    settingsRequested = Signal()

    def __init__(self, target: str, parent=None) -> None:
        super().__init__(parent)
        self.target = target  # what is connected to, in words
        self.setObjectName("connection-banner")
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.text.setAccessibleName("Connection state")
        self.retry = QPushButton("Retry")
        self.retry.clicked.connect(self.retryRequested)
        self.settings = QPushButton("Settings…")
        self.settings.clicked.connect(self.settingsRequested)
        layout = QHBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.retry)
        layout.addWidget(self.settings)
        self.hide()

    def show_state(self, state: str, detail: str) -> None:
        if state == CONNECTED:
            self.hide()
            return
        background, border = LOOKS[state]
        self.setStyleSheet(f"#connection-banner {{ background: {background}; "
                           f"border: 1px solid {border}; border-radius: 3px; }}"
                           f"#connection-banner QLabel {{ color: #1f2328; }}")
        if state == CONNECTING:
            text = f"Connecting to {self.target}…"
        elif state == NO_ANSWER:
            text = (f"<b>{detail}</b> from {self.target}. What is shown is what it said "
                    "then; it will update once the site answers.")
        else:
            if detail.lower().startswith("cannot reach "):  # the target is named already
                detail = detail.split(": ", 1)[-1]
            text = f"<b>Cannot reach {self.target}:</b> {detail}"
        self.text.setText(text)
        self.retry.setVisible(state == UNREACHABLE)
        self.show()
