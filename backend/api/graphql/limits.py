"""Limits on what one GraphQL request may ask for (enforced in endpoint.py and
the schema; kept apart so that the API can check sizes without importing
GraphQL)."""
from __future__ import annotations

MAX_DEPTH = 10
MAX_QUERY_BYTES = 32 * 1024
MAX_PAGE_SIZE = 500
# An upper bound of the values one response may hold (graphql/cost.py):
# the console's largest page (500 registries of ~25 fields) is a quarter.
MAX_COST = 50_000
# GraphQL runs on threads of its own, never the ones that serve blobs and
# status: at most this many requests at once, each answered within its
# budget; more than GRAPHQL_QUEUE waiting are refused at once.
GRAPHQL_THREADS = 2
GRAPHQL_QUEUE = 16
GRAPHQL_BUDGET = 20.0  # seconds
