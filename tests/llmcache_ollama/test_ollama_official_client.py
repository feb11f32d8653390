"""The official ``ollama`` package (0.6.x) against our server: it speaks the real protocol."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from llmcache_testserver import Faults, OllamaServer

ollama = pytest.importorskip("ollama")


def test_official_client(ollama_server: OllamaServer) -> None:
    with ollama.Client(host=ollama_server.url, timeout=10) as client:
        reply = client.generate(model="llama3.2", prompt="Why is the sky blue?")
        assert reply.response == "echo: Why is the sky blue?"
        assert reply.done and reply.done_reason == "stop" and reply.eval_count == 6
        parts = list(client.generate(model="llama3.2", prompt="a b", stream=True))
        assert "".join(p.response for p in parts) == "echo: a b" and parts[-1].done

        messages = [{"role": "user", "content": "hi"}]
        assert client.chat(model="llama3.2", messages=messages).message.content == "echo: hi"
        streamed = client.chat(model="qwen3", messages=messages, stream=True, think=True)
        pieces = list(streamed)
        assert pieces[0].message.thinking == "thinking about: hi"
        assert "".join(p.message.content or "" for p in pieces) == "echo: hi"
        tool = {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {
                    "type": "object",
                    "required": ["x"],
                    "properties": {"x": {"type": "integer"}},
                },
            },
        }
        calls = client.chat(model="llama3.2", messages=messages, tools=[tool]).message.tool_calls
        assert calls is not None and calls[0].function.name == "f"
        assert calls[0].function.arguments == {"x": 0}

        embedded = client.embed(model="nomic-embed-text", input=["a", "b"])
        assert len(embedded.embeddings) == 2 and len(embedded.embeddings[0]) == 64
        assert len(client.embeddings(model="nomic-embed-text", prompt="a").embedding) == 64

        assert [m.model for m in client.list().models] == [
            "llama3.2:latest",
            "qwen3:latest",
            "nomic-embed-text:latest",
        ]
        shown = client.show("llama3.2")
        assert shown.capabilities == ["completion", "tools"]
        assert shown.details is not None and shown.details.family == "llama"
        assert shown.modelinfo is not None

        with pytest.raises(ollama.ResponseError) as missing:
            client.generate(model="ghost", prompt="x")
        assert (missing.value.status_code, missing.value.error) == (404, "model 'ghost' not found")
    assert ollama_server.calls.snapshot() == {
        "generate": 3,
        "chat": 3,
        "embed": 1,
        "embeddings": 1,
        "tags": 1,
        "show": 1,
    }


def test_official_client_sees_mid_stream_errors(
    make_ollama_server: Callable[..., OllamaServer],
) -> None:
    server = make_ollama_server(faults=Faults(fail_after=1))
    with ollama.Client(host=server.url, timeout=10) as client:
        with pytest.raises(ollama.ResponseError) as info:
            list(client.generate(model="llama3.2", prompt="a b c", stream=True))
    assert info.value.status_code == -1


async def test_official_async_client(ollama_server: OllamaServer) -> None:
    client = ollama.AsyncClient(host=ollama_server.url, timeout=10)
    try:
        reply = await client.chat(model="llama3.2", messages=[{"role": "user", "content": "x"}])
        assert reply.message.content == "echo: x"
        parts = [p async for p in await client.generate(model="llama3.2", prompt="y", stream=True)]
        assert parts[-1].done
    finally:
        await client._client.aclose()
