"""What each registry is: the primary's descriptions reach the secondary in
batches (the consistency walk, a batch of events), are kept beside the
registries, and every view can search and sort by them, page by page, on
SQLite and PostgreSQL."""
import datetime as dt
import hashlib

import pytest
from sqlalchemy import update

from backend.framework.scope import SyncScope
from backend.framework.states import SyncState
from backend.replicables import replicator_for
from backend.secondary import registry_query
from backend.secondary.consistency import RegistryConsistency
from backend.secondary.event_consumer import EventConsumer
from backend.secondary.geo_client import GeoClient
from backend.secondary.local_storage import LocalStorage
from backend.secondary.registry_details import RegistryDetails
from backend.secondary.registry_selection import RegistrySelection
from tests.support.registries import Registries
from tests.support.sites import wait_for_checksums

CoolWidgets = replicator_for("cool_widget")
PackageFiles = replicator_for("package_file")


@pytest.fixture
def client(primary, credentials):
    client = GeoClient(primary.url, credentials["access_key"], credentials["secret"])
    yield client
    client.close()


def rows_of(engine, replicator, selection=RegistrySelection(), sort="ID_ASC"):
    return registry_query.fetch_page(engine, replicator, selection, sort, first=500).rows


@pytest.mark.parametrize("replicator", [CoolWidgets, PackageFiles], ids=lambda r: r.replicable_name)
def test_the_walk_brings_each_records_description(primary, client, tracking_engine, tmp_path,
                                                   replicator):
    catalog = primary.catalog(replicator)
    project = catalog.add_project("web", "acme/tools", shard="fast")
    ids = [catalog.add_bytes(b"data %d" % i, f"build-{i}.zip", project_id=project)
           for i in range(3)]
    wait_for_checksums(primary, replicator)
    walk = RegistryConsistency(tracking_engine, client, LocalStorage(tmp_path / "s"),
                               SyncScope())
    result = walk.run_full_pass(replicator)
    assert result.created == 3 and result.described == 3
    rows = {row.model_id: row for row in rows_of(tracking_engine, replicator)}
    for number, model_id in enumerate(ids):
        row = rows[model_id]
        assert row.file_name == f"build-{number}.zip" and row.size == len(b"data %d" % number)
        assert row.project_path == "acme/tools/web" and row.shard == "fast"
        assert row.storage == "local" and row.project_id == project
        assert row.primary_checksum == hashlib.sha256(b"data %d" % number).hexdigest()
    # Nothing changed: the next pass writes nothing.
    assert walk.run_full_pass(replicator).described == 0


def test_events_describe_the_records_they_create(primary, client, tracking_engine, tmp_path):
    enabled = {"cool_widget": CoolWidgets}
    consumer = EventConsumer(tracking_engine, client, LocalStorage(tmp_path / "s"),
                             lambda: enabled, SyncScope())
    consumer.run_once()  # the cursor starts at the primary's newest event
    model_id = primary.catalog().add_bytes(b"fresh", "fresh.bin")
    assert consumer.run_once() >= 1
    [row] = rows_of(tracking_engine, CoolWidgets)
    assert row.model_id == model_id and row.file_name == "fresh.bin" and row.size == 5


def fill(engine, count: int) -> list[int]:
    """Registries 1..count with details chosen so every sort has ties and
    NULLs: sizes repeat, some file names and times are unknown."""
    store = Registries(engine, CoolWidgets)
    store.insert_pending(range(1, count + 1))
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    described = [{"id": n, "file_name": None if n % 6 == 0 else f"f-{(n * 7) % 11:02d}.bin",
                  "size": None if n % 9 == 0 else (n * 13) % 5, "file_store": 1 + n % 2,
                  "project_id": n % 3, "project_path": None if n % 4 == 0 else f"g/p{n % 5}",
                  "shard": "default", "checksum": "ab" * 32}
                 for n in range(1, count + 1)]
    RegistryDetails(engine, CoolWidgets).record(described)
    table = store.table
    with engine.begin() as connection:
        for n in range(1, count + 1):
            connection.execute(update(table).where(store.fk == n).values(
                last_synced_at=None if n % 5 == 0 else t0 + dt.timedelta(minutes=(n * 3) % 7),
                verified_at=None if n % 2 else t0 + dt.timedelta(hours=n % 4)))
    return list(range(1, count + 1))


def expected_order(rows, sort: str) -> list[int]:
    key, descending = registry_query.SORTS[sort]
    column = key.column

    def value(row):
        return row.registry_id if column == "id" else getattr(row, column)

    def tie(row):
        return row.model_id if key.details else row.registry_id
    known = sorted((r for r in rows if value(r) is not None), key=lambda r: (value(r), tie(r)))
    unknown = sorted((r for r in rows if value(r) is None), key=tie)
    ordered = known + unknown
    return [r.registry_id for r in (ordered[::-1] if descending else ordered)]


@pytest.mark.parametrize("sort", sorted(registry_query.SORTS))
def test_every_sort_pages_by_cursor_and_offset_in_one_order(tracking_engine, sort):
    fill(tracking_engine, 60)
    everything = rows_of(tracking_engine, CoolWidgets)
    expected = expected_order(everything, sort)
    selection = RegistrySelection()
    # Forward by cursor, pages of 7.
    seen, after = [], None
    while True:
        page = registry_query.fetch_page(tracking_engine, CoolWidgets, selection, sort,
                                         first=7, after=after)
        seen += [row.registry_id for row in page.rows]
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert seen == expected
    # Backward from the end by cursor.
    seen, before = [], None
    while True:
        page = registry_query.fetch_page(tracking_engine, CoolWidgets, selection, sort,
                                         last=9, before=before)
        seen = [row.registry_id for row in page.rows] + seen
        if not page.has_previous_page:
            break
        before = page.start_cursor
    assert seen == expected
    # Random access (the console's table).
    for offset in (0, 13, 55):
        page = registry_query.fetch_page(tracking_engine, CoolWidgets, selection, sort,
                                         first=10, offset=offset)
        assert [row.registry_id for row in page.rows] == expected[offset:offset + 10]
    # A filter and a sort together.
    narrowed = RegistrySelection(replication_state=SyncState.PENDING, keyword="f-0")
    rows = rows_of(tracking_engine, CoolWidgets, narrowed, sort)
    assert [r.registry_id for r in rows] == \
        [i for i in expected if everything[i - 1].file_name
         and everything[i - 1].file_name.startswith("f-0")]


def test_a_keyword_finds_file_names_as_typed(tracking_engine):
    fill(tracking_engine, 30)
    found = rows_of(tracking_engine, CoolWidgets, RegistrySelection(keyword="F-03.BIN"))
    assert found and {row.file_name for row in found} == {"f-03.bin"}
    # % and _ are letters in a search, not wildcards.
    assert rows_of(tracking_engine, CoolWidgets, RegistrySelection(keyword="f_03")) == []
    assert rows_of(tracking_engine, CoolWidgets, RegistrySelection(keyword="f-%")) == []


def test_a_cursor_of_one_sort_is_refused_by_another(tracking_engine):
    fill(tracking_engine, 5)
    page = registry_query.fetch_page(tracking_engine, CoolWidgets, RegistrySelection(),
                                     "FILE_NAME_ASC", first=2)
    with pytest.raises(registry_query.QueryError):
        registry_query.fetch_page(tracking_engine, CoolWidgets, RegistrySelection(),
                                  "SIZE_ASC", first=2, after=page.end_cursor)
