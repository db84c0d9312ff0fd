"""Which secondary is which, when two report under one name.

The primary keeps the latest status of each secondary by name. Two
secondaries configured with the same name (a configuration copied to
another machine, or a second site on one machine) would overwrite each
other's status every few seconds, and the primary's Sites view would flip
between them. Each secondary therefore reports an instance id: a hash of
its host name and its listen address. It is the same on every restart of
that secondary, also one rebuilt from scratch in place (a new tracking
database and storage folder), and different for another machine or
another port. The primary refuses a report under a name whose last
report came from another instance that still reports: it has not said it
stopped (a secondary reports once more when it stops) and has missed fewer
than two of its reports. A secondary that crashed frees its name after
two of its status intervals.
"""
from __future__ import annotations

import hashlib
import socket


class SiteNameTaken(ValueError):
    """Another secondary reports to the primary under this name; the message
    says which and what to do."""


def instance_id(listen: str) -> str:
    identity = "\0".join((socket.gethostname(), listen.strip()))
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def host_name() -> str:
    return socket.gethostname()


def name_taken_message(name: str, host: str | None, seconds_ago: float,
                       free_in: float) -> str:
    where = f" on {host}" if host else ""
    return (f"another secondary named {name!r}{where} reported to the primary "
            f"{int(seconds_ago)} s ago and still runs; give each secondary a name of its "
            f"own (if that one is gone, its name is free in {max(1, int(free_in))} s)")
