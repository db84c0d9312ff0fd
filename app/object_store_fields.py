"""The fields of one S3 connection in the Settings dialog: endpoint,
region, path-style addressing, and the key pair, its secret masked (left
empty, the saved one is kept). The secondary's own bucket and the demo's
buckets each have one (`settings_dialog.py`)."""
from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QCheckBox, QFormLayout, QLineEdit, QWidget

from app.object_store_settings import DEFAULT_REGION, KEY_ID, SECRET


class ConnectionFields:
    def __init__(self, form: QFormLayout, prefix: str, connection: dict,
                 add: Callable[[QFormLayout, str, QWidget], None],
                 secret: Callable[[str], QLineEdit]) -> None:
        """Rows of `form`, each added by `add(form, key, widget)` under the
        key `<prefix>connection.<name>`; `secret(saved)` makes the masked field."""
        self.saved = connection
        self.endpoint = QLineEdit(connection.get("endpoint", ""))
        self.endpoint.setPlaceholderText("empty: AWS S3 itself")
        self.endpoint.setToolTip("Any service that speaks the S3 protocol, e.g. "
                                 "http://minio.example:9000 (no path)")
        self.region = QLineEdit(connection.get("region") or DEFAULT_REGION)
        self.path_style = QCheckBox("Path-style addressing")
        self.path_style.setToolTip("Ask for endpoint/bucket/key rather than "
                                   "bucket.endpoint/key (MinIO and most services "
                                   "besides AWS need it)")
        self.path_style.setChecked(bool(connection.get("path_style", False)))
        self.key_id = QLineEdit(connection.get(KEY_ID, ""))
        self.key_id.setPlaceholderText("empty: this machine's own AWS credentials")
        self.secret = secret(connection.get(SECRET, ""))
        add(form, f"{prefix}connection.endpoint", self.endpoint)
        add(form, f"{prefix}connection.region", self.region)
        form.addRow("", self.path_style)
        add(form, f"{prefix}connection.{KEY_ID}", self.key_id)
        add(form, f"{prefix}connection.{SECRET}", self.secret)

    def widgets(self) -> list[QWidget]:
        return [self.endpoint, self.region, self.path_style, self.key_id, self.secret]

    def values(self) -> dict:
        """The connection as the settings keep it (the secret included). The
        saved secret goes with its key id: emptying the key id forgets it."""
        key_id = self.key_id.text().strip()
        return {"endpoint": self.endpoint.text().strip(), "region": self.region.text().strip(),
                "path_style": self.path_style.isChecked(), KEY_ID: key_id,
                SECRET: self.secret.text() or (self.saved.get(SECRET, "") if key_id else "")}

    def empty(self) -> bool:
        """Nothing given beyond the defaults."""
        values = self.values()
        return not (values["endpoint"] or values["path_style"] or values[KEY_ID]
                    or values[SECRET]) and values["region"] == DEFAULT_REGION
