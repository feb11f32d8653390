"""The Ollama-compatible server at the HTTP level: routes, statuses, error shapes, streaming,
keep-alive, concurrency, engine failures."""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from llmcache_testserver import Completion, EchoEngine, OllamaServer, Prompt

ServerFactory = Callable[..., OllamaServer]


@pytest.fixture
def api(ollama_server: OllamaServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ollama_server.url, timeout=10) as client:
        yield client


def test_root_get_and_head(api: httpx.Client) -> None:
    reply = api.get("/")
    assert (reply.status_code, reply.text) == (200, "Ollama is running")
    head = api.head("/")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len("Ollama is running"))


def test_version_and_tags(api: httpx.Client) -> None:
    assert api.get("/api/version").json() == {"version": "0.12.6"}
    models = api.get("/api/tags").json()["models"]
    assert {m["name"] for m in models} == {
        "llama3.2:latest",
        "qwen3:latest",
        "nomic-embed-text:latest",
    }
    first = models[0]
    assert set(first) == {"name", "model", "modified_at", "size", "digest", "details"}
    assert set(first["details"]) == {
        "parent_model",
        "format",
        "family",
        "families",
        "parameter_size",
        "quantization_level",
    }


def test_show(api: httpx.Client) -> None:
    body = api.post("/api/show", json={"model": "qwen3"}).json()
    assert body["capabilities"] == ["completion", "tools", "thinking"]
    assert {"modelfile", "parameters", "template", "details", "model_info", "modified_at"} <= set(
        body
    )


@pytest.mark.parametrize("path", ["/api/generate", "/api/chat", "/api/embed", "/api/show"])
def test_request_errors(api: httpx.Client, path: str) -> None:
    def error(reply: httpx.Response) -> tuple[int, str]:
        assert reply.headers["content-type"].startswith("application/json")
        return reply.status_code, reply.json()["error"]

    assert error(api.post(path)) == (400, "missing request body")
    status, message = error(api.post(path, content=b"{nope"))
    assert status == 400 and message
    assert error(api.post(path, json=[1]))[0] == 400
    assert error(api.post(path, json={"prompt": "x"})) == (400, "model is required")
    assert error(api.post(path, json={"model": "ghost"})) == (404, "model 'ghost' not found")


def test_capability_errors(api: httpx.Client) -> None:
    reply = api.post("/api/chat", json={"model": "nomic-embed-text", "messages": []})
    assert (reply.status_code, reply.json()) == (
        400,
        {"error": '"nomic-embed-text" does not support chat'},
    )
    reply = api.post("/api/generate", json={"model": "nomic-embed-text", "prompt": "x"})
    assert reply.json() == {"error": '"nomic-embed-text" does not support generate'}
    reply = api.post("/api/embed", json={"model": "llama3.2", "input": "x"})
    assert reply.status_code == 400


def test_unknown_path_and_wrong_method(api: httpx.Client) -> None:
    assert api.get("/api/nothing").status_code == 404
    assert api.get("/api/generate").status_code == 405


def test_streams_when_stream_is_absent(api: httpx.Client) -> None:
    with api.stream("POST", "/api/generate", json={"model": "llama3.2", "prompt": "a b"}) as reply:
        assert reply.headers["content-type"] == "application/x-ndjson"
        assert reply.headers["transfer-encoding"] == "chunked"
        lines = [json.loads(line) for line in reply.iter_lines()]
    assert [line["response"] for line in lines] == ["echo: ", "a ", "b", ""]
    assert [line["done"] for line in lines] == [False, False, False, True]
    final = lines[-1]
    assert final["done_reason"] == "stop"
    assert {
        "context",
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    } <= set(final)
    assert final["created_at"].endswith("Z")


def test_single_reply_when_stream_is_false(api: httpx.Client) -> None:
    reply = api.post(
        "/api/chat",
        json={
            "model": "llama3.2",
            "stream": False,
            "messages": [{"role": "user", "content": "yo"}],
        },
    )
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["message"] == {"role": "assistant", "content": "echo: yo"}
    assert body["done"] is True and "context" not in body


def test_empty_prompt_loads_the_model(api: httpx.Client) -> None:
    body = api.post("/api/generate", json={"model": "llama3.2", "stream": False}).json()
    assert (body["response"], body["done"], body["done_reason"]) == ("", True, "load")
    lines = api.post("/api/chat", json={"model": "llama3.2", "messages": []}).text.splitlines()
    assert [json.loads(line)["done_reason"] for line in lines] == ["load"]


