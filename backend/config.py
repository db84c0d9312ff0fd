"""Configuration: one TOML file that may describe both sites.

    [primary]            database_url, storage_path, listen, name,
                         minimum_reverification_interval, api_token, read_token,
                         metrics_allow
    [[primary.secondaries]]  name, url, access_key, secret
    [secondary]          name, primary_url, access_key, secret,
                         tracking_database_url, storage_path, listen, api_token,
                         files_max_capacity, verification_max_capacity,
                         minimum_reverification_interval, sync_object_storage,
                         selective_sync_type, selective_sync_namespace_ids,
                         selective_sync_shards, status_interval, request_timeout,
                         min_free_space_mb, min_free_space_percent, read_token,
                         metrics_allow
    [primary.object_store], [secondary.object_store]
                         enabled, bucket, proxy_download, and a [.connection]
                         table: provider, region, endpoint, path_style,
                         aws_access_key_id, aws_secret_access_key (GitLab's
                         consolidated object-storage form; docs/OBJECT_STORAGE.md)
    [primary]            object_storage_verification ("sha256" or "size")
    [feature_flags]      geo_<replicable>_replication (default true)

Environment variables GEO_CONSOLE_<SECTION>_<KEY> override single values
(GEO_CONSOLE_SECONDARY_SECRET=..., and for the object store's tables
GEO_CONSOLE_PRIMARY_OBJECT_STORE_BUCKET=... and
GEO_CONSOLE_PRIMARY_OBJECT_STORE_CONNECTION_AWS_SECRET_ACCESS_KEY=...). Every problem raises ConfigError with
one line that names the file, key and what is expected.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from backend.framework.geo_auth import MIN_SECRET_LENGTH
from backend.framework.scope import SELECTIVE_SYNC_TYPES, SyncScope

ENV_PREFIX = "GEO_CONSOLE_"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class PeerConfig:
    name: str
    url: str = ""
    access_key: str = ""
    secret: str = field(default="", repr=False)


OBJECT_STORAGE_VERIFICATIONS = ("sha256", "size")
# S3's bucket names: 3 to 63 lower-case letters, digits, dots and hyphens,
# starting and ending with a letter or digit.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class ObjectStoreConnection:
    """How to reach an S3-compatible service (GitLab's `connection` hash).
    Without a key pair, boto3's own chain finds credentials (AWS_* variables,
    ~/.aws, an instance profile)."""
    provider: str = "AWS"
    region: str = "us-east-1"
    endpoint: str = ""  # any S3-compatible service; empty for AWS itself
    path_style: bool = False
    aws_access_key_id: str = ""
    aws_secret_access_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class ObjectStoreConfig:
    """A site's object storage: where its file_store 2 blobs live."""
    enabled: bool = False
    bucket: str = ""
    # Serve object-stored blobs through the primary instead of redirecting
    # the secondary to a presigned URL.
    proxy_download: bool = False
    # Objects larger than this go up in parts (S3: from 5 MiB; at most
    # 5 GiB in one PUT); smaller ones in one PUT carrying their SHA-256.
    multipart_threshold_mb: int = 64
    connection: ObjectStoreConnection = ObjectStoreConnection()


@dataclass(frozen=True)
class PrimaryConfig:
    database_url: str
    storage_path: str
    listen: str = "127.0.0.1:8090"
    minimum_reverification_interval: int = 7
    secondaries: tuple[PeerConfig, ...] = ()
    name: str = "primary"
    # The site API's tokens (docs/API.md): api_token reads and acts,
    # read_token only reads; /metrics answers loopback and metrics_allow.
    api_token: str = field(default="", repr=False)
    read_token: str = field(default="", repr=False)
    metrics_allow: tuple[str, ...] = ()
    object_store: ObjectStoreConfig = ObjectStoreConfig()
    # How object-stored blobs are checksummed: their SHA-256 (the stored
    # checksum, else a streaming read) or, as GitLab does, their size.
    object_storage_verification: str = "sha256"


@dataclass(frozen=True)
class SecondaryConfig:
    name: str
    primary_url: str
    access_key: str
    secret: str = field(repr=False)
    tracking_database_url: str
    storage_path: str
    listen: str = "127.0.0.1:8091"
    api_token: str = field(default="", repr=False)
    files_max_capacity: int = 10
    verification_max_capacity: int = 100
    minimum_reverification_interval: int = 7
    sync_object_storage: bool = False
    selective_sync_type: str = ""
    selective_sync_namespace_ids: tuple[int, ...] = ()
    selective_sync_shards: tuple[str, ...] = ()
    status_interval: float = 60.0
    request_timeout: float = 60.0
    # Free space left alone on the replicas' file system: the larger of the
    # two (Syncthing's minimum free space is 1 %).
    min_free_space_mb: int = 0
    min_free_space_percent: float = 1.0
    read_token: str = field(default="", repr=False)
    metrics_allow: tuple[str, ...] = ()
    object_store: ObjectStoreConfig = ObjectStoreConfig()

    @property
    def scope(self) -> SyncScope:
        return SyncScope(self.selective_sync_type, tuple(self.selective_sync_namespace_ids),
                         tuple(self.selective_sync_shards), self.sync_object_storage)


