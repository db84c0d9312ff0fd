"""The virtual registry model: Qt's model tester, paging, stale answers."""
from types import SimpleNamespace

import pytest

from widgets.registry_table_model import (LOADING, MAX_CACHED_PAGES, PAGE_SIZE,
                                          RegistryTableModel)


def make_rows(count):
    """Plain rows read by attribute, as the console's registry rows are."""
    return [SimpleNamespace(registry_id=n, model_id=n + 100, state="synced",
                            verification_state="succeeded", retry_count=0, last_synced_at=None,
                            verified_at=None, retry_at=None, last_sync_failure=None,
                            verification_failure=None, checksum_mismatch=False,
                            created_at=None)
            for n in range(1, count + 1)]


class Owner:
    """Answers the model's requests later, as the console's loader does."""

    def __init__(self, model, rows):
        self.model, self.rows, self.pending = model, rows, []
        model.countRequested.connect(lambda gen: self.pending.append(("count", gen, None)))
        model.pageRequested.connect(lambda gen, page: self.pending.append(("page", gen, page)))

    def serve(self):
        while self.pending:
            kind, generation, page = self.pending.pop(0)
            if kind == "count":
                self.model.set_count(generation, len(self.rows))
            else:
                self.model.set_page(generation, page,
                                    self.rows[page * PAGE_SIZE:(page + 1) * PAGE_SIZE])


@pytest.fixture
def loaded(qapp):
    model = RegistryTableModel()
    owner = Owner(model, make_rows(1000))
    model.reset()
    owner.serve()
    for row in range(0, 1000, PAGE_SIZE):
        model.index(row, 0).data()
    owner.serve()
    return model, owner


def test_qt_model_tester_accepts_the_model(loaded, qtmodeltester):
    model, _ = loaded
    qtmodeltester.check(model, force_py=True)


def test_rows_come_in_pages_for_what_is_read(qapp):
    model = RegistryTableModel()
    owner = Owner(model, make_rows(1000))
    model.reset()
    owner.serve()
    assert model.rowCount() == 1000
    assert model.index(0, 0).data() == LOADING and model.index(999, 1).data() is None
    assert [(k, p) for k, _g, p in owner.pending] == [("page", 0), ("page", 4)]
    owner.serve()
    assert model.index(0, 0).data() == "1" and model.index(999, 1).data() == "1100"
    assert sorted(model._pages) == [0, 4]  # never all rows


def test_a_page_is_asked_for_once(qapp):
    model = RegistryTableModel()
    owner = Owner(model, make_rows(500))
    model.reset()
    owner.serve()
    for row in (250, 251, 300):
        assert model.index(row, 0).data() == LOADING
    assert [p for _k, _g, p in owner.pending] == [1]


def test_stale_answers_are_dropped(qapp):
    model = RegistryTableModel()
    owner = Owner(model, make_rows(999))
    model.reset()
    old = model.generation
    model.reset()  # a new filter before the answers came
    model.set_count(old, 999)
    model.set_page(old, 0, make_rows(200))
    assert model.rowCount() == 0 and not model._pages
    owner.pending.clear()
    model.set_count(model.generation, 5)
    assert model.rowCount() == 5


def test_refresh_keeps_rows_until_new_ones_arrive(loaded):
    model, owner = loaded
    model.refresh()
    assert model.index(10, 0).data() == "11"   # old rows still shown
    owner.rows = make_rows(1000)[::-1]
    owner.serve()
    assert model.index(10, 0).data() == "990"


def test_cache_stays_bounded(qapp):
    model = RegistryTableModel()
    owner = Owner(model, make_rows(100_000))
    model.reset()
    owner.serve()
    for row in range(0, 100_000, PAGE_SIZE):
        model.index(row, 0).data()
        owner.serve()
    assert len(model._pages) <= MAX_CACHED_PAGES
    assert model.index(99_999, 0).data() == "100000"
