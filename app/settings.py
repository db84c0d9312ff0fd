"""The console's connection settings: the embedded demo, a secondary this
console runs itself (primary URL, credentials, tracking DB, capacities,
selective sync, flags), or a remote headless secondary (URL and API token).

Saved as TOML in the user data folder with owner-only permissions, checked
by the same validation as configuration files, whose complaints are told
in the dialog's words: the field, not the TOML key. Secrets are never shown
again after entry and never logged. A remote site's access token, a
tracking database's password and an object store's secret access key are
never written to the file: they are kept by `token_store` (the system
keyring, or this run only) and put back into the settings when they are
loaded. The object stores (the secondary's own bucket, the demo's buckets)
are `object_store_settings.py`'s; the dialog is `settings_dialog.py`.
"""
from __future__ import annotations

import os
import pathlib
import tomllib

import re
from dataclasses import dataclass

from app import object_store_settings, token_store
from backend.config import ConfigError, parse_config
from backend.workspace import data_dir

MODES = [("demo", "Embedded demo (a primary and a secondary on this machine)"),
         ("local", "Run a secondary here, connected to a primary"),
         ("remote", "Watch a remote headless secondary"),
         ("gitlab_db", "Read a GitLab secondary's tracking database directly")]
# The settings of a local secondary, by the labels the dialog shows them with.
FIELD_LABELS = {
    "name": "Site name", "primary_url": "Primary URL", "access_key": "Access key",
    "secret": "Secret", "tracking_database_url": "Tracking database URL",
    "storage_path": "Storage path", "api_token": "API token",
    "files_max_capacity": "Concurrent syncs", "verification_max_capacity": "Verification jobs",
    "minimum_reverification_interval": "Re-verify after", "selective_sync_type": "Selective sync",
    "selective_sync_namespace_ids": "Namespaces", "selective_sync_shards": "Shards",
    "remote_url": "Secondary URL",
    "gitlab_db_url": "Tracking database URL",
    "remote_through": "Another site",
    # The secondary's own bucket ([secondary.object_store]).
    "object_store.bucket": "Bucket", "object_store.connection.endpoint": "Endpoint",
    "object_store.connection.region": "Region",
    "object_store.connection.aws_access_key_id": "Access key ID",
    "object_store.connection.aws_secret_access_key": "Secret access key",
    # The demo's ([demo.object_store]).
    "demo.object_store.primary_bucket": "Primary's bucket",
    "demo.object_store.secondary_bucket": "Secondary's bucket",
    "demo.object_store.connection.endpoint": "Endpoint",
    "demo.object_store.connection.region": "Region",
    "demo.object_store.connection.aws_access_key_id": "Access key ID",
    "demo.object_store.connection.aws_secret_access_key": "Secret access key",
}
# `secondary.files_max_capacity must ...`, `secondary.object_store.bucket must ...`,
# `demo.object_store.connection needs ...`: the key, and what is said of it.
_KEY = re.compile(r"^(?:secondary\.|feature_flags\.|(?=demo\.))([\w.]+?)\s+(.*)$")


def settings_path() -> pathlib.Path:
    return data_dir() / "console.toml"


def load_settings(path: pathlib.Path | None = None) -> dict:
    path = path or settings_path()
    if not path.exists():
        return {"mode": "demo"}
    try:
        with open(path, "rb") as handle:
            settings = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {"mode": "demo"}
    if token_store.move_out_of_settings(settings):  # written by an older version
        save_settings(settings, path)
    remote = settings.get("remote")
    if isinstance(remote, dict) and remote.get("url"):
        remote["api_token"] = token_store.load_token(remote["url"]) or ""
    database = settings.get("gitlab_db")
    if isinstance(database, dict) and database.get("url"):
        database["password"] = token_store.load_token(_password_key(database["url"])) or ""
    if object_store_settings.put_secrets_back(settings):  # one written in by hand
        save_settings(settings, path)
    return settings


def _password_key(url: str) -> str:
    """Where a tracking database's password is kept: by its URL without it."""
    return "database " + url


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _table(name: str, values: dict) -> list[str]:
    """A TOML table and, after its own keys, its tables (`[secondary]`,
    then `[secondary.object_store]`, then `[secondary.object_store.connection]`)."""
    own = {key: value for key, value in values.items() if not isinstance(value, dict)}
    inner = {key: value for key, value in values.items() if isinstance(value, dict)}
    lines = [f"\n[{name}]"] + [f"{key} = {_toml_value(value)}" for key, value in own.items()] \
        if own or not inner else []
    for key, table in inner.items():
        lines += _table(f"{name}.{key}", table)
    return lines


