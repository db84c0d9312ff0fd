"""The icons of the sync and verification states (resources/icons): shapes
that differ, not only colours, so a state reads without telling red from
green. One QIcon per state, made on first use."""
from __future__ import annotations

import functools

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QPixmap

import resources


@functools.cache
def state_icon(state: str) -> QIcon:
    """The icon of a state label ("failed"); an empty icon for no state."""
    if state not in resources.STATES:
        return QIcon()
    return QIcon(str(resources.icon(state)))


@functools.cache
def blank_icon(size: int = 16) -> QIcon:
    """A transparent icon, so that an entry without a state lines up with
    those that have one."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.transparent)
    return QIcon(pixmap)
