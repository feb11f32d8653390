"""Arguments checked where the user passes them (issue 13, finding 8): the Ollama clients
and their cached twins raise an error naming the method, the argument and the fix, and send
and store nothing."""

from __future__ import annotations

from typing import Any

import pytest
from llmcache_testserver import OllamaServer

from llmcache import MemoryStore
from llmcache_ollama import (
    AsyncCachedOllamaClient,
    AsyncOllamaClient,
    CachedOllamaClient,
    OllamaClient,
)

USER = [{"role": "user", "content": "hi"}]
# method, positional argument, keyword arguments, error, what the message must name
BAD = [
    ("chat", "hello", {}, TypeError, ["messages", "[{'role': 'user', 'content': 'hello'}]"]),
    ("chat", [{"content": "hi"}], {}, ValueError, ["messages[0]", "'role'"]),
    ("chat", USER, {"temperature": "0.0"}, TypeError, ["temperature"]),
    ("generate", 5, {}, TypeError, ["prompt", "str"]),
    ("generate", "hi", {"temperature": "0.0"}, TypeError, ["temperature"]),
    ("generate", "hi", {"temperature": [0.0]}, TypeError, ["temperature"]),
    ("generate", "hi", {"options": {"temperature": "hot"}}, TypeError, ["options['temperature']"]),
]
IDS = [f"{m}-{i}" for i, (m, *_) in enumerate(BAD)]


@pytest.mark.parametrize(("method", "given", "kwargs", "error", "names"), BAD, ids=IDS)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_sync_clients(
    method: str,
    given: Any,
    kwargs: dict[str, Any],
    error: type[Exception],
    names: list[str],
    stream: bool,
    ollama_server: OllamaServer,
) -> None:
    name = f"{method}_stream" if stream else method
    with OllamaClient(ollama_server.url, timeout=10) as client:
        cached = CachedOllamaClient(client, MemoryStore())
        for face in (client, cached):
            with pytest.raises(error) as caught:
                getattr(face, name)(given, **kwargs)
            for word in [f"{type(face).__name__}.{name}", *names]:
                assert word in str(caught.value)
        assert len(cached.store) == 0
    assert ollama_server.calls[method] == 0


@pytest.mark.parametrize(("method", "given", "kwargs", "error", "names"), BAD, ids=IDS)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_async_clients(
    method: str,
    given: Any,
    kwargs: dict[str, Any],
    error: type[Exception],
    names: list[str],
    stream: bool,
    ollama_server: OllamaServer,
) -> None:
    name = f"{method}_stream" if stream else method
    async with AsyncOllamaClient(ollama_server.url, timeout=10) as client:
        cached = CachedOllamaClient(client, MemoryStore())
        assert isinstance(cached, AsyncCachedOllamaClient)
        for face in (client, cached):
            with pytest.raises(error) as caught:
                result = getattr(face, name)(given, **kwargs)
                assert not stream  # a stream raises when asked for, before any iteration
                await result
            for word in [f"{type(face).__name__}.{name}", *names]:
                assert word in str(caught.value)
        assert len(cached.store) == 0
    assert ollama_server.calls[method] == 0
