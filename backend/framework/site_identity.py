"""Which secondary is which, when two report under one name.

The primary keeps the latest status of each secondary by name. Two
secondaries configured with the same name (a copied configuration) would
overwrite each other's status every few seconds, and the primary's Sites
view would flip between them. Each secondary therefore reports an
instance id: a hash of its host name, its storage folder and its tracking
database (without a password), the same on every restart of that
secondary and different for another one. The primary refuses a report
under a name whose last report, less than OUTDATED_AFTER ago, came from
another instance; once the other has been silent that long, the name is
free again (a secondary moved to a new machine).
"""
from __future__ import annotations

import hashlib
import pathlib
import socket

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class SiteNameTaken(ValueError):
    """Another secondary reports to the primary under this name; the message
    says which and what to do."""


def instance_id(storage_path: str, tracking_database_url: str) -> str:
    try:
        database = make_url(tracking_database_url).render_as_string(hide_password=True)
    except ArgumentError:
        database = tracking_database_url
    folder = str(pathlib.Path(storage_path).expanduser().absolute())
    identity = "\0".join((socket.gethostname(), folder, database))
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def host_name() -> str:
    return socket.gethostname()


def name_taken_message(name: str, host: str | None, seconds_ago: float) -> str:
    where = f" on {host}" if host else ""
    return (f"another secondary named {name!r}{where} reported to the primary "
            f"{int(seconds_ago)} s ago; give each secondary a name of its own "
            "(the name is free again once the other has been silent for 10 minutes)")
