"""OpenAIClient and AsyncOpenAIClient over real HTTP: the calls, their options, and the
async twin agreeing with the sync one call for call."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from llmcache_testserver import OllamaServer

from llmcache.backends import AIResponse, BackendError, BadRequest, StreamChunk
from llmcache_openai import AsyncOpenAIClient, OpenAIClient

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
    ("generate", ("hi there you",), {"system": "terse", "temperature": 0, "max_tokens": 2}),
    ("generate", ("hi",), {"format": "json"}),
    ("generate", ("hi",), {"format": SCHEMA, "model": "qwen3"}),
    ("generate_stream", ("a b c d",), {"options": {"num_predict": 2}}),
    ("chat", (USER,), {}),
    ("chat", (USER,), {"tools": [TOOL]}),
    ("chat", (USER,), {"model": "qwen3", "reasoning_effort": "low"}),
    ("chat_stream", (USER,), {"tools": [TOOL]}),
    ("chat_stream", ([{"role": "developer", "content": "be kind"}, *USER],), {}),
    ("embed", (["a b", "b c"],), {"model": "nomic-embed-text"}),
    ("embed", ([],), {}),
    ("list_models", (), {}),
    ("generate", ("x",), {"model": "missing"}),
    ("chat", (USER,), {"model": "nomic-embed-text"}),
    ("embed", (["x"],), {"model": "llama3.2"}),
]


def _comparable(value: Any) -> Any:
    """Drop what differs between two runs: timings, ids and timestamps."""
    if isinstance(value, AIResponse | StreamChunk):
        value = value.to_dict()
        value.pop("duration_ms", None)
        value["raw"] = {k: v for k, v in value["raw"].items() if k not in ("id", "created")}
        return value
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if hasattr(value, "embeddings"):
        return (value.embeddings, value.model, value.prompt_tokens)
    return value


def _sync_result(
    client: OpenAIClient, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        result = getattr(client, method)(*args, **kwargs)
        return _comparable(list(result) if method.endswith("_stream") else result)
    except BackendError as exc:
        return (type(exc).__name__, str(exc), exc.status_code)


async def _async_result(
    client: AsyncOpenAIClient, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        if method.endswith("_stream"):
            return _comparable([c async for c in getattr(client, method)(*args, **kwargs)])
        return _comparable(await getattr(client, method)(*args, **kwargs))
    except BackendError as exc:
        return (type(exc).__name__, str(exc), exc.status_code)


@pytest.mark.parametrize(
    ("method", "args", "kwargs"), CALLS, ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(CALLS)]
)
async def test_async_twin_agrees_with_sync(
    client: OpenAIClient,
    aclient: AsyncOpenAIClient,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    expected = _sync_result(client, method, args, kwargs)
    assert await _async_result(aclient, method, args, kwargs) == expected


def test_the_twins_have_the_same_methods() -> None:
    public: Callable[[type], set[str]] = lambda cls: {  # noqa: E731
        n for n in dir(cls) if not n.startswith("_")
    }
    assert public(OpenAIClient) - {"close"} == public(AsyncOpenAIClient) - {"aclose"}


def test_generate_with_system_and_token_limit(client: OpenAIClient) -> None:
    reply = client.generate("hi there you", system="terse", max_tokens=3)
    assert reply.content == "echo [terse]: hi " and reply.done_reason == "length"
    assert (reply.prompt_tokens, reply.completion_tokens, reply.tokens_used) == (4, 3, 7)
    assert reply.model == "llama3.2" and reply.raw["object"] == "chat.completion"


def test_json_mode_and_schema(client: OpenAIClient) -> None:
    assert json.loads(client.generate("hi", format="json").content) == {"response": "echo: hi"}
    assert json.loads(client.chat(USER, format=SCHEMA).content) == {
        "answer": ("echo: What is 2 + 2?"),
        "n": 0.0,
    }


def test_tool_calls_plain_and_streamed(client: OpenAIClient) -> None:
    expected = [
        {
            "id": "call_0",
            "type": "function",
            "function": {"name": "lookup", "arguments": {"q": "What is 2 + 2?"}},
        }
    ]
    reply = client.chat(USER, tools=[TOOL])
    assert reply.tool_calls == expected and reply.done_reason == "tool_calls"
    chunks = list(client.chat_stream(USER, tools=[TOOL]))
    assert chunks[-1].tool_calls == expected and chunks[-1].done_reason == "tool_calls"
    history = [
        *USER,
        {"role": "assistant", "content": "", "tool_calls": reply.tool_calls},
        {"role": "tool", "content": "4", "tool_call_id": "call_0"},
    ]
    assert client.chat(history, tools=[TOOL]).content == "echo: 4"


def test_streams_carry_usage_and_thinking(client: OpenAIClient) -> None:
    chunks = list(client.chat_stream(USER, model="qwen3", reasoning_effort="low"))
    assert chunks[0].thinking == "thinking about: What is 2 + 2?"
    final = chunks[-1]
    assert (final.done, final.prompt_tokens, final.completion_tokens) == (True, 5, 6)


def test_embed_default_model_and_empty_batch(server: OllamaServer) -> None:
    with OpenAIClient(
        server.openai_url, model="llama3.2", embed_model="nomic-embed-text", timeout=10
    ) as client:
        result = client.embed(["a b", "c"], dimensions=8)
        assert result.model == "nomic-embed-text" and [len(v) for v in result.embeddings] == [8, 8]
        before = server.calls["openai.embeddings"]
        assert client.embed([]).embeddings == []
        assert server.calls["openai.embeddings"] == before  # no request for nothing


def test_list_models(client: OpenAIClient) -> None:
    assert [m["id"] for m in client.list_models()] == [
        "llama3.2:latest",
        "qwen3:latest",
        "nomic-embed-text:latest",
    ]


def test_capability_errors_are_bad_requests(client: OpenAIClient) -> None:
    with pytest.raises(BadRequest, match="does not support"):
        client.chat(USER, model="nomic-embed-text")


def test_base_url_from_the_environment(
    server: OllamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url + "/")
    with OpenAIClient(model="llama3.2", timeout=10) as client:
        assert client.base_url == server.openai_url
        assert client.generate("hi").content == "echo: hi"


def test_a_base_url_without_v1_says_so(server: OllamaServer) -> None:
    with (
        OpenAIClient(server.url, model="llama3.2", timeout=10) as client,
        pytest.raises(BackendError, match="/v1"),
    ):
        client.generate("hi")


@pytest.mark.parametrize(
    "bad",
    [{"model": ""}, {"retries": -1}, {"backoff": -1.0}, {"max_connections": 0}, {"timeout": None}],
)
def test_constructor_validates(bad: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        OpenAIClient("http://127.0.0.1:1/v1", **bad)
