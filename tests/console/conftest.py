"""Console tests: real widgets offscreen, real tracking DBs, and strict
hygiene: a test fails if it leaves a timer running or a worker busy, or if
the console's own code opens a connection or runs a query on the GUI
thread."""
from __future__ import annotations

import datetime as dt
import os
import socket
import sys
import threading
import weakref

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.support.memory_keyring import MemoryKeyring  # noqa: E402
from PySide6.QtCore import QSettings, QThreadPool, QTimer  # noqa: E402
from sqlalchemy import event, insert  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from backend.replicables import replicator_for  # noqa: E402
from backend.framework.states import SyncState, VerificationState  # noqa: E402

CoolWidgets = replicator_for("cool_widget")
T0 = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def qt_hygiene(monkeypatch, qapp):
    """Fail a test that leaves timers active or thread pools working."""
    timers = weakref.WeakSet()
    pools = weakref.WeakSet()
    original_timer_start = QTimer.start
    original_pool_start = QThreadPool.start

    def timer_start(self, *args):
        timers.add(self)
        return original_timer_start(self, *args)

    def pool_start(self, *args):
        pools.add(self)
        return original_pool_start(self, *args)

    monkeypatch.setattr(QTimer, "start", timer_start)
    monkeypatch.setattr(QThreadPool, "start", pool_start)
    yield
    qapp.processEvents()
    busy = [pool for pool in pools if not pool.waitForDone(10000)]
    active = []
    for timer in list(timers):
        try:
            if timer.isActive():
                parent = timer.parent()
                active.append(f"{timer.objectName() or 'timer'} of "
                              f"{type(parent).__name__ if parent else 'nothing'} "
                              f"({timer.interval()} ms)")
                timer.stop()
        except RuntimeError:  # its C++ object was deleted: fine
            continue
    assert not busy, "a thread pool still had work running after the test"
    assert not active, f"timers left running: {active}"


CONSOLE_CODE = (os.sep + "app" + os.sep, os.sep + "widgets" + os.sep)
TESTS = os.sep + "tests" + os.sep


def _console_frame() -> str | None:
    """The console's own frame (app/, widgets/) calling from the GUI thread,
    if any, unless the test itself called that code directly (its set-up
    and checks may wait; a slot, timer or event handler may not)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    frame, found = sys._getframe(2), None
    while frame is not None:
        name = frame.f_code.co_filename
        if any(part in name for part in CONSOLE_CODE):
            found = found or f"{name}:{frame.f_lineno} {frame.f_code.co_name}"
        elif found:  # the first frame outside the console's code: who called it
            return None if TESTS in name and not name.endswith("conftest.py") else found
        frame = frame.f_back
    return found


@pytest.fixture(autouse=True)
def no_io_on_the_gui_thread(monkeypatch):
    """Fail a test in which the console's code, on the GUI thread, opens a
    network connection or runs a database query (the test's own set-up and
    checks may: they are not the console's)."""
    caught: list[str] = []
    connect = socket.socket.connect

    def guarded_connect(self, address):
        where = _console_frame()
        if where:
            caught.append(f"connection to {address} from {where}")
        return connect(self, address)

    def guarded_query(conn, cursor, statement, *args):
        where = _console_frame()
        if where:
            caught.append(f"query {statement.split()[0]} from {where}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    event.listen(Engine, "before_cursor_execute", guarded_query)
    try:
        yield caught
    finally:
        event.remove(Engine, "before_cursor_execute", guarded_query)
    assert not caught, f"the GUI thread waited on the network or a database: {caught}"


def registry_rows(count: int = 60) -> list[dict]:
    """Registries 1..count: every 4th failed with one of two messages,
    every 10th pending, the rest synced and mostly verified."""
    rows = []
    for n in range(1, count + 1):
        failed = n % 4 == 0
        pending = n % 10 == 5
        state = SyncState.FAILED if failed else SyncState.PENDING if pending else SyncState.SYNCED
        vstate = (VerificationState.SUCCEEDED if state == SyncState.SYNCED and n % 7
                  else VerificationState.FAILED if state == SyncState.SYNCED
                  else VerificationState.PENDING)
        rows.append({
            "cool_widget_id": 500 + n, "created_at": T0, "state": state,
            "verification_state": vstate,
            "last_synced_at": T0 + dt.timedelta(minutes=n),
            "verified_at": T0 + dt.timedelta(minutes=n) if vstate == 2 else None,
            "retry_count": 1 if failed else 0,
            "last_sync_failure": ("The file is missing on the Geo primary site" if n % 8 == 0
                                  else "Downloaded file checksum mismatch") if failed else None,
            "verification_checksum": b"ab" * 32 if vstate == 2 else None,
        })
    return rows


@pytest.fixture
def local_site(tracking_url, tmp_path, credentials):
    from backend.sites.secondary import SecondarySite
    from tests.support.sites import secondary_config
    config = secondary_config("http://127.0.0.1:9", tracking_url, tmp_path / "s", credentials,
                              api_token="console-token")
    site = SecondarySite(config).start(serve=False, run_engine=False)
    with site.tracking_engine.begin() as connection:
        connection.execute(insert(CoolWidgets.registry_table()), registry_rows())
    yield site
    site.stop()


@pytest.fixture
def source(local_site):
    from app.sources import LocalSource
    return LocalSource(local_site)


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "console.ini"), QSettings.IniFormat)


def db_states(site) -> dict[int, tuple[int, int]]:
    from sqlalchemy import select
    table = CoolWidgets.registry_table()
    with site.tracking_engine.connect() as connection:
        return {row.id: (row.state, row.verification_state)
                for row in connection.execute(select(table))}


def open_window(qtbot, settings, **options):
    """A started main window that opens its own source (`opener`, …)."""
    from app.main_window import MainWindow
    window = MainWindow(settings=settings, **options)
    qtbot.addWidget(window)
    window.show()
    window.start()
    return window


@pytest.fixture
def keyring_in_memory(monkeypatch, tmp_path):
    """The console's data folder in tmp_path/home and its token store on a
    MemoryKeyring (returned), empty, with no token in the environment."""
    import keyring

    from app import token_store
    monkeypatch.setenv("GEO_CONSOLE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(token_store.ENVIRONMENT, raising=False)
    monkeypatch.setattr(token_store, "_session", {})
    memory = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(previous)
