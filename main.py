"""Geo Console: `python main.py` opens the console (the embedded demo, or
`--config FILE`); `python main.py --help` lists the commands (sites,
engine, status, reports, demo)."""
import sys

from app.launcher import main

if __name__ == "__main__":
    sys.exit(main())
