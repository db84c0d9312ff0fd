"""Replication details against a real tracking DB: filters change rows and
counts, actions change registry states, state persists."""
import pytest
from PySide6.QtCore import QItemSelectionModel, QPoint, Qt
from PySide6.QtGui import QGuiApplication

from app.details_page import DetailsPage
from app.tasks import TaskRunner
from backend.framework.states import SyncState, VerificationState
from backend.secondary.registry_selection import RegistrySelection
from tests.console.conftest import db_states, registry_rows
from widgets.registry_table_model import COLUMNS, column_of


@pytest.fixture
def page(qtbot, source):
    runner = TaskRunner()
    page = DetailsPage(runner, source)
    qtbot.addWidget(page)
    page.resize(1200, 700)
    page.show()
    page.start()
    yield page
    page.stop()
    runner.close()


def loaded(page, qtbot, count):
    qtbot.waitUntil(lambda: page.model.rowCount() == count and page.count_label.text()
                    .startswith(f"{count:,} registries — {page.describe()}"),
                    timeout=10000)
    qtbot.waitUntil(lambda: page.model.row_data(0) is not None or count == 0, timeout=10000)


def shown_ids(page):
    return [page.model.row_data(r).registry_id for r in range(page.model.rowCount())]


ROWS = registry_rows()
FAILED = [n for n, row in enumerate(ROWS, 1) if row["state"] == SyncState.FAILED]


def test_shows_every_registry_with_counts(page, qtbot):
    loaded(page, qtbot, 60)
    assert page.model.index(0, 0).data() == "1" and page.model.index(0, 1).data() == "501"
    qtbot.waitUntil(lambda: "All (60)" == page.sidebar.sync_list.item(0).text())
    assert page.sidebar.sync_list.item(4).text() == f"Failed ({len(FAILED)})"
    assert "60 registries" in page.count_label.text()


def test_state_filter_changes_rows_and_count(page, qtbot):
    loaded(page, qtbot, 60)
    page.sidebar.sync_list.setCurrentRow(4)  # Failed
    loaded(page, qtbot, len(FAILED))
    assert shown_ids(page) == FAILED
    assert all(page.model.row_data(r).state == SyncState.FAILED for r in range(len(FAILED)))
    page.sidebar.verification_list.setCurrentRow(4)  # and verification failed: none
    loaded(page, qtbot, 0)
    assert "0 registries — Cool Widgets: replication failed, verification failed" \
        in page.count_label.text()


def test_search_by_ids_and_failure_text(page, qtbot):
    loaded(page, qtbot, 60)
    qtbot.keyClicks(page.search, "3 510")
    qtbot.keyPress(page.search, Qt.Key_Return)
    loaded(page, qtbot, 2)
    assert shown_ids(page) == [3, 10]
    page.search.setText("missing on the geo")
    qtbot.keyPress(page.search, Qt.Key_Return)
    missing = [n for n, r in enumerate(ROWS, 1) if (r["last_sync_failure"] or "").startswith("The file")]
    loaded(page, qtbot, len(missing))
    assert shown_ids(page) == missing


