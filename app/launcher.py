"""The `geo-console` command (and `python main.py`): the CLI, with the
console offered to it when PySide6 is installed. Imports no Qt itself, so
the command runs on a headless server without the console's libraries."""
from __future__ import annotations

import importlib.util
import sys

from backend.cli import main as cli_main


def open_console(**options):
    from app.main import run_console  # imported only when a window is wanted
    return run_console(**options)


def write_pdf(path, report):
    from app.pdf_report import write_pdf_report  # Qt, only for a PDF report
    return write_pdf_report(path, report)


def open_source(kind: str, url: str, through: int | None = None):
    from app.watched_sources import open_watched  # the console's clients, only when asked
    return open_watched(kind, url, through)


def main(argv: list[str] | None = None) -> int:
    # The console is an optional install (the [console] extra); the backend
    # never imports it, so the choice is made here.
    installed = importlib.util.find_spec("PySide6") is not None
    charts = installed and importlib.util.find_spec("pyqtgraph") is not None
    clients = importlib.util.find_spec("gql") is not None
    return cli_main(argv, open_console=open_console if installed else None,
                    write_pdf=write_pdf if charts else None,
                    open_source=open_source if clients else None)


if __name__ == "__main__":
    sys.exit(main())
