"""An HTTP proxy, run as its own process, that breaks answers on purpose.

    python -m tests.support.fault_proxy --upstream http://127.0.0.1:PORT --seed N
                                        [--flip-paths PREFIX]

prints `listening PORT` once ready and then reads commands on stdin, one
per line: `on` (break answers), `off` (pass everything through),
`only TREATMENT` (while on, give every request that treatment; `only` alone
goes back to random ones), `reset PATH` (always reset requests for PATH, on
or off) and `stats` (print one JSON line of how many answers got each
treatment).

While on, each request gets one treatment, at random:
  pass      forwarded unchanged
  error     answered 500, 502, 503 or 504 without reaching the primary
  reset     the connection is reset (RST) before any answer
  truncate  the answer is cut off halfway through its body
  flip      one byte of a blob body is inverted (blob downloads only, the
            paths that hold `--flip-paths`, `/retrieve/` by default: the JSON
            answers ride inside TLS in production, where a flipped bit
            breaks the connection instead)
  stall     nothing more is sent for `--stall` seconds, then the connection
            is closed (longer than the client's read timeout): after half
            the body, or before the answer when it has no body
Every connection serves one request and is closed (`Connection: close`).
`FaultProxyProcess` runs it from a test.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import socket
import os
import struct
import subprocess
import sys
from urllib.parse import urlsplit

TREATMENTS = ("pass", "error", "reset", "truncate", "flip", "stall")
WEIGHTS = (4, 1, 1, 1, 1, 1)
HEADER_END = b"\r\n\r\n"


class FaultProxy:
    def __init__(self, upstream: str, seed: int, stall: float,
                 flip_paths: str = "/retrieve/") -> None:
        self.flip_paths = flip_paths
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port or 80)
        self.rng = random.Random(seed)
        self.stall = stall
        self.faulty = False
        self.counts: collections.Counter = collections.Counter()
        self.always_reset: set[str] = set()
        self.only: str | None = None

    def choose(self, path: str) -> str:
        if path.partition("?")[0] in self.always_reset:
            return "reset"
        if not self.faulty:
            return "pass"
        treatment = self.only or self.rng.choices(TREATMENTS, WEIGHTS)[0]
        if treatment == "flip" and self.flip_paths not in path:
            treatment = "error"
        return treatment

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(HEADER_END)
            length = _content_length(head)
            body = await reader.readexactly(length) if length else b""
            path = head.split(b" ", 2)[1].decode("latin-1")
            treatment = self.choose(path)
            self.counts[treatment] += 1
            if treatment == "reset":
                _reset(writer)
                return
            if treatment == "error":
                await _send(writer, _error_answer(self.rng.choice((500, 502, 503, 504))))
                return
            answer = await self.forward(_with_connection_close(head) + body)
            header, _, payload = answer.partition(HEADER_END)
            header = _with_connection_close(header + HEADER_END)
            if treatment == "truncate" and payload:
                await _send(writer, header + payload[: len(payload) // 2])
            elif treatment == "flip" and payload:
                position = self.rng.randrange(len(payload))
                flipped = payload[:position] + bytes([payload[position] ^ 0xFF]) + \
                    payload[position + 1:]
                await _send(writer, header + flipped)
            elif treatment == "stall":
                if payload:
                    await _send(writer, header + payload[: len(payload) // 2])
                await asyncio.sleep(self.stall)
            else:
                await _send(writer, header + payload)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                OSError):
            pass
        finally:
            writer.close()

    async def forward(self, request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(*self.upstream)
        try:
            writer.write(request)
            await writer.drain()
            return await reader.read(-1)
        finally:
            writer.close()

    def command(self, line: str) -> None:
        line = line.strip()
        if line == "on":
            self.faulty = True
        elif line == "off":
            self.faulty = False
        elif line == "only" or line.startswith("only "):
            chosen = line.partition(" ")[2].strip()
            self.only = chosen if chosen in TREATMENTS else None
        elif line.startswith("reset "):
            self.always_reset.add(line.partition(" ")[2])
        elif line == "stats":
            print(json.dumps(dict(self.counts)), flush=True)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _with_connection_close(head: bytes) -> bytes:
    lines = [line for line in head[: -len(HEADER_END)].split(b"\r\n")
             if not line.lower().startswith((b"connection:", b"keep-alive:"))]
    return b"\r\n".join(lines + [b"Connection: close"]) + HEADER_END


def _error_answer(status: int) -> bytes:
    body = json.dumps({"message": f"{status} injected by the fault proxy"}).encode()
    return (f"HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:  # linger 0: close() sends RST instead of FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stall", type=float, default=3.0)
    parser.add_argument("--flip-paths", default="/retrieve/")
    args = parser.parse_args(argv)
    proxy = FaultProxy(args.upstream, args.seed, args.stall, args.flip_paths)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0, limit=1 << 16)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while line := await stdin.readline():
        proxy.command(line.decode())
    server.close()


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FaultProxyProcess:
    """The proxy as a process of its own, steered from a test."""

    def __init__(self, upstream: str, seed: int, stall: float,
                 flip_paths: str = "/retrieve/") -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fault_proxy", "--upstream", upstream,
             "--seed", str(seed), "--stall", str(stall), "--flip-paths", flip_paths],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = self.process.stdout.readline().split()
        assert first and first[0] == "listening", first
        self.url = f"http://127.0.0.1:{first[1]}"

    def send(self, command: str) -> None:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def stats(self) -> dict:
        self.send("stats")
        return json.loads(self.process.stdout.readline())

    def stop(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


if __name__ == "__main__":
    asyncio.run(main())
