"""Declarative bases, one per database, and column helpers shared by both."""
from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase

# BIGINT primary keys on PostgreSQL; INTEGER on SQLite, where only an
# INTEGER PRIMARY KEY aliases the rowid and auto-increments.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "index_%(table_name)s_on_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "%(table_name)s_pkey",
}


class PrimaryBase(DeclarativeBase):
    """Tables of the primary site's main database."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TrackingBase(DeclarativeBase):
    """Tables of a secondary site's tracking database."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
