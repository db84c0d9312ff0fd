"""Configuration files and environment overrides."""
import pytest

from backend.config import ConfigError, load_config, parse_config

SECRET = "x" * 32
SECONDARY = {"name": "s", "primary_url": "http://p:1", "access_key": "k", "secret": SECRET,
             "tracking_database_url": "sqlite:///t.db", "storage_path": "/tmp/s"}


def test_defaults_follow_gitlab():
    config = parse_config({"secondary": dict(SECONDARY)})
    secondary = config.secondary
    assert (secondary.files_max_capacity, secondary.verification_max_capacity,
            secondary.minimum_reverification_interval, secondary.sync_object_storage,
            secondary.selective_sync_type, secondary.request_timeout) == \
        (10, 100, 7, False, "", 60.0)
    assert config.flag("geo_cool_widget_replication") is True  # released: on by default


def test_one_file_holds_both_sites(tmp_path):
    path = tmp_path / "geo.toml"
    path.write_text(f"""
[primary]
database_url = "sqlite:///p.db"
storage_path = "/srv/p"
listen = "0.0.0.0:8090"
[[primary.secondaries]]
name = "eu"
url = "http://eu:8091"
access_key = "eu-key"
secret = "{SECRET}"
[secondary]
name = "eu"
primary_url = "http://p:8090"
access_key = "eu-key"
secret = "{SECRET}"
tracking_database_url = "postgresql://postgres@127.0.0.1/geo"
storage_path = "/srv/s"
selective_sync_type = "namespaces"
selective_sync_namespace_ids = [1, 2]
[feature_flags]
geo_cool_widget_replication = false
""")
    config = load_config(path)
    assert config.primary.secondaries[0].name == "eu"
    assert config.secondary.scope.namespace_ids == (1, 2)
    assert config.flag("geo_cool_widget_replication") is False


def test_environment_overrides_single_values():
    config = parse_config({"secondary": dict(SECONDARY)}, environ={
        "GEO_CONSOLE_SECONDARY_FILES_MAX_CAPACITY": "25",
        "GEO_CONSOLE_SECONDARY_SELECTIVE_SYNC_TYPE": "shards",
        "GEO_CONSOLE_SECONDARY_SELECTIVE_SYNC_SHARDS": "ssd, nvme",
        "GEO_CONSOLE_FEATURE_FLAGS_GEO_COOL_WIDGET_REPLICATION": "off"})
    assert config.secondary.files_max_capacity == 25
    assert config.secondary.selective_sync_shards == ("ssd", "nvme")
    assert config.flag("geo_cool_widget_replication") is False


@pytest.mark.parametrize("variable,value,message", [
    ("GEO_CONSOLE_SECONDARY_FILES_MAX_CAPACITY", "many",
     "GEO_CONSOLE_SECONDARY_FILES_MAX_CAPACITY (secondary.files_max_capacity) must be an "
     "integer"),
    ("GEO_CONSOLE_SECONDARY_FILES_MAX_CAPACITY", "0",
     "GEO_CONSOLE_SECONDARY_FILES_MAX_CAPACITY (secondary.files_max_capacity) must be between "
     "1 and 10000"),
    ("GEO_CONSOLE_SECONDARY_PRIMARY_URL", "ftp://p",
     "GEO_CONSOLE_SECONDARY_PRIMARY_URL (secondary.primary_url) must be an http:// or https:// URL"),
    ("GEO_CONSOLE_SECONDARY_COLOUR", "blue",
     "GEO_CONSOLE_SECONDARY_COLOUR: there is no setting secondary.colour to override"),
    ("GEO_CONSOLE_FEATURE_FLAGS_GEO_PACKAGE_FILE_REPLICATION", "perhaps",
     "GEO_CONSOLE_FEATURE_FLAGS_GEO_PACKAGE_FILE_REPLICATION "
     "(feature_flags.geo_package_file_replication) must be true or false"),
])
def test_a_bad_override_names_its_variable_not_the_file(tmp_path, variable, value, message):
    path = tmp_path / "geo.toml"
    path.write_text("[secondary]\n" + "".join(f'{k} = "{v}"\n' for k, v in SECONDARY.items()))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={variable: value})
    assert str(caught.value) == message


def test_secrets_stay_out_of_repr():
    config = parse_config({"secondary": dict(SECONDARY, api_token="tok-123")})
    assert SECRET not in repr(config) and "tok-123" not in repr(config)


@pytest.mark.parametrize("change,message", [
    ({"selective_sync_type": "groups"}, "selective_sync_type must be"),
    ({"selective_sync_type": "namespaces"}, "selective_sync_namespace_ids must list"),
    ({"selective_sync_namespace_ids": ["a"]}, "must be an array of integers"),
    ({"primary_url": "ftp://p"}, "primary_url must be an http"),
    ({"minimum_reverification_interval": 0}, "at least 1"),
    ({"listen": "host:port"}, "listen is invalid"),
    ({"sync_object_storage": "yes"}, "must be true or false"),
    ({"unknown": 1}, "unknown key secondary.unknown"),
    ({"request_timeout": 0}, "request_timeout must be between 0 and 3600"),
    ({"request_timeout": float("nan")}, "request_timeout must be between"),
    ({"status_interval": float("inf")}, "status_interval must be between"),
])
def test_invalid_settings_name_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"secondary": dict(SECONDARY, **change)}, "geo.toml")


