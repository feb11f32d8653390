"""A private ``redis-server`` for the run: a free loopback port, no persistence, stopped at
the end. Mirrors the fixture in ``tests/llmcache/stores/conftest.py``; a runner is not a
pytest session, so it cannot use the fixture itself."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MISSING", "local_redis"]

MISSING = "redis-server is not installed (Debian package redis-server)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def local_redis(directory: Path) -> Iterator[tuple[str | None, str]]:
    """Yields (``redis://127.0.0.1:PORT`` or ``None``, why not)."""
    executable = shutil.which("redis-server")
    if executable is None:
        yield None, MISSING
        return
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    with open(directory / "redis.log", "wb") as log:
        # Bound to loopback only; no RDB/AOF so the server never writes to disk mid-run.
        server = subprocess.Popen(
            [
                executable,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 10
        while not _ping(port):
            if server.poll() is not None or time.monotonic() > deadline:
                yield None, f"redis-server did not start (see {directory / 'redis.log'})"
                return
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}", ""
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
