"""Files the console ships beside its code: icons, palettes, the desktop entry.

A leaf package on purpose (SPEC: imported by nothing of the backend, importing
nothing of the project): standard library only, so packaging scripts, tests
and headless tools can find the files without Qt. Turning a path into a QIcon
or a QPalette is the application's business.

Paths are real files next to this module rather than importlib.resources
traversables: QIcon and QSvgRenderer want file names, and setuptools installs
wheels and editable checkouts unzipped, so ``Path(__file__).parent`` is the
package directory in both.
"""
from __future__ import annotations

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent

APP_ICON = "geo-console"
SCHEMES = ("light", "dark")
# Label spellings of backend.framework.states (SyncState / VerificationState),
# repeated here because this package may not import the backend.
SYNC_STATES = ("pending", "started", "synced", "failed")
VERIFICATION_STATES = ("pending", "started", "succeeded", "failed", "disabled")
STATES = ("pending", "started", "synced", "succeeded", "failed", "disabled")


def path(name: str) -> pathlib.Path:
    """The file `name` (relative, "/"-separated) inside the package.

    Raises FileNotFoundError at once: QIcon takes a missing file silently and
    the typo would only show up as a blank space in the sidebar.
    """
    target = (ROOT / name).resolve()
    if ROOT not in target.parents:
        raise ValueError(f"{name!r} is outside the resources package")
    if not target.is_file():
        raise FileNotFoundError(f"no resource {name!r} in {ROOT}")
    return target


def icon(name: str) -> pathlib.Path:
    """An icon by stem: "geo-console", "state-failed", or a bare state name."""
    if name in STATES:
        name = f"state-{name}"
    return path(f"icons/{name}.svg")


def palette(scheme: str) -> dict[str, str]:
    """QPalette colour role name -> "#rrggbb" for the Active/Inactive groups."""
    return {role: colour for role, colour in _read(scheme).items() if isinstance(colour, str)}


def disabled_palette(scheme: str) -> dict[str, str]:
    """Roles that differ in the Disabled group (the rest keep their active colour)."""
    return dict(_read(scheme)["disabled"])


def chart_colours(scheme: str) -> dict[str, str]:
    """"background", "foreground" (axes, labels) and "grid" for the pyqtgraph charts."""
    return dict(_read(scheme)["chart"])


def _read(scheme: str) -> dict:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown colour scheme {scheme!r}; expected one of: {', '.join(SCHEMES)}")
    with path(f"palettes/{scheme}.toml").open("rb") as handle:
        return tomllib.load(handle)
