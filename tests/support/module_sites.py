"""Module-scoped databases for property-based tests: one server per module
and database kind, so hypothesis runs its examples against a site that is
already up (the per-test fixtures in conftest.py would start one per test)."""
from __future__ import annotations

import pytest

from tests.conftest import DB_KINDS, DatabaseFactory, require_database


@pytest.fixture(scope="module", params=DB_KINDS)
def module_databases(request, tmp_path_factory):
    require_database(request.param)
    factory = DatabaseFactory(request.param, tmp_path_factory.mktemp(request.param))
    yield factory
    factory.cleanup()


def assert_readable(message) -> None:
    """A message for a person: text, not a Python traceback."""
    assert isinstance(message, str) and message.strip(), message
    assert "Traceback" not in message and 'File "' not in message, message
