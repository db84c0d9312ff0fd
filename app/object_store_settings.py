"""The object stores in the console's settings: the secondary's own bucket
(`[secondary.object_store]`, the configuration's form) and the demo's
optional buckets (`[demo.object_store]`: the primary's, the secondary's,
and one connection for both).

A connection's secret access key is never written to the settings file:
it is kept by `token_store` (the system keyring, or this run only) under
a key naming the endpoint, the bucket and the access key id, and put back
when the settings are loaded. The demo's buckets are checked by the
configuration's own rules, so they are told the way a configuration file's
would be (`settings._in_words`).
"""
from __future__ import annotations

from app import token_store
from backend.config import ConfigError, ObjectStoreConfig, parse_config

SECRET = "aws_secret_access_key"
KEY_ID = "aws_access_key_id"
CONNECTION = "connection"
DEFAULT_REGION = "us-east-1"
# The demo's settings under `[demo.object_store]` besides its connection.
DEMO_BUCKETS = ("primary_bucket", "secondary_bucket")


def secret_key(connection: dict, bucket: str) -> str:
    """Where a connection's secret is kept: by the service, bucket and key id."""
    where = connection.get("endpoint") or "AWS S3"
    return f"object store {where} {bucket} {connection.get(KEY_ID, '')}"


def stores_in(settings: dict) -> list[tuple[dict, str]]:
    """(the object store's table, its bucket) of each store the settings hold."""
    found = []
    secondary = (settings.get("secondary") or {}).get("object_store")
    if isinstance(secondary, dict):
        found.append((secondary, secondary.get("bucket", "")))
    demo = (settings.get("demo") or {}).get("object_store")
    if isinstance(demo, dict):
        found.append((demo, demo.get("primary_bucket", "")))
    return [(store, bucket) for store, bucket in found
            if isinstance(store.get(CONNECTION), dict)]


def put_secrets_back(settings: dict) -> bool:
    """On load: each connection's secret from the store. A secret found in
    the file (written by hand) is moved into the store; True if the file
    should then be saved again without it."""
    moved = False
    for store, bucket in stores_in(settings):
        connection = store[CONNECTION]
        if connection.get(SECRET) and connection.get(KEY_ID):
            moved = True
            token_store.store_token(secret_key(connection, bucket), connection[SECRET])
        elif connection.get(KEY_ID):
            # Never the environment's GitLab token: that is another secret.
            connection[SECRET] = token_store.load_token(secret_key(connection, bucket),
                                                        from_environment=False) or ""
    return moved


def take_secrets_out(settings: dict) -> dict:
    """On save: the settings without the secrets, which go to the store."""
    kept = {**settings}
    for section in ("secondary", "demo"):
        if isinstance(kept.get(section), dict) and \
                isinstance(kept[section].get("object_store"), dict):
            store = dict(kept[section]["object_store"])
            store[CONNECTION] = dict(store.get(CONNECTION) or {})
            kept[section] = {**kept[section], "object_store": store}
    for store, bucket in stores_in(kept):
        secret = store[CONNECTION].pop(SECRET, None)
        if secret is not None and store[CONNECTION].get(KEY_ID):
            token_store.store_token(secret_key(store[CONNECTION], bucket), secret)
    return kept


# --- the demo's buckets ---------------------------------------------------------------

def demo_store(settings: dict) -> dict:
    """`[demo.object_store]` of the settings, or an empty one."""
    store = (settings.get("demo") or {}).get("object_store")
    return store if isinstance(store, dict) else {}


def demo_object_stores(settings: dict, source: str = "Settings"
                       ) -> tuple[ObjectStoreConfig, ObjectStoreConfig]:
    """The demo's primary and secondary object stores (not enabled where no
    bucket is given; the secondary's only with the primary's). ConfigError
    `<source>: demo.object_store.<key> ...` when one breaks the
    configuration's rules."""
    store = demo_store(settings)
    primary_bucket = str(store.get("primary_bucket", "")).strip()
    secondary_bucket = str(store.get("secondary_bucket", "")).strip()
    if secondary_bucket and not primary_bucket:
        raise ConfigError(f"{source}: demo.object_store.primary_bucket must be given for the "
                          "demo's secondary to have a bucket: the blobs in object storage "
                          "are the primary's")
    connection = store.get(CONNECTION) or {}
    return (_checked(primary_bucket, connection, "primary_bucket", source),
            _checked(secondary_bucket, connection, "secondary_bucket", source))


def _checked(bucket: str, connection, field: str, source: str) -> ObjectStoreConfig:
    if not bucket:
        return ObjectStoreConfig()
    # The rules of a configuration file's object store, through the one
    # public way to them: a [primary] table that holds nothing else.
    data = {"primary": {"database_url": "sqlite://", "storage_path": "demo", "object_store": {
        "enabled": True, "bucket": bucket, CONNECTION: connection}}}
    try:
        return parse_config(data, source).primary.object_store
    except ConfigError as exc:
        said = str(exc).removeprefix(f"{source}: primary.object_store")
        if said.startswith(".bucket "):
            said = f".{field} " + said.removeprefix(".bucket ")
        raise ConfigError(f"{source}: demo.object_store{said}") from None