def sort_by(page, qtbot, key: str, way: str) -> None:
    """Click the column's header (as often as it takes) until the page
    sorts by it in that direction."""
    header = page.table.horizontalHeader()
    column = column_of(key)
    for _ in range(2):
        position = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
        qtbot.mouseClick(header.viewport(), Qt.LeftButton,
                         pos=QPoint(position, header.height() // 2))
        if page.sort.endswith(way) and header.sortIndicatorSection() == column:
            return
    raise AssertionError(f"the header did not sort by {key} {way}: {page.sort}")


def test_sort_orders_by_a_click_on_a_header(page, qtbot):
    loaded(page, qtbot, 60)
    sort_by(page, qtbot, "registry_id", "DESC")
    assert page.sort == "ID_DESC"
    qtbot.waitUntil(lambda: page.model.row_data(0) is not None
                    and page.model.row_data(0).registry_id == 60, timeout=10000)
    sort_by(page, qtbot, "last_synced_at", "ASC")
    assert page.sort == "LAST_SYNCED_AT_ASC"
    qtbot.waitUntil(lambda: page.model.row_data(0) is not None
                    and page.model.row_data(0).registry_id == 1, timeout=10000)


def test_a_column_the_database_cannot_sort_by_says_so_and_keeps_the_order(page, qtbot):
    loaded(page, qtbot, 60)
    sort_by(page, qtbot, "registry_id", "DESC")
    messages = []
    page.message.connect(messages.append)
    header = page.table.horizontalHeader()
    column = column_of("state")
    qtbot.mouseClick(header.viewport(), Qt.LeftButton, pos=QPoint(
        header.sectionViewportPosition(column) + 10, header.height() // 2))
    assert page.sort == "ID_DESC" and header.sortIndicatorSection() == column_of("registry_id")
    assert messages and "cannot be sorted by replication" in messages[-1]


def select(page, rows):
    selection = page.table.selectionModel()
    selection.clearSelection()
    for row in rows:
        selection.select(page.model.index(row, 0),
                         QItemSelectionModel.Select | QItemSelectionModel.Rows)


def test_resync_selection_with_the_shortcut(page, qtbot, local_site):
    loaded(page, qtbot, 60)
    select(page, [0, 1, 2])
    page.table.setFocus()
    qtbot.keyClick(page.table, Qt.Key_R, Qt.ControlModifier)
    qtbot.waitUntil(lambda: db_states(local_site)[1][0] == SyncState.PENDING, timeout=10000)
    states = db_states(local_site)
    assert [states[n][0] for n in (1, 2, 3)] == [SyncState.PENDING] * 3
    assert states[6][0] == SyncState.SYNCED


def test_reverify_selection_and_detail_panel(page, qtbot, local_site):
    loaded(page, qtbot, 60)
    select(page, [1])
    assert page.detail.values["registry_id"].text() == "2"
    assert page.detail.values["verification_checksum"].text() == "ab" * 32
    page.reverify_button.click()
    qtbot.waitUntil(lambda: db_states(local_site)[2][1] == VerificationState.PENDING,
                    timeout=10000)


def test_resync_all_failed_asks_with_the_count(page, qtbot, local_site):
    loaded(page, qtbot, 60)
    questions = []
    page.confirm = lambda title, text: questions.append((title, text)) or True
    page.act_on_filter("resync", failed_only=True)
    qtbot.waitUntil(lambda: bool(questions), timeout=10000)
    assert questions[0][0] == f"Resync {len(FAILED)} registries"
    assert questions[0][1].startswith(f"Resync {len(FAILED)} cool widget registries "
                                      "(replication failed)?")
    assert "downloaded from the primary again" in questions[0][1]
    qtbot.waitUntil(lambda: all(db_states(local_site)[n][0] == SyncState.PENDING
                                for n in FAILED), timeout=10000)


def test_declined_confirmation_changes_nothing(page, qtbot, local_site):
    loaded(page, qtbot, 60)
    before = db_states(local_site)
    asked = []
    page.confirm = lambda title, text: asked.append(title) or False
    page.act_on_filter("reverify", failed_only=False)
    qtbot.waitUntil(lambda: bool(asked), timeout=10000)
    assert asked == ["Reverify 60 registries"]
    page.runner.wait()
    assert db_states(local_site) == before


def test_copy_rows(page, qtbot):
    loaded(page, qtbot, 60)
    select(page, [0, 3])
    page.copy_rows()
    lines = QGuiApplication.clipboard().text().splitlines()
    assert lines[0].startswith("Registry\tCool Widget\tFile\tReplication\tVerification\tFailure")
    first, fourth = (line.split("\t") for line in lines[1:3])
    assert first[:2] == ["1", "501"] and first[3] == "synced"
    assert fourth[:2] == ["4", "504"] and fourth[3] == "failed"


def test_column_chooser_keeps_one_column(page):
    for column in range(1, len(COLUMNS)):
        page.table.set_column_visible(column, False)
    page.table.set_column_visible(0, False)
    assert not page.table.isColumnHidden(0)


def test_state_is_saved_and_restored(page, qtbot, source, settings):
    loaded(page, qtbot, 60)
    page.sidebar.sync_list.setCurrentRow(4)
    page.table.setColumnHidden(7, True)
    page.save_state(settings)
    runner = TaskRunner()
    again = DetailsPage(runner, source)
    qtbot.addWidget(again)
    again.restore_state(settings)
    assert again.selection == RegistrySelection(replication_state=SyncState.FAILED)
    assert again.sort == "ID_ASC"
    assert again.table.isColumnHidden(7)
    again.stop()
    runner.close()


def test_source_errors_surface_as_messages(page, qtbot, monkeypatch):
    messages = []
    page.runner.errorOccurred.connect(messages.append)

    def broken(*args, **kwargs):
        raise OSError("tracking database went away")

    monkeypatch.setattr(page.source, "state_counts", broken)
    page.refresh()
    qtbot.waitUntil(lambda: bool(messages), timeout=10000)
    assert "tracking database went away" in messages[0]


def test_select_all_and_resync_acts_on_the_filter(page, qtbot, local_site):
    loaded(page, qtbot, 60)
    page.sidebar.sync_list.setCurrentRow(3)  # synced
    synced = [n for n, row in enumerate(ROWS, 1) if row["state"] == SyncState.SYNCED]
    loaded(page, qtbot, len(synced))
    page.table.setFocus()
    qtbot.keyClick(page.table, Qt.Key_A, Qt.ControlModifier)
    assert page.table.everything and page.table.chosen_count() == len(synced)
    page.act_on_selection("resync")
    qtbot.waitUntil(lambda: all(db_states(local_site)[n][0] == SyncState.PENDING
                                for n in synced), timeout=10000)
    assert db_states(local_site)[4][0] == SyncState.FAILED


def test_a_selection_beyond_loaded_pages_is_fetched(page, qtbot, local_site):
    loaded(page, qtbot, 60)
    page.model._pages.clear()  # as if rows 10-20 had scrolled out of the cache
    select(page, range(10, 21))
    assert page.table.resolving  # their ids are asked for
    qtbot.waitUntil(lambda: not page.table.resolving, timeout=10000)
    assert page.table.chosen == set(range(11, 22))
    page.act_on_selection("resync")
    qtbot.waitUntil(lambda: db_states(local_site)[11][0] == SyncState.PENDING, timeout=10000)
    states = db_states(local_site)
    assert all(states[n][0] == SyncState.PENDING for n in range(11, 22))
    assert states[10][0] != SyncState.PENDING or ROWS[9]["state"] == SyncState.PENDING


def click(page, qtbot, row, modifier=Qt.NoModifier):
    """A click on a row, as the administrator makes it."""
    position = page.table.visualRect(page.model.index(row, 0)).center()
    qtbot.mouseClick(page.table.viewport(), Qt.LeftButton, modifier, position)


def selected_ids(page) -> set[int]:
    return {page.model.row_data(index.row()).registry_id
            for index in page.table.selectionModel().selectedRows()}


def test_the_choice_follows_its_registries_while_rows_move(page, qtbot, local_site):
    """Sorted newest first, new registries arrive above the chosen ones and a
    chosen one moves to the end: the same registries stay selected, Copy
    copies them, Ctrl+R resyncs them and nothing else."""
    import datetime as dt

    from sqlalchemy import insert, update

    from tests.console.conftest import CoolWidgets, T0
    loaded(page, qtbot, 60)
    sort_by(page, qtbot, "last_synced_at", "DESC")
    qtbot.waitUntil(lambda: page.model.row_data(0) is not None
                    and page.model.row_data(0).registry_id == 60, timeout=10000)
    click(page, qtbot, 2)
    click(page, qtbot, 5, Qt.ControlModifier)
    click(page, qtbot, 7, Qt.ControlModifier)
    picked = {page.model.row_data(row).registry_id for row in (2, 5, 7)}
    assert page.table.chosen == picked == selected_ids(page) == {58, 55, 53}
    table = CoolWidgets.registry_table()
    with local_site.tracking_engine.begin() as connection:
        connection.execute(insert(table), [
            {"cool_widget_id": 900 + n, "created_at": T0, "state": SyncState.SYNCED,
             "last_synced_at": T0 + dt.timedelta(hours=1, minutes=n)} for n in range(5)])
        connection.execute(update(table).where(table.c.id == 55).values(
            last_synced_at=T0 - dt.timedelta(days=1)))  # now the oldest: the last row
    page.refresh()
    qtbot.waitUntil(lambda: page.model.rowCount() == 65
                    and page.model.row_data(0).registry_id == 65, timeout=10000)
    qtbot.waitUntil(lambda: selected_ids(page) == picked, timeout=10000)
    assert [page.model.row_data(row).registry_id for row in (7, 11, 64)] == [58, 53, 55]
    page.copy_rows()
    copied = QGuiApplication.clipboard().text().splitlines()[1:]
    assert sorted(int(line.split("\t")[0]) for line in copied) == sorted(picked)
    page.table.setFocus()
    before = db_states(local_site)
    qtbot.keyClick(page.table, Qt.Key_R, Qt.ControlModifier)
    qtbot.waitUntil(lambda: all(db_states(local_site)[n][0] == SyncState.PENDING
                                for n in picked), timeout=10000)
    after = db_states(local_site)
    changed = {n for n in after if after[n] != before.get(n)}
    assert changed <= picked  # nothing the administrator did not pick


def test_the_detail_panel_shows_the_chosen_registry_wherever_its_row_goes(page, qtbot):
    loaded(page, qtbot, 60)
    click(page, qtbot, 1)
    assert page.detail.values["registry_id"].text() == "2"
    sort_by(page, qtbot, "registry_id", "DESC")
    qtbot.waitUntil(lambda: page.model.row_data(0) is not None
                    and page.model.row_data(0).registry_id == 60, timeout=10000)
    qtbot.waitUntil(lambda: selected_ids(page) == {2}, timeout=10000)
    assert page.detail.values["registry_id"].text() == "2"


def test_a_new_filter_forgets_the_choice(page, qtbot):
    loaded(page, qtbot, 60)
    click(page, qtbot, 0)
    assert page.table.chosen == {1}
    page.sidebar.sync_list.setCurrentRow(4)  # failed
    loaded(page, qtbot, len(FAILED))
    assert page.table.chosen == set() and not selected_ids(page)


def test_a_bulk_resync_shows_its_progress_and_can_be_cancelled(page, qtbot, local_site,
                                                               tmp_path):
    """5,000 more registries; another writer holds the table while the
    resync starts, so that its dialog shows and Cancel lands before its
    first batch ends: it stops after that batch, says what it scheduled,
    and the rest is as it was. Without the cancel it runs to the end."""
    import sqlite3

    from sqlalchemy import func, insert, select, text
    from PySide6.QtWidgets import QProgressDialog, QPushButton

    from tests.console.conftest import CoolWidgets
    table = CoolWidgets.registry_table()
    rows = registry_rows(5_060)[60:]
    with local_site.tracking_engine.begin() as connection:
        connection.execute(insert(table), rows)
    page.refresh()
    loaded(page, qtbot, 5_060)
    messages = []
    page.message.connect(messages.append)
    page.confirm = lambda title, text: True

    def dialog():
        found = [d for d in page.findChildren(QProgressDialog) if d.isVisible()]
        return found[0] if found else None

    engine = local_site.tracking_engine
    if engine.dialect.name == "sqlite":
        holder = sqlite3.connect(engine.url.database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        release = lambda: (holder.execute("ROLLBACK"), holder.close())  # noqa: E731
    else:
        connection = engine.connect()
        transaction = connection.begin()
        connection.execute(text(f"LOCK TABLE {table.name} IN EXCLUSIVE MODE"))
        release = lambda: (transaction.rollback(), connection.close())  # noqa: E731
    try:
        page.act_on_filter("resync", failed_only=False)
        qtbot.waitUntil(lambda: dialog() is not None, timeout=20000)
        assert dialog().windowTitle() == "Resync of cool widget registries"
        dialog().grab().save(str(tmp_path / "bulk-progress.png"))
        cancel = next(button for button in dialog().findChildren(QPushButton)
                      if button.text() == "Cancel")
        qtbot.mouseClick(cancel, Qt.LeftButton)
    finally:
        release()
    qtbot.waitUntil(lambda: any(m.startswith("Cancelled: ") for m in messages), timeout=20000)
    said = next(m for m in messages if m.startswith("Cancelled: "))
    scheduled = 0 if "scheduled 0 " in said else 1000  # the lock held its first batch, or none
    assert said == (f"Cancelled: scheduled {scheduled:,} registries for resync; "
                    "the others are as they were."), said
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(table).where(
            table.c.id <= scheduled, table.c.state != SyncState.PENDING)).scalar() == 0
        after = dict(connection.execute(select(table.c.id, table.c.state).where(
            table.c.id > scheduled)).all())
    assert after == {n: row["state"] for n, row in enumerate(ROWS + rows, 1) if n > scheduled}
    qtbot.waitUntil(lambda: dialog() is None, timeout=5000)

    messages.clear()
    page.act_on_filter("resync", failed_only=False)  # now to its end, the dialog counting
    qtbot.waitUntil(lambda: any(m.startswith("Scheduled ") for m in messages), timeout=20000)
    assert "Scheduled 5,060 registries for resync." in messages
