"""Geo Console: `python main.py` opens the console; `python main.py --help`
lists the commands (sites, engine, status, reports, demo)."""
import sys

from backend.cli import main

if __name__ == "__main__":
    sys.exit(main())
