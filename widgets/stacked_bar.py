"""A stacked progress bar: succeeded / queued / failed out of a total, with
the counts on hover (GitLab's Geo site cards)."""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

SUCCESS = QColor("#2e9e5b")
QUEUED = QColor("#c9cdd2")
FAILED = QColor("#d9534f")


class StackedBar(QWidget):
    def __init__(self, success_label: str = "Synced", parent=None) -> None:
        super().__init__(parent)
        self.success_label = success_label
        self.total = self.success = self.failed = 0
        self.available = True
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setMinimumWidth(120)
        self.setFocusPolicy(Qt.TabFocus)

    def sizeHint(self) -> QSize:
        return QSize(240, 18)

    def set_counts(self, total: int | None, success: int | None, failed: int | None) -> None:
        self.available = total is not None
        self.total, self.success, self.failed = total or 0, success or 0, failed or 0
        queued = max(self.total - self.success - self.failed, 0)
        if not self.available:
            tip = "Not applicable"
        else:
            tip = (f"Total: {self.total:,}\n{self.success_label}: {self.success:,}\n"
                   f"Queued: {queued:,}\nFailed: {self.failed:,}")
        self.setToolTip(tip)
        self.setAccessibleDescription(tip.replace("\n", ", "))
        self.update()

    @property
    def queued(self) -> int:
        return max(self.total - self.success - self.failed, 0)

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 3.5, -0.5, -3.5)
        painter.setPen(Qt.NoPen)
        painter.setBrush(QUEUED)
        painter.drawRoundedRect(rect, 3, 3)
        if self.available and self.total:
            x = rect.left()
            for count, colour in ((self.success, SUCCESS), (self.failed, FAILED)):
                width = rect.width() * count / self.total
                if width > 0:
                    painter.setBrush(colour)
                    painter.drawRect(QRectF(x, rect.top(), width, rect.height()))
                    x += width
        painter.end()
