"""What "Test connection" finds: settings tried for real, blocking (the
dialog runs it off the GUI thread), and said in one line. A local
secondary's tracking database, primary and own bucket; the demo's buckets;
a remote secondary and its token; a GitLab tracking database."""
from __future__ import annotations


def try_connection(settings: dict) -> tuple[bool, str]:
    """(worked, what was found), trying valid settings for real: blocking."""
    if settings["mode"] == "remote":
        return _try_remote(settings["remote"])
    if settings["mode"] == "gitlab_db":
        return _try_gitlab_db(settings["gitlab_db"])
    if settings["mode"] == "demo":
        from app.object_store_settings import demo_object_stores
        found = _try_buckets(demo_object_stores(settings))
        return (True, found[1] + ".") if found[0] else found
    return _try_local(settings["secondary"])


BUCKET_TIMEOUT = 10.0  # seconds a bucket may take to answer a test


def _try_buckets(stores) -> tuple[bool, str]:
    """(worked, what was found) of the enabled stores among `stores`."""
    from backend.object_store.bucket import Bucket
    from backend.object_store.errors import ObjectStoreError
    described = []
    for store in stores:
        if not store.enabled:
            continue
        bucket = Bucket(store, timeout=BUCKET_TIMEOUT)
        try:
            bucket.check()
        except ObjectStoreError as exc:
            return False, str(exc)
        described.append(f"the {bucket.described}")
    verb = "answers and takes" if len(described) == 1 else "answer and take"
    return True, f"{' and '.join(described)} {verb} these credentials"


def _try_remote(remote: dict) -> tuple[bool, str]:
    from app.site_client import SiteClient, SiteClientError
    client = SiteClient(remote["url"], remote.get("api_token") or None, timeout=10)
    if remote.get("through"):
        client = client.through(int(remote["through"]))
    try:
        node = client.node()
        types = client.types()
        if client.check_token(types[0]) == "read":
            token = "this token only reads: resync and reverify are refused"
        elif not remote.get("api_token"):
            token = "it takes resync and reverify from this machine without a token"
        else:
            token = "its API token may resync and reverify"
        return True, f"{node['name']} answers; {token}."
    except SiteClientError as exc:
        return False, str(exc)
    finally:
        client.close()


def _try_gitlab_db(database: dict) -> tuple[bool, str]:
    from app.gitlab_db_source import GitLabDatabaseError, GitLabDatabaseSource
    from app.settings import gitlab_database_url
    try:
        source = GitLabDatabaseSource(gitlab_database_url(database))
    except GitLabDatabaseError as exc:
        return False, str(exc)
    try:
        found = ", ".join(kind.title_plural for kind in source.types)
        left = f"; left out: {len(source.left_out)} (see the Overview)" if source.left_out \
            else ""
        return True, f"{len(source.types)} registry tables: {found}{left}."
    finally:
        source.close()


def _try_local(secondary: dict) -> tuple[bool, str]:
    from backend.commands import describe_error
    from backend.config import parse_config
    from backend.db.engine import create_db_engine
    from backend.secondary.geo_client import GeoClient
    config = parse_config({"secondary": secondary}, "Settings").secondary
    engine = create_db_engine(config.tracking_database_url)
    try:
        with engine.connect():
            pass
    except Exception as exc:
        return False, f"the tracking database: {describe_error(exc)}"
    finally:
        engine.dispose()
    client = GeoClient(config.primary_url, config.access_key, config.secret)
    try:
        client.events(after=0, limit=1)
    except Exception as exc:
        return False, describe_error(exc)
    finally:
        client.close()
    said = "the tracking database and the primary answer; the primary accepts the access " \
           "key and secret"
    if not config.object_store.enabled:
        return True, said + "."
    good, found = _try_buckets([config.object_store])
    return (True, f"{said}; {found}.") if good else (False, found)
