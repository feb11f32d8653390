"""`ProxyProcess`: ``llmcache proxy`` in a child process, and `launch` to start one."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from typing import IO

import httpx

__all__ = ["ProxyProcess", "launch"]

_LINE = re.compile(r"listening on (http://\S+?),")
# The console script's code, run by this interpreter (no dependence on PATH).
_CLI = "import sys; from llmcache.cli import main; sys.argv[0] = 'llmcache'; main()"


class ProxyProcess:
    """``llmcache proxy`` in a child process."""

    def __init__(
        self, process: subprocess.Popen[str], url: str, line: str, stderr: IO[str]
    ) -> None:
        self.process = process
        self.url = url
        self.line = line
        self._stderr = stderr

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def stdout_rest(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.read()

    def metrics(self) -> dict[str, float]:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then the exit code (SIGKILL after `timeout` seconds)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode

    def close(self) -> None:
        self.stop()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


def launch(upstream: str, *options: str, env: dict[str, str] | None = None) -> ProxyProcess:
    """Start a proxy in front of `upstream` on a free port; return once it listens."""
    stderr = tempfile.TemporaryFile("w+")  # a pipe nobody reads could fill and stall it
    process = subprocess.Popen(
        [sys.executable, "-c", _CLI, "proxy", "--upstream", upstream, "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = _LINE.search(line)
    if match is None:
        process.kill()
        process.wait()
        stderr.seek(0)
        raise AssertionError(f"the proxy did not start: {line!r} {stderr.read()}")
    return ProxyProcess(process, match.group(1), line, stderr)