def test_missing_required_key():
    data = dict(SECONDARY)
    del data["tracking_database_url"]
    with pytest.raises(ConfigError, match="secondary.tracking_database_url is required"):
        parse_config({"secondary": data})


def test_duplicate_access_keys_are_refused():
    peer = {"name": "a", "access_key": "k", "secret": SECRET}
    with pytest.raises(ConfigError, match="access keys must be unique"):
        parse_config({"primary": {"database_url": "sqlite:///p", "storage_path": "/p",
                                  "secondaries": [peer, dict(peer, name="b")]}})


# --- object storage: GitLab's consolidated form ----------------------------------------------

STORE_TOML = """
[secondary.object_store]
enabled = true
bucket = "geo-replicas"
[secondary.object_store.connection]
provider = "AWS"
region = "eu-central-1"
endpoint = "http://127.0.0.1:9000"
path_style = true
aws_access_key_id = "AKIAEXAMPLE"
aws_secret_access_key = "a-secret-access-key-never-shown"
"""


def secondary_toml(tmp_path, extra: str):
    path = tmp_path / "geo.toml"
    lines = [f"{key} = {value!r}".replace("'", '"') for key, value in SECONDARY.items()]
    path.write_text("[secondary]\n" + "\n".join(lines) + "\n" + extra)
    return path


def test_object_store_in_gitlabs_consolidated_form(tmp_path):
    store = load_config(secondary_toml(tmp_path, STORE_TOML), environ={}).secondary.object_store
    assert (store.enabled, store.bucket, store.proxy_download, store.multipart_threshold_mb) == \
        (True, "geo-replicas", False, 64)
    connection = store.connection
    assert (connection.provider, connection.region, connection.endpoint, connection.path_style,
            connection.aws_access_key_id) == ("AWS", "eu-central-1", "http://127.0.0.1:9000",
                                              True, "AKIAEXAMPLE")
    assert "a-secret-access-key-never-shown" not in repr(load_config(
        secondary_toml(tmp_path, STORE_TOML), environ={}))


def test_object_store_keys_are_overridden_from_the_environment(tmp_path):
    environ = {"GEO_CONSOLE_SECONDARY_OBJECT_STORE_BUCKET": "other-bucket",
               "GEO_CONSOLE_SECONDARY_OBJECT_STORE_CONNECTION_PATH_STYLE": "false",
               "GEO_CONSOLE_SECONDARY_OBJECT_STORE_CONNECTION_AWS_SECRET_ACCESS_KEY": "rotated"}
    store = load_config(secondary_toml(tmp_path, STORE_TOML), environ=environ) \
        .secondary.object_store
    assert store.bucket == "other-bucket" and store.connection.path_style is False
    assert store.connection.aws_secret_access_key == "rotated"


@pytest.mark.parametrize("change, message", [
    (('bucket = "geo-replicas"', 'bucket = "Geo_Replicas"'),
     "secondary.object_store.bucket must name an S3 bucket"),
    (('provider = "AWS"', 'provider = "Google"'),
     'secondary.object_store.connection.provider must be "AWS"'),
    (('endpoint = "http://127.0.0.1:9000"', 'endpoint = "minio:9000"'),
     "secondary.object_store.connection.endpoint must be an http:// or https:// URL"),
    (('aws_secret_access_key = "a-secret-access-key-never-shown"', ''),
     "secondary.object_store.connection needs both aws_access_key_id and "
     "aws_secret_access_key, or neither"),
    (('enabled = true', 'enabled = "yes"'), "secondary.object_store.enabled must be true or false"),
    (('enabled = true', 'enabled = true\nmultipart_threshold_mb = 2'),
     "secondary.object_store.multipart_threshold_mb must be between 5 and 5120"),
    (('region = "eu-central-1"', 'region = "eu-central-1"\nsignature = "v2"'),
     "secondary.object_store: unknown key connection.signature"),
])
def test_a_bad_object_store_is_one_line_naming_its_key(tmp_path, change, message):
    old, new = change
    with pytest.raises(ConfigError) as caught:
        load_config(secondary_toml(tmp_path, STORE_TOML.replace(old, new)), environ={})
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert "a-secret-access-key-never-shown" not in text


def test_a_disabled_object_store_is_not_checked(tmp_path):
    disabled = STORE_TOML.replace("enabled = true", "enabled = false").replace(
        'bucket = "geo-replicas"', 'bucket = "not checked while off"')
    assert not load_config(secondary_toml(tmp_path, disabled), environ={}) \
        .secondary.object_store.enabled