@dataclass(frozen=True)
class Config:
    primary: PrimaryConfig | None = None
    secondary: SecondaryConfig | None = None
    feature_flags: dict[str, bool] = field(default_factory=dict)
    source: str = "<defaults>"

    def flag(self, name: str) -> bool:
        # Released types default to on (the template's release step).
        return self.feature_flags.get(name, True)

    def require_primary(self) -> PrimaryConfig:
        if self.primary is None:
            raise ConfigError(f"{self.source}: no [primary] section")
        return self.primary

    def require_secondary(self) -> SecondaryConfig:
        if self.secondary is None:
            raise ConfigError(f"{self.source}: no [secondary] section")
        return self.secondary


def load_config(path: str | os.PathLike | None, environ: dict | None = None) -> Config:
    environ = os.environ if environ is None else environ
    source = str(path) if path else "<environment>"
    data: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"{path}: configuration file not found") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: malformed TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: malformed TOML: the file is not UTF-8 text") from None
    return parse_config(data, source, environ)


def _shown(name: str) -> str:
    """A key or section name as it can be shown in a one-line message."""
    return name if name.isprintable() else repr(name)


def parse_config(data: dict, source: str = "<config>", environ: dict | None = None) -> Config:
    environ = {} if environ is None else environ
    unknown = set(data) - {"primary", "secondary", "feature_flags"}
    if unknown:
        raise ConfigError(f"{source}: unknown section [{_shown(sorted(unknown)[0])}]")
    primary = _section(data, "primary", PrimaryConfig, source, environ)
    secondary = _section(data, "secondary", SecondaryConfig, source, environ)
    flags = data.get("feature_flags", {})
    if not isinstance(flags, dict):
        raise ConfigError(f"{source}: [feature_flags] must be a table")
    flags = dict(flags)
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX + "FEATURE_FLAGS_"):
            flags[name.removeprefix(ENV_PREFIX + "FEATURE_FLAGS_").lower()] = value
    parsed_flags = {}
    overridden = {name.removeprefix(ENV_PREFIX + "FEATURE_FLAGS_").lower()
                  for name in environ if name.startswith(ENV_PREFIX + "FEATURE_FLAGS_")}
    for name, value in flags.items():
        where = (_where(source, "feature_flags", name, overridden) if name in overridden
                 else f"{source}: feature_flags.{_shown(name)}")
        parsed_flags[name] = _coerce(value, bool, where, lenient=isinstance(value, str))
    if primary is not None and secondary is not None:
        _check_listening_apart(primary.listen, secondary.listen, source)
    return Config(primary, secondary, parsed_flags, source)


WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def _check_listening_apart(primary: str, secondary: str, source: str) -> None:
    """Two sites of one file cannot share a port: the second would fail to
    start, or (SO_REUSEPORT) the two would take each other's requests."""
    (host_a, port_a), (host_b, port_b) = parse_listen(primary), parse_listen(secondary)
    same_host = host_a == host_b or host_a in WILDCARD_HOSTS or host_b in WILDCARD_HOSTS
    if port_a and port_a == port_b and same_host:
        raise ConfigError(f"{source}: the primary and the secondary both listen on port "
                          f"{port_a}; give each site a port of its own")


def _section(data: dict, name: str, cls, source: str, environ: dict):
    raw = data.get(name)
    prefix = f"{ENV_PREFIX}{name.upper()}_"
    overrides = {key.removeprefix(prefix).lower(): value for key, value in environ.items()
                 if key.startswith(prefix)}
    if raw is None and not overrides:
        return None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{source}: [{name}] must be a table")
    raw = {**(raw or {}), **overrides}
    store_overrides = {key: raw.pop(key) for key in list(raw)
                       if key.startswith(STORE_KEY + "_") and key in overrides}
    if store_overrides or STORE_KEY in raw:
        raw[STORE_KEY] = _object_store(raw.get(STORE_KEY, {}), f"{source}: {name}.{STORE_KEY}",
                                       store_overrides, prefix)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(raw) - set(fields)
    if unknown:
        key = sorted(unknown)[0]
        if key in overrides:
            raise ConfigError(f"{_shown(prefix + key.upper())}: there is no setting "
                              f"{name}.{_shown(key)} to override")
        raise ConfigError(f"{source}: unknown key {name}.{_shown(key)}")
    values = {}
    for key, spec in fields.items():
        where = _where(source, name, key, overrides)
        if key not in raw:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where} is required")
            continue
        if key == "secondaries":
            values[key] = _peers(raw[key], where)
        elif key == STORE_KEY:
            values[key] = raw[key]
        else:
            values[key] = _coerce(raw[key], spec.type, where, lenient=key in overrides)
    config = cls(**values)
    _validate(config, name, source, overrides)
    return config


