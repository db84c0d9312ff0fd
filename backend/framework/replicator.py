"""Replicators: one class per replicable type, found through one registry.

A type becomes replicable by declaring a Replicator subclass with its model,
registry model and where the primary keeps its verification state, and
decorating it with @register. The engine, APIs, status, metrics, CLI and GUI
discover types only through `backend.replicables.registered()`, which
imports the declarations; this module never imports them back.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy import Table


class FileStore:
    LOCAL = 1
    REMOTE = 2


@dataclass(frozen=True)
class VerificationStorage:
    """Where the primary keeps a type's verification state.

    `table` holds the verification columns and `key` the column naming the
    model row: the model's own `id` when the columns are on the model
    (template option 1), or `<name>_id` of a `<name>_states` table (option 2).
    """

    table: Table
    key: str
    separate: bool

    @classmethod
    def on_model(cls, model) -> "VerificationStorage":
        return cls(table=model.__table__, key="id", separate=False)

    @classmethod
    def state_table(cls, state_model, key: str) -> "VerificationStorage":
        return cls(table=state_model.__table__, key=key, separate=True)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class ReplicableType:
    """A type as a client of a site sees it: its names, whether declared here
    (`Replicator.describe()`) or discovered from a site's API. The attribute
    names are the Replicator's, so either can be given where only names are
    read (reports, the console)."""

    replicable_name: str   # cool_widget
    plural_name: str       # cool_widgets: the prefix of its status fields
    title: str             # Cool Widget: its model
    title_plural: str      # Cool Widgets
    registry_fk: str       # cool_widget_id
    graphql_name: str      # CoolWidget: CoolWidgetRegistry, coolWidgetRegistries

    @property
    def feature_flag(self) -> str:
        return f"geo_{self.replicable_name}_replication"


class Replicator:
    """Base of every replicator; subclasses only declare class attributes."""

    model: ClassVar[type]
    registry: ClassVar[type]
    verification: ClassVar[VerificationStorage]
    # Blobs in object storage may only be replicated with sync_object_storage.
    object_storable: ClassVar[bool] = True
    # Mutable types set an existing registry pending again on `created`.
    mutable: ClassVar[bool] = True
    # Version in which the type was added (documented in DATA_TYPES.md).
    since: ClassVar[str] = "0.1"
    # The uploader GitLab names in a `deleted` event; derived when not declared.
    uploader_class: ClassVar[str]

    # Derived from the class name in __init_subclass__.
    replicable_name: ClassVar[str]
    plural_name: ClassVar[str]
    title: ClassVar[str]
    title_plural: ClassVar[str]
    registry_fk: ClassVar[str]
    feature_flag: ClassVar[str]
    graphql_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        base = cls.__name__.removesuffix("Replicator")
        cls.replicable_name = _snake(base)
        cls.plural_name = cls.__dict__.get("plural_name", cls.replicable_name + "s")
        cls.title = " ".join(word.title() for word in cls.replicable_name.split("_"))
        cls.title_plural = cls.__dict__.get("title_plural", cls.title + "s")
        cls.registry_fk = f"{cls.replicable_name}_id"
        cls.feature_flag = f"geo_{cls.replicable_name}_replication"
        cls.graphql_name = base  # CoolWidget -> CoolWidgetRegistry, coolWidgetRegistries
        cls.uploader_class = cls.__dict__.get("uploader_class", base + "Uploader")

    @classmethod
    def describe(cls) -> ReplicableType:
        return ReplicableType(cls.replicable_name, cls.plural_name, cls.title, cls.title_plural,
                              cls.registry_fk, cls.graphql_name)

    # Convenience accessors used by the engine.
    @classmethod
    def model_table(cls) -> Table:
        return cls.model.__table__

    @classmethod
    def registry_table(cls) -> Table:
        return cls.registry.__table__

    @classmethod
    def details_table(cls) -> Table:
        """What each registry is (framework/columns.registry_details_table)."""
        return cls.registry.__table__.metadata.tables[f"{cls.replicable_name}_registry_details"]


class ReplicatorRegistry:
    """The one list of replicable types."""

    def __init__(self) -> None:
        self._by_name: dict[str, type[Replicator]] = {}

    def register(self, cls: type[Replicator]) -> type[Replicator]:
        existing = self._by_name.get(cls.replicable_name)
        if existing is not None and existing is not cls:
            raise ValueError(f"replicable {cls.replicable_name!r} is already registered")
        self._by_name[cls.replicable_name] = cls
        return cls

    def unregister(self, cls: type[Replicator]) -> None:
        self._by_name.pop(cls.replicable_name, None)

    def all(self) -> list[type[Replicator]]:
        return list(self._by_name.values())

    def get(self, name: str) -> type[Replicator]:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown replicable type {name!r}") from None


REPLICATORS = ReplicatorRegistry()


def register(cls: type[Replicator]) -> type[Replicator]:
    return REPLICATORS.register(cls)