def save_settings(settings: dict, path: pathlib.Path | None = None) -> None:
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = object_store_settings.take_secrets_out(settings)
    lines = [f"mode = {_toml_value(settings.get('mode', 'demo'))}"]
    remote = dict(settings.get("remote") or {})
    token = remote.pop("api_token", None)
    if token is not None and remote.get("url"):
        token_store.store_token(remote["url"], token)
    database = dict(settings.get("gitlab_db") or {})
    password = database.pop("password", None)
    if password is not None and database.get("url"):
        token_store.store_token(_password_key(database["url"]), password)
    for section in ("secondary", "remote", "gitlab_db", "demo", "feature_flags"):
        values = {"remote": remote, "gitlab_db": database}.get(section, settings.get(section))
        if values:
            lines += _table(section, values)
    temporary = path.with_suffix(".tmp")
    temporary.write_text("\n".join(lines) + "\n")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


@dataclass(frozen=True)
class Problem:
    """What is wrong with the settings: the field (a FIELD_LABELS key, or
    None), and one sentence in the dialog's words."""

    field: str | None
    message: str


NO_CHANGE, LIVE, RECONNECT = "no change", "live", "reconnect"
# What a secondary this console runs takes while running: the feature flags
# and these settings. Anything else takes a reconnect (a restart of it).
LIVE_SETTINGS = ("files_max_capacity", "verification_max_capacity")


def change_between(old: dict, new: dict) -> str:
    """What saving `new` over `old` takes: nothing; a change the running
    secondary takes at once (LIVE); or opening the connection again."""
    if old == new:
        return NO_CHANGE

    def fixed(settings: dict) -> dict:
        secondary = {k: v for k, v in settings.get("secondary", {}).items()
                     if k not in LIVE_SETTINGS}
        return {**{k: v for k, v in settings.items() if k != "feature_flags"},
                "secondary": secondary}

    if old.get("mode") == new.get("mode") == "local" and fixed(old) == fixed(new):
        return LIVE
    return RECONNECT


def validate(settings: dict) -> Problem | None:
    """None when the settings are valid, else what is wrong, and where."""
    mode = settings.get("mode")
    if mode == "remote":
        url = settings.get("remote", {}).get("url", "")
        if not url.startswith(("http://", "https://")):
            return Problem("remote_url", "The secondary's URL must start with http:// or "
                                         "https://.")
        through = settings.get("remote", {}).get("through")
        if through is not None and not (isinstance(through, int) and through > 0):
            return Problem("remote_through", "Another site is given by its id, a whole "
                                             "number (Admin > Geo > Sites), or left empty.")
        return None
    if mode == "gitlab_db":
        url = settings.get("gitlab_db", {}).get("url", "")
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError
        try:
            parsed = make_url(url) if url.startswith("postgresql") else None
        except ArgumentError:
            parsed = None
        if parsed is None or not parsed.database:
            return Problem("gitlab_db_url", "The tracking database URL must look like "
                                            "postgresql://USER@HOST:5432/DATABASE (GitLab's "
                                            "is PostgreSQL).")
        if parsed.password is not None:
            return Problem("gitlab_db_url", "Give the password in its own field, not in "
                                            "the URL (it is kept out of the settings file).")
        return None
    try:
        if mode == "local":
            parse_config({"secondary": settings.get("secondary", {}),
                          "feature_flags": settings.get("feature_flags", {})}, "Settings")
        elif mode == "demo":
            object_store_settings.demo_object_stores(settings)
    except ConfigError as exc:
        return _in_words(str(exc).removeprefix("Settings: "), settings)
    return None


def _in_words(message: str, settings: dict) -> Problem:
    """`secondary.files_max_capacity must be between 1 and 10000` becomes
    `Concurrent syncs must be between 1 and 10000.`"""
    match = _KEY.match(message)
    if match and match.group(1).endswith("object_store.connection"):
        return _key_pair_problem(match.group(1), settings)
    if not match or match.group(1) not in FIELD_LABELS:
        return Problem(None, message[:1].upper() + message[1:].rstrip(".") + ".")
    key, rest = match.groups()
    rest = rest.replace(" (days)", " day").replace("an array of integers",
                                                   "numbers separated by commas")
    return Problem(key, f"{FIELD_LABELS[key]} {rest.rstrip('.')}.")


def _key_pair_problem(connection_key: str, settings: dict) -> Problem:
    """A key id without its secret, or a secret without its key id: told
    under the one that is missing."""
    if connection_key.startswith("demo."):
        store = object_store_settings.demo_store(settings)
    else:
        store = settings.get("secondary", {}).get("object_store", {})
    connection = store.get("connection") or {}
    missing = "aws_secret_access_key" if connection.get("aws_access_key_id") else \
        "aws_access_key_id"
    key = f"{connection_key}.{missing}"
    return Problem(key, f"{FIELD_LABELS[key]} is missing: give the access key ID and the "
                        "secret access key both, or neither (to use this machine's own AWS "
                        "credentials).")


def gitlab_database_url(database: dict) -> str:
    """The tracking database URL with its password, to connect with."""
    from sqlalchemy.engine import make_url
    url = make_url(database["url"])
    if database.get("password"):
        url = url.set(password=database["password"])
    return url.render_as_string(hide_password=False)
