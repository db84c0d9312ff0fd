"""Default locations: the user's data folder (platformdirs) for the demo."""
from __future__ import annotations

import os
import pathlib

import platformdirs

APP_NAME = "geo-console"


def data_dir() -> pathlib.Path:
    override = os.environ.get("GEO_CONSOLE_HOME")
    if override:
        return pathlib.Path(override)
    return pathlib.Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def demo_dir() -> pathlib.Path:
    return data_dir() / "demo"
