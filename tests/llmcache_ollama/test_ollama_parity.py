"""AsyncOllamaClient: the same calls as OllamaClient give the same answers (and errors), and
it holds up under many concurrent requests."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from llmcache_testserver import OllamaServer

from llmcache.backends import AIResponse, AsyncBackend, BackendError, StreamChunk
from llmcache_ollama import AsyncOllamaClient, OllamaClient

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {
            "type": "object",
            "required": ["q"],
            "properties": {"q": {"type": "string"}},
        },
    },
}
SCHEMA = {
    "type": "object",
    "required": ["answer", "n"],
    "properties": {"answer": {"type": "string"}, "n": {"type": "number"}},
}
USER = [{"role": "user", "content": "What is 2 + 2?"}]

# (method, args, kwargs): every public call, with the options that change its answer.
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("generate", ("Why is the sky blue?",), {}),
    ("generate", ("hi",), {"system": "terse", "temperature": 0, "max_tokens": 3}),
    ("generate", ("hi",), {"format": "json"}),
    ("generate", ("hi",), {"format": SCHEMA, "model": "qwen3"}),
    ("generate", ("think",), {"model": "qwen3", "think": True}),
    ("generate_stream", ("a b c d",), {"options": {"num_predict": 2}}),
    ("chat", (USER,), {}),
    ("chat", (USER,), {"tools": [TOOL]}),
    ("chat_stream", (USER,), {"model": "qwen3", "think": True}),
    ("chat_stream", (USER,), {"tools": [TOOL]}),
    ("embed", (["a b", "b c", ""],), {"model": "nomic-embed-text"}),
    ("list_models", (), {}),
    ("version", (), {}),
    ("generate", ("x",), {"model": "missing"}),
    ("chat", (USER,), {"model": "nomic-embed-text"}),
]


def _comparable(value: Any) -> Any:
    """Drop what legitimately differs between two runs: timings and timestamps."""
    if isinstance(value, AIResponse | StreamChunk):
        value = value.to_dict()
        value.pop("duration_ms", None)
        value["raw"] = {
            k: v
            for k, v in value["raw"].items()
            if k != "created_at" and not k.endswith("duration")
        }
        return value
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if hasattr(value, "embeddings"):
        return (value.embeddings, value.model, value.prompt_tokens)
    return value


def _sync_result(
    client: OllamaClient, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        result = getattr(client, method)(*args, **kwargs)
        return _comparable(list(result) if isinstance(result, Iterator) else result)
    except BackendError as exc:
        return (type(exc), str(exc), exc.status_code)


async def _async_result(
    client: AsyncOllamaClient, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        result = getattr(client, method)(*args, **kwargs)
        if isinstance(result, AsyncIterator):
            return _comparable([chunk async for chunk in result])
        return _comparable(await result)
    except BackendError as exc:
        return (type(exc), str(exc), exc.status_code)


@pytest.mark.parametrize(
    ("method", "args", "kwargs"), CALLS, ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(CALLS)]
)
async def test_sync_and_async_agree(
    client: OllamaClient,
    aclient: AsyncOllamaClient,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    expected = await asyncio.to_thread(_sync_result, client, method, args, kwargs)
    assert await _async_result(aclient, method, args, kwargs) == expected


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(getattr(cls, name))
        for name in dir(cls)
        if not name.startswith("_") and callable(getattr(cls, name))
    }


def test_same_methods_and_signatures() -> None:
    sync, async_ = _public(OllamaClient), _public(AsyncOllamaClient)
    sync.pop("close"), async_.pop("aclose")
    assert sync.keys() == async_.keys()
    for name, signature in sync.items():
        assert [p.name for p in signature.parameters.values()] == [
            p.name for p in async_[name].parameters.values()
        ], name
    assert (
        inspect.signature(OllamaClient.__init__).parameters.keys()
        == inspect.signature(AsyncOllamaClient.__init__).parameters.keys()
    )


async def test_async_client_is_an_async_backend(aclient: AsyncOllamaClient) -> None:
    assert isinstance(aclient, AsyncBackend)
    assert (await aclient.generate("hi")).content == "echo: hi"
    await aclient.aclose()
    await aclient.aclose()


async def test_async_stream_can_be_abandoned(aclient: AsyncOllamaClient) -> None:
    stream = aclient.generate_stream("a b c d e")
    assert (await anext(stream)).content == "echo: "
    await stream.aclose()  # type: ignore[attr-defined]
    assert (await aclient.version()) == "0.12.6"


async def test_many_more_requests_than_connections(
    make_ollama_server: Callable[..., OllamaServer],
) -> None:
    server = make_ollama_server(latency_ms=5)
    # More requests than connections: they wait on the client's semaphore, not in httpx.
    async with AsyncOllamaClient(server.url, timeout=30) as client:
        replies = await asyncio.gather(*(client.generate(f"q{i}") for i in range(500)))
    assert [r.content for r in replies] == [f"echo: q{i}" for i in range(500)]
    assert server.calls["generate"] == 500


def test_the_bundled_backends_take_the_same_arguments() -> None:
    # The interface (llmcache.backends' Backend and its async twin) states the four calls of
    # the mock and of the HTTP clients, so a test can swap the mock in for any of them.
    from llmcache.backends.mock import AsyncMockBackend, MockBackend
    from llmcache_openai import AsyncOpenAIClient, OpenAIClient

    backends = [MockBackend, AsyncMockBackend, OllamaClient, AsyncOllamaClient]
    backends += [OpenAIClient, AsyncOpenAIClient]
    for name in ("generate", "generate_stream", "chat", "chat_stream"):
        shapes = {
            cls.__name__: list(inspect.signature(getattr(cls, name)).parameters.values())
            for cls in backends
        }
        assert all(shape == shapes["OllamaClient"] for shape in shapes.values()), (name, shapes)
