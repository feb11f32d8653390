"""Failures over real HTTP, mapped into llmcache's error tree: server down, timeouts, 429 and
5xx (retried), bad JSON, error events and incomplete streams. Sync and async."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from llmcache_testserver import EchoEngine, Faults, OllamaServer

from llmcache.backends import (
    BackendTimeout,
    BackendUnavailable,
    BadResponse,
    StreamChunk,
    StreamError,
)
from llmcache_openai import AsyncOpenAIClient, OpenAIClient


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _collect(stream: Iterator[StreamChunk], into: list[StreamChunk]) -> None:
    for chunk in stream:
        into.append(chunk)


def test_server_down_is_unavailable(closed_port: int) -> None:
    with (
        OpenAIClient(
            f"http://127.0.0.1:{closed_port}/v1", retries=1, backoff=0.01, timeout=2
        ) as client,
        pytest.raises(BackendUnavailable, match="cannot connect"),
    ):
        client.generate("hi")


def test_slow_server_times_out() -> None:
    with (
        OllamaServer(EchoEngine(latency_ms=400)) as server,
        OpenAIClient(server.openai_url, model="llama3.2", timeout=0.1) as client,
        pytest.raises(BackendTimeout),
    ):
        client.generate("hi")


def test_rate_limit_is_retried(client: OpenAIClient, server: OllamaServer) -> None:
    server.openai.rate_limited = 2
    assert client.generate("hi").content == "echo: hi"
    assert server.calls["openai.chat"] == 3


def test_rate_limit_outlasting_the_retries_is_unavailable(server: OllamaServer) -> None:
    server.openai.rate_limited = 10
    with (
        OpenAIClient(
            server.openai_url, model="llama3.2", retries=1, backoff=0.01, timeout=5
        ) as client,
        pytest.raises(BackendUnavailable) as caught,
    ):
        client.chat([{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 429 and server.calls["openai.chat"] == 2


@pytest.mark.parametrize(
    ("faults", "status"), [(Faults(unavailable=1), None), (Faults(server_error=True), 500)]
)
def test_server_errors_are_retried(faults: Faults, status: int | None) -> None:
    with (
        OllamaServer(faults=faults) as server,
        OpenAIClient(
            server.openai_url, model="llama3.2", retries=2, backoff=0.01, timeout=5
        ) as client,
    ):
        if status is None:
            assert client.generate("hi").content == "echo: hi"
            assert server.calls["openai.chat"] == 2
            return
        with pytest.raises(BackendUnavailable) as caught:
            client.generate("hi")
        assert caught.value.status_code == status and server.calls["openai.chat"] == 3


def test_bad_json_is_a_bad_response() -> None:
    with (
        OllamaServer(faults=Faults(bad_json=True)) as server,
        OpenAIClient(server.openai_url, model="llama3.2", timeout=5) as client,
    ):
        with pytest.raises(BadResponse, match="invalid JSON"):
            client.generate("hi")
        with pytest.raises(BadResponse, match="invalid JSON"):
            list(client.generate_stream("hi"))


def test_an_error_event_mid_stream_is_a_stream_error() -> None:
    received: list[StreamChunk] = []
    with (
        OllamaServer(faults=Faults(fail_after=2)) as server,
        OpenAIClient(server.openai_url, model="llama3.2", timeout=5) as client,
    ):
        with pytest.raises(StreamError, match="injected fault") as caught:
            _collect(client.generate_stream("one two three four"), received)
    assert [c.content for c in received] == ["echo: ", "one "]
    assert caught.value.status_code == -1


def test_a_stream_cut_before_done_is_a_stream_error() -> None:
    received: list[StreamChunk] = []
    with (
        OllamaServer(faults=Faults(truncate_after=1)) as server,
        OpenAIClient(server.openai_url, model="llama3.2", timeout=5) as client,
        pytest.raises(StreamError, match="DONE"),
    ):
        _collect(client.chat_stream([{"role": "user", "content": "a b c"}]), received)
    assert [c.content for c in received] == ["echo: "]


async def test_async_faults() -> None:
    faults = Faults(fail_after=1)
    async with AsyncOpenAIClient("http://127.0.0.1:1/v1", retries=0, timeout=2) as down:
        with pytest.raises(BackendUnavailable):
            await down.generate("hi")
    with OllamaServer(faults=faults) as server:
        server.openai.rate_limited = 1
        async with AsyncOpenAIClient(
            server.openai_url, model="llama3.2", backoff=0.01, timeout=5
        ) as client:
            with pytest.raises(StreamError):
                [c async for c in client.generate_stream("a b c")]
            faults.fail_after, faults.bad_json = None, True
            with pytest.raises(BadResponse):
                await client.chat([{"role": "user", "content": "hi"}])
            faults.bad_json = False
            assert (await client.generate("ok")).content == "echo: ok"
