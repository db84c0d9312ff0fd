"""The resources package: icons, palettes and the desktop entry it ships."""
from __future__ import annotations

import ast
import configparser
import itertools
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import resources

ROOT = resources.ROOT
SVG = "{http://www.w3.org/2000/svg}"
ICONS = [resources.APP_ICON] + [f"state-{state}" for state in resources.STATES]
# The colours the console draws the state texts in; an icon beside a state
# text must carry the same colour.
STATE_COLOURS = {"pending": "#c98a12", "started": "#3b82c4", "synced": "#2e9e5b",
                 "succeeded": "#2e9e5b", "failed": "#d9534f", "disabled": "#888888"}
ROLES = ("Window", "WindowText", "Base", "AlternateBase", "ToolTipBase", "ToolTipText",
         "PlaceholderText", "Text", "Button", "ButtonText", "BrightText", "Highlight",
         "HighlightedText", "Link", "LinkVisited", "Mid", "Midlight", "Dark", "Shadow", "Light")
# (foreground, background) drawn on each other; WCAG AA asks 4.5:1 for text.
TEXT_PAIRS = [("Text", "Base"), ("WindowText", "Window"), ("Text", "AlternateBase"),
              ("ButtonText", "Button"), ("ToolTipText", "ToolTipBase"),
              ("HighlightedText", "Highlight"), ("PlaceholderText", "Base"),
              ("Link", "Base"), ("LinkVisited", "Base")]
HEX = re.compile(r"#[0-9a-f]{6}")


