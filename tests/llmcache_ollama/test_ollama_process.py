"""`spawn_server`: the server in a child process, on a free loopback port."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from llmcache_testserver.process import ServerStartError, spawn_server


def test_the_child_serves_then_stops_when_the_block_ends() -> None:
    with spawn_server(engine="echo") as url:
        assert url.startswith("http://127.0.0.1:")
        reply = httpx.post(
            f"{url}/api/generate", json={"model": "llama3.2", "prompt": "hi", "stream": False}
        )
        assert reply.status_code == 200 and reply.json()["done"] is True
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/api/version", timeout=2)


def test_a_child_that_cannot_start_says_why(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with (
        pytest.raises(ServerStartError, match="model file not found"),
        spawn_server(engine="llama", model_path=str(missing)),
    ):
        pass  # pragma: no cover - never reached
