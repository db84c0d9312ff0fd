"""Ports on loopback for the benchmarks' servers."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0,
                  process: subprocess.Popen | None = None) -> None:
    """Until something listens on `port`; stops early if `process` ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if process is not None and process.poll() is not None:
            errors = process.stderr.read().decode() if process.stderr else ""
            raise SystemExit(f"the server on port {port} stopped: {errors}")
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after {timeout} s")
