"""Leases in the tracking DB, so that of several engines sharing it only one
consumes the event log and walks the registry consistency at a time (GitLab
uses Redis leases for the same). A lease expires unless renewed, so a
crashed holder is replaced within one TTL."""
from __future__ import annotations

import datetime as dt
import os
import socket
import uuid

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from backend.db.engine import is_postgresql, writing
from backend.db.tracking_schema import EngineLease
from backend.framework.clock import utcnow

DEFAULT_TTL = dt.timedelta(seconds=30)


def new_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    def __init__(self, engine: Engine, name: str, holder: str,
                 ttl: dt.timedelta = DEFAULT_TTL) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder
        self.ttl = ttl

    def acquire(self) -> bool:
        """Take or renew the lease; False while another holder has it."""
        now = utcnow()
        dialect_insert = pg_insert if is_postgresql(self.engine) else sqlite_insert
        statement = dialect_insert(EngineLease).values(
            name=self.name, holder=self.holder, expires_at=now + self.ttl)
        table = EngineLease.__table__
        statement = statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": statement.excluded.holder,
                  "expires_at": statement.excluded.expires_at},
            where=(table.c.holder == self.holder) | (table.c.expires_at < now),
        ).returning(table.c.holder)
        with writing(self.engine) as connection:
            return connection.execute(statement).first() is not None

    def release(self) -> None:
        table = EngineLease.__table__
        with writing(self.engine) as connection:
            connection.execute(delete(table).where(table.c.name == self.name,
                                                   table.c.holder == self.holder))
