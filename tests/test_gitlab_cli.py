"""The command line on sites this machine does not run: `--site URL` (a
GitLab Geo secondary, both schema generations, through the GitLab stand-in)
and `--gitlab-db URL` (a GitLab tracking database on PostgreSQL). The
commands print what they print for a configuration's own site and change
exactly the registries named."""
from __future__ import annotations

import csv
import json

import pytest
from sqlalchemy import create_engine

from app import launcher
from tests.conftest import DatabaseFactory, require_database
from tests.support import gitlab_tracking_schema
from tests.support.gitlab_site import GitLabSite

API, READ = "glpat-admin-api", "glpat-admin-read"


def run(*argv, capsys) -> tuple[int, str, str]:
    code = launcher.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GEO_CONSOLE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GEO_CONSOLE_GITLAB_TOKEN", API)
    monkeypatch.delenv("GEO_CONSOLE_CONFIG", raising=False)


@pytest.fixture(params=("16.3", "19.2"))
def gitlab(request):
    site = GitLabSite(generation=request.param, name="geo-eu", site_id=2,
                      tokens={API: ["api"], READ: ["read_api"]})
    site.add_registries("Upload", 20)
    site.add_registries("Upload", 3, state="FAILED", verificationState="PENDING",
                        lastSyncFailure="Error downloading file")
    with site:
        yield site


def test_status_check_and_registries_of_a_gitlab_site(gitlab, capsys):
    code, out, _ = run("status", "--site", gitlab.url, capsys=capsys)
    assert code == 0
    assert "Name: geo-eu" in out and "Health Status: Healthy" in out
    assert f"GitLab Version: {gitlab.version}" in out
    assert "Uploads replicated: failed 3 / succeeded 20 / total 23 (86%)" in out
    code, out, _ = run("check", "--site", gitlab.url, capsys=capsys)
    assert code == 1 and "ERROR - Uploads: 3 registries are not synced and verified." in out
    assert out.rstrip().endswith("FAILURE")
    code, out, _ = run("registries", "--site", gitlab.url, "--type", "upload",
                       "--replication-state", "failed", "--json", capsys=capsys)
    listed = json.loads(out)
    assert code == 0 and [r["registry_id"] for r in listed] == [21, 22, 23]
    assert {r["last_sync_failure"] for r in listed} == {"Error downloading file"}


def test_resync_by_id_and_of_every_failed_registry_of_a_gitlab_site(gitlab, capsys):
    code, out, _ = run("resync", "--site", gitlab.url, "--type", "upload", "3", "7",
                       capsys=capsys)
    assert (code, out) == (0, "Scheduled 2 uploads for resync.\n")
    pending = [r["id"] for r in gitlab.registries("Upload") if r["state"] == "PENDING"]
    assert pending == [3, 7]
    code, out, _ = run("resync", "--site", gitlab.url, "--type", "upload", "--all",
                       "--replication-state", "failed", capsys=capsys)
    assert (code, out) == (0, "Scheduled 3 uploads for resync.\n")
    pending = [r["id"] for r in gitlab.registries("Upload") if r["state"] == "PENDING"]
    assert pending == [3, 7, 21, 22, 23]


def test_a_read_api_token_is_refused_actions_in_one_line(gitlab, capsys, monkeypatch):
    monkeypatch.setenv("GEO_CONSOLE_GITLAB_TOKEN", READ)
    code, out, err = run("reverify", "--site", gitlab.url, "--type", "upload", "1",
                         capsys=capsys)
    assert code == 1 and out == ""
    assert err.startswith("geo-console: error: The access token only reads")
    assert len(err.splitlines()) == 1
    assert all(r["verificationState"] == "SUCCEEDED" for r in gitlab.registries("Upload")
               if r["state"] == "SYNCED")


