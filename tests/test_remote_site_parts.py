"""The parts of watching a remote site that need no site: GitLab's type
names, the history the console records for sites that keep none, and where
an access token is kept (never in the settings file)."""
from __future__ import annotations

import datetime as dt

import keyring
import pytest
from tests.support.memory_keyring import MemoryKeyring

from app import token_store
from app.history_store import RECORD_EVERY, HistoryStore
from app.settings import load_settings, save_settings
from app.site_schema import type_of_field

T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("field, node_type, model_id, names", [
    ("lfsObjectRegistries", "LfsObjectRegistry", "lfsObjectId",
     ("lfs_object", "lfs_objects", "LFS Object", "LFS Objects", "lfs_object_id")),
    ("containerRepositoryRegistries", "ContainerRepositoryRegistry", "modelRecordId",
     ("container_repository", "container_repositories", "Container Repository",
      "Container Repositories", "container_repository_id")),
    ("uploadRegistries", "UploadRegistry", "fileId",
     ("upload", "uploads", "Upload", "Uploads", "file_id")),
    ("ciSecureFileRegistries", "CiSecureFileRegistry", "modelRecordId",
     ("ci_secure_file", "ci_secure_files", "CI Secure File", "CI Secure Files",
      "ci_secure_file_id")),
    ("packagesNugetSymbolRegistries", "PackagesNugetSymbolRegistry", "modelRecordId",
     ("packages_nuget_symbol", "packages_nuget_symbols", "Packages NuGet Symbol",
      "Packages NuGet Symbols", "packages_nuget_symbol_id")),
    ("packagesHelmMetadataCacheRegistries", "PackagesHelmMetadataCacheRegistry",
     "modelRecordId", ("packages_helm_metadata_cache", "packages_helm_metadata_caches",
                       "Packages Helm Metadata Cache", "Packages Helm Metadata Caches",
                       "packages_helm_metadata_cache_id")),
])
def test_gitlab_types_get_gitlab_names(field, node_type, model_id, names):
    kind = type_of_field(field, node_type, model_id)
    assert (kind.replicable_name, kind.plural_name, kind.title, kind.title_plural,
            kind.registry_fk) == names
    assert kind.graphql_name == node_type.removesuffix("Registry")


def test_a_type_this_console_declares_keeps_its_own_names():
    kind = type_of_field("packageFileRegistries", "PackageFileRegistry", "packageFileId")
    assert (kind.plural_name, kind.title_plural) == ("package_files", "Package Files")


class _Kind:
    def __init__(self, name, plural):
        self.replicable_name, self.plural_name = name, plural


def status(synced, failed, verified, total=10):
    return {"uploads_registry_count": total, "uploads_synced_count": synced,
            "uploads_failed_count": failed, "uploads_verification_total_count": total,
            "uploads_verified_count": verified, "uploads_verification_failed_count": 0,
            "lfs_objects_registry_count": None}  # not counted by the site: not recorded


def test_the_history_of_a_site_that_keeps_none_is_recorded_and_survives_a_restart(tmp_path):
    path = tmp_path / "history.db"
    uploads, lfs = _Kind("upload", "uploads"), _Kind("lfs_object", "lfs_objects")
    store = HistoryStore("https://gitlab.example", path)
    assert store.record(status(2, 1, 0), [uploads, lfs], now=T0)
    # Polls every 2 s: recorded at most once every RECORD_EVERY seconds.
    assert not store.record(status(3, 1, 0), [uploads, lfs], now=T0 + dt.timedelta(seconds=2))
    assert store.record(status(5, 2, 4), [uploads, lfs],
                        now=T0 + dt.timedelta(seconds=RECORD_EVERY * 2))
    store.close()

    again = HistoryStore("https://gitlab.example", path)  # the console restarted
    at = T0 + dt.timedelta(seconds=RECORD_EVERY * 4)
    assert again.record(status(9, 0, 9), [uploads, lfs], now=at)
    points = again.read("upload", T0 - dt.timedelta(minutes=1), at + dt.timedelta(minutes=1),
                        buckets=1000)
    again.close()
    assert [p["synced_count"] for p in points] == [2, 5, 9]
    assert [p["synced_percentage"] for p in points] == [20.0, 50.0, 90.0]
    assert [p["verified_percentage"] for p in points] == [0.0, 40.0, 90.0]
    # Work is the growth of the counts since the record before (one minute
    # each here), measured across the restart too; a count that falls is none.
    assert [p["syncs_succeeded_per_minute"] for p in points][1:] == [3.0, 4.0]
    assert [p["syncs_failed_per_minute"] for p in points][1:] == [1.0, 0.0]
    assert again.read("lfs_object", T0, at, buckets=10) == []


