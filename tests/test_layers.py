"""The floors of the architecture, as import-linter contracts (pyproject.toml):
the backend never imports Qt, the console or console-only libraries;
widgets never import the backend or the application; resources import
nothing of the product; each backend floor imports only the floors below it
(docs/ARCHITECTURE.md)."""
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("backend", "app", "widgets", "resources")
LINT = ("from importlinter.cli import lint_imports; "
        "raise SystemExit(lint_imports(no_cache=True))")


def lint(root: pathlib.Path) -> subprocess.CompletedProcess:
    """import-linter on the tree at `root`, importing that tree's packages."""
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(root),
                                                       "PATH": "/usr/bin:/bin"})


def test_every_contract_is_kept():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory):
    """A copy of the packages and the contracts, to break on purpose."""
    root = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.mark.parametrize("module,line,contract", [
    ("backend/framework/clock.py", "import PySide6.QtCore", "The backend runs headless"),
    ("backend/secondary/lease.py", "import pyqtgraph", "The backend runs headless"),
    ("backend/reports.py", "from app import sources", "The backend runs headless"),
    ("widgets/stacked_bar.py", "import backend.framework.states", "Widgets show plain data"),
    ("resources/__init__.py", "import PySide6.QtGui", "Resources are files"),
    ("resources/__init__.py", "import widgets.state_icons", "Resources are files"),
    ("backend/framework/states.py", "import backend.replicables", "The backend's floors"),
    ("backend/secondary/status.py", "import backend.api.metrics", "The backend's floors"),
    ("backend/db/engine.py", "import backend.framework.clock", "The backend's floors"),
    ("backend/secondary/lease.py", "import backend.primary.events", "The backend's floors"),
    ("backend/migrations/tracking/env.py", "import backend.sites.secondary",
     "The backend's floors"),
])
def test_a_forbidden_import_breaks_its_contract(tree_copy, module, line, contract):
    path = tree_copy / module
    original = path.read_text()
    path.write_text(original + f"\n{line}\n")
    try:
        result = lint(tree_copy)
    finally:
        path.write_text(original)
    assert result.returncode != 0, result.stdout
    broken = [text for text in result.stdout.splitlines() if text.endswith("BROKEN")]
    assert len(broken) == 1 and broken[0].startswith(contract), result.stdout


def test_backend_runs_with_qt_unavailable():
    """Import every backend module with PySide6 made unimportable."""
    code = (
        "import sys, pkgutil, importlib\n"
        "for name in ('PySide6', 'pyqtgraph', 'shiboken6', 'gql'): sys.modules[name] = None\n"
        "import backend\n"
        "for info in pkgutil.walk_packages(backend.__path__, 'backend.'):\n"
        "    if '.migrations.' in info.name and info.name.endswith('env'): continue\n"
        "    importlib.import_module(info.name)\n"
        "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
