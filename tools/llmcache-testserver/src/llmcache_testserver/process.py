"""The server in a process of its own: `spawn_server` starts it on a free loopback port.

A separate process is what ``make demo``, the real-model tests and the verifier benchmark
need: llama.cpp cannot load a model in a process that imported usearch first, and a model
that answers in a few hundred milliseconds should not hold the caller's GIL.

>>> import httpx
>>> with spawn_server(engine="echo") as url:
...     httpx.get(f"{url}/api/version").status_code
200
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence

__all__ = ["ServerStartError", "spawn_server"]


class ServerStartError(RuntimeError):
    """The server process exited before it printed its address; the message holds its
    standard error."""


@contextlib.contextmanager
def spawn_server(
    *,
    engine: str = "llama",
    model_path: str | None = None,
    threads: int | None = None,
    extra_args: Sequence[str] = (),
    stop_timeout: float = 30.0,
) -> Iterator[str]:
    """``python -m llmcache_testserver`` on ``127.0.0.1`` and a free port, in a child
    process; yields its base URL once it listens, and stops it on exit (terminate, then
    kill after ``stop_timeout`` seconds).

    ``engine`` is ``llama`` (the local model; ``model_path`` and ``threads`` go to it) or
    ``echo``. Raises `ServerStartError` with the child's standard error when it exits
    before listening (a missing model file, a port it cannot bind).
    """
    command = [
        sys.executable,
        "-m",
        "llmcache_testserver",
        "--engine",
        engine,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
    ]
    if model_path:
        command += ["--model-path", model_path]
    if threads:
        command += ["--threads", str(threads)]
    command += list(extra_args)
    # Standard error goes to a file: a pipe nobody reads could fill up and stall the child.
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()  # the server prints it once it listens
            if not url:
                process.wait(timeout=stop_timeout)
                errors.seek(0)
                raise ServerStartError(f"the model server did not start: {errors.read()}")
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
