"""The official `openai`, `anthropic` and `ollama` SDKs through ``llmcache proxy`` (a real
process, the SDKs' base URL pointed at it) in front of the test server: each call once
upstream, then from the cache, with the same result; credentials never share answers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest
from llmcache_testserver import EchoEngine, OllamaServer
from proxy_process import ProxyProcess

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a word up.",
            "parameters": {
                "type": "object",
                "required": ["word"],
                "properties": {"word": {"type": "string"}},
            },
        },
    }
]


def _openai(proxy: ProxyProcess, key: str = "sk-one") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)


@pytest.fixture
def oai(proxy: ProxyProcess) -> Iterator[openai.OpenAI]:
    with _openai(proxy) as client:
        yield client


def _chat(text: str) -> dict[str, Any]:
    return {"model": "llama3.2", "messages": [{"role": "user", "content": text}]}


def test_openai_chat_is_answered_once_upstream(
    oai: openai.OpenAI, upstream: OllamaServer, fresh: str
) -> None:
    client = oai
    before = upstream.calls["openai.chat"]
    raws = [client.chat.completions.with_raw_response.create(**_chat(fresh)) for _ in range(2)]
    assert [r.headers["x-llmcache"] for r in raws] == ["miss", "hit"]
    first, second = (r.parse() for r in raws)
    assert second.model_dump() == first.model_dump()
    assert first.choices[0].message.content == f"echo: {fresh}"
    assert upstream.calls["openai.chat"] == before + 1


def test_openai_stream_replays_the_same_chunks(
    oai: openai.OpenAI, upstream: OllamaServer, fresh: str
) -> None:
    client = oai
    before = upstream.calls["openai.chat"]
    runs = []
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(
            **_chat(fresh), stream=True, stream_options={"include_usage": True}
        )
        runs.append((raw.headers["x-llmcache"], [c.model_dump() for c in raw.parse()]))
    assert [status for status, _ in runs] == ["miss", "hit"]
    assert runs[1][1] == runs[0][1]
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in runs[0][1] if c["choices"])
        == f"echo: {fresh}"
    )
    assert runs[0][1][-1]["usage"]["total_tokens"] > 0
    assert upstream.calls["openai.chat"] == before + 1


def test_openai_embeddings(oai: openai.OpenAI, upstream: OllamaServer, fresh: str) -> None:
    client = oai
    before = upstream.calls["openai.embeddings"]
    vectors = [
        client.embeddings.create(model="nomic-embed-text", input=[fresh, "two"]) for _ in range(2)
    ]
    assert vectors[1].model_dump() == vectors[0].model_dump()
    assert len(vectors[0].data) == 2
    assert upstream.calls["openai.embeddings"] == before + 1


@pytest.mark.parametrize("stream", [False, True])
def test_openai_tool_calls(
    oai: openai.OpenAI, upstream: OllamaServer, fresh: str, stream: bool
) -> None:
    client = oai
    before = upstream.calls["openai.chat"]
    calls = []
    for _ in range(2):
        if stream:
            with client.chat.completions.stream(**_chat(fresh), tools=TOOLS) as events:
                message = events.get_final_completion().choices[0].message
        else:
            message = client.chat.completions.create(**_chat(fresh), tools=TOOLS).choices[0].message
        assert message.tool_calls
        calls.append([(c.function.name, c.function.arguments) for c in message.tool_calls])
    assert calls[1] == calls[0] == [("lookup", f'{{"word": "{fresh}"}}')]
    assert upstream.calls["openai.chat"] == before + 1


@pytest.fixture
def ant(proxy: ProxyProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-one", max_retries=0) as client:
        yield client


def test_anthropic_messages_plain_and_streamed(
    ant: anthropic.Anthropic, upstream: OllamaServer, fresh: str
) -> None:
    client = ant
    before = upstream.calls["anthropic.messages"]
    request: dict[str, Any] = {
        "model": "llama3.2",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": fresh}],
    }
    raws = [client.messages.with_raw_response.create(**request) for _ in range(2)]
    assert [r.headers["x-llmcache"] for r in raws] == ["miss", "hit"]
    first, second = (r.parse() for r in raws)
    assert second.model_dump() == first.model_dump()
    assert (first.content[0].text, first.stop_reason) == (f"echo: {fresh}", "end_turn")
    finals = []
    for _ in range(2):
        with client.messages.stream(**request) as events:
            text = "".join(events.text_stream)
            finals.append((text, events.get_final_message().model_dump()))
    assert finals[1] == finals[0]
    assert finals[0][0] == f"echo: {fresh}"
    assert upstream.calls["anthropic.messages"] == before + 2


def test_anthropic_tool_use(ant: anthropic.Anthropic, upstream: OllamaServer, fresh: str) -> None:
    client = ant
    before = upstream.calls["anthropic.messages"]
    tools: list[Any] = [{"name": "lookup", "input_schema": TOOLS[0]["function"]["parameters"]}]
    uses = []
    for _ in range(2):
        with client.messages.stream(
            model="llama3.2",
            max_tokens=64,
            tools=tools,
            messages=[{"role": "user", "content": fresh}],
        ) as events:
            final = events.get_final_message()
        assert final.stop_reason == "tool_use"
        uses.append([(b.name, b.input) for b in final.content if b.type == "tool_use"])
    assert uses[1] == uses[0] == [("lookup", {"word": fresh})]
    assert upstream.calls["anthropic.messages"] == before + 1


def test_ollama_chat_generate_and_embed(
    proxy: ProxyProcess, upstream: OllamaServer, fresh: str, request: pytest.FixtureRequest
) -> None:
    client = ollama.Client(host=proxy.url)
    request.addfinalizer(client.close)
    before = upstream.calls.snapshot()
    streams = [
        [
            c.model_dump()
            for c in client.chat(
                model="llama3.2", messages=[{"role": "user", "content": fresh}], stream=True
            )
        ]
        for _ in range(2)
    ]
    assert streams[1] == streams[0] and streams[0][-1]["done"] is True
    answers = [client.generate(model="llama3.2", prompt=fresh).model_dump() for _ in range(2)]
    assert answers[1] == answers[0] and answers[0]["response"] == f"echo: {fresh}"
    vectors = [client.embed(model="nomic-embed-text", input=fresh).embeddings for _ in range(2)]
    assert vectors[1] == vectors[0]
    after = upstream.calls.snapshot()
    assert {k: after.get(k, 0) - before.get(k, 0) for k in ("chat", "generate", "embed")} == {
        "chat": 1,
        "generate": 1,
        "embed": 1,
    }


def test_two_credentials_never_share_an_answer(
    proxy: ProxyProcess, upstream: OllamaServer, fresh: str
) -> None:
    before = upstream.calls["openai.chat"]
    statuses = []
    for key in ("sk-alice", "sk-bob", "sk-alice"):
        with _openai(proxy, key) as client:
            raw = client.chat.completions.with_raw_response.create(**_chat(fresh))
        statuses.append(raw.headers["x-llmcache"])
    assert statuses == ["miss", "miss", "hit"]
    assert upstream.calls["openai.chat"] == before + 2


@pytest.fixture
def slow_upstream() -> Any:
    # Every answer takes 300 ms: 50 concurrent requests are all in flight together.
    with OllamaServer(EchoEngine(latency_ms=300)) as server:
        yield server


@pytest.mark.parametrize("stream", [False, True])
def test_fifty_concurrent_identical_requests_make_one_upstream_call(
    start_proxy: Any,
    slow_upstream: OllamaServer,
    fresh: str,
    stream: bool,
    request: pytest.FixtureRequest,
) -> None:
    p = start_proxy(slow_upstream.url)
    client = openai.OpenAI(base_url=f"{p.url}/v1", api_key="sk-one", max_retries=0, timeout=30)
    request.addfinalizer(client.close)
    go = threading.Barrier(50)

    def ask(_: int) -> str:
        go.wait()
        if stream:
            chunks = client.chat.completions.create(**_chat(fresh), stream=True)
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return client.chat.completions.create(**_chat(fresh)).choices[0].message.content or ""

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(ask, range(50)))
    assert answers == [f"echo: {fresh}"] * 50
    assert slow_upstream.calls["openai.chat"] == 1
    figures = p.metrics()
    assert (
        figures['llmcache_proxy_requests_total{cache="miss"}']
        + figures['llmcache_proxy_requests_total{cache="hit"}']
        == 50
    )


def test_a_malformed_body_is_passed_through_and_not_cached(
    proxy: ProxyProcess, upstream: OllamaServer
) -> None:
    before = upstream.calls["openai.chat"]
    for _ in range(2):
        reply = httpx.post(
            f"{proxy.url}/v1/chat/completions",
            content=b'{"model": "llama',
            headers={"content-type": "application/json"},
        )
        assert reply.status_code == 400  # the upstream's own answer
        assert "parse the JSON body" in reply.json()["error"]["message"]
        assert reply.headers["x-llmcache"] == "uncacheable"
    assert upstream.calls["openai.chat"] == before + 2


@pytest.mark.parametrize("fault", ["rate_limit", "server_error"])
def test_429_and_500_pass_through_and_are_not_stored(
    oai: openai.OpenAI, upstream: OllamaServer, fresh: str, fault: str
) -> None:
    client = oai
    before = upstream.calls["openai.chat"]
    try:
        if fault == "rate_limit":
            upstream.openai.rate_limited = 1
            with pytest.raises(openai.RateLimitError) as caught:
                client.chat.completions.create(**_chat(fresh))
        else:
            upstream.faults.server_error = True
            with pytest.raises(openai.InternalServerError) as caught:
                client.chat.completions.create(**_chat(fresh))
            assert caught.value.status_code == 500
    finally:
        upstream.openai.rate_limited = 0
        upstream.faults.server_error = False
    assert caught.value.response.headers["x-llmcache"] == "miss"
    raw = client.chat.completions.with_raw_response.create(**_chat(fresh))
    assert raw.headers["x-llmcache"] == "miss"  # the error was not stored
    assert upstream.calls["openai.chat"] == before + 2
