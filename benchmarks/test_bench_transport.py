"""The caching transport: an OpenAI SDK call answered from the cache against the same SDK
call over a ``MockTransport`` that returns the same bytes from memory (the SDK's own floor).

    .venv/bin/pytest benchmarks/test_bench_transport.py --benchmark-enable --benchmark-only -q

Target: a hit within 1.1x of that floor, over httpx2 (openai 3.x's own package) and over
httpx (which openai also takes), sync and async; a streamed hit (SSE replayed event by
event, the SDK parsing every chunk) against the same stream from memory is a watch.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from typing import Any

import openai
import orjson
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from llmcache import MemoryStore

MESSAGES = [
    {"role": "system", "content": "You answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]

# A chat completion as the API sends it (about 700 bytes).
ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-8f1d2c3b4a5e6f708192a3b4",
        "object": "chat.completion",
        "created": 1735689600,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0ba0d124f1",
        "choices": [
            {
                "index": 0,
                "logprobs": None,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "refusal": None,
                    "content": "The capital of France is Paris, on the Seine.",
                },
            }
        ],
        "usage": {
            "prompt_tokens": 27,
            "completion_tokens": 12,
            "total_tokens": 39,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
    }
)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return (
        b"data: "
        + orjson.dumps(
            {
                "id": "chatcmpl-8f1d2c3b4a5e6f708192a3b4",
                "object": "chat.completion.chunk",
                "created": 1735689600,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
        )
        + b"\n\n"
    )


WORDS = "The capital of France is Paris, on the Seine.".split(" ")
STREAM = (
    _chunk({"role": "assistant", "content": ""})
    + b"".join(_chunk({"content": w + " "}) for w in WORDS)
    + _chunk({}, "stop")
    + b"data: [DONE]\n\n"
)


def _upstream(package: str) -> Any:
    pkg = importlib.import_module(package)

    def answer(request: Any) -> Any:
        streamed = b'"stream":true' in request.content
        return pkg.Response(
            200,
            content=STREAM if streamed else ANSWER,
            headers={"content-type": "text/event-stream" if streamed else "application/json"},
        )

    return pkg.MockTransport(answer)


def _client(package: str, cached: bool, *, aio: bool = False) -> Any:
    pkg = importlib.import_module(package)
    upstream = _upstream(package)
    if cached:
        door = importlib.import_module(f"llmcache.integrations.{package}")
        kind = door.AsyncCacheTransport if aio else door.CacheTransport
        upstream = kind(cache=MemoryStore(), transport=upstream)
    http = (pkg.AsyncClient if aio else pkg.Client)(transport=upstream)
    sdk = openai.AsyncOpenAI if aio else openai.OpenAI
    return sdk(base_url="http://api.test/v1", api_key="sk-bench", max_retries=0, http_client=http)


@pytest.fixture
def clients() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for client in made:
        result = client.close()
        if asyncio.iscoroutine(result):
            asyncio.run(result)


def _ask(client: Any) -> str:
    return str(
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0)
        .choices[0]
        .message.content
    )


def _plain(benchmark: BenchmarkFixture, clients: list[Any], package: str, cached: bool) -> None:
    benchmark.extra_info.update(
        {"role": "candidate", "target": 1.1} if cached else {"role": "baseline"}
    )
    client = _client(package, cached)
    clients.append(client)
    assert _ask(client).startswith("The capital")  # warms the cache
    assert benchmark(_ask, client).startswith("The capital")


@pytest.mark.benchmark(group="transport hit, openai sdk, httpx2")
def test_openai_httpx2_baseline_mock_transport(
    benchmark: BenchmarkFixture, clients: list[Any]
) -> None:
    _plain(benchmark, clients, "httpx2", cached=False)


@pytest.mark.benchmark(group="transport hit, openai sdk, httpx2")
def test_openai_httpx2_cache_hit(benchmark: BenchmarkFixture, clients: list[Any]) -> None:
    _plain(benchmark, clients, "httpx2", cached=True)


@pytest.mark.benchmark(group="transport hit, openai sdk, httpx")
def test_openai_httpx_baseline_mock_transport(
    benchmark: BenchmarkFixture, clients: list[Any]
) -> None:
    _plain(benchmark, clients, "httpx", cached=False)


@pytest.mark.benchmark(group="transport hit, openai sdk, httpx")
def test_openai_httpx_cache_hit(benchmark: BenchmarkFixture, clients: list[Any]) -> None:
    _plain(benchmark, clients, "httpx", cached=True)


def _async(benchmark: BenchmarkFixture, cached: bool) -> None:
    benchmark.extra_info.update(
        {"role": "candidate", "target": 1.1} if cached else {"role": "baseline"}
    )
    loop = asyncio.new_event_loop()
    client = _client("httpx2", cached, aio=True)

    async def ask() -> str:
        answer = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, temperature=0
        )
        return str(answer.choices[0].message.content)

    try:
        assert loop.run_until_complete(ask()).startswith("The capital")  # warms the cache
        assert benchmark(lambda: loop.run_until_complete(ask())).startswith("The capital")
    finally:
        loop.run_until_complete(client.close())
        loop.close()


@pytest.mark.benchmark(group="transport hit, async openai sdk, httpx2")
def test_async_openai_baseline_mock_transport(benchmark: BenchmarkFixture) -> None:
    _async(benchmark, cached=False)


@pytest.mark.benchmark(group="transport hit, async openai sdk, httpx2")
def test_async_openai_cache_hit(benchmark: BenchmarkFixture) -> None:
    _async(benchmark, cached=True)


def _stream(client: Any) -> int:
    return sum(
        1
        for _ in client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, temperature=0, stream=True
        )
    )


@pytest.mark.benchmark(group="transport streamed hit, openai sdk, httpx2")
def test_openai_stream_baseline_mock_transport(
    benchmark: BenchmarkFixture, clients: list[Any]
) -> None:
    benchmark.extra_info["role"] = "baseline"
    client = _client("httpx2", cached=False)
    clients.append(client)
    assert benchmark(_stream, client) == len(WORDS) + 2


@pytest.mark.benchmark(group="transport streamed hit, openai sdk, httpx2")
def test_openai_stream_cache_hit(benchmark: BenchmarkFixture, clients: list[Any]) -> None:
    benchmark.extra_info["role"] = "candidate"
    client = _client("httpx2", cached=True)
    clients.append(client)
    _stream(client)  # warms the cache
    assert benchmark(_stream, client) == len(WORDS) + 2
