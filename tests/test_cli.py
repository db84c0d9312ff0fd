"""The command line, as a user drives it: one line on bad input, nothing changed."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from backend.cli import main
from backend.config import load_config
from backend.replicables import replicator_for
from backend.secondary.registry_selection import RegistrySelection
from tests.support.registries import Registries
from tests.support.sites import wait_until

CoolWidgets = replicator_for("cool_widget")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = "cli-secret-0123456789abcdef-0123456789"


def write_config(path, primary_db, tracking_db, tmp_path, port=0, primary_port=0, extra=""):
    path.write_text(f"""
[primary]
database_url = "{primary_db}"
storage_path = "{tmp_path / 'primary-blobs'}"
listen = "127.0.0.1:{port}"

[[primary.secondaries]]
name = "cli-secondary"
access_key = "cli-key"
secret = "{SECRET}"

[secondary]
name = "cli-secondary"
primary_url = "http://127.0.0.1:{primary_port or 9}"
access_key = "cli-key"
secret = "{SECRET}"
tracking_database_url = "{tracking_db}"
storage_path = "{tmp_path / 'secondary-blobs'}"
status_interval = 1
{extra}
[feature_flags]
geo_cool_widget_replication = true
""")
    return str(path)


@pytest.fixture
def config(databases, tmp_path):
    path = write_config(tmp_path / "geo.toml", databases.url("primary"),
                        databases.url("tracking"), tmp_path)
    assert main(["db", "upgrade", "--config", path]) == 0
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, fragment):
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("geo-console: error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in err


def test_db_upgrade_reports_both_databases(databases, tmp_path, capsys):
    path = write_config(tmp_path / "g.toml", databases.url("p"), databases.url("t"), tmp_path)
    code, out, _ = run(capsys, "db", "upgrade", "--config", path)
    assert code == 0
    assert "primary database at revision" in out and "tracking database at revision" in out


def test_project_add_prints_the_id_and_builds_the_tree(config, capsys):
    code, out, _ = run(capsys, "primary", "project", "add", "api", "--namespace", "acme/sub",
                       "--shard", "ssd", "--config", config)
    assert code == 0 and out.strip().isdigit()


def test_add_prints_one_id_per_file_and_list_shows_them(config, tmp_path, capsys):
    files = []
    for index in range(3):
        files.append(tmp_path / f"f{index}.bin")
        files[-1].write_bytes(os.urandom(100 + index))
    code, out, _ = run(capsys, "primary", "add", *map(str, files), "--config", config)
    ids = out.split()
    assert code == 0 and len(ids) == 3 and all(i.isdigit() for i in ids)
    code, out, _ = run(capsys, "primary", "list", "--config", config)
    assert code == 0 and all(f"f{i}.bin" in out for i in range(3))


def test_add_with_a_missing_file_adds_nothing(config, tmp_path, capsys):
    good = tmp_path / "good.bin"
    good.write_bytes(b"x")
    code, _, err = run(capsys, "primary", "add", str(good), str(tmp_path / "nope"),
                       "--config", config)
    assert_one_line_error(code, err, "not a readable file")
    code, out, _ = run(capsys, "primary", "list", "--config", config)
    assert code == 0 and "good.bin" not in out
    assert out.splitlines()[0] == "Cool Widgets" and "Package Files" in out


def test_add_to_unknown_project_is_refused(config, tmp_path, capsys):
    good = tmp_path / "good.bin"
    good.write_bytes(b"x")
    code, _, err = run(capsys, "primary", "add", str(good), "--project-id", "77",
                       "--config", config)
    assert_one_line_error(code, err, "project 77 does not exist")


def test_delete_of_unknown_id_changes_nothing(config, tmp_path, capsys):
    good = tmp_path / "good.bin"
    good.write_bytes(b"x")
    run(capsys, "primary", "add", str(good), "--config", config)
    code, _, err = run(capsys, "primary", "delete", "1", "5", "--type", "cool_widget",
                       "--config", config)
    assert_one_line_error(code, err, "5")
    _, out, _ = run(capsys, "primary", "list", "--config", config)
    assert "good.bin" in out


def test_files_of_each_type_are_added_listed_and_deleted_by_type(config, tmp_path, capsys):
    package = tmp_path / "lib-1.0.tgz"
    package.write_bytes(b"package")
    code, out, _ = run(capsys, "primary", "add", str(package), "--type", "package_file",
                       "--config", config)
    assert code == 0 and out.strip() == "1"
    _, out, _ = run(capsys, "primary", "list", "--type", "package_file", "--config", config)
    assert out.splitlines()[0] == "Package Files" and "lib-1.0.tgz" in out
    _, out, _ = run(capsys, "primary", "list", "--type", "cool_widget", "--config", config)
    assert "lib-1.0.tgz" not in out
    # Ids are per type: deleting by id says which type, or is refused.
    code, _, err = run(capsys, "primary", "delete", "1", "--config", config)
    assert_one_line_error(code, err, "primary delete needs --type: one of cool_widget, "
                                     "package_file")
    code, out, _ = run(capsys, "primary", "delete", "1", "--type", "package_file",
                       "--config", config)
    assert code == 0 and out.strip() == "deleted 1"


@pytest.fixture
def tracked(config, databases):
    """A tracking DB with registries 1-4: synced, failed, pending, failed."""
    from backend.config import load_config
    from backend.db.engine import create_db_engine
    engine = create_db_engine(load_config(config).secondary.tracking_database_url)
    store = Registries(engine, CoolWidgets)
    store.insert_pending([10, 20, 30, 40])
    for claim in store.claim_sync_batch(4):
        if claim.model_id == 10:
            store.mark_synced(claim, primary_verified=True)
            store.mark_verified(store.claim_verification_batch(1)[0], "ab")
        elif claim.model_id in (20, 40):
            store.mark_sync_failed(claim, "Non-success HTTP response status code 500")
    store.resync(RegistrySelection(model_ids=(30,)))
    yield engine, store
    engine.dispose()


def test_status_prints_the_geo_status_lines(tracked, config, capsys):
    code, out, _ = run(capsys, "status", "--config", config)
    assert code == 0
    assert "Cool Widgets replicated: failed 2 / succeeded 1 / total 4 (25%)" in out
    assert "Cool Widgets verified: succeeded 1 / total 4 (25%)" in out
    assert "Package Files replicated: succeeded 0 / total 0 (0%)" in out
    code, out, _ = run(capsys, "status", "--type", "package_file", "--config", config)
    assert code == 0 and "Package Files replicated" in out and "Cool Widgets" not in out
    code, out, _ = run(capsys, "status", "--json", "--config", config)
    data = json.loads(out)
    assert data["cool_widgets_failed_count"] == 2
    assert data["cool_widgets_synced_in_percentage"] == "25.00%"


def test_check_fails_until_everything_is_verified(tracked, config, capsys):
    code, out, _ = run(capsys, "check", "--config", config)
    assert code == 1 and "ERROR - Replication is not up-to-date." in out


def test_status_and_check_show_replicas_that_could_not_be_removed(config, tmp_path, capsys):
    from backend.db.engine import create_db_engine
    from backend.replicables import replicator_for
    from backend.secondary.local_storage import LocalStorage
    from backend.secondary.replica_removals import ReplicaRemovals
    widgets = replicator_for("cool_widget")
    storage = LocalStorage(tmp_path / "secondary-blobs")
    path = storage.path(widgets, 9)
    path.mkdir(parents=True)  # a directory where the replica was
    engine = create_db_engine(load_config(config).secondary.tracking_database_url)
    try:
        ReplicaRemovals(engine).remove_files(storage, widgets, [9])
    finally:
        engine.dispose()
    failure = f"Could not remove the replica: is a directory ({path})"
    code, out, _ = run(capsys, "status", "--config", config)
    assert code == 0
    assert f"Replicas of deleted records left: 1 ({failure}; retried with backoff)" in out
    code, out, _ = run(capsys, "check", "--config", config)
    assert (f"WARNING - 1 replica of deleted records could not be removed and are retried "
            f"with backoff: {failure}.") in out
    code, out, _ = run(capsys, "status", "--json", "--config", config)
    data = json.loads(out)
    assert (data["replicas_awaiting_removal"], data["replica_removal_failure"]) == (1, failure)


def test_check_fails_with_no_engine_and_no_primary_even_with_nothing_to_do(config, capsys):
    """Nothing registered and nothing failed is no proof of anything: with no
    engine running and the primary away, check says so and fails."""
    code, out, _ = run(capsys, "check", "--config", config)
    assert code == 1 and "SUCCESS" not in out
    assert "ERROR - No sync engine is running on this tracking database." in out
    assert "ERROR - Cannot reach the primary: cannot connect: Connection refused." in out
    code, out, _ = run(capsys, "status", "--config", config)
    assert code == 0 and "Health Status: Unhealthy" in out
    assert "no sync engine is running" in out and "Connection refused" in out


@pytest.fixture
def live_primary(databases, tmp_path, config):
    """The configuration's primary, running, and this test posing as a live
    engine (a heartbeat in the tracking DB)."""
    from backend.config import load_config
    from backend.db.engine import create_db_engine
    from backend.secondary.heartbeat import Heartbeat
    from tests.support.sites import start_primary
    loaded = load_config(config)
    primary = start_primary(loaded.primary.database_url, tmp_path / "live-primary",
                            {"access_key": "cli-key", "secret": SECRET},
                            secondaries=("cli-secondary",))
    text = open(config).read().replace('primary_url = "http://127.0.0.1:9"',
                                       f'primary_url = "{primary.url}"')
    path = tmp_path / "live.toml"
    path.write_text(text)
    engine = create_db_engine(loaded.secondary.tracking_database_url)
    Heartbeat(engine, "test-engine").beat()
    yield primary, str(path), engine
    engine.dispose()
    primary.stop()


def test_check_fails_while_the_primary_has_records_not_registered_here(live_primary, capsys):
    primary, config, engine = live_primary
    ids = [primary.catalog().add_bytes(b"w%d" % n, "w") for n in range(3)]
    code, out, _ = run(capsys, "check", "--config", config)
    assert code == 1
    assert "ERROR - Cool Widgets: 0 of the primary's 3 records are registered." in out
    Registries(engine, CoolWidgets).insert_pending(ids)
    code, out, _ = run(capsys, "check", "--config", config)
    assert code == 1 and "are registered" not in out
    assert "ERROR - Cool Widgets: 3 registries are not synced and verified." in out
    code, out, _ = run(capsys, "status", "--json", "--config", config)
    status = json.loads(out)
    assert status["healthy"] and status["cool_widgets_primary_count"] == 3


def test_registries_filter_by_state(tracked, config, capsys):
    code, out, _ = run(capsys, "registries", "--replication-state", "failed", "--json",
                       "--config", config)
    rows = json.loads(out)
    assert code == 0 and sorted(r["cool_widget_id"] for r in rows) == [20, 40]
    assert {r["type"] for r in rows} == {"cool_widget"}
    assert rows[0]["last_sync_failure"] == "Non-success HTTP response status code 500"
    assert rows[0]["state"] == "failed"
    code, out, _ = run(capsys, "registries", "--verification-state", "succeeded",
                       "--type", "cool_widget", "--config", config)
    assert code == 0 and len(out.strip().splitlines()) == 3  # title, header, one row


def test_registries_of_every_type_unless_narrowed(tracked, config, capsys):
    Registries(tracked[0], replicator_for("package_file")).insert_pending([7])
    code, out, _ = run(capsys, "registries", "--config", config)
    titles = [line for line in out.splitlines() if not line.startswith(" ")]
    assert code == 0 and titles == ["Cool Widgets", "Package Files"]
    assert "PACKAGE_FILE_ID" in out
    code, out, _ = run(capsys, "registries", "--json", "--type", "package_file",
                       "--config", config)
    assert [(r["type"], r["package_file_id"]) for r in json.loads(out)] == [("package_file", 7)]


def test_registries_with_an_unknown_state_is_refused(tracked, config, capsys):
    code, _, err = run(capsys, "registries", "--replication-state", "done", "--config", config)
    assert_one_line_error(code, err, "unknown state 'done'")


def test_resync_all_failed_touches_only_failed(tracked, config, capsys):
    engine, store = tracked
    code, out, _ = run(capsys, "resync", "--all", "--replication-state", "failed",
                       "--config", config)
    assert code == 0 and "Scheduled 2 cool widgets for resync." in out
    assert "Scheduled 0 package files for resync." in out
    _, out, _ = run(capsys, "registries", "--replication-state", "pending", "--json",
                    "--config", config)
    assert sorted(r["cool_widget_id"] for r in json.loads(out)) == [20, 30, 40]


def test_reverify_by_registry_id(tracked, config, capsys):
    code, out, _ = run(capsys, "reverify", "1", "--type", "cool_widget", "--config", config)
    assert code == 0 and out == "Scheduled 1 cool widgets for re-verification.\n"
    _, out, _ = run(capsys, "registries", "--replication-state", "synced",
                    "--verification-state", "pending", "--json", "--config", config)
    assert [r["registry_id"] for r in json.loads(out)] == [1]


def test_acting_on_registry_ids_needs_their_type(tracked, config, capsys):
    code, _, err = run(capsys, "resync", "1", "--config", config)
    assert_one_line_error(code, err, "resync by registry id needs --type")
    _, out, _ = run(capsys, "registries", "--replication-state", "synced", "--json",
                    "--config", config)
    assert len(json.loads(out)) == 1  # nothing changed


def test_resync_of_unknown_registry_changes_nothing(tracked, config, capsys):
    code, _, err = run(capsys, "resync", "1", "999", "--type", "cool_widget", "--config",
                       config)
    assert_one_line_error(code, err, "no such registry: 999")
    _, out, _ = run(capsys, "registries", "--replication-state", "synced", "--json",
                    "--config", config)
    assert len(json.loads(out)) == 1


@pytest.mark.parametrize("argv,fragment", [
    (["resync"], "needs registry ids or --all"),
    (["resync", "1", "--all"], "not both"),
    (["resync", "1", "--replication-state", "failed"], "only narrow --all"),
    (["resync", "abc"], "invalid int value"),
    (["bogus"], "invalid choice"),
    (["status", "--frobnicate"], "unrecognized arguments"),
    (["registries", "--limit", "0"], "--limit must be at least 1"),
])
def test_usage_errors_are_one_line(config, capsys, argv, fragment):
    code, _, err = run(capsys, *argv, "--config", config)
    assert_one_line_error(code, err, fragment)


def test_missing_configuration(capsys, monkeypatch):
    monkeypatch.delenv("GEO_CONSOLE_CONFIG", raising=False)
    code, _, err = run(capsys, "status")
    assert_one_line_error(code, err, "no configuration")


@pytest.mark.parametrize("content,fragment", [
    ("[secondary\nname=", "malformed TOML"),
    ("[secondary]\nname = 5\n", "secondary.name must be a string"),
    ("[elsewhere]\n", "unknown section [elsewhere]"),
    ("[secondary]\nname='s'\nprimary_url='http://x'\naccess_key='k'\nsecret='" + SECRET
     + "'\ntracking_database_url='sqlite:///x.db'\nstorage_path='/tmp'\nfiles_max_capacity=0\n",
     "files_max_capacity must be between 1 and 10000"),
    ("[secondary]\nname='s'\nprimary_url='http://x'\naccess_key='k'\nsecret='short'\n"
     "tracking_database_url='sqlite:///x.db'\nstorage_path='/tmp'\n", "at least 32"),
])
def test_bad_configuration_files(tmp_path, capsys, content, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    code, _, err = run(capsys, "status", "--config", str(path))
    assert_one_line_error(code, err, fragment)


def test_status_before_db_upgrade_creates_nothing(tmp_path, capsys):
    path = write_config(tmp_path / "g.toml", f"sqlite:///{tmp_path / 'p.db'}",
                        f"sqlite:///{tmp_path / 't.db'}", tmp_path)
    code, _, err = run(capsys, "status", "--config", path)
    assert_one_line_error(code, err, "run `db upgrade` first")
    assert not (tmp_path / "t.db").exists()


def test_unreachable_database_is_one_line(tmp_path, capsys):
    path = write_config(tmp_path / "g.toml", "sqlite:///x",
                        "postgresql://postgres@127.0.0.1:1/none", tmp_path)
    code, _, err = run(capsys, "status", "--config", path)
    assert_one_line_error(code, err, "database error")


def test_secondary_run_starts_while_the_primary_is_down(config, tmp_path):
    """It says so on one line and keeps retrying (the engine's last error)."""
    process = subprocess.Popen([sys.executable, "main.py", "secondary", "run", "--config",
                                config], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        first = process.stderr.readline()
        assert first.startswith("geo-console: warning: cannot reach the primary (cannot "
                                "connect: Connection refused); the engine starts"), first
        assert process.stdout.readline().startswith("Secondary cli-secondary replicating")
        time.sleep(1.0)
        assert process.poll() is None  # still running, retrying
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "Traceback" not in err


def test_a_report_into_a_missing_folder_creates_nothing(tracked, config, tmp_path, capsys):
    output = tmp_path / "no" / "such" / "r.csv"
    code, _, err = run(capsys, "report", "--format", "csv", "--output", str(output),
                       "--type", "cool_widget", "--config", config)
    assert_one_line_error(code, err, "does not exist")
    assert not (tmp_path / "no").exists()


def test_a_reader_that_goes_away_ends_the_listing_quietly(config, tmp_path):
    files = []
    for index in range(400):
        files.append(tmp_path / f"f{index}.bin")
        files[-1].write_bytes(b"x")
    main(["primary", "add", *map(str, files), "--config", config])
    done = subprocess.run(f"{sys.executable} main.py primary list --config {config} | head -1",
                          shell=True, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout == "Cool Widgets\n"
    assert done.stderr == ""


def test_the_cli_json_and_the_reports_name_fields_alike(tracked, config, tmp_path, capsys):
    _, out, _ = run(capsys, "registries", "--json", "--type", "cool_widget", "--config", config)
    listed = json.loads(out)
    path = tmp_path / "r.json"
    run(capsys, "report", "--format", "json", "--output", str(path), "--type", "cool_widget",
        "--config", config)
    reported = json.loads(path.read_text())["registries"]
    assert [list(row) for row in listed] == [list(row) for row in reported]
    assert listed == reported
    assert list(listed[0])[:3] == ["type", "registry_id", "cool_widget_id"]


@pytest.mark.slow
def test_sites_from_the_command_line_replicate_until_check_passes(databases, tmp_path):
    """`primary serve` and `secondary run` as processes, driven like a user would."""
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(tmp_path / "geo.toml", databases.url("primary"),
                          databases.url("tracking"), tmp_path, port=port, primary_port=port)
    cli = [sys.executable, "main.py"]

    def call(*argv):
        return subprocess.run(cli + list(argv) + ["--config", config], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)

    assert call("db", "upgrade").returncode == 0
    sample = tmp_path / "sample.bin"
    sample.write_bytes(os.urandom(70_000))
    added = call("primary", "add", str(sample), str(sample)).stdout.split()
    assert len(added) == 2
    primary = subprocess.Popen(cli + ["primary", "serve", "--config", config], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    secondary = None
    try:
        wait_until(lambda: _listening(port), timeout=30, message="primary listening")
        bad = tmp_path / "bad.toml"
        bad.write_text(open(config).read().replace(f'secret = "{SECRET}"',
                                                   'secret = "wrong-secret-0123456789-0123456789abcdef"'))
        refused = subprocess.run(cli + ["secondary", "run", "--config", str(bad)], cwd=ROOT,
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and "refused our credentials" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        secondary = subprocess.Popen(cli + ["secondary", "run", "--config", config], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # A secondary that has registered nothing yet passes `check` too;
        # wait for both widgets.
        wait_until(lambda: call("check").returncode == 0
                   and "succeeded 2 / total 2 (100%)" in call("status").stdout, timeout=60,
                   message="check passes with both widgets verified")
    finally:
        for process in (secondary, primary):
            if process:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
    for process in (secondary, primary):
        assert process.returncode == 0
        assert "Traceback" not in process.stderr.read()


def _listening(port):
    import socket
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_bulk_resync_prints_its_progress_and_is_refused_beside_another(config, capsys):
    import datetime as dt
    import threading

    from sqlalchemy import insert

    from backend.db.engine import create_db_engine
    from backend.secondary.bulk_actions import BulkAction
    from backend.secondary.registry_selection import RegistrySelection
    widgets = replicator_for("cool_widget")
    from backend.config import load_config
    engine = create_db_engine(load_config(config).secondary.tracking_database_url)
    with engine.begin() as connection:
        connection.execute(insert(widgets.registry_table()), [
            {"cool_widget_id": n, "state": 2, "verification_state": 2,
             "created_at": dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)}
            for n in range(1, 2_501)])
    code, out, err = run(capsys, "resync", "--all", "--type", "cool_widget", "--config", config)
    assert code == 0 and "Scheduled 2500 cool widgets for resync." in out
    assert err.strip().splitlines()[-1] == "resync of cool widgets: 2,500 of 2,500 registries"

    between, go_on = threading.Event(), threading.Event()

    def progress(done, _total):
        if done:
            between.set()
            go_on.wait(30)

    other = threading.Thread(target=lambda: BulkAction(engine, widgets).run(
        "resync", RegistrySelection(), progress=progress))
    other.start()
    try:
        assert between.wait(30)
        code, _, err = run(capsys, "reverify", "--all", "--type", "cool_widget",
                           "--config", config)
        assert_one_line_error(code, err, "another resync or reverify of cool widgets "
                                         "registries is running (by process ")
    finally:
        go_on.set()
        other.join(30)
        engine.dispose()