STORE_KEY = "object_store"
CONNECTION_KEY = "connection"


def _object_store(value, where: str, overrides: dict, env_prefix: str) -> ObjectStoreConfig:
    """`[<site>.object_store]` and its `connection` table, with their
    environment overrides (`object_store_bucket`, `object_store_connection_region`)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table ([...object_store])")
    store = dict(value)
    connection = store.pop(CONNECTION_KEY, {})
    if not isinstance(connection, dict):
        raise ConfigError(f"{where}.{CONNECTION_KEY} must be a table")
    connection = dict(connection)
    from_env: dict[str, str] = {}  # key as written in the file -> its variable
    connection_prefix = f"{STORE_KEY}_{CONNECTION_KEY}_"
    for key, text in overrides.items():
        if key.startswith(connection_prefix):
            short = key.removeprefix(connection_prefix)
            connection[short] = text
            from_env[f"{CONNECTION_KEY}.{short}"] = f"{env_prefix}{key.upper()}"
        else:
            short = key.removeprefix(STORE_KEY + "_")
            store[short] = text
            from_env[short] = f"{env_prefix}{key.upper()}"

    def parse(cls, raw: dict, path: str):
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != CONNECTION_KEY}
        values = {}
        for key, item in raw.items():
            named = f"{path}{key}"
            shown = (f"{_shown(from_env[named])} ({where.split(': ', 1)[-1]}.{named})"
                     if named in from_env else f"{where}.{_shown(named)}")
            if key not in fields:
                if named in from_env:
                    raise ConfigError(f"{_shown(from_env[named])}: there is no setting "
                                      f"{where.split(': ', 1)[-1]}.{_shown(named)} to override")
                raise ConfigError(f"{where}: unknown key {_shown(named)}")
            values[key] = _coerce(item, fields[key].type, shown, lenient=named in from_env)
        return cls(**values)

    config = ObjectStoreConfig(**vars(parse(ObjectStoreConfig, store, "")) | {
        CONNECTION_KEY: parse(ObjectStoreConnection, connection, CONNECTION_KEY + ".")})
    _validate_object_store(config, where)
    return config


def _validate_object_store(config: ObjectStoreConfig, where: str) -> None:
    if not config.enabled:
        return
    connection = config.connection
    if not 5 <= config.multipart_threshold_mb <= 5120:
        raise ConfigError(f"{where}.multipart_threshold_mb must be between 5 and 5120 (MiB)")
    if not BUCKET_NAME.fullmatch(config.bucket) or ".." in config.bucket:
        raise ConfigError(f"{where}.bucket must name an S3 bucket (3 to 63 lower-case "
                          "letters, digits, dots and hyphens)")
    if connection.provider != "AWS":
        raise ConfigError(f'{where}.connection.provider must be "AWS" (any service that '
                          "speaks the S3 protocol)")
    if not connection.region:
        raise ConfigError(f"{where}.connection.region must not be empty")
    if connection.endpoint and not re.fullmatch(r"https?://[^\s/?#]+/?", connection.endpoint):
        raise ConfigError(f"{where}.connection.endpoint must be an http:// or https:// URL "
                          "of the service, without a path")
    if bool(connection.aws_access_key_id) != bool(connection.aws_secret_access_key):
        raise ConfigError(f"{where}.connection needs both aws_access_key_id and "
                          "aws_secret_access_key, or neither (to use the machine's own "
                          "AWS credentials)")


def _where(source: str, section: str, key: str, overrides) -> str:
    """Where a value came from: the file's key, or the environment variable
    that overrode it (a bad override is not the file's fault)."""
    if key in overrides:
        return f"{ENV_PREFIX}{section.upper()}_{key.upper()} ({section}.{key})"
    return f"{source}: {section}.{key}"


def _peers(value, where: str) -> tuple[PeerConfig, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be an array of tables ([[primary.secondaries]])")
    peers = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise ConfigError(f"{where}[{index}] must be a table")
        unknown = set(item) - {"name", "url", "access_key", "secret"}
        if unknown:
            raise ConfigError(f"{where}[{index}]: unknown key {_shown(sorted(unknown)[0])}")
        for key in ("name", "access_key", "secret"):
            if not isinstance(item.get(key), str) or not item.get(key):
                raise ConfigError(f"{where}[{index}].{key} is required (a non-empty string)")
        if len(item["secret"]) < MIN_SECRET_LENGTH:
            raise ConfigError(f"{where}[{index}].secret must be at least "
                              f"{MIN_SECRET_LENGTH} characters")
        peers.append(PeerConfig(item["name"], str(item.get("url", "")), item["access_key"],
                                item["secret"]))
    keys = [peer.access_key for peer in peers]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{where}: access keys must be unique")
    return tuple(peers)


def _coerce(value, annotation, where: str, lenient: bool = False):
    """Check a TOML value's type; `lenient` parses text from the environment."""
    kind = str(annotation)
    if kind in ("str", "<class 'str'>"):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string")
        return value
    if kind in ("int", "<class 'int'>"):
        if lenient and isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,18}\s*", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer")
        return value
    if kind in ("float", "<class 'float'>"):
        try:
            if isinstance(value, bool) or (isinstance(value, str) and not lenient):
                raise TypeError
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number") from None
    if kind in ("bool", "<class 'bool'>"):
        if lenient and isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0",
                                                        "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false")
        return value
    if kind == "tuple[int, ...]":
        if lenient and isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be an array of integers")
        try:
            return tuple(_coerce(item, "int", where, lenient) for item in value)
        except ConfigError:
            raise ConfigError(f"{where} must be an array of integers") from None
    if kind == "tuple[str, ...]":
        if lenient and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{where} must be an array of strings")
        return tuple(value)
    raise ConfigError(f"{where}: unsupported setting type {kind}")


