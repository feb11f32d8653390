"""OllamaClient against the Ollama-compatible server on loopback: every call, streamed and
not, and the constructor's settings."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from llmcache_testserver import OllamaServer

from llmcache.backends import AIResponse, Backend, EmbedResponse, StreamChunk
from llmcache_ollama import OllamaClient

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "required": ["city"],
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        },
    },
}


def test_is_a_backend(client: OllamaClient) -> None:
    assert isinstance(client, Backend)
    assert client.model == "llama3.2"


def test_generate(client: OllamaClient) -> None:
    reply = client.generate("Why is the sky blue?")
    assert isinstance(reply, AIResponse)
    assert reply.content == "echo: Why is the sky blue?"
    assert reply.model == "llama3.2"
    assert (reply.prompt_tokens, reply.completion_tokens) == (5, 6)
    assert reply.tokens_used == 11
    assert reply.done_reason == "stop"
    assert reply.duration_ms > 0
    assert reply.cached is False
    assert reply.raw["done"] is True and reply.raw["response"] == reply.content


def test_generate_sends_stream_false_and_options(ollama_server: OllamaServer) -> None:
    seen: list[dict[str, object]] = []

    def record(request: httpx.Request) -> None:
        seen.append(json.loads(request.content))

    transport = httpx.HTTPTransport()
    with OllamaClient(ollama_server.url, transport=transport) as client:
        client._http.event_hooks["request"] = [record]
        client.generate(
            "hi",
            system="be brief",
            temperature=0.2,
            max_tokens=5,
            options={"seed": 1},
            images=[b"\x89PNG"],
            keep_alive="1m",
        )
    assert seen == [
        {
            "model": "llama3.2",
            "prompt": "hi",
            "stream": False,
            "system": "be brief",
            "images": ["iVBORw=="],
            "options": {"seed": 1, "temperature": 0.2, "num_predict": 5},
            "keep_alive": "1m",
        }
    ]


def test_generate_system_and_model_override(client: OllamaClient) -> None:
    reply = client.generate("hi", model="qwen3", system="terse")
    assert reply.content == "echo [terse]: hi"
    assert reply.model == "qwen3"


def test_max_tokens_truncates_with_length_reason(client: OllamaClient) -> None:
    reply = client.generate("one two three four", max_tokens=2)
    assert reply.content == "echo: one "
    assert (reply.done_reason, reply.completion_tokens) == ("length", 2)


def test_format_json_and_schema(client: OllamaClient) -> None:
    assert json.loads(client.generate("hi", format="json").content) == {"response": "echo: hi"}
    schema = {
        "type": "object",
        "required": ["title", "priority", "done", "tags"],
        "properties": {
            "title": {"type": "string"},
            "priority": {"type": "integer"},
            "done": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "optional": {"type": "number"},
        },
    }
    assert json.loads(client.generate("task", format=schema).content) == {
        "title": "echo: task",
        "priority": 0,
        "done": False,
        "tags": [],
    }


def test_generate_stream(client: OllamaClient) -> None:
    chunks = list(client.generate_stream("hello big world"))
    assert all(isinstance(c, StreamChunk) for c in chunks)
    assert [c.content for c in chunks] == ["echo: ", "hello ", "big ", "world", ""]
    assert [c.done for c in chunks] == [False] * 4 + [True]
    last = chunks[-1]
    assert (last.done_reason, last.prompt_tokens, last.completion_tokens) == ("stop", 3, 4)
    assert last.raw["done"] is True


def test_stream_can_be_abandoned(client: OllamaClient) -> None:
    stream = client.generate_stream("a b c d e f")
    assert next(iter(stream)).content == "echo: "
    stream.close()  # type: ignore[attr-defined]
    assert client.generate("after").content == "echo: after"


def test_chat(client: OllamaClient) -> None:
    messages = [
        {"role": "system", "content": "pirate"},
        {"role": "user", "content": "Capital of France?"},
    ]
    reply = client.chat(messages)
    assert reply.content == "echo [pirate]: Capital of France?"
    assert reply.raw["message"]["role"] == "assistant"
    assert reply.tool_calls is None and reply.thinking is None


def test_chat_stream(client: OllamaClient) -> None:
    chunks = list(client.chat_stream([{"role": "user", "content": "hi there"}], temperature=0))
    assert "".join(c.content for c in chunks) == "echo: hi there"
    assert chunks[-1].done and chunks[-1].completion_tokens == 3


def test_chat_tool_calls(client: OllamaClient) -> None:
    reply = client.chat([{"role": "user", "content": "Paris"}], tools=[WEATHER_TOOL])
    assert reply.content == ""
    assert reply.tool_calls == [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    streamed = [
        c.tool_calls
        for c in client.chat_stream([{"role": "user", "content": "Paris"}], tools=[WEATHER_TOOL])
        if c.tool_calls
    ]
    assert streamed == [reply.tool_calls]
    answer = client.chat(
        [
            {"role": "user", "content": "Paris"},
            {"role": "assistant", "content": "", "tool_calls": reply.tool_calls},
            {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert answer.content == "echo: sunny"


def test_thinking(client: OllamaClient) -> None:
    reply = client.chat([{"role": "user", "content": "2+2"}], model="qwen3", think=True)
    assert (reply.content, reply.thinking) == ("echo: 2+2", "thinking about: 2+2")
    chunks = list(client.generate_stream("2+2", model="qwen3", think=True))
    assert chunks[0].thinking == "thinking about: 2+2"
    assert client.generate("2+2", model="qwen3", think=True).thinking == "thinking about: 2+2"


def test_embed(client: OllamaClient) -> None:
    texts = ["the cat sat", "the cat sat down", "quantum chromodynamics"]
    reply = client.embed(texts, model="nomic-embed-text")
    assert isinstance(reply, EmbedResponse)
    assert reply.model == "nomic-embed-text"
    assert len(reply.embeddings) == 3 and all(len(v) == 64 for v in reply.embeddings)
    for vector in reply.embeddings:
        assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-9)
    near = sum(a * b for a, b in zip(reply.embeddings[0], reply.embeddings[1], strict=True))
    far = sum(a * b for a, b in zip(reply.embeddings[0], reply.embeddings[2], strict=True))
    assert near > far
    assert reply.prompt_tokens == 9
    again = client.embed(["the cat sat"], model="nomic-embed-text")
    assert again.embeddings[0] == reply.embeddings[0]


def test_embed_edge_cases(client: OllamaClient) -> None:
    assert client.embed([], model="nomic-embed-text").embeddings == []
    assert len(client.embed(["x"], model="nomic-embed-text", dimensions=8).embeddings[0]) == 8
    with pytest.raises(TypeError, match="wrap a single string"):
        client.embed("not a list", model="nomic-embed-text")


def test_list_models_and_version(client: OllamaClient) -> None:
    names = [m["name"] for m in client.list_models()]
    assert names == ["llama3.2:latest", "qwen3:latest", "nomic-embed-text:latest"]
    assert client.version() == "0.12.6"


def test_reserved_extra_keys_are_refused(client: OllamaClient) -> None:
    with pytest.raises(TypeError, match="stream"):
        client.generate("x", stream=True)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("localhost:1234", "http://localhost:1234"),
        ("0.0.0.0:1234", "http://127.0.0.1:1234"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("https://example.com", "https://example.com:443"),
        ("http://[::1]:8000/", "http://[::1]:8000"),
        ("example.com/ollama/", "http://example.com:11434/ollama"),
        ("http://user:secret@example.com:5000", "http://example.com:5000"),
    ],
)
def test_host_forms(host: str, url: str) -> None:
    with OllamaClient(host) as client:
        assert client.host == url
        assert "secret" not in repr(client)


def test_host_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:9999")
    with OllamaClient() as client:
        assert client.host == "http://127.0.0.1:9999"
    monkeypatch.delenv("OLLAMA_HOST")
    with OllamaClient() as client:
        assert client.host == "http://127.0.0.1:11434"


@pytest.mark.parametrize(
    "timeout", [None, httpx.Timeout(None), httpx.Timeout(5, read=None), 0, -1.0, math.inf]
)
def test_infinite_or_invalid_timeouts_are_refused(timeout: object) -> None:
    with pytest.raises(ValueError, match="timeout"):
        OllamaClient(timeout=timeout)  # type: ignore[arg-type]


def test_timeout_forms_and_settings() -> None:
    with OllamaClient(timeout=httpx.Timeout(3.0, connect=1.0), retries=0) as client:
        assert client.timeout.connect == 1.0 and client.timeout.read == 3.0
    with pytest.raises(ValueError, match="retries"):
        OllamaClient(retries=-1)
    with pytest.raises(ValueError, match="model"):
        OllamaClient(model="")


def test_close_is_idempotent_and_final(ollama_server: OllamaServer) -> None:
    from llmcache.backends import BackendUnavailable

    client = OllamaClient(ollama_server.url)
    client.close()
    client.close()
    with pytest.raises(BackendUnavailable, match="closed"):
        client.version()


def test_headers_are_sent_but_never_shown(ollama_server: OllamaServer) -> None:
    seen: list[str | None] = []
    with OllamaClient(ollama_server.url, headers={"Authorization": "Bearer sk-123"}) as client:
        client._http.event_hooks["request"] = [
            lambda r: seen.append(r.headers.get("authorization"))
        ]
        client.version()
        assert "sk-123" not in repr(client)
    assert seen == ["Bearer sk-123"]