def test_arguments_that_cannot_go_together_change_nothing(capsys):
    code, _, err = run("demo", "--site", "http://127.0.0.1:9", capsys=capsys)
    assert code == 1 and "--site and --gitlab-db go with status" in err
    code, _, err = run("status", "--site", "http://127.0.0.1:9", "--gitlab-db",
                       "postgresql://x@y/z", capsys=capsys)
    assert code == 1 and "give --site or --gitlab-db, not both" in err
    code, _, err = run("report", "--site", "http://127.0.0.1:9", "--format", "pdf",
                       "--output", "x.pdf", "--replication-state", "failed", capsys=capsys)
    assert code == 1 and "are for CSV and JSON reports" in err
    code, _, err = run("report", "--site", "http://127.0.0.1:9", "--format", "csv",
                       "--output", "x.csv", capsys=capsys)
    assert code == 1 and "takes one type: give --type" in err
    code, _, err = run("status", "--site", "http://127.0.0.1:9", capsys=capsys)
    assert code == 1 and err.startswith("geo-console: error: cannot reach http://127.0.0.1:9")


@pytest.fixture
def gitlab_db(tmp_path):
    require_database("postgresql")
    factory = DatabaseFactory("postgresql", tmp_path)
    url = factory.url("gitlab_geo_cli")
    engine = create_engine(url)
    with engine.begin() as connection:
        gitlab_tracking_schema.create(connection)
        connection.exec_driver_sql(
            "INSERT INTO package_file_registry (package_file_id, state, created_at, "
            "verification_state, last_sync_failure) SELECT n, CASE WHEN n > 2400 THEN 3 "
            "ELSE 2 END, now(), CASE WHEN n > 2400 THEN 0 ELSE 2 END, CASE WHEN n > 2400 "
            "THEN 'Error downloading file' END FROM generate_series(1, 2500) AS n")
    yield url, engine
    engine.dispose()
    factory.cleanup()


def test_the_commands_on_a_gitlab_tracking_database(gitlab_db, capsys, tmp_path):
    url, engine = gitlab_db
    code, out, _ = run("status", "--gitlab-db", url, capsys=capsys)
    assert code == 0 and "Package Files" in out
    assert "Not read: container_repository_registry: its state is text" in out
    report = tmp_path / "failed.csv"
    code, out, _ = run("report", "--gitlab-db", url, "--type", "package_file", "--format",
                       "csv", "--output", str(report), "--replication-state", "failed",
                       capsys=capsys)
    assert (code, out) == (0, f"Wrote 100 registries to {report}\n")
    with open(report, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["registry_id"]) for r in rows] == list(range(2401, 2501))
    code, out, err = run("resync", "--gitlab-db", url, "--type", "package_file", "--all",
                         capsys=capsys)
    assert (code, out) == (0, "Scheduled 2,500 package files for resync.\n")
    with engine.connect() as connection:
        states = connection.exec_driver_sql(
            "SELECT state, count(*) FROM package_file_registry GROUP BY state").fetchall()
    assert states == [(0, 2500)]


def test_another_secondary_through_the_sites_proxy(capsys):
    with GitLabSite(generation="19.2", name="geo-eu", site_id=2, tokens={API: ["api"]}) as here, \
            GitLabSite(generation="19.2", name="geo-us", site_id=3, tokens={API: ["api"]}) as there:
        here.add_peer(there)
        there.add_registries("LfsObject", 4, state="FAILED", lastSyncFailure="Timed out")
        code, out, _ = run("registries", "--site", here.url, "--through", "3", "--type",
                           "lfs_object", "--json", capsys=capsys)
        assert code == 0 and [r["registry_id"] for r in json.loads(out)] == [1, 2, 3, 4]
        code, _, err = run("status", "--gitlab-db", "postgresql://x@y/z", "--through", "3",
                           capsys=capsys)
        assert code == 1 and "--through goes with --site" in err


def test_a_pdf_status_report_of_a_gitlab_site(gitlab, capsys, tmp_path):
    output = tmp_path / "geo-eu.pdf"
    code, out, _ = run("report", "--site", gitlab.url, "--format", "pdf", "--output",
                       str(output), "--range", "hour", capsys=capsys)
    assert (code, out) == (0, f"Wrote the status report to {output}\n")
    assert output.read_bytes().startswith(b"%PDF") and output.stat().st_size > 10_000
