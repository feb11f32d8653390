"""One answer, two faces, over the OpenAI plugin and the test server's ``/v1`` routes
(issue 13, finding 10): an answer stored by a plain call replays through the streamed face
with everything it had (text, tool calls, reasoning, usage, finish reason), and the other
way round. The server streams tool-call arguments in fragments, as OpenAI does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from llmcache_testserver import OllamaServer

from llmcache import AIResponse, AsyncCachedClient, CachedClient, DiskStore, StreamChunk
from llmcache_openai import AsyncOpenAIClient, OpenAIClient

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "parameters": {
                "type": "object",
                "required": ["city", "days"],
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            },
        },
    }
]
MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]
# method, positional input, keyword arguments; every case reasons (qwen3 can).
CASES = {
    "generate": ("generate", "Weather in Paris?", {}),
    "chat": ("chat", MESSAGES, {}),
    "chat-tools": ("chat", MESSAGES, {"tools": TOOLS}),
}


def view(response: AIResponse) -> dict[str, Any]:
    return {
        "content": response.content,
        "model": response.model,
        "thinking": response.thinking,
        "tool_calls": response.tool_calls,
        "prompt_tokens": response.prompt_tokens,
        "completion_tokens": response.completion_tokens,
        "tokens_used": response.tokens_used,
        "done_reason": response.done_reason,
    }


def assembled(chunks: list[StreamChunk]) -> dict[str, Any]:
    last = chunks[-1]
    assert last.done and not any(c.done for c in chunks[:-1])
    return {
        "content": "".join(c.content for c in chunks),
        "model": last.model,
        "thinking": "".join(c.thinking or "" for c in chunks) or None,
        "tool_calls": [tc for c in chunks for tc in c.tool_calls or []] or None,
        "prompt_tokens": last.prompt_tokens,
        "completion_tokens": last.completion_tokens,
        "tokens_used": last.prompt_tokens + last.completion_tokens,
        "done_reason": last.done_reason,
    }


def said_everything(answer: dict[str, Any], case: str) -> None:
    """The case's answer is not vacuous: it has what the test server says for it."""
    assert answer["thinking"] and answer["prompt_tokens"] > 0
    if case == "chat-tools":
        assert answer["done_reason"] == "tool_calls"
        assert answer["tool_calls"] == [
            {
                "id": "call_0",
                "type": "function",
                "function": {
                    "name": "weather",
                    "arguments": {"city": "Weather in Paris?", "days": 0},
                },
            }
        ]
    else:
        assert answer["done_reason"] == "stop"
        assert answer["content"].startswith("echo") and answer["completion_tokens"] > 0


@pytest.mark.parametrize("first", ["plain", "stream"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_sync_faces(case: str, first: str, server: OllamaServer, tmp_path: Path) -> None:
    method, given, kwargs = CASES[case]
    kwargs = dict(kwargs, temperature=0, model="qwen3", reasoning_effort="low")
    with (
        DiskStore(tmp_path) as store,
        CachedClient(OpenAIClient(server.openai_url, model="qwen3", timeout=10), store) as cached,
    ):
        plain = getattr(cached, method)
        stream = getattr(cached, f"{method}_stream")
        if first == "plain":
            answer = view(plain(given, **kwargs))
            replay = assembled(list(stream(given, **kwargs)))
        else:
            answer = assembled(list(stream(given, **kwargs)))
            hit = plain(given, **kwargs)
            assert hit.cached
            replay = view(hit)
    said_everything(answer, case)
    assert replay == answer
    assert server.calls["openai.chat"] == 1


@pytest.mark.parametrize("first", ["plain", "stream"])
@pytest.mark.parametrize("case", sorted(CASES))
async def test_async_faces(case: str, first: str, server: OllamaServer, tmp_path: Path) -> None:
    method, given, kwargs = CASES[case]
    kwargs = dict(kwargs, temperature=0, model="qwen3", reasoning_effort="low")
    with DiskStore(tmp_path) as store:
        cached = CachedClient(
            AsyncOpenAIClient(server.openai_url, model="qwen3", timeout=10), store
        )
        assert isinstance(cached, AsyncCachedClient)
        async with cached:
            plain = getattr(cached, method)
            stream = getattr(cached, f"{method}_stream")
            if first == "plain":
                answer = view(await plain(given, **kwargs))
                replay = assembled([c async for c in stream(given, **kwargs)])
            else:
                answer = assembled([c async for c in stream(given, **kwargs)])
                hit = await plain(given, **kwargs)
                assert hit.cached
                replay = view(hit)
    said_everything(answer, case)
    assert replay == answer
    assert server.calls["openai.chat"] == 1
