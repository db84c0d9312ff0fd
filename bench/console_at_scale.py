"""The console's registry table at 1,000,000 registries (SQLite and PostgreSQL).

    python bench/console_at_scale.py [--rows N] [--postgres URL] [--skip-sqlite]

Fills a tracking DB (as bench/status_at_scale.py does, with sync times and,
where the code has them, every registry's details), opens the real
Replication details page offscreen on it and measures: time to first rows,
a filter change (to "failed"), a sort change (last synced, newest first;
and by file name where the code sorts by it), scrolling to the last row,
selecting all and resyncing, and the process's peak memory. It runs on the
code before header sorting too (the sort box), so both can be compared. The baseline, measured in the
same run, is what a table holding every row needs: fetching all registries
into Python once. Not a test; nothing here runs in CI.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from PySide6.QtWidgets import QApplication  # noqa: E402
from sqlalchemy import inspect, select, text  # noqa: E402

from app.details_page import DetailsPage  # noqa: E402
from app.sources import LocalSource  # noqa: E402
from app.tasks import TaskRunner  # noqa: E402
from backend.config import SecondaryConfig  # noqa: E402
from backend.replicables import replicator_for  # noqa: E402
from backend.sites.secondary import SecondarySite  # noqa: E402
from bench.status_at_scale import (fill_postgres, fill_sqlite,  # noqa: E402
                                   fresh_postgres_database)

CoolWidgets = replicator_for("cool_widget")


def wait(app, predicate, timeout=600.0) -> float:
    started = time.perf_counter()
    while not predicate():
        app.processEvents()
        if time.perf_counter() - started > timeout:
            raise TimeoutError("the console did not answer in time")
        time.sleep(0.001)
    return time.perf_counter() - started


def fill_times_and_details(engine, rows: int) -> bool:
    """Sync times on every registry that is not pending, and details (file
    names, sizes, projects) where the tracking DB has a details table.
    Returns whether it has."""
    sqlite = engine.dialect.name == "sqlite"
    has_details = inspect(engine).has_table("cool_widget_registry_details")
    with engine.begin() as connection:
        connection.execute(text("UPDATE cool_widget_registry SET last_synced_at = created_at "
                                "WHERE state <> 0"))
        if has_details:
            concat = "||"
            connection.execute(text(f"""
                UPDATE cool_widget_registry_details SET
                    file_name = 'artifact-' {concat} ((cool_widget_id * 7919) % {rows}) {concat}
                                '.zip',
                    size = (cool_widget_id * 104729) % 50000000,
                    file_store = 1 + cool_widget_id % 2,
                    project_path = 'group-' {concat} (cool_widget_id % 97) {concat} '/project-'
                                   {concat} (cool_widget_id % 1013),
                    shard = 'default'"""))
    if not sqlite:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    return has_details


def sort(page, name: str) -> None:
    """Sort as an administrator does: a header click, or the sort box of the
    code before header sorting."""
    if hasattr(page, "sort_box"):
        page.sort_box.setCurrentIndex(page.sort_box.findData(name))
    else:
        page.sort_by(name)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(app, label: str, url: str, filler, rows: int, storage: str) -> None:
    config = SecondaryConfig(name="bench", primary_url="http://127.0.0.1:9", access_key="k",
                             secret="s" * 32, tracking_database_url=url, storage_path=storage)
    site = SecondarySite(config).start(serve=False, run_engine=False)
    started = time.perf_counter()
    filler(site.tracking_engine, rows)
    has_details = fill_times_and_details(site.tracking_engine, rows)
    print(f"[{label}] filled {rows:,} registries in {time.perf_counter() - started:.1f} s"
          f"{' (with details)' if has_details else ''}")
    before = peak_mb()
    runner = TaskRunner()
    page = DetailsPage(runner, LocalSource(site))
    page.resize(1200, 800)
    page.show()
    page.confirm = lambda title, question: True

    started = time.perf_counter()
    page.start()
    first_rows = wait(app, lambda: page.model.rowCount() == rows
                      and page.model.row_data(0) is not None)
    page.sidebar.sync_list.setCurrentRow(4)  # failed
    failed_expected = rows * 3 // 100
    filter_change = wait(app, lambda: abs(page.model.rowCount() - failed_expected) <= 1
                         and page.model.row_data(0) is not None)
    page.sidebar.sync_list.setCurrentRow(0)
    wait(app, lambda: page.model.rowCount() == rows and page.model.row_data(0) is not None)
    sort(page, "LAST_SYNCED_AT_DESC")
    sort_change = wait(app, lambda: page.model.rowCount() == rows
                       and page.model.row_data(0) is not None)
    by_name = None
    if has_details:
        sort(page, "FILE_NAME_ASC")
        by_name = wait(app, lambda: page.model.rowCount() == rows
                       and page.model.row_data(0) is not None)
    sort(page, "ID_ASC")
    wait(app, lambda: page.model.rowCount() == rows and page.model.row_data(0) is not None)
    page.table.scrollToBottom()
    scroll = wait(app, lambda: page.model.row_data(rows - 1) is not None)
    done = []
    page.actionDone.connect(lambda action, count: done.append(count))
    started = time.perf_counter()
    page.table.setFocus()
    page.table.selectAll()
    page.act_on_selection("resync")
    select_resync = wait(app, lambda: bool(done))
    console_peak = peak_mb()
    page.stop()
    runner.wait()
    page.close()

    started = time.perf_counter()
    table = CoolWidgets.registry_table()
    with site.tracking_engine.connect() as connection:
        everything = connection.execute(select(table)).all()
    baseline = time.perf_counter() - started
    baseline_peak = peak_mb()
    del everything
    print(f"[{label}] time to first rows:       {first_rows * 1000:9.1f} ms")
    print(f"[{label}] filter change (failed):   {filter_change * 1000:9.1f} ms")
    print(f"[{label}] sort change (synced):     {sort_change * 1000:9.1f} ms")
    if by_name is not None:
        print(f"[{label}] sort change (file name):  {by_name * 1000:9.1f} ms")
    print(f"[{label}] scroll to the last row:   {scroll * 1000:9.1f} ms")
    print(f"[{label}] select all and resync:    {select_resync * 1000:9.1f} ms "
          f"({done[0]:,} registries)")
    print(f"[{label}] baseline, fetch all rows: {baseline * 1000:9.1f} ms")
    print(f"[{label}] ratio first rows / baseline: {first_rows / baseline:.4f}")
    print(f"[{label}] peak memory: console {console_peak - before:+.0f} MB over "
          f"{before:.0f} MB; holding all rows reached {baseline_peak:.0f} MB")
    site.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only is None:
        # One process per database, so each peak memory is its own.
        for database in ("sqlite", "postgresql"):
            if database == "sqlite" and args.skip_sqlite:
                continue
            subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--postgres",
                            args.postgres, "--only", database], check=True)
        return
    app = QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        if args.only == "sqlite":
            run(app, "sqlite", f"sqlite:///{os.path.join(folder, 'tracking.db')}", fill_sqlite,
                args.rows, folder)
            return
        with fresh_postgres_database(args.postgres) as url:
            run(app, "postgresql", url, fill_postgres, args.rows, folder)


if __name__ == "__main__":
    main()