def _validate(config, name: str, source: str, overrides=()) -> None:
    def fail(key: str, message: str):
        raise ConfigError(f"{_where(source, name, key, overrides)} {message}")

    if name == "secondary":
        for key in ("files_max_capacity", "verification_max_capacity"):
            if not 1 <= getattr(config, key) <= 10_000:
                fail(key, "must be between 1 and 10000")
        if config.selective_sync_type not in SELECTIVE_SYNC_TYPES:
            fail("selective_sync_type", 'must be "", "namespaces" or "shards"')
        if config.selective_sync_type == "namespaces" and not config.selective_sync_namespace_ids:
            fail("selective_sync_namespace_ids", "must list at least one namespace id")
        if config.selective_sync_type == "shards" and not config.selective_sync_shards:
            fail("selective_sync_shards", "must list at least one shard")
        if not config.primary_url.startswith(("http://", "https://")):
            fail("primary_url", "must be an http:// or https:// URL")
        if not 0 < config.status_interval <= 86_400:
            fail("status_interval", "must be between 0 and 86400 seconds")
        if not 0 < config.request_timeout <= 3600:
            fail("request_timeout", "must be between 0 and 3600 seconds")
        if not 0 <= config.min_free_space_mb <= 1_000_000_000:
            fail("min_free_space_mb", "must be between 0 and 1000000000 (MiB)")
        if not 0 <= config.min_free_space_percent <= 50:
            fail("min_free_space_percent", "must be between 0 and 50")
        for key in ("name", "access_key", "secret", "tracking_database_url", "storage_path"):
            if not getattr(config, key):
                fail(key, "must not be empty")
        if len(config.secret) < MIN_SECRET_LENGTH:
            fail("secret", f"must be at least {MIN_SECRET_LENGTH} characters")
    if name == "primary" and config.object_storage_verification not in \
            OBJECT_STORAGE_VERIFICATIONS:
        fail("object_storage_verification", 'must be "sha256" or "size"')
    if config.minimum_reverification_interval < 1:
        fail("minimum_reverification_interval", "must be at least 1 (days)")
    if config.read_token and config.read_token == config.api_token:
        fail("read_token", "must differ from api_token (it only reads)")
    for entry in config.metrics_allow:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            fail("metrics_allow", f"holds {entry!r}, which is not an IP address or network "
                                  "(such as 10.0.0.0/8)")
    try:
        parse_listen(config.listen)
    except ValueError as exc:
        fail("listen", f"is invalid: {exc}")


def parse_listen(value: str, default_port: int = 0) -> tuple[str, int]:
    """'host:port' (or ':port', or 'host') -> (host, port)."""
    text = str(value).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, str(default_port)
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"listen address {value!r} must be host:port") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} out of range in listen address {value!r}")
    return host, port
