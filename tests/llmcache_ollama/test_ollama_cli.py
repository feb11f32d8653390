"""``python -m llmcache_testserver`` as a process: prints its URL, serves, stops on SIGTERM."""

from __future__ import annotations

import subprocess
import sys

import httpx
from llmcache_testserver.__main__ import build_parser


def test_cli_prints_its_url_and_serves() -> None:
    command = [
        sys.executable,
        "-m",
        "llmcache_testserver",
        "--port",
        "0",
        "--engine",
        "echo",
        "--latency-ms",
        "1",
        "--per-item-ms",
        "0",
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            assert httpx.get(f"{url}/api/version", timeout=5).json() == {"version": "0.12.6"}
            reply = httpx.post(
                f"{url}/api/generate",
                timeout=5,
                json={"model": "llama3.2", "prompt": "hi", "stream": False},
            )
            assert reply.json()["response"] == "echo: hi"
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr


def test_cli_help_lists_the_options() -> None:
    text = build_parser().format_help()
    for option in ("--port", "--host", "--engine", "--latency-ms", "--per-item-ms"):
        assert option in text
