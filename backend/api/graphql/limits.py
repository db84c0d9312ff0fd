"""Limits on what one GraphQL request may ask for (enforced in endpoint.py and
the schema; kept apart so that the API can check sizes without importing
GraphQL)."""
from __future__ import annotations

MAX_DEPTH = 10
MAX_QUERY_BYTES = 32 * 1024
MAX_PAGE_SIZE = 500
