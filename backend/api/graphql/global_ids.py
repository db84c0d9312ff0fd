"""GitLab global ids: `gid://gitlab/Geo::CoolWidgetRegistry/42`."""
from __future__ import annotations

import re

from backend.db.types import MAX_ID

PATTERN = re.compile(r"^gid://gitlab/(?P<model>[A-Za-z:]+)/(?P<id>[1-9][0-9]{0,18})$")


def registry_model(replicator) -> str:
    return f"Geo::{replicator.graphql_name}Registry"


def registry_gid(replicator, registry_id: int) -> str:
    return f"gid://gitlab/{registry_model(replicator)}/{registry_id}"


def parse_gid(value) -> tuple[str, int]:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a global id string")
    match = PATTERN.match(value)
    if not match or int(match.group("id")) > MAX_ID:
        raise ValueError(f"{value!r} is not a valid global id")
    return match.group("model"), int(match.group("id"))
