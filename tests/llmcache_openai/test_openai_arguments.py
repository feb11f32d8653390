"""Arguments checked where the user passes them (issue 13, finding 8): the OpenAI clients
and `CachedClient` over them raise an error naming the method, the argument and the fix, and
send and store nothing."""

from __future__ import annotations

from typing import Any

import pytest
from llmcache_testserver import OllamaServer

from llmcache import AsyncCachedClient, CachedClient, MemoryStore
from llmcache_openai import AsyncOpenAIClient, OpenAIClient

USER = [{"role": "user", "content": "hi"}]
# method, positional argument, keyword arguments, error, what the message must name
BAD = [
    ("chat", "hello", {}, TypeError, ["messages", "[{'role': 'user', 'content': 'hello'}]"]),
    ("chat", [{"role": "user"}], {}, ValueError, ["messages[0]", "'content'"]),
    ("chat", USER, {"temperature": "0.0"}, TypeError, ["temperature"]),
    ("chat", USER, {"tools": "weather"}, TypeError, ["tools"]),
    ("generate", b"hi", {}, TypeError, ["prompt", "str"]),
    ("generate", "hi", {"temperature": "0.0"}, TypeError, ["temperature"]),
    ("generate", "hi", {"max_tokens": 5.5}, TypeError, ["max_tokens"]),
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
    server: OllamaServer,
) -> None:
    name = f"{method}_stream" if stream else method
    with OpenAIClient(server.openai_url, model="llama3.2", timeout=10) as client:
        cached = CachedClient(client, MemoryStore())
        for face in (client, cached):
            with pytest.raises(error) as caught:
                getattr(face, name)(given, **kwargs)
            for word in [f"{type(face).__name__}.{name}", *names]:
                assert word in str(caught.value)
        assert len(cached.store) == 0
    assert server.calls["openai.chat"] == 0


@pytest.mark.parametrize(("method", "given", "kwargs", "error", "names"), BAD, ids=IDS)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_async_clients(
    method: str,
    given: Any,
    kwargs: dict[str, Any],
    error: type[Exception],
    names: list[str],
    stream: bool,
    server: OllamaServer,
) -> None:
    name = f"{method}_stream" if stream else method
    async with AsyncOpenAIClient(server.openai_url, model="llama3.2", timeout=10) as client:
        cached = CachedClient(client, MemoryStore())
        assert isinstance(cached, AsyncCachedClient)
        for face in (client, cached):
            with pytest.raises(error) as caught:
                result = getattr(face, name)(given, **kwargs)
                assert not stream  # a stream raises when asked for, before any iteration
                await result
            for word in [f"{type(face).__name__}.{name}", *names]:
                assert word in str(caught.value)
        assert len(cached.store) == 0
    assert server.calls["openai.chat"] == 0
