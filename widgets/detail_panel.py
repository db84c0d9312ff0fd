"""Every field of one registry, failure texts and both checksums selectable.
The row is a plain object read by attribute, as the registry table's."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QFormLayout, QLabel, QLineEdit, QScrollArea, QWidget

from widgets.registry_table_model import format_time, label

FIELDS = [
    ("registry_id", "Registry id"), ("model_id", "Record id"), ("state", "Replication"),
    ("retry_count", "Sync retries"), ("last_synced_at", "Last sync started"),
    ("retry_at", "Next sync retry"), ("last_sync_failure", "Replication failure"),
    ("verification_state", "Verification"), ("verified_at", "Last verified"),
    ("verification_started_at", "Verification started"),
    ("verification_retry_count", "Verification retries"),
    ("verification_retry_at", "Next verification retry"),
    ("verification_failure", "Verification failure"),
    ("verification_checksum", "Checksum here"),
    ("verification_checksum_mismatched", "Primary checksum (mismatch)"),
    ("checksum_mismatch", "Checksum mismatch"), ("created_at", "Registry created"),
]


class DetailPanel(QScrollArea):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        body = QWidget()
        self.form = QFormLayout(body)
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.values: dict[str, QLabel | QLineEdit] = {}
        fixed = QFontDatabase.systemFont(QFontDatabase.FixedFont)
        for key, title in FIELDS:
            if key.endswith("checksum") or key.endswith("mismatched"):
                # 64 hex digits do not wrap: a read-only line scrolls and copies whole.
                value = QLineEdit("—")
                value.setReadOnly(True)
                value.setFrame(False)
                value.setFont(fixed)
            else:
                value = QLabel("—")
                value.setTextInteractionFlags(Qt.TextSelectableByMouse
                                              | Qt.TextSelectableByKeyboard)
                value.setWordWrap(True)
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
            if hasattr(value, "astimezone"):
                text = format_time(value)
            elif isinstance(value, bool):
                text = "yes" if value else "no"
            else:
                text = label(value)
            shown.setText(text or "—")
