"""The console's connection settings: the embedded demo, a secondary this
console runs itself (primary URL, credentials, tracking DB, capacities,
selective sync, flags), or a remote headless secondary (URL and API token).

Saved as TOML in the user data folder with owner-only permissions, checked
by the same validation as configuration files. Secrets are never shown
again after entry and never logged.
"""
from __future__ import annotations

import os
import pathlib
import tomllib

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout,
                               QGroupBox, QLabel, QLineEdit, QSpinBox, QStackedWidget,
                               QVBoxLayout, QWidget)

from app.sources import local_types
from backend.config import ConfigError, parse_config
from backend.workspace import data_dir

MODES = [("demo", "Embedded demo (a primary and a secondary on this machine)"),
         ("local", "Run a secondary here, connected to a primary"),
         ("remote", "Watch a remote headless secondary")]
SECRET_PLACEHOLDER = "•••••••• (saved; type to replace)"


def settings_path() -> pathlib.Path:
    return data_dir() / "console.toml"


def load_settings(path: pathlib.Path | None = None) -> dict:
    path = path or settings_path()
    if not path.exists():
        return {"mode": "demo"}
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {"mode": "demo"}


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def save_settings(settings: dict, path: pathlib.Path | None = None) -> None:
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"mode = {_toml_value(settings.get('mode', 'demo'))}"]
    for section in ("secondary", "remote", "feature_flags"):
        values = settings.get(section)
        if values:
            lines.append(f"\n[{section}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    temporary = path.with_suffix(".tmp")
    temporary.write_text("\n".join(lines) + "\n")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def validate(settings: dict) -> str | None:
    """None when valid, else one clear message."""
    mode = settings.get("mode")
    if mode == "remote":
        url = settings.get("remote", {}).get("url", "")
        if not url.startswith(("http://", "https://")):
            return "The secondary's URL must start with http:// or https://."
        return None
    if mode == "local":
        try:
            parse_config({"secondary": settings.get("secondary", {}),
                          "feature_flags": settings.get("feature_flags", {})}, "Settings")
        except ConfigError as exc:
            return str(exc).removeprefix("Settings: ")
    return None


class SettingsDialog(QDialog):
    def __init__(self, settings: dict, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.original = settings
        self.mode = QComboBox()
        for key, text in MODES:
            self.mode.addItem(text, key)
        self.mode.setAccessibleName("Connection")
        self.pages = QStackedWidget()
        self.pages.addWidget(QLabel("The demo needs no settings: a seeded primary and a "
                                    "secondary run on this machine."))
        self.pages.addWidget(self._local_page(settings.get("secondary", {}),
                                              settings.get("feature_flags", {})))
        self.pages.addWidget(self._remote_page(settings.get("remote", {})))
        self.mode.currentIndexChanged.connect(self.pages.setCurrentIndex)
        self.mode.setCurrentIndex(max(0, [k for k, _ in MODES].index(
            settings.get("mode", "demo")) if settings.get("mode") in dict(MODES) else 0))
        self.error = QLabel("")
        self.error.setStyleSheet("color: #d9534f")
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.addRow("Connection:", self.mode)
        layout.addLayout(form)
        layout.addWidget(self.pages)
        layout.addWidget(self.error)
        layout.addWidget(QLabel("Connection changes apply when Geo Console starts again."))
        layout.addWidget(buttons)

    def _secret(self, saved: str) -> QLineEdit:
        field = QLineEdit()
        field.setEchoMode(QLineEdit.Password)
        field.setPlaceholderText(SECRET_PLACEHOLDER if saved else "")
        return field

    def _local_page(self, secondary: dict, flags: dict) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        connection = QGroupBox("Connection")
        form = QFormLayout(connection)
        self.name = QLineEdit(secondary.get("name", "secondary"))
        self.primary_url = QLineEdit(secondary.get("primary_url", ""))
        self.access_key = QLineEdit(secondary.get("access_key", ""))
        self.secret = self._secret(secondary.get("secret", ""))
        self.tracking_url = QLineEdit(secondary.get("tracking_database_url", ""))
        self.storage = QLineEdit(secondary.get("storage_path", ""))
        self.api_token = self._secret(secondary.get("api_token", ""))
        for label, widget in (("Site name", self.name), ("Primary URL", self.primary_url),
                              ("Access key", self.access_key), ("Secret", self.secret),
                              ("Tracking database URL", self.tracking_url),
                              ("Storage path", self.storage), ("API token", self.api_token)):
            form.addRow(f"{label}:", widget)
        layout.addWidget(connection)
        work = QGroupBox("Replication")
        form = QFormLayout(work)
        self.files_capacity = QSpinBox()
        self.files_capacity.setRange(1, 10000)
        self.files_capacity.setValue(int(secondary.get("files_max_capacity", 10)))
        self.verification_capacity = QSpinBox()
        self.verification_capacity.setRange(1, 10000)
        self.verification_capacity.setValue(int(secondary.get("verification_max_capacity", 100)))
        self.verification_capacity.setToolTip(
            "Verification jobs at once; each verifies up to 10 registries, as in GitLab")
        self.reverification = QSpinBox()
        self.reverification.setRange(1, 3650)
        self.reverification.setSuffix(" days")
        self.reverification.setValue(int(secondary.get("minimum_reverification_interval", 7)))
        self.object_storage = QCheckBox("Replicate blobs in object storage")
        self.object_storage.setChecked(bool(secondary.get("sync_object_storage", False)))
        self.selective = QComboBox()
        for key, text in (("", "Everything"), ("namespaces", "Namespaces"),
                          ("shards", "Shards")):
            self.selective.addItem(text, key)
        self.selective.setCurrentIndex(max(0, self.selective.findData(
            secondary.get("selective_sync_type", ""))))
        self.namespaces = QLineEdit(", ".join(
            str(i) for i in secondary.get("selective_sync_namespace_ids", [])))
        self.namespaces.setPlaceholderText("namespace ids, e.g. 4, 12")
        self.shards = QLineEdit(", ".join(secondary.get("selective_sync_shards", [])))
        self.shards.setPlaceholderText("shard names, e.g. default, ssd")
        # One flag per type this console knows, on unless turned off.
        self.flags = {}
        for data_type in local_types():
            box = QCheckBox(f"Replicate {data_type.title_plural} ({data_type.feature_flag})")
            box.setChecked(bool(flags.get(data_type.feature_flag, True)))
            self.flags[data_type.feature_flag] = box
        for label, widget in (("Concurrent syncs", self.files_capacity),
                              ("Verification jobs", self.verification_capacity),
                              ("Re-verify after", self.reverification),
                              ("Selective sync", self.selective), ("Namespaces", self.namespaces),
                              ("Shards", self.shards)):
            form.addRow(f"{label}:", widget)
        form.addRow(self.object_storage)
        for box in self.flags.values():
            form.addRow(box)
        layout.addWidget(work)
        return page

    def _remote_page(self, remote: dict) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.remote_url = QLineEdit(remote.get("url", ""))
        self.remote_url.setPlaceholderText("http://secondary.example:8091")
        self.remote_token = self._secret(remote.get("api_token", ""))
        form.addRow("Secondary URL:", self.remote_url)
        form.addRow("API token:", self.remote_token)
        return page

    def result_settings(self) -> dict:
        mode = self.mode.currentData()
        saved_secondary = self.original.get("secondary", {})
        saved_remote = self.original.get("remote", {})
        settings = {"mode": mode}
        if mode == "local":
            def ids(text):
                parts = [p.strip() for p in text.replace(",", " ").split()]
                return [int(p) if p.isdigit() else p for p in parts]
            settings["secondary"] = {
                "name": self.name.text().strip(), "primary_url": self.primary_url.text().strip(),
                "access_key": self.access_key.text().strip(),
                "secret": self.secret.text() or saved_secondary.get("secret", ""),
                "tracking_database_url": self.tracking_url.text().strip(),
                "storage_path": self.storage.text().strip(),
                "api_token": self.api_token.text() or saved_secondary.get("api_token", ""),
                "files_max_capacity": self.files_capacity.value(),
                "verification_max_capacity": self.verification_capacity.value(),
                "minimum_reverification_interval": self.reverification.value(),
                "sync_object_storage": self.object_storage.isChecked(),
                "selective_sync_type": self.selective.currentData(),
                "selective_sync_namespace_ids": ids(self.namespaces.text()),
                "selective_sync_shards": [s.strip() for s in self.shards.text().split(",")
                                          if s.strip()],
            }
            settings["feature_flags"] = {flag: box.isChecked()
                                         for flag, box in self.flags.items()}
        elif mode == "remote":
            settings["remote"] = {"url": self.remote_url.text().strip(),
                                  "api_token": self.remote_token.text()
                                  or saved_remote.get("api_token", "")}
        return settings

    def accept(self) -> None:
        settings = self.result_settings()
        problem = validate(settings)
        if problem:
            self.error.setText(problem)
            return
        save_settings(settings)
        self.saved = settings
        super().accept()
