"""The backend is headless: it never imports Qt, app or widgets (SPEC §2)."""
import ast
import pathlib
import subprocess
import sys

BACKEND = pathlib.Path(__file__).resolve().parent.parent / "backend"
FORBIDDEN = ("PySide6", "pyqtgraph", "app", "widgets", "shiboken6")


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_backend_sources_never_import_the_gui():
    offenders = []
    for path in BACKEND.rglob("*.py"):
        for module in imported_modules(path):
            if module.split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.relative_to(BACKEND.parent)}: {module}")
    assert offenders == []


def test_backend_runs_with_qt_unavailable():
    """Import every backend module with PySide6 made unimportable."""
    code = (
        "import sys, pkgutil, importlib\n"
        "for name in ('PySide6', 'pyqtgraph', 'shiboken6'): sys.modules[name] = None\n"
        "import backend\n"
        "for info in pkgutil.walk_packages(backend.__path__, 'backend.'):\n"
        "    if '.migrations.' in info.name and info.name.endswith('env'): continue\n"
        "    importlib.import_module(info.name)\n"
        "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=BACKEND.parent,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