def test_embed_endpoints(api: httpx.Client) -> None:
    body = api.post("/api/embed", json={"model": "nomic-embed-text", "input": "hello"}).json()
    assert len(body["embeddings"]) == 1
    assert math.isclose(math.fsum(x * x for x in body["embeddings"][0]), 1.0)
    assert {"model", "total_duration", "load_duration", "prompt_eval_count"} <= set(body)
    empty = api.post("/api/embed", json={"model": "nomic-embed-text", "input": []}).json()
    assert empty["embeddings"] == []
    short = api.post(
        "/api/embed", json={"model": "nomic-embed-text", "input": ["a"], "dimensions": 4}
    ).json()["embeddings"][0]
    assert len(short) == 4 and math.isclose(math.fsum(x * x for x in short), 1.0)
    bad = api.post("/api/embed", json={"model": "nomic-embed-text", "input": [1]})
    assert bad.status_code == 400
    legacy = api.post("/api/embeddings", json={"model": "nomic-embed-text", "prompt": "hello"})
    assert legacy.json()["embedding"] == pytest.approx(body["embeddings"][0])
    assert api.post("/api/embeddings", json={"model": "nomic-embed-text"}).json() == {
        "embedding": []
    }


def test_keep_alive_and_chunked_request_bodies(ollama_server: OllamaServer) -> None:
    host, port = ollama_server.address
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", "/api/version")
        assert conn.getresponse().read() == b'{"version":"0.12.6"}'
        sock = conn.sock
        body = iter([b'{"model": "llama3.2", ', b'"prompt": "hi", "stream": false}'])
        conn.request(
            "POST",
            "/api/generate",
            body=body,
            encode_chunked=True,
            headers={"Content-Type": "application/json"},
        )
        assert json.loads(conn.getresponse().read())["response"] == "echo: hi"
        conn.request("POST", "/api/generate", body=b"{bad")  # refused, connection stays usable
        assert conn.getresponse().read().startswith(b'{"error"')
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"Ollama is running"
        assert conn.sock is sock  # one connection served all four requests
    finally:
        conn.close()
    assert ollama_server.calls.snapshot() == {"version": 1, "generate": 2, "root": 1}


class _ConcurrencyProbe(EchoEngine):
    """Records how many requests were inside the engine at once."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._lock = threading.Lock()
        self.inside = self.peak = 0

    def generate(self, prompt: Prompt) -> Completion:
        with self._lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
        try:
            return super().generate(prompt)
        finally:
            with self._lock:
                self.inside -= 1


def test_serves_64_connections_at_once(make_ollama_server: ServerFactory) -> None:
    engine = _ConcurrencyProbe(latency_ms=300)
    server = make_ollama_server(engine=engine)
    barrier = threading.Barrier(64)

    host, port = server.address

    def one(i: int) -> str:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            body = json.dumps({"model": "llama3.2", "prompt": str(i), "stream": False})
            barrier.wait()
            conn.request("POST", "/api/generate", body=body)
            return str(json.loads(conn.getresponse().read())["response"])
        finally:
            conn.close()

    results: list[str] = [""] * 64
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, one(i))) for i in range(64)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [f"echo: {i}" for i in range(64)]
    assert engine.peak >= 50


async def _raw_generate(host: str, port: int, i: int) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        body = json.dumps({"model": "llama3.2", "prompt": f"q{i}", "stream": False}).encode()
        writer.write(
            b"POST /api/generate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        head, _, rest = (await reader.read()).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        result: dict[str, Any] = json.loads(rest)
        return result
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_thousand_simultaneous_connections(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(latency_ms=200)
    host, port = server.address
    replies = await asyncio.gather(*(_raw_generate(host, port, i) for i in range(1000)))
    assert [r["response"] for r in replies] == [f"echo: q{i}" for i in range(1000)]
    assert server.calls["generate"] == 1000


class _Broken(EchoEngine):
    def generate(self, prompt: Prompt) -> Completion:
        if prompt.prompt == "explode":
            raise RuntimeError("engine exploded")

        def tokens() -> Iterator[str]:
            yield "half "
            raise RuntimeError("engine died mid-way")

        return Completion(tokens())

    def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        return []


def test_engine_failures(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(engine=_Broken())
    with httpx.Client(base_url=server.url, timeout=10) as api:
        reply = api.post("/api/generate", json={"model": "llama3.2", "prompt": "explode"})
        assert (reply.status_code, reply.json()) == (500, {"error": "engine exploded"})
        lines = api.post("/api/generate", json={"model": "llama3.2", "prompt": "x"}).text
        assert [json.loads(line) for line in lines.splitlines()][-1] == {
            "error": "engine died mid-way"
        }
        reply = api.post("/api/embed", json={"model": "nomic-embed-text", "input": ["a"]})
        assert reply.status_code == 500
        assert api.get("/api/version").status_code == 200  # the server lives on


def test_stop_is_idempotent_and_closes_idle_connections() -> None:
    server = OllamaServer().start()
    with httpx.Client(base_url=server.url) as api:
        assert api.get("/").status_code == 200  # leaves a keep-alive connection open
        server.stop()
        server.stop()
        with pytest.raises(httpx.TransportError):
            api.get("/")
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url
