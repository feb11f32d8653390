"""The test server's OpenAI routes (``/v1``), spoken to with plain httpx: shapes, statuses and
errors as OpenAI sends them, from the same engine as the Ollama routes."""

from __future__ import annotations

import base64
from array import array
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from llmcache_testserver import OllamaServer

USER = [{"role": "user", "content": "hi there"}]


@pytest.fixture
def http(ollama_server: OllamaServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ollama_server.openai_url, timeout=10) as client:
        yield client


def _error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    return body


def test_models(http: httpx.Client) -> None:
    listing = http.get("/models").json()
    assert listing["object"] == "list"
    assert {m["id"] for m in listing["data"]} == {
        "llama3.2:latest",
        "qwen3:latest",
        "nomic-embed-text:latest",
    }
    assert http.get("/models/llama3.2").json()["id"] == "llama3.2:latest"
    missing = http.get("/models/nope")
    assert missing.status_code == 404 and _error(missing)["code"] == "model_not_found"
    assert http.head("/models").status_code == 200


def test_chat_completion_shape_matches_the_ollama_answer(
    http: httpx.Client, ollama_server: OllamaServer
) -> None:
    body = http.post(
        "/chat/completions",
        json={"model": "llama3.2", "messages": USER, "seed": 1, "temperature": 0},
    ).json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "echo: hi there"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    ollama = httpx.post(
        f"{ollama_server.url}/api/chat",
        json={"model": "llama3.2", "messages": USER, "stream": False},
    ).json()
    assert ollama["message"]["content"] == body["choices"][0]["message"]["content"]
    assert ollama_server.calls["openai.chat"] == 1 and ollama_server.calls["chat"] == 1


def test_streams_are_server_sent_events(http: httpx.Client) -> None:
    with http.stream(
        "POST", "/chat/completions", json={"model": "llama3.2", "messages": USER, "stream": True}
    ) as reply:
        assert reply.headers["content-type"] == "text/event-stream"
        raw = reply.read().decode()
    events = [e for e in raw.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    chunks = [orjson.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == (
        "echo: hi there"
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in chunks[-1]  # only with stream_options.include_usage


def test_embeddings_float_and_base64(http: httpx.Client) -> None:
    request = {"model": "nomic-embed-text", "input": ["a b", "c"], "dimensions": 4}
    floats = http.post("/embeddings", json=request).json()
    packed = http.post("/embeddings", json={**request, "encoding_format": "base64"}).json()
    assert [d["index"] for d in floats["data"]] == [0, 1]
    for plain, encoded in zip(floats["data"], packed["data"], strict=True):
        decoded = array("f", base64.b64decode(encoded["embedding"])).tolist()
        assert decoded == pytest.approx(plain["embedding"], rel=1e-6)
    assert floats["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    single = http.post("/embeddings", json={"model": "nomic-embed-text", "input": "x"}).json()
    assert len(single["data"]) == 1


@pytest.mark.parametrize(
    ("request_body", "status", "param"),
    [
        ({"messages": USER}, 400, "model"),
        ({"model": "nope", "messages": USER}, 404, "model"),
        ({"model": "llama3.2", "messages": []}, 400, "messages"),
        ({"model": "llama3.2", "messages": USER, "n": 2}, 400, "n"),
        ({"model": "llama3.2", "messages": USER, "temperature": "hot"}, 400, "temperature"),
        (
            {"model": "llama3.2", "messages": USER, "response_format": {"type": "yaml"}},
            400,
            "response_format",
        ),
        ({"model": "nomic-embed-text", "messages": USER}, 400, "model"),
    ],
)
def test_chat_errors(
    http: httpx.Client, request_body: dict[str, Any], status: int, param: str
) -> None:
    reply = http.post("/chat/completions", json=request_body)
    assert reply.status_code == status and _error(reply)["param"] == param


def test_routing_errors(http: httpx.Client) -> None:
    assert http.post("/chat/completions", content=b"{nope").status_code == 400
    unknown = http.post("/completions", json={})
    assert unknown.status_code == 404 and "Invalid URL" in _error(unknown)["message"]
    assert http.get("/chat/completions").status_code == 405
    assert http.post("/embeddings", json={"model": "llama3.2", "input": "x"}).status_code == 400
