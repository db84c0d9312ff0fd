"""Reports: CSV and JSON of the registries of a filter (SQLite and PostgreSQL)."""
import csv
import datetime as dt
import json
import tracemalloc

import pytest
from sqlalchemy import insert

from backend import reports
from backend.cli import main
from backend.replicables import replicator_for
from backend.framework.states import SyncState, VerificationState
from backend.secondary.registry_selection import RegistrySelection

CoolWidgets = replicator_for("cool_widget")
T0 = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.timezone.utc)


def fill(engine, count, **values):
    rows = [{"cool_widget_id": n, "created_at": T0, **values} for n in range(1, count + 1)]
    with engine.begin() as connection:
        for start in range(0, len(rows), 10_000):
            connection.execute(insert(CoolWidgets.registry_table()), rows[start:start + 10_000])


def test_csv_has_a_header_iso_times_and_state_names(tracking_engine, tmp_path):
    fill(tracking_engine, 3, state=SyncState.SYNCED,
         verification_state=VerificationState.SUCCEEDED, last_synced_at=T0,
         verification_checksum=b"ab" * 32)
    path = tmp_path / "out.csv"
    assert reports.export(tracking_engine, CoolWidgets, RegistrySelection(), "csv", path) == 3
    rows = list(csv.reader(path.open()))
    assert rows[0] == reports.columns(CoolWidgets)
    first = dict(zip(rows[0], rows[1]))
    assert first["registry_id"] == "1" and first["cool_widget_id"] == "1"
    assert first["state"] == "synced" and first["verification_state"] == "succeeded"
    assert first["last_synced_at"] == "2026-03-01T12:30:00.000000Z"
    assert first["verification_checksum"] == "ab" * 32
    assert first["checksum_mismatch"] == "false" and first["retry_at"] == ""


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)",
                                  "\tcmd", "\rcmd"])
def test_csv_neutralises_formula_injection(tracking_engine, tmp_path, text):
    fill(tracking_engine, 1, state=SyncState.FAILED, last_sync_failure=text)
    path = tmp_path / "out.csv"
    reports.export(tracking_engine, CoolWidgets, RegistrySelection(), "csv", path)
    row = dict(zip(*list(csv.reader(path.open(newline="")))))
    assert row["last_sync_failure"] == "'" + text


def test_json_has_summary_filter_and_rows(tracking_engine, tmp_path):
    fill(tracking_engine, 5, state=SyncState.FAILED, last_sync_failure="boom")
    path = tmp_path / "out.json"
    count = reports.export(tracking_engine, CoolWidgets,
                           RegistrySelection(replication_state=SyncState.FAILED), "json", path,
                           summary={"cool_widgets_failed_count": 5}, site_name="eu")
    document = json.loads(path.read_text())
    assert count == 5 and document["count"] == 5
    assert document["site"] == "eu" and document["replicable"] == "cool_widget"
    assert document["filter"] == {"replication_state": "failed", "verification_state": None,
                                  "ids": None, "model_ids": None, "search": None}
    assert document["summary"] == {"cool_widgets_failed_count": 5}
    assert [r["registry_id"] for r in document["registries"]] == [1, 2, 3, 4, 5]
    assert document["registries"][0]["last_sync_failure"] == "boom"
    assert document["generated_at"].endswith("Z")


def test_filters_narrow_the_report(tracking_engine, tmp_path):
    fill(tracking_engine, 4, state=SyncState.PENDING)
    path = tmp_path / "out.json"
    reports.export(tracking_engine, CoolWidgets,
                   RegistrySelection(replication_state=SyncState.SYNCED), "json", path)
    assert json.loads(path.read_text())["registries"] == []


def test_cancelled_export_leaves_no_file(tracking_engine, tmp_path):
    fill(tracking_engine, 3000)
    path = tmp_path / "reports" / "out.csv"
    path.parent.mkdir()
    calls = []
    with pytest.raises(reports.ReportCancelled):
        reports.export(tracking_engine, CoolWidgets, RegistrySelection(), "csv", path,
                       progress=lambda done, total: calls.append((done, total)),
                       cancelled=lambda: len(calls) >= 1)
    assert not path.exists() and list(path.parent.iterdir()) == []


def test_progress_reaches_the_total(tracking_engine, tmp_path):
    fill(tracking_engine, 2500)
    calls = []
    reports.export(tracking_engine, CoolWidgets, RegistrySelection(), "csv", tmp_path / "o.csv",
                   progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (2500, 2500) and calls[0] == (1000, 2500)


def peak_bytes(function) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = function()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_export_streams_in_bounded_memory(tracking_engine, tmp_path):
    """The export's peak stays far below what holding every row would take."""
    from backend.secondary.registry_query import stream
    rows = 30_000
    fill(tracking_engine, rows, state=SyncState.SYNCED, last_synced_at=T0,
         last_sync_failure="x" * 250)
    count, streamed = peak_bytes(lambda: reports.export(
        tracking_engine, CoolWidgets, RegistrySelection(), "json", tmp_path / "big.json",
        chunk=2000))
    held, holding = peak_bytes(lambda: len(list(stream(
        tracking_engine, CoolWidgets, RegistrySelection(), chunk=rows))))
    assert count == held == rows
    assert streamed < holding / 4, f"streamed {streamed / 1e6:.1f} MB, " \
                                   f"held {holding / 1e6:.1f} MB"
    assert (tmp_path / "big.json").stat().st_size > 10_000_000


def test_report_command(tracking_url, tmp_path, capsys):
    from backend.db.engine import create_db_engine
    engine = create_db_engine(tracking_url)
    fill(engine, 3, state=SyncState.FAILED, last_sync_failure="=1+1")
    engine.dispose()
    config = tmp_path / "geo.toml"
    config.write_text(f"""[secondary]
name = "s"
primary_url = "http://127.0.0.1:9"
access_key = "k"
secret = "{'s' * 32}"
tracking_database_url = "{tracking_url}"
storage_path = "{tmp_path / 'blobs'}"
""")
    out = tmp_path / "failed.csv"
    code = main(["report", "--format", "csv", "--output", str(out), "--replication-state",
                 "failed", "--config", str(config)])
    assert code == 1 and "report needs --type" in capsys.readouterr().err  # one per type
    assert not out.exists()
    code = main(["report", "--format", "csv", "--output", str(out), "--replication-state",
                 "failed", "--type", "cool_widget", "--config", str(config)])
    assert code == 0 and "Wrote 3 registries" in capsys.readouterr().out
    assert len(list(csv.reader(out.open()))) == 4
    code = main(["report", "--format", "xml", "--output", str(out), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "invalid choice: 'xml'" in err
    code = main(["report", "--format", "json", "--output", str(tmp_path), "--type",
                 "cool_widget", "--config", str(config)])
    assert code == 1 and "is a folder" in capsys.readouterr().err
    out_json = tmp_path / "r.json"
    main(["report", "--format", "json", "--output", str(out_json), "--type", "cool_widget",
          "--config", str(config)])
    document = json.loads(out_json.read_text())
    assert document["summary"]["cool_widgets_failed_count"] == 3
    assert "s" * 32 not in out_json.read_text()
