"""`report --format pdf` from the command line: drawn by the console's
exporter when it is installed, one plain error when it is not; nothing
written on failure."""
import datetime as dt
import os
import subprocess
import sys

import pytest

from backend.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WITHOUT_PYSIDE = ("import sys; sys.modules['PySide6'] = None; "
                  "from app.launcher import main; sys.exit(main(sys.argv[1:]))")


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "geo.toml"
    path.write_text(f"""
[secondary]
name = "eu-west"
primary_url = "http://127.0.0.1:9"
access_key = "k"
secret = "a-shared-secret-of-at-least-32-characters"
tracking_database_url = "sqlite:///{tmp_path / 'tracking.db'}"
storage_path = "{tmp_path / 'blobs'}"
[feature_flags]
geo_cool_widget_replication = true
""")
    assert main(["db", "upgrade", "--config", str(path)]) == 0
    from backend.db.engine import create_db_engine
    from backend.secondary import status_history
    engine = create_db_engine(f"sqlite:///{tmp_path / 'tracking.db'}")
    now = dt.datetime.now(dt.timezone.utc)
    for minute in (50, 30, 10):
        status_history.record(engine, "cool_widget", {"registry_count": 10, "synced_count": 5},
                              {"syncs_succeeded": 5, "bytes_downloaded": 1000}, 60.0,
                              now=now - dt.timedelta(minutes=minute))
    engine.dispose()
    return str(path)


def geo_console(*argv, code=None):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    command = [sys.executable, "-c", code, *argv] if code else \
        [sys.executable, "main.py", *argv]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_pdf_report_from_the_command_line(config, tmp_path):
    output = tmp_path / "status.pdf"
    result = geo_console("report", "--format", "pdf", "--range", "hour", "--output",
                         str(output), "--config", config)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Wrote the status report to {output}"
    assert result.stderr == ""  # Qt's own notes are not shown
    data = output.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 20000
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".pdf") == ["status.pdf"]


def test_without_the_console_a_pdf_report_is_one_plain_error(config, tmp_path):
    output = tmp_path / "status.pdf"
    result = geo_console("report", "--format", "pdf", "--output", str(output), "--config",
                         config, code=WITHOUT_PYSIDE)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "geo-console: error: PDF reports are drawn by the console, which is not installed "
        "(pip install -e .[console]); CSV and JSON reports work without it"]
    assert "Traceback" not in result.stderr and "Error" not in result.stderr
    assert not output.exists()
    # CSV still works there.
    csv = geo_console("report", "--format", "csv", "--type", "cool_widget", "--output",
                      str(tmp_path / "r.csv"), "--config", config, code=WITHOUT_PYSIDE)
    assert csv.returncode == 0, csv.stderr


def test_no_console_given_to_the_cli_is_the_same_error(config, tmp_path, capsys):
    output = tmp_path / "status.pdf"
    assert main(["report", "--format", "pdf", "--output", str(output), "--config",
                 config]) == 1
    assert "the console, which is not installed" in capsys.readouterr().err
    assert not output.exists()


@pytest.mark.parametrize("fmt", ["pdf", "csv"])
def test_a_report_into_a_missing_folder_creates_nothing(config, tmp_path, capsys, fmt):
    from app.launcher import write_pdf
    output = tmp_path / "no" / "such" / f"r.{fmt}"
    code = main(["report", "--format", fmt, "--type", "cool_widget", "--output", str(output),
                 "--config", config], write_pdf=write_pdf)
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "no").exists()


def test_a_pdf_report_refuses_registry_filters(config, tmp_path, capsys):
    from app.launcher import write_pdf
    output = tmp_path / "status.pdf"
    code = main(["report", "--format", "pdf", "--replication-state", "failed", "--output",
                 str(output), "--config", config], write_pdf=write_pdf)
    assert code == 1
    assert "for CSV and JSON reports" in capsys.readouterr().err
    assert not output.exists()