def contrast(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two "#rrggbb" colours."""
    def luminance(colour):
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_helper_matches_known_ratios():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)


# --- the module -----------------------------------------------------------

def test_every_state_of_both_state_machines_has_an_icon():
    assert set(resources.SYNC_STATES) | set(resources.VERIFICATION_STATES) == set(resources.STATES)
    for state in resources.STATES:
        assert resources.icon(state) == resources.icon(f"state-{state}") == \
            ROOT / "icons" / f"state-{state}.svg"
    assert resources.icon(resources.APP_ICON).name == "geo-console.svg"


def test_state_names_match_the_backend_labels():
    from backend.framework.states import SyncState, VerificationState
    assert resources.SYNC_STATES == tuple(state.label for state in SyncState)
    assert resources.VERIFICATION_STATES == tuple(state.label for state in VerificationState)


def test_a_missing_or_outside_name_is_refused():
    with pytest.raises(FileNotFoundError):
        resources.icon("state-unknown")
    with pytest.raises(FileNotFoundError):
        resources.path("icons")  # a folder is not a resource file
    with pytest.raises(ValueError):
        resources.path("../pyproject.toml")
    with pytest.raises(ValueError, match="light, dark"):
        resources.palette("sepia")


def test_resources_imports_nothing_but_the_standard_library():
    offenders = []
    for source in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0
                     else ["<relative>"] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{source.name}: {name}" for name in names
                          if name.split(".")[0] not in sys.stdlib_module_names]
    assert offenders == []


def test_resources_works_with_qt_and_the_project_unimportable():
    code = (
        "import sys\n"
        "for name in ('PySide6', 'shiboken6', 'pyqtgraph', 'backend', 'app', 'widgets'):\n"
        "    sys.modules[name] = None\n"
        "before = set(sys.modules)\n"
        "import resources\n"
        "for state in resources.STATES: resources.icon(state)\n"
        "resources.icon(resources.APP_ICON); resources.path('geo-console.desktop')\n"
        "for scheme in resources.SCHEMES:\n"
        "    resources.palette(scheme); resources.disabled_palette(scheme)\n"
        "    resources.chart_colours(scheme)\n"
        "loaded = {name.split('.')[0] for name in set(sys.modules) - before}\n"
        "foreign = sorted(loaded - set(sys.stdlib_module_names) - {'resources'})\n"
        "print(foreign)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT.parent,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- icons ----------------------------------------------------------------

@pytest.mark.parametrize("name", ICONS)
def test_icon_is_self_contained_svg(name):
    root = ET.parse(resources.icon(name)).getroot()
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox"), "a viewBox lets the icon scale to any size"
    tags = {element.tag.removeprefix(SVG) for element in root.iter()}
    assert not tags & {"image", "text", "tspan", "foreignObject", "script", "style"}
    for element in root.iter():
        for attribute, value in element.attrib.items():
            if attribute.endswith("href"):
                assert value.startswith("#"), f"external reference {value!r}"
            assert "url(" not in value or value.startswith("url(#"), value


def render(name: str, size: int):
    QtGui = pytest.importorskip("PySide6.QtGui")
    QtSvg = pytest.importorskip("PySide6.QtSvg")
    renderer = QtSvg.QSvgRenderer(str(resources.icon(name)))
    assert renderer.isValid(), f"{name} does not parse as SVG for Qt"
    image = QtGui.QImage(size, size, QtGui.QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QtGui.QPainter(image)
    renderer.render(painter)
    painter.end()
    return image


def pixels(image):
    """(r, g, b, a) of every pixel."""
    return [image.pixelColor(x, y).getRgb()
            for y in range(image.height()) for x in range(image.width())]


def test_app_icon_renders_opaque_at_full_size(qapp):
    image = render(resources.APP_ICON, 256)
    opaque = sum(1 for *_, alpha in pixels(image) if alpha == 255)
    assert opaque > 0.6 * 256 * 256, "the app icon is a filled tile"
    assert image.pixelColor(0, 0).alpha() == 0, "rounded corners stay transparent"


@pytest.mark.parametrize("state", resources.STATES)
def test_state_icon_renders_in_its_state_colour(qapp, state):
    """Ink is the state colour; white marks and anti-aliased edges between the
    two are allowed, any other hue is not."""
    image = render(f"state-{state}", 64)
    drawn = [(r, g, b) for r, g, b, alpha in pixels(image) if alpha == 255]
    assert len(drawn) > 64 * 64 * 0.1
    ink = tuple(int(STATE_COLOURS[state][i:i + 2], 16) for i in (1, 3, 5))
    assert sum(rgb == ink for rgb in drawn) > 0.5 * len(drawn)
    for rgb in drawn:
        towards_white = [(value - base) / (255 - base) for value, base in zip(rgb, ink)]
        assert max(towards_white) - min(towards_white) < 0.05, "#%02x%02x%02x" % rgb


@pytest.mark.parametrize("size", [16, 24])
def test_state_icons_differ_in_shape_not_only_colour(qapp, size):
    """Drop the colour: each pixel is clear, ink, or white mark. Every pair of
    state icons must still differ in a fair share of the pixels either draws
    (the closest pair, synced's check against failed's cross, is about 16%)."""
    def shape(state):
        return [0 if alpha < 128 else 2 if min(r, g, b) > 200 else 1
                for r, g, b, alpha in pixels(render(f"state-{state}", size))]
    shapes = {state: shape(state) for state in resources.STATES}
    for first, second in itertools.combinations(resources.STATES, 2):
        pairs = list(zip(shapes[first], shapes[second]))
        differing = sum(a != b for a, b in pairs)
        drawn = sum(1 for a, b in pairs if a or b)
        assert differing >= 0.12 * drawn, f"{first} and {second} look alike"


# --- palettes -------------------------------------------------------------

@pytest.mark.parametrize("scheme", resources.SCHEMES)
def test_palette_has_every_role_with_a_hex_colour(scheme):
    colours = resources.palette(scheme)
    assert sorted(colours) == sorted(ROLES)
    disabled = resources.disabled_palette(scheme)
    assert sorted(disabled) == ["ButtonText", "Text", "WindowText"]
    chart = resources.chart_colours(scheme)
    assert sorted(chart) == ["background", "foreground", "grid"]
    for value in [*colours.values(), *disabled.values(), *chart.values()]:
        assert HEX.fullmatch(value), value


def test_palette_role_names_are_qt_colour_roles():
    QtGui = pytest.importorskip("PySide6.QtGui")
    for role in ROLES:
        assert isinstance(getattr(QtGui.QPalette.ColorRole, role), QtGui.QPalette.ColorRole)


@pytest.mark.parametrize("scheme", resources.SCHEMES)
def test_text_colours_meet_wcag_aa(scheme):
    colours = resources.palette(scheme)
    weak = {f"{fg} on {bg}": round(contrast(colours[fg], colours[bg]), 2)
            for fg, bg in TEXT_PAIRS if contrast(colours[fg], colours[bg]) < 4.5}
    assert weak == {}
    chart = resources.chart_colours(scheme)
    assert contrast(chart["foreground"], chart["background"]) >= 4.5


@pytest.mark.parametrize("scheme", resources.SCHEMES)
def test_disabled_text_is_dimmer_yet_legible(scheme):
    colours, disabled = resources.palette(scheme), resources.disabled_palette(scheme)
    backgrounds = {"Text": "Base", "WindowText": "Window", "ButtonText": "Button"}
    for role, background in backgrounds.items():
        ratio = contrast(disabled[role], colours[background])
        assert 3.0 <= ratio < contrast(colours[role], colours[background]) - 3, role


def test_schemes_are_light_and_dark_as_named():
    light, dark = resources.palette("light"), resources.palette("dark")
    assert contrast(light["Window"], "#000000") > contrast(light["Window"], "#ffffff")
    assert contrast(dark["Window"], "#ffffff") > contrast(dark["Window"], "#000000")
    # The dark charts keep the background they had before the palettes.
    assert resources.chart_colours("dark")["background"] == "#1e1f22"


# --- desktop entry --------------------------------------------------------

def desktop_entry():
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(resources.path("geo-console.desktop"), encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_entry_has_the_required_keys():
    entry = desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Geo Console"
    assert entry["GenericName"] and entry["Comment"]
    assert entry["Exec"].split()[0] == "geo-console"
    assert entry["Terminal"] == "false"
    assert resources.icon(entry["Icon"]).is_file()
    assert entry["Categories"].endswith(";")
    assert {"Network", "System", "Monitor"} <= set(entry["Categories"].split(";"))
    assert entry["Keywords"].endswith(";") and "replication" in entry["Keywords"].split(";")


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-utils is not installed")
def test_desktop_entry_passes_desktop_file_validate():
    result = subprocess.run(["desktop-file-validate", str(resources.path("geo-console.desktop"))],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error:" not in result.stdout
