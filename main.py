"""Geo Console: `python main.py` opens the console (the embedded demo, or
`--config FILE`); `python main.py --help` lists the commands (sites,
engine, status, reports, demo)."""
import importlib.util
import sys

from backend.cli import main


def open_console(**options):
    from app.main import run_console  # imported only when a window is wanted
    return run_console(**options)


if __name__ == "__main__":
    # The console is an optional install (the [console] extra); the backend
    # never imports it, so the choice is made here.
    console = open_console if importlib.util.find_spec("PySide6") else None
    sys.exit(main(open_console=console))
