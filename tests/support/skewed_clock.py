"""Run `main.py` with this process's machine clock skewed:

    python -m tests.support.skewed_clock SECONDS main.py ARGS...

A fault the suite cannot cause otherwise (setting the real clock would skew
every process on the machine): the product's Clock reads the machine's
time through `Clock._wall`, which this wraps. SQLite's and PostgreSQL's
own clocks stay true, as a database server's would.
"""
import datetime as dt
import runpy
import sys

from backend.framework.clock import Clock


def main() -> None:
    skew = dt.timedelta(seconds=float(sys.argv[1]))
    wall = Clock._wall
    Clock._wall = staticmethod(lambda: wall() + skew)
    sys.argv = sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
