"""Every field of one registry, failure texts and the checksums selectable.
The row is a plain object read by attribute, as the registry table's.
Values wrap (file names and checksums anywhere), so each shows whole at
any width of the panel, and copies as it is."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QTextOption
from PySide6.QtWidgets import QFormLayout, QFrame, QScrollArea, QSizePolicy, QTextEdit, QWidget

from widgets.registry_table_model import format_size, format_time, label

FIELDS = [
    ("registry_id", "Registry id"), ("model_id", "Record id"), ("file_name", "File"),
    ("size", "Size"), ("storage", "Storage"), ("project_path", "Project"),
    ("project_id", "Project id"), ("shard", "Shard"), ("state", "Replication"),
    ("retry_count", "Sync retries"), ("last_synced_at", "Last sync started"),
    ("retry_at", "Next sync retry"), ("last_sync_failure", "Replication failure"),
    ("verification_state", "Verification"), ("verified_at", "Last verified"),
    ("verification_started_at", "Verification started"),
    ("verification_retry_count", "Verification retries"),
    ("verification_retry_at", "Next verification retry"),
    ("verification_failure", "Verification failure"),
    ("verification_checksum", "Checksum here"),
    ("primary_checksum", "Primary checksum"),
    ("verification_checksum_mismatched", "Checksum that did not match"),
    ("checksum_mismatch", "Checksum mismatch"), ("missing_on_primary", "Missing on primary"),
    ("created_at", "Registry created"), ("gitlab_page", "GitLab page"),
]


class FieldValue(QTextEdit):
    """A value that wraps, at word boundaries where it has them and
    anywhere else (a file name, a checksum), always whole: as tall as its
    text, read-only and selectable, copied as it is."""

    def __init__(self, font=None) -> None:
        super().__init__()
        self.setReadOnly(True)
        self.setFrameShape(QFrame.NoFrame)
        if font is not None:
            self.setFont(font)
        self.setWordWrapMode(QTextOption.WrapAtWordBoundaryOrAnywhere)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setMinimumWidth(120)
        self.viewport().setAutoFillBackground(False)  # the panel's background
        self.document().setDocumentMargin(1)
        self.document().documentLayout().documentSizeChanged.connect(
            lambda size: self.setFixedHeight(int(size.height()) + 2))
        self.setFixedHeight(self.fontMetrics().lineSpacing() + 4)

    def setText(self, text: str) -> None:
        self.setPlainText(text)

    def text(self) -> str:
        return self.toPlainText()


class DetailPanel(QScrollArea):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        body = QWidget()
        self.form = QFormLayout(body)
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        # Too narrow for a label and its value side by side: the value goes below.
        self.form.setRowWrapPolicy(QFormLayout.WrapLongRows)
        self.values: dict[str, FieldValue] = {}
        fixed = QFontDatabase.systemFont(QFontDatabase.FixedFont)
        for key, title in FIELDS:
            checksum = key.endswith("checksum") or key.endswith("mismatched")
            value = FieldValue(fixed if checksum else None)
            value.setText("—")
            value.setAccessibleName(title)
            self.form.addRow(f"{title}:", value)
            self.values[key] = value
        self.setWidget(body)
        self.set_model_title("Record")
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.show_row(None)

    def set_model_title(self, title: str) -> None:
        """Name the model id after the type's model ("Package File id")."""
        field = self.form.labelForField(self.values["model_id"])
        field.setText(f"{title} id:")
        self.values["model_id"].setAccessibleName(f"{title} id")

    def show_row(self, row) -> None:
        for key, shown in self.values.items():
            if row is None:
                shown.setText("—")
                continue
            value = getattr(row, key, None)
            if key == "size" and value is not None:
                text = f"{format_size(value)} ({value:,} bytes)"
            elif hasattr(value, "astimezone"):
                text = format_time(value)
            elif isinstance(value, bool):
                text = "yes" if value else "no"
            else:
                text = label(value)
            shown.setText(text or "—")