@pytest.fixture
def fresh_store(monkeypatch, tmp_path):
    monkeypatch.setenv("GEO_CONSOLE_HOME", str(tmp_path))
    monkeypatch.delenv(token_store.ENVIRONMENT, raising=False)
    monkeypatch.setattr(token_store, "_session", {})
    previous = keyring.get_keyring()
    yield tmp_path
    keyring.set_keyring(previous)


def remote_settings(token):
    return {"mode": "remote", "remote": {"url": "https://gitlab.example/", "api_token": token}}


def test_with_a_keyring_the_token_is_kept_there_and_never_in_the_settings_file(fresh_store):
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    save_settings(remote_settings("glpat-secret"))
    assert "glpat-secret" not in (fresh_store / "console.toml").read_text()
    assert memory.passwords == {(token_store.SERVICE, "https://gitlab.example"):
                                "glpat-secret"}
    token_store._session.clear()  # a new run of the console
    assert load_settings()["remote"]["api_token"] == "glpat-secret"


def test_without_a_keyring_the_token_lasts_the_run_or_comes_from_the_environment(
        fresh_store, monkeypatch):
    from keyring.backends import fail
    keyring.set_keyring(fail.Keyring())
    assert not token_store.keyring_available()
    save_settings(remote_settings("glpat-secret"))
    assert "glpat-secret" not in (fresh_store / "console.toml").read_text()
    assert load_settings()["remote"]["api_token"] == "glpat-secret"  # this run
    token_store._session.clear()  # the next run: asked for again
    assert load_settings()["remote"]["api_token"] == ""
    monkeypatch.setenv(token_store.ENVIRONMENT, "glpat-from-env")
    assert load_settings()["remote"]["api_token"] == "glpat-from-env"


def test_a_token_an_older_version_wrote_is_moved_out_of_the_file(fresh_store):
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    (fresh_store / "console.toml").write_text(
        'mode = "remote"\n\n[remote]\nurl = "https://gitlab.example"\n'
        'api_token = "glpat-old"\n')
    assert load_settings()["remote"]["api_token"] == "glpat-old"
    assert "glpat-old" not in (fresh_store / "console.toml").read_text()
    assert memory.passwords[(token_store.SERVICE, "https://gitlab.example")] == "glpat-old"


def test_a_tracking_databases_password_is_kept_as_a_token_is(fresh_store):
    from app.settings import gitlab_database_url, validate
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    url = "postgresql://gitlab_geo@geo-db.example:5432/gitlabhq_geo_production"
    settings = {"mode": "gitlab_db", "gitlab_db": {"url": url, "password": "s3cret"}}
    assert validate(settings) is None
    save_settings(settings)
    assert "s3cret" not in (fresh_store / "console.toml").read_text()
    token_store._session.clear()
    loaded = load_settings()["gitlab_db"]
    assert loaded["password"] == "s3cret"
    assert gitlab_database_url(loaded) == \
        "postgresql://gitlab_geo:s3cret@geo-db.example:5432/gitlabhq_geo_production"
    in_url = validate({"mode": "gitlab_db", "gitlab_db": {
        "url": "postgresql://gitlab_geo:s3cret@geo-db.example/gitlabhq_geo_production"}})
    assert in_url.field == "gitlab_db_url" and "its own field" in in_url.message
    not_postgres = validate({"mode": "gitlab_db", "gitlab_db": {"url": "sqlite:///x.db"}})
    assert not_postgres.field == "gitlab_db_url" and "PostgreSQL" in not_postgres.message


def test_another_site_is_a_whole_number_or_nothing():
    from app.settings import validate
    base = {"mode": "remote", "remote": {"url": "https://gitlab.example"}}
    assert validate(base) is None
    assert validate({**base, "remote": {**base["remote"], "through": 3}}) is None
    problem = validate({**base, "remote": {**base["remote"], "through": "three"}})
    assert problem.field == "remote_through" and "whole number" in problem.message


def test_a_token_that_is_nowhere_is_asked_for_at_start_and_kept_for_the_run(fresh_store):
    from keyring.backends import fail

    from app.main import ask_for_missing_token
    keyring.set_keyring(fail.Keyring())
    save_settings({"mode": "remote", "remote": {"url": "https://gitlab.example"}})
    asked = []
    assert ask_for_missing_token(lambda url: asked.append(url) or "glpat-typed")
    assert asked == ["https://gitlab.example"]
    assert load_settings()["remote"]["api_token"] == "glpat-typed"
    assert "glpat-typed" not in (fresh_store / "console.toml").read_text()
    # Known now (or from the environment): not asked again; cancelled: nothing kept.
    assert not ask_for_missing_token(lambda url: asked.append(url) or "other")
    token_store._session.clear()
    assert not ask_for_missing_token(lambda url: None)
    assert load_settings()["remote"]["api_token"] == ""
