"""The Settings dialog: the embedded demo (with optional object storage), a
secondary this console runs (with its object storage), a remote headless
secondary, or a GitLab secondary's tracking database.

A problem is told in the dialog's words right under its field, whose
label is marked and which takes the focus; a spin box keeps what was typed, zero included, so that it
can be told rather than silently changed. "Test connection" tries the
settings as they stand, off the GUI thread: the primary, the tracking
database and the bucket of a local secondary, the demo's buckets, or a
remote secondary and its API token.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout,
                               QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QSpinBox, QStackedWidget, QVBoxLayout, QWidget)

from app.object_store_fields import ConnectionFields
from app.settings import FIELD_LABELS, MODES, Problem, save_settings, validate
from app.settings_check import try_connection
from app.sources import local_types
from app.tasks import TaskRunner

SECRET_PLACEHOLDER = "•••••••• (saved; type to replace)"
PROBLEM_COLOUR = "#d9534f"
FIELD_WIDTH = 260  # px, the least a text field is given


class SettingsDialog(QDialog):
    def __init__(self, settings: dict, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.original = settings
        self.saved: dict | None = None
        self.problem: Problem | None = None  # the one shown now
        self.runner = TaskRunner(self, threads=1)
        self.fields: dict[str, QWidget] = {}
        self.labels: dict[str, QLabel] = {}     # field -> its label, marked on a problem
        self.problems: dict[str, QLabel] = {}   # field -> the line under it
        self.mode = QComboBox()
        for key, text in MODES:
            self.mode.addItem(text, key)
        self.mode.setAccessibleName("Connection")
        self.pages = QStackedWidget()
        self.pages.addWidget(self._demo_page(settings.get("demo") or {}))
        self.pages.addWidget(self._local_page(settings.get("secondary", {}),
                                              settings.get("feature_flags", {})))
        self.pages.addWidget(self._remote_page(settings.get("remote", {})))
        self.pages.addWidget(self._gitlab_db_page(settings.get("gitlab_db", {})))
        self.error = QLabel("")
        self.error.setStyleSheet(f"color: {PROBLEM_COLOUR}")
        self.error.setWordWrap(True)
        self.error.setAccessibleName("Problem")
        self.test_button = QPushButton("Test connection")
        self.test_button.setToolTip("Try these settings now, without saving them")
        self.test_button.clicked.connect(self.test_connection)
        self.test_result = QLabel("")
        self.test_result.setWordWrap(True)
        self.test_result.setAccessibleName("Connection test")
        modes = [key for key, _text in MODES]
        self.mode.setCurrentIndex(modes.index(settings.get("mode"))
                                  if settings.get("mode") in modes else 0)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.addRow("Connection:", self.mode)
        layout.addLayout(form)
        layout.addWidget(self.pages)
        testing = QHBoxLayout()
        testing.addWidget(self.test_button)
        testing.addWidget(self.test_result, 1)
        layout.addLayout(testing)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self._mode_changed(self.mode.currentIndex())
        # The settings as they stood, in the form saving gives them: what a
        # save changed is told against these (`settings.change_between`).
        self.initial = self.result_settings()

    def _mode_changed(self, index: int) -> None:
        self.pages.setCurrentIndex(index)
        self._update_test_button()
        self.test_result.setText("")
        self.show_problem(None)

    def _update_test_button(self) -> None:
        """The demo has something to try only with object storage."""
        self.test_button.setEnabled(self.mode.currentData() != "demo"
                                    or bool(self.demo_primary_bucket.text().strip()))

    def _secret(self, saved: str) -> QLineEdit:
        field = QLineEdit()
        field.setEchoMode(QLineEdit.Password)
        field.setPlaceholderText(SECRET_PLACEHOLDER if saved else "")
        return field

    @staticmethod
    def _spin(maximum: int, value: int, suffix: str = "") -> QSpinBox:
        """From 0, so that a zero typed in stays there and is told about."""
        spin = QSpinBox()
        spin.setRange(0, maximum)
        spin.setSuffix(suffix)
        spin.setValue(value)
        return spin

    def _demo_page(self, demo: dict) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        about = QLabel("A seeded primary and a secondary run on this machine; they need no "
                       "settings.")
        about.setWordWrap(True)
        layout.addWidget(about)
        group = QGroupBox("Object storage for the demo (optional)")
        form = QFormLayout(group)
        store = demo.get("object_store") or {}
        note = QLabel("With a bucket for the primary, about one blob in ten of each type is "
                      "kept there and the secondary replicates them: into its own bucket "
                      "when one is given, else onto its disk. Both buckets are on the one "
                      "service below. Other buckets start the demo afresh.")
        note.setWordWrap(True)
        form.addRow(note)
        self.demo_primary_bucket = QLineEdit(store.get("primary_bucket", ""))
        self.demo_primary_bucket.setPlaceholderText("empty: no object storage")
        self.demo_primary_bucket.textChanged.connect(lambda _t: self._update_test_button())
        self.demo_secondary_bucket = QLineEdit(store.get("secondary_bucket", ""))
        self.demo_secondary_bucket.setPlaceholderText("empty: the secondary's disk")
        self._add(form, "demo.object_store.primary_bucket", self.demo_primary_bucket)
        self._add(form, "demo.object_store.secondary_bucket", self.demo_secondary_bucket)
        self.demo_connection = ConnectionFields(form, "demo.object_store.",
                                                store.get("connection") or {}, self._add,
                                                self._secret)
        layout.addWidget(group)
        layout.addStretch(1)
        return page

    def _object_storage_group(self, secondary: dict) -> QGroupBox:
        group = QGroupBox("Object storage")
        form = QFormLayout(group)
        store = secondary.get("object_store") or {}
        self.object_storage = QCheckBox("Replicate blobs in object storage")
        self.object_storage.setChecked(bool(secondary.get("sync_object_storage", False)))
        form.addRow(self.object_storage)
        note = QLabel("Blobs the primary keeps in object storage are replicated only with "
                      "this on; without a bucket of its own, this site keeps them on its "
                      "disk (Storage path).")
        note.setWordWrap(True)
        form.addRow(note)
        self.own_bucket = QCheckBox("Keep them in this site's own bucket")
        self.own_bucket.setChecked(bool(store.get("enabled", False)))
        form.addRow(self.own_bucket)
        self.bucket = QLineEdit(store.get("bucket", ""))
        self.bucket.setPlaceholderText("e.g. geo-replicas")
        self._add(form, "object_store.bucket", self.bucket)
        self.store_connection = ConnectionFields(form, "object_store.",
                                                 store.get("connection") or {}, self._add,
                                                 self._secret)
        self.own_bucket.toggled.connect(self._own_bucket_toggled)
        self._own_bucket_toggled(self.own_bucket.isChecked())
        return group

    def _own_bucket_toggled(self, on: bool) -> None:
        for widget in (self.bucket, *self.store_connection.widgets()):
            widget.setEnabled(on)
        for key, label in self.labels.items():
            if key.startswith("object_store."):
                label.setEnabled(on)

    def _local_page(self, secondary: dict, flags: dict) -> QWidget:
        page = QWidget()
        columns = QHBoxLayout(page)
        columns.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout()
        connection = QGroupBox("Connection")
        form = QFormLayout(connection)
        self.name = QLineEdit(secondary.get("name", "secondary"))
        self.primary_url = QLineEdit(secondary.get("primary_url", ""))
        self.access_key = QLineEdit(secondary.get("access_key", ""))
        self.secret = self._secret(secondary.get("secret", ""))
        self.tracking_url = QLineEdit(secondary.get("tracking_database_url", ""))
        self.storage = QLineEdit(secondary.get("storage_path", ""))
        self.api_token = self._secret(secondary.get("api_token", ""))
        for key, widget in (("name", self.name), ("primary_url", self.primary_url),
                            ("access_key", self.access_key), ("secret", self.secret),
                            ("tracking_database_url", self.tracking_url),
                            ("storage_path", self.storage), ("api_token", self.api_token)):
            self._add(form, key, widget)
        layout.addWidget(connection)
        work = QGroupBox("Replication")
        form = QFormLayout(work)
        self.files_capacity = self._spin(10000, int(secondary.get("files_max_capacity", 10)))
        self.verification_capacity = self._spin(
            10000, int(secondary.get("verification_max_capacity", 100)))
        self.verification_capacity.setToolTip(
            "Verification jobs at once; each verifies up to 10 registries, as in GitLab")
        self.reverification = self._spin(
            3650, int(secondary.get("minimum_reverification_interval", 7)), " days")
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
        for key, widget in (("files_max_capacity", self.files_capacity),
                            ("verification_max_capacity", self.verification_capacity),
                            ("minimum_reverification_interval", self.reverification),
                            ("selective_sync_type", self.selective),
                            ("selective_sync_namespace_ids", self.namespaces),
                            ("selective_sync_shards", self.shards)):
            self._add(form, key, widget)
        for box in self.flags.values():
            form.addRow(box)
        layout.addWidget(work)
        layout.addStretch(1)
        columns.addLayout(layout, 1)
        right = QVBoxLayout()
        right.addWidget(self._object_storage_group(secondary))
        right.addStretch(1)
        columns.addLayout(right, 1)
        return page

    def _add(self, form: QFormLayout, key: str, widget: QWidget) -> None:
        widget.setAccessibleName(FIELD_LABELS[key])
        if isinstance(widget, QLineEdit):  # room for a URL or a placeholder, uncut
            widget.setMinimumWidth(FIELD_WIDTH)
        label = QLabel(f"{FIELD_LABELS[key]}:")
        label.setBuddy(widget)
        problem = QLabel("")
        problem.setWordWrap(True)
        problem.setStyleSheet(f"color: {PROBLEM_COLOUR}")
        problem.setAccessibleName(f"Problem with {FIELD_LABELS[key]}")
        problem.hide()
        form.addRow(label, widget)
        form.addRow("", problem)
        self.fields[key], self.labels[key], self.problems[key] = widget, label, problem

    def _remote_page(self, remote: dict) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.remote_url = QLineEdit(remote.get("url", ""))
        self.remote_url.setPlaceholderText("http://secondary.example:8091")
        self.remote_token = self._secret(remote.get("api_token", ""))
        self._add(form, "remote_url", self.remote_url)
        form.addRow("API token:", self.remote_token)
        self.remote_through = QLineEdit(str(remote.get("through") or ""))
        self.remote_through.setPlaceholderText("this site")
        self.remote_through.setToolTip(
            "Another secondary of the same GitLab deployment, by its id (Admin > Geo > "
            "Sites, or the Sites view): its registries come through this site's proxy "
            "(/api/v4/geo/node_proxy/ID/graphql)")
        self._add(form, "remote_through", self.remote_through)
        from app import token_store
        where = QLabel(
            "GitLab: a personal access token of an administrator (read_api to watch, api to "
            "resync and reverify). It is kept in the system keyring, never in the settings "
            "file." if token_store.keyring_available() else
            "GitLab: a personal access token of an administrator (read_api to watch, api to "
            "resync and reverify). This machine has no system keyring, so the token is kept "
            f"until the console closes; {token_store.ENVIRONMENT} gives it at start.")
        where.setWordWrap(True)
        # At the top of its row: the row is as tall as the text at a narrow width.
        where.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        where.setObjectName("tokenStorage")
        form.addRow("", where)
        return page

    def _gitlab_db_page(self, database: dict) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.gitlab_db_url = QLineEdit(database.get("url", ""))
        self.gitlab_db_url.setPlaceholderText(
            "postgresql://gitlab_geo@geo-db.example:5432/gitlabhq_geo_production")
        self.gitlab_db_password = self._secret(database.get("password", ""))
        self._add(form, "gitlab_db_url", self.gitlab_db_url)
        form.addRow("Password:", self.gitlab_db_password)
        note = QLabel("The registry tables are read directly; resync and reverify write "
                      "to them as GitLab's bulk actions do, each after a confirmation. The "
                      "password is kept as an access token is (system keyring, or this run).")
        note.setWordWrap(True)
        note.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        form.addRow("", note)
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
                "object_store": {"enabled": self.own_bucket.isChecked(),
                                 "bucket": self.bucket.text().strip(),
                                 "connection": self.store_connection.values()},
            }
            settings["feature_flags"] = {flag: box.isChecked()
                                         for flag, box in self.flags.items()}
        elif mode == "gitlab_db":
            saved_db = self.original.get("gitlab_db", {})
            settings["gitlab_db"] = {"url": self.gitlab_db_url.text().strip(),
                                     "password": self.gitlab_db_password.text()
                                     or saved_db.get("password", "")}
        elif mode == "demo":
            store = {"primary_bucket": self.demo_primary_bucket.text().strip(),
                     "secondary_bucket": self.demo_secondary_bucket.text().strip(),
                     "connection": self.demo_connection.values()}
            if store["primary_bucket"] or store["secondary_bucket"] or \
                    not self.demo_connection.empty():
                settings["demo"] = {"object_store": store}
        elif mode == "remote":
            settings["remote"] = {"url": self.remote_url.text().strip(),
                                  "api_token": self.remote_token.text()
                                  or saved_remote.get("api_token", "")}
            through = self.remote_through.text().strip()
            if through:
                settings["remote"]["through"] = int(through) if through.isdigit() else through
        return settings

    def show_problem(self, problem: Problem | None) -> None:
        """Tell what is wrong under its field (or at the foot of the dialog
        when it is about no one field), mark the field's label, focus it."""
        for key, label in self.labels.items():
            label.setStyleSheet("")
            self.problems[key].hide()
        key = problem.field if problem else None
        self.error.setText(problem.message if problem and key not in self.fields else "")
        self.problem = problem
        if key in self.fields:
            self.labels[key].setStyleSheet(f"color: {PROBLEM_COLOUR}; font-weight: bold")
            self.problems[key].setText(problem.message)
            self.problems[key].show()
            self.fields[key].setFocus()

    def accept(self) -> None:
        settings = self.result_settings()
        problem = validate(settings)
        self.show_problem(problem)
        if problem:
            return
        save_settings(settings)
        self.saved = settings
        self.runner.close()
        super().accept()

    def reject(self) -> None:
        self.runner.close()
        super().reject()

    # --- testing the connection ------------------------------------------------------

    def test_connection(self) -> None:
        settings = self.result_settings()
        problem = validate(settings)
        self.show_problem(problem)
        if problem:
            return
        self.test_result.setStyleSheet("")
        self.test_result.setText("Testing…")
        self.test_button.setEnabled(False)
        self.runner.submit("test", lambda: try_connection(settings), self._tested,
                           self._test_failed)

    def _tested(self, outcome: tuple[bool, str]) -> None:
        good, text = outcome
        self.test_button.setEnabled(True)
        self.test_result.setStyleSheet("color: #2e7d4f" if good else "color: #d9534f")
        self.test_result.setText(("✓ " if good else "✗ ") + text)

    def _test_failed(self, message: str) -> None:
        self._tested((False, message))
