"""Failures, mapped into llmcache's error tree: server down, timeouts, 404/400, 5xx, 503 then
success (retried), mid-stream errors, incomplete streams, malformed JSON. Sync and async."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from llmcache_testserver import Faults, OllamaServer

from llmcache.backends import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BadRequest,
    BadResponse,
    ModelNotFound,
    StreamChunk,
    StreamError,
)
from llmcache_ollama import AsyncOllamaClient, OllamaClient

if TYPE_CHECKING:  # fixtures' types; conftest is not importable as a module at run time
    from conftest import AsyncCountingTransport, CountingTransport, ServerFactory


def _drain(stream: Iterator[StreamChunk], into: list[StreamChunk]) -> None:
    for chunk in stream:
        into.append(chunk)


async def _adrain(stream: AsyncIterator[StreamChunk], into: list[StreamChunk]) -> None:
    async for chunk in stream:
        into.append(chunk)


# -- server down, timeouts -------------------------------------------------------------------


def test_server_down_retries_then_unavailable(
    closed_port: int, counting_transport: CountingTransport
) -> None:
    with OllamaClient(
        f"127.0.0.1:{closed_port}",
        retries=2,
        backoff=0.05,
        timeout=2.0,
        transport=counting_transport,
    ) as client:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="cannot connect") as info:
            client.generate("hi")
        elapsed = time.monotonic() - started
    assert counting_transport.attempts == 3  # the first try and `retries` more
    assert info.value.status_code is None
    assert 0.15 <= elapsed < 2.0  # backoff 0.05 + 0.1, well inside the 2 s budget


def test_retries_stop_at_the_timeout_budget(
    closed_port: int, counting_transport: CountingTransport
) -> None:
    with OllamaClient(
        f"127.0.0.1:{closed_port}",
        retries=10,
        backoff=0.1,
        timeout=0.35,
        transport=counting_transport,
    ) as client:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable):
            client.version()
        elapsed = time.monotonic() - started
    # Sleeps of 0.1 and 0.2 fit in 0.35 s; 0.4 would not, so the client gives up.
    assert counting_transport.attempts == 3
    assert elapsed < 0.35 + 0.1


async def test_server_down_async(
    closed_port: int, async_counting_transport: AsyncCountingTransport
) -> None:
    async with AsyncOllamaClient(
        f"127.0.0.1:{closed_port}",
        retries=1,
        backoff=0.01,
        timeout=2.0,
        transport=async_counting_transport,
    ) as client:
        with pytest.raises(BackendUnavailable):
            await client.chat([{"role": "user", "content": "hi"}])
        with pytest.raises(BackendUnavailable):
            await _adrain(client.generate_stream("hi"), [])
    assert async_counting_transport.attempts == 4


def test_timeout_is_not_retried(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(latency_ms=600)
    with OllamaClient(server.url, timeout=0.2, retries=3, backoff=0.01) as client:
        started = time.monotonic()
        with pytest.raises(BackendTimeout):
            client.generate("slow")
        assert time.monotonic() - started < 0.5
    assert server.calls["generate"] == 1


async def test_timeout_async(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(latency_ms=600)
    async with AsyncOllamaClient(server.url, timeout=0.2) as client:
        with pytest.raises(BackendTimeout):
            await client.embed(["x"], model="nomic-embed-text")
    assert server.calls["embed"] == 1


# -- errors the server answers ------------------------------------------------------------


def test_unknown_model(client: OllamaClient, ollama_server: OllamaServer) -> None:
    with pytest.raises(ModelNotFound) as info:
        client.generate("hi", model="no-such-model")
    assert info.value.model == "no-such-model"
    assert info.value.status_code == 404
    assert str(info.value) == "model 'no-such-model' not found"
    with pytest.raises(ModelNotFound):
        list(client.chat_stream([{"role": "user", "content": "x"}], model="nope"))
    assert ollama_server.calls["generate"] == 1  # 4xx is never retried


def test_bad_request_carries_the_servers_message(client: OllamaClient) -> None:
    with pytest.raises(BadRequest, match='"nomic-embed-text" does not support chat') as info:
        client.chat([{"role": "user", "content": "x"}], model="nomic-embed-text")
    assert info.value.status_code == 400
    with pytest.raises(BadRequest, match="does not support embeddings"):
        client.embed(["x"])  # the default model is a completion model
    with pytest.raises(BadRequest, match="does not support thinking"):
        client.generate("x", think=True)


def test_503_then_success_is_retried(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(faults=Faults(unavailable=2))
    with OllamaClient(server.url, retries=2, backoff=0.01) as client:
        assert client.generate("hi").content == "echo: hi"
    assert server.calls["generate"] == 3


async def test_503_then_success_async_stream(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(faults=Faults(unavailable=1))
    async with AsyncOllamaClient(server.url, retries=1, backoff=0.01) as client:
        chunks: list[StreamChunk] = []
        await _adrain(client.generate_stream("hi"), chunks)
    assert "".join(c.content for c in chunks) == "echo: hi"
    assert server.calls["generate"] == 2


def test_503_until_retries_run_out(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(faults=Faults(unavailable=5))
    with OllamaClient(server.url, retries=2, backoff=0.01) as client:
        with pytest.raises(BackendUnavailable, match="server busy") as info:
            client.embed(["x"], model="nomic-embed-text")
    assert info.value.status_code == 503
    assert server.calls["embed"] == 3


def test_500_is_a_backend_error_not_retried(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(faults=Faults(server_error=True))
    with OllamaClient(server.url, retries=3, backoff=0.01) as client:
        with pytest.raises(BackendError, match="runner process") as info:
            client.generate("hi")
    assert type(info.value) is BackendError and info.value.status_code == 500
    assert server.calls["generate"] == 1


def test_faults_can_target_one_model(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(faults=Faults(server_error=True, models={"qwen3"}))
    with OllamaClient(server.url) as client:
        assert client.generate("fine").content == "echo: fine"
        with pytest.raises(BackendError):
            client.generate("broken", model="qwen3:latest")


# -- broken streams and bodies --------------------------------------------------------------


def test_error_line_mid_stream(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(faults=Faults(fail_after=2))
    received: list[StreamChunk] = []
    with OllamaClient(server.url) as client:
        with pytest.raises(StreamError, match="injected fault") as info:
            _drain(client.generate_stream("one two three four"), received)
        assert info.value.status_code == -1
        assert [c.content for c in received] == ["echo: ", "one "]
        # Not streamed, the same failure is a plain 500.
        with pytest.raises(BackendError) as plain:
            client.generate("one two")
        assert plain.value.status_code == 500


async def test_error_line_mid_stream_async(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(faults=Faults(fail_after=1))
    received: list[StreamChunk] = []
    async with AsyncOllamaClient(server.url) as client:
        with pytest.raises(StreamError):
            await _adrain(client.chat_stream([{"role": "user", "content": "a b"}]), received)
    assert [c.content for c in received] == ["echo: "]


def test_stream_without_done_line_is_incomplete(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(faults=Faults(truncate_after=2))
    received: list[StreamChunk] = []
    with OllamaClient(server.url) as client:
        with pytest.raises(StreamError, match="before its final"):
            _drain(client.chat_stream([{"role": "user", "content": "a b c"}]), received)
    assert len(received) == 2 and not any(c.done for c in received)


async def test_stream_without_done_line_async(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(faults=Faults(truncate_after=0))
    async with AsyncOllamaClient(server.url) as client:
        with pytest.raises(StreamError):
            await _adrain(client.generate_stream("x"), [])


def test_malformed_json(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(faults=Faults(bad_json=True))
    with OllamaClient(server.url) as client:
        with pytest.raises(BadResponse, match="invalid JSON"):
            client.generate("hi")
        with pytest.raises(BadResponse):
            list(client.generate_stream("hi"))
        with pytest.raises(BadResponse):
            client.embed(["x"], model="nomic-embed-text")
    assert server.calls["generate"] == 2  # a broken reply is not retried


async def test_malformed_json_async(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(faults=Faults(bad_json=True))
    async with AsyncOllamaClient(server.url) as client:
        with pytest.raises(BadResponse):
            await client.chat([{"role": "user", "content": "x"}])
        with pytest.raises(BadResponse):
            await _adrain(client.chat_stream([{"role": "user", "content": "x"}]), [])


def test_faults_can_change_while_running(ollama_server: OllamaServer, client: OllamaClient) -> None:
    ollama_server.faults.server_error = True
    with pytest.raises(BackendError):
        client.generate("x")
    ollama_server.faults.server_error = False
    assert client.generate("x").content == "echo: x"


def test_busy_connections_time_out_instead_of_hanging(ollama_server: OllamaServer) -> None:
    with OllamaClient(
        ollama_server.url, max_connections=1, timeout=httpx.Timeout(5.0, pool=0.2)
    ) as client:
        stream = client.generate_stream("a b c")
        next(stream)  # the open stream holds the only connection
        with pytest.raises(BackendTimeout, match="stayed busy"):
            client.version()
        stream.close()  # type: ignore[attr-defined]
        assert client.version() == "0.12.6"
