"""Shared fixtures for the whole suite.

The Redis fixtures need a real ``redis-server`` (Debian package ``redis-server``):
`redis_server` runs one server for the session on a free loopback port, without
persistence, in a temporary directory; `redis_url` hands each test that server emptied
(restarted first if an earlier test killed it). `fault_server` is a private server a test
may kill, restart, pause, resume and restart from its last ``SAVE``. Without
``redis-server`` installed these tests fail (CI installs it): a silent skip would hide the
whole Redis tier.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI machines are 2-core and noisy: no deadlines, bounded example counts.
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """The URL of ``python -m llmcache_testserver --engine llama`` in its own process (as
    `make demo` runs it: llama.cpp cannot load a model in a process that imported usearch
    first, and the test session imports it); skips when the local model is not installed."""
    from llmcache_testserver.llama_engine import (
        ModelFileNotFound,
        find_smollm2_gguf,
        llama_cpp_available,
    )
    from llmcache_testserver.process import spawn_server

    if not llama_cpp_available():
        pytest.skip("llama-cpp-python is not installed (make test-real installs it)")
    try:
        find_smollm2_gguf()
    except ModelFileNotFound as exc:
        pytest.skip(str(exc))
    with spawn_server(engine="llama") as url:
        yield url


# -- a real redis-server ------------------------------------------------------------------

_MISSING = (
    "redis-server is not installed; the Redis tier's tests need it: "
    "apt-get install redis-server (CI installs it in .ci/run)"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(port: int, command: bytes, timeout: float = 0.5) -> bytes:
    """Send one inline command and read the reply (raw socket: no client to close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(command + b"\r\n")
        return sock.recv(64)


class RedisServer:
    """One ``redis-server`` process on a fixed loopback port, which tests may kill (SIGKILL),
    restart on the same port, pause (SIGSTOP: slower than any timeout) and resume."""

    def __init__(self, directory: Path) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail(_MISSING, pytrace=False)
        self.executable = executable
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "redis.log", "ab") as log:  # the child keeps its own fd
            self.process = subprocess.Popen(
                [
                    self.executable,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.directory),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}; "
                    f"see {self.directory / 'redis.log'}"
                )
            try:
                if _command(self.port, b"PING").startswith(b"+PONG"):
                    return
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would (no clean shutdown; the data is gone)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def save(self) -> None:
        """SAVE a snapshot into the server's directory: the next start loads it, as a
        server restored from a backup (or restarted from its last RDB) would."""
        assert _command(self.port, b"SAVE", timeout=10).startswith(b"+OK")

    def flush(self) -> None:
        assert _command(self.port, b"FLUSHALL").startswith(b"+OK")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()  # a paused server would not act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, the server running and empty."""
    if not redis_server.alive():
        redis_server.start()
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def fault_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private server this test may kill, restart, pause and resume."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- a real Postgres with pgvector (pgserver) -----------------------------------------------


class PostgresServer:
    """Postgres 16 with pgvector, from the ``pgserver`` wheel (the ``dev`` extra), on a Unix
    socket in its own data directory. Tests may kill it (SIGKILL of the postmaster and its
    backends, as a crash would) and start it again (crash recovery keeps committed rows).

    The data directory is not under pytest's temporary directory: as root, pgserver runs
    Postgres as its own user, which must traverse every parent, and pytest resets the mode
    of ``/tmp/pytest-of-<user>`` to 0700 whenever a session starts (another run in
    parallel would lock the server out of its files)."""

    def __init__(self) -> None:
        import tempfile
        import warnings

        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            try:
                import pgserver
            except ImportError:
                pytest.skip(
                    "pgserver is not installed (pip install 'llmcache[dev]'): the "
                    "Postgres tiers' tests need it"
                )
        self._pgserver = pgserver
        self.base = Path(tempfile.mkdtemp(prefix="llmcache-pg-"))
        self.directory = self.base / "data"
        self._server = None  # a pgserver.PostgresServer once started
        self.url = ""

    def start(self) -> None:
        if self._server is None:
            self._server = self._pgserver.get_server(self.directory, cleanup_mode="delete")
        else:
            with self._server._lock:
                self._server.ensure_postgres_running()
        self.url = self._server.get_uri()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")

    def alive(self) -> bool:
        info = self._server.get_postmaster_info() if self._server is not None else None
        return info is not None and info.process.is_running()

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend, as a crash would."""
        import contextlib

        import psutil

        info = self._server.get_postmaster_info()
        if not info.process.is_running():
            return
        procs = [info.process, *info.process.children(recursive=True)]
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(procs, timeout=10)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One Postgres (with pgvector) for the whole run; tests keep to their own tables."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The session server's URL, the server running (restarted if a test killed it)."""
    if not postgres_server.alive():
        postgres_server.start()
    return postgres_server.url


@pytest.fixture
def pg_table() -> str:
    """A table name no other test uses."""
    import uuid

    return f"t_{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def _postgres_fault_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_fault_server(_postgres_fault_server: PostgresServer) -> PostgresServer:
    """A Postgres apart from the session's, which this test may kill and restart (running
    when the test starts; shared by the tests that kill, one at a time)."""
    if not _postgres_fault_server.alive():
        _postgres_fault_server.start()
    return _postgres_fault_server
