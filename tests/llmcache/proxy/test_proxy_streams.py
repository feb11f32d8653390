"""Streams through ``llmcache proxy``: the first bytes reach the client before the upstream
finished, and a stream that did not end cleanly (the upstream killed mid-stream, a client
that stopped reading) is never stored; then /metrics after such a run.

The upstream's engine holds each stream after its first token until the test opens a
gate, so "before the upstream finished" is a fact of the test, not a timing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from llmcache_testserver import Completion, EchoEngine, OllamaServer, Prompt
from proxy_process import ProxyProcess


class GatedEngine(EchoEngine):
    """`EchoEngine` whose streams stop after their first token until `gate` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def generate(self, prompt: Prompt) -> Completion:
        completion = super().generate(prompt)
        tokens = list(completion.pieces())

        def gated() -> Iterator[str]:
            yield tokens[0]
            self.gate.wait(10)
            yield from tokens[1:]

        completion.text = gated()
        return completion


@pytest.fixture
def gated() -> Iterator[tuple[OllamaServer, GatedEngine]]:
    engine = GatedEngine()
    server = OllamaServer(engine).start()
    yield server, engine
    engine.gate.set()  # a handler thread still held lets go
    server.stop()


GENERATE = {"model": "llama3.2", "prompt": "one two three four"}


def _lines(reply: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in reply.iter_lines():
        if line:
            yield json.loads(line)


def test_the_first_bytes_arrive_before_the_upstream_finished(
    start_proxy: Any, gated: tuple[OllamaServer, GatedEngine]
) -> None:
    server, engine = gated
    p = start_proxy(server.url)
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{p.url}/api/generate", json=GENERATE) as reply,
    ):
        assert reply.headers["x-llmcache"] == "miss"
        lines = _lines(reply)
        first = next(lines)  # would time out if the proxy waited for the whole answer
        assert (first["response"], first["done"]) == ("echo: ", False)
        engine.gate.set()
        assert [x["done"] for x in lines][-1] is True
    again = httpx.post(f"{p.url}/api/generate", json=GENERATE, timeout=10)
    assert again.headers["x-llmcache"] == "hit"
    assert server.calls["generate"] == 1


def test_an_upstream_killed_mid_stream_breaks_the_stream_and_stores_nothing(
    start_proxy: Any, gated: tuple[OllamaServer, GatedEngine]
) -> None:
    server, engine = gated
    p = start_proxy(server.url)
    request: dict[str, Any] = {
        "model": "llama3.2",
        "stream": True,
        "messages": [{"role": "user", "content": "one two three"}],
    }
    with openai.OpenAI(
        base_url=f"{p.url}/v1", api_key="sk-one", max_retries=0, timeout=10
    ) as client:
        chunks = client.chat.completions.create(**request)
        seen = [next(chunks)]
        server.stop()  # the upstream dies holding the stream open
        with pytest.raises(openai.APIConnectionError):  # the SDK sees the broken stream
            seen += list(chunks)
        chunks.close()
        # Had the cut stream been stored, this would be a hit; it reaches the dead upstream.
        with pytest.raises(openai.InternalServerError) as down:
            client.chat.completions.create(**request)
    assert down.value.status_code == 502
    figures = p.metrics()
    assert figures['llmcache_proxy_upstream_errors_total{reason="cut"}'] == 1
    assert figures['llmcache_proxy_upstream_errors_total{reason="connect"}'] == 1
    assert "broke off" in p.stderr()


def test_a_client_that_stops_reading_a_stream_leaves_nothing_stored(
    start_proxy: Any, gated: tuple[OllamaServer, GatedEngine]
) -> None:
    server, engine = gated
    p = start_proxy(server.url)
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", f"{p.url}/api/generate", json=GENERATE) as reply:
            assert next(_lines(reply))["done"] is False
        # The client hung up: once the proxy saw it go, the upstream may finish; the
        # proxy closed that answer unread, so nothing is stored.
        _wait_for(p, "llmcache_proxy_client_disconnects_total", 1)
        engine.gate.set()
        statuses = []
        for _ in range(2):
            with client.stream("POST", f"{p.url}/api/generate", json=GENERATE) as reply:
                statuses.append(reply.headers["x-llmcache"])
                assert [x["done"] for x in _lines(reply)][-1] is True
    assert statuses == ["miss", "hit"]
    assert server.calls["generate"] == 2
    assert p.metrics()["llmcache_proxy_client_disconnects_total"] == 1


def _wait_for(p: ProxyProcess, name: str, value: float) -> None:
    """Until the proxy's metric `name` reached `value` (a sync point, not a timing)."""
    deadline = time.monotonic() + 10
    while p.metrics()[name] < value:
        assert time.monotonic() < deadline, f"{name} never reached {value}"
        time.sleep(0.01)


def test_metrics_after_a_run(start_proxy: Any) -> None:
    with OllamaServer(EchoEngine()) as server:
        p = start_proxy(server.url)
        chat = {"model": "llama3.2", "messages": [{"role": "user", "content": "count me"}]}
        with httpx.Client(base_url=p.url, timeout=10) as client:
            for _ in range(3):  # a miss, then two hits
                client.post("/v1/chat/completions", json=chat)
            client.get("/api/version")  # not a model call: bypass
            client.post("/v1/chat/completions", json={**chat, "temperature": 1.5})
            server.openai.rate_limited = 1
            assert client.post("/v1/chat/completions", json={**chat, "seed": 1}).status_code == 429
            text = client.get("/metrics")
        figures = p.metrics()
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    for status, count in {
        "hit": 2,
        "miss": 2,
        "bypass": 1,
        "uncacheable": 1,
        "error": 0,
        "refused": 0,
    }.items():
        assert figures[f'llmcache_proxy_requests_total{{cache="{status}"}}'] == count, status
    assert figures['llmcache_proxy_upstream_errors_total{reason="http_429"}'] == 1
    assert figures["llmcache_proxy_tokens_saved_total"] > 0
    assert figures["llmcache_proxy_in_flight"] == 0
    name = "llmcache_proxy_request_duration_seconds"
    assert figures[f'{name}_count{{cache="hit"}}'] == 2
    assert figures[f'{name}_bucket{{cache="hit",le="+Inf"}}'] == 2
