"""The official SDKs (`openai`, `anthropic`, `ollama`) through the caching transport, against
the project's test server on loopback: the one-line change each SDK needs, plain calls,
streams, embeddings, tool calls, credentials, concurrency, failures."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import httpx
import httpx2
import ollama
import openai
import pytest
from llmcache_testserver import EchoEngine, OllamaServer

from llmcache import MemoryStore
from llmcache.integrations import httpx as door1
from llmcache.integrations import httpx2 as door2

USER = [{"role": "user", "content": "two plus two"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "add numbers",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "required": ["a"],
            },
        },
    }
]
ANTHROPIC_TOOLS = [
    {
        "name": "add",
        "description": "add numbers",
        "input_schema": TOOLS[0]["function"]["parameters"],
    }
]


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with OllamaServer(EchoEngine()) as s:
        yield s


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


_opened: list[Any] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Every SDK client a test makes is closed at its end (their sockets with them)."""
    yield
    while _opened:
        _opened.pop().close()


def opened(client: Any) -> Any:
    _opened.append(client)
    return client


def openai_client(
    server: OllamaServer, store: Any, *, key: str = "sk-test", **options: Any
) -> openai.OpenAI:
    # The one-line change: http_client=httpx2.Client(transport=CacheTransport(cache=store))
    return opened(
        openai.OpenAI(
            base_url=server.openai_url,
            api_key=key,
            max_retries=0,
            http_client=httpx2.Client(transport=door2.CacheTransport(cache=store, **options)),
        )
    )


def anthropic_client(server: OllamaServer, store: Any) -> anthropic.Anthropic:
    return opened(
        anthropic.Anthropic(
            base_url=server.url,
            api_key="sk-ant",
            max_retries=0,
            http_client=httpx2.Client(transport=door2.CacheTransport(cache=store)),
        )
    )


def ollama_client(server: OllamaServer, store: Any) -> ollama.Client:
    client = ollama.Client(host=server.url, transport=door1.CacheTransport(cache=store))
    opened(client._client)
    return client


def dump(value: Any) -> Any:
    """A parsed SDK object as data, without the fields a replay may not repeat."""
    return value.model_dump() if hasattr(value, "model_dump") else value


# -- openai ------------------------------------------------------------------------------------


def test_openai_plain_streamed_embeddings_and_tool_calls(
    server: OllamaServer, store: MemoryStore
) -> None:
    client = openai_client(server, store)
    calls = [
        lambda: client.chat.completions.with_raw_response.create(model="llama3.2", messages=USER),
        lambda: client.chat.completions.with_raw_response.create(
            model="llama3.2", messages=USER, tools=TOOLS
        ),
        lambda: client.embeddings.with_raw_response.create(
            model="nomic-embed-text", input=["a b", "c"]
        ),
    ]
    for call in calls:
        first, second = call(), call()
        assert (first.headers["x-llmcache"], second.headers["x-llmcache"]) == ("miss", "hit")
        assert dump(first.parse()) == dump(second.parse())
    tool_call = client.chat.completions.create(model="llama3.2", messages=USER, tools=TOOLS)
    assert tool_call.choices[0].message.tool_calls[0].function.name == "add"
    streams = []
    for _ in range(2):
        stream = client.chat.completions.create(
            model="llama3.2",
            messages=USER,
            tools=TOOLS,
            stream=True,
            stream_options={"include_usage": True},
        )
        streams.append([dump(chunk) for chunk in stream])
    assert streams[0] == streams[1] and streams[0][-1]["usage"]["total_tokens"] > 0
    fragments = "".join(
        c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        for c in streams[0]
        if c["choices"] and c["choices"][0]["delta"].get("tool_calls")
    )
    assert json.loads(fragments) == {"a": "two plus two"}
    assert (server.calls["openai.chat"], server.calls["openai.embeddings"]) == (3, 1)


def test_openai_takes_an_httpx_client_too(server: OllamaServer, store: MemoryStore) -> None:
    client = opened(
        openai.OpenAI(
            base_url=server.openai_url,
            api_key="sk-test",
            max_retries=0,
            http_client=httpx.Client(transport=door1.CacheTransport(cache=store)),
        )
    )
    texts = []
    for _ in range(2):
        with client.chat.completions.stream(model="llama3.2", messages=USER) as stream:
            texts.append(stream.get_final_completion().choices[0].message.content)
    assert texts == ["echo: two plus two"] * 2 and server.calls["openai.chat"] == 1


async def test_async_openai_plain_and_streamed(server: OllamaServer, store: MemoryStore) -> None:
    client = openai.AsyncOpenAI(
        base_url=server.openai_url,
        api_key="sk-test",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=door2.AsyncCacheTransport(cache=store)),
    )
    plain = [
        await client.chat.completions.create(model="llama3.2", messages=USER) for _ in range(2)
    ]
    assert dump(plain[0]) == dump(plain[1])
    streamed = []
    for _ in range(2):
        stream = await client.chat.completions.create(model="llama3.2", messages=USER, stream=True)
        streamed.append([dump(c) async for c in stream])
    assert streamed[0] == streamed[1] and server.calls["openai.chat"] == 2
    await client.close()


# -- anthropic ----------------------------------------------------------------------------------


def test_anthropic_plain_streamed_and_tool_use(server: OllamaServer, store: MemoryStore) -> None:
    client = anthropic_client(server, store)
    for tools in ([], ANTHROPIC_TOOLS):
        options: dict[str, Any] = {"tools": tools} if tools else {}
        answers = [
            client.messages.with_raw_response.create(
                model="llama3.2", max_tokens=64, messages=USER, **options
            )
            for _ in range(2)
        ]
        assert [a.headers["x-llmcache"] for a in answers] == ["miss", "hit"]
        assert dump(answers[0].parse()) == dump(answers[1].parse())
        finals, events = [], []
        for _ in range(2):
            with client.messages.stream(
                model="llama3.2", max_tokens=64, messages=USER, **options
            ) as stream:
                events.append([e.type for e in stream])
                finals.append(dump(stream.get_final_message()))
        assert finals[0] == finals[1] and events[0] == events[1]
        assert events[0][0] == "message_start" and events[0][-1] == "message_stop"
    assert finals[0]["content"][0]["input"] == {"a": "two plus two"}
    assert finals[0]["stop_reason"] == "tool_use"
    assert server.calls["anthropic.messages"] == 4


# -- ollama -------------------------------------------------------------------------------------


def test_ollama_chat_generate_embed_stream_and_tools(
    server: OllamaServer, store: MemoryStore
) -> None:
    client = ollama_client(server, store)
    calls = [
        lambda: dump(client.chat(model="llama3.2", messages=USER, stream=False)),
        lambda: dump(client.chat(model="llama3.2", messages=USER, tools=TOOLS, stream=False)),
        lambda: dump(client.generate(model="llama3.2", prompt="a b")),
        lambda: dump(client.embed(model="nomic-embed-text", input=["a b"])),
        lambda: [dump(p) for p in client.chat(model="llama3.2", messages=USER, stream=True)],
    ]
    for call in calls:
        assert call() == call()
    tool = client.chat(model="llama3.2", messages=USER, tools=TOOLS, stream=False)
    assert tool.message.tool_calls[0].function.arguments == {"a": "two plus two"}
    assert (server.calls["chat"], server.calls["generate"], server.calls["embed"]) == (3, 1, 1)


# -- credentials ----------------------------------------------------------------------------------


def test_two_api_keys_never_share_an_answer(server: OllamaServer, store: MemoryStore) -> None:
    alice, bob = (openai_client(server, store, key=k) for k in ("sk-alice", "sk-bob"))
    for client in (alice, bob, alice, bob):
        client.chat.completions.create(model="llama3.2", messages=USER)
    assert server.calls["openai.chat"] == 2
    shared = [
        openai_client(server, MemoryStore(), key=k, share_credentials=True)
        for k in ("sk-alice", "sk-bob")
    ]
    assert shared[0]._client._transport is not shared[1]._client._transport  # type: ignore


# -- concurrency ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_fifty_concurrent_identical_requests_make_one_upstream_call_threads(
    stream: bool, store: MemoryStore
) -> None:
    with OllamaServer(EchoEngine(latency_ms=100)) as server:
        client = openai_client(server, store)

        def ask(_: int) -> str:
            answer = client.chat.completions.create(model="llama3.2", messages=USER, stream=stream)
            if stream:
                return "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
            return str(answer.choices[0].message.content)

        with ThreadPoolExecutor(50) as pool:
            texts = list(pool.map(ask, range(50)))
    assert texts == ["echo: two plus two"] * 50 and server.calls["openai.chat"] == 1


async def joined(stream: Any) -> str:
    return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])


@pytest.mark.parametrize("stream", [False, True])
async def test_fifty_concurrent_identical_requests_make_one_upstream_call_tasks(
    stream: bool, store: MemoryStore
) -> None:
    with OllamaServer(EchoEngine(latency_ms=100)) as server:
        client = openai.AsyncOpenAI(
            base_url=server.openai_url,
            api_key="sk-test",
            max_retries=0,
            http_client=httpx2.AsyncClient(transport=door2.AsyncCacheTransport(cache=store)),
        )
        # Every stream is opened before any is read: a follower waits for the leader's
        # upstream, which is read ahead of its (not yet reading) caller.
        answers = await asyncio.gather(
            *(
                client.chat.completions.create(model="llama3.2", messages=USER, stream=stream)
                for _ in range(50)
            )
        )
        if stream:
            texts = [await joined(a) for a in answers]
        else:
            texts = [a.choices[0].message.content for a in answers]  # type: ignore[union-attr]
        await client.close()
    assert texts == ["echo: two plus two"] * 50 and server.calls["openai.chat"] == 1


# -- failures ------------------------------------------------------------------------------------


def test_upstream_killed_mid_stream_the_sdk_sees_an_error_nothing_stored(
    server: OllamaServer, store: MemoryStore
) -> None:
    server.faults.disconnect_after = 2
    client = openai_client(server, store)
    stream = client.chat.completions.create(model="llama3.2", messages=USER, stream=True)
    with pytest.raises((httpx2.RemoteProtocolError, openai.APIError)):
        for _ in stream:
            pass
    messages = anthropic_client(server, store)
    with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIError)):
        with messages.messages.stream(model="llama3.2", max_tokens=64, messages=USER) as events:
            for _ in events:
                pass
    with pytest.raises((httpx.RemoteProtocolError, ollama.ResponseError)):
        for _ in ollama_client(server, store).chat(model="llama3.2", messages=USER, stream=True):
            pass
    assert store.stats()["sets"] == 0


def test_429_and_500_from_upstream_pass_through_and_nothing_is_stored(
    server: OllamaServer, store: MemoryStore
) -> None:
    client = openai_client(server, store)
    server.openai.rate_limited = 1
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="llama3.2", messages=USER)
    server.faults.server_error = True
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="llama3.2", messages=USER, stream=True)
    messages = anthropic_client(server, store)
    with pytest.raises(anthropic.InternalServerError):
        messages.messages.create(model="llama3.2", max_tokens=64, messages=USER)
    server.faults.server_error = False
    server.anthropic.rate_limited = 1
    with pytest.raises(anthropic.RateLimitError):
        messages.messages.create(model="llama3.2", max_tokens=64, messages=USER)
    assert store.stats()["sets"] == 0
    answer = client.chat.completions.with_raw_response.create(model="llama3.2", messages=USER)
    assert answer.headers["x-llmcache"] == "miss" and store.stats()["sets"] == 1


def test_a_client_that_stops_reading_a_stream_stores_nothing(
    server: OllamaServer, store: MemoryStore
) -> None:
    client = openai_client(server, store)
    stream = client.chat.completions.create(model="llama3.2", messages=USER, stream=True)
    next(iter(stream))
    stream.close()
    with anthropic_client(server, store).messages.stream(
        model="llama3.2", max_tokens=64, messages=USER
    ) as events:
        next(iter(events))
    assert store.stats()["sets"] == 0
    again = client.chat.completions.with_raw_response.create(
        model="llama3.2", messages=USER, stream=True
    )
    assert again.headers["x-llmcache"] == "miss"


def test_a_malformed_body_is_passed_through(server: OllamaServer, store: MemoryStore) -> None:
    client = openai_client(server, store)
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="llama3.2", messages="two plus two")  # type: ignore
    assert raised.value.response.headers["x-llmcache"] == "uncacheable"
    assert "messages" in raised.value.message and store.stats()["sets"] == 0


class _EndsLate(httpx2.SyncByteStream):
    """An SSE answer whose body ends only when `gate` opens, well after its ``[DONE]``."""

    def __init__(self, events: bytes, gate: threading.Event) -> None:
        self.events, self.gate = events, gate

    def __iter__(self) -> Iterator[bytes]:
        yield from (e + b"\n\n" for e in self.events.split(b"\n\n") if e)
        self.gate.wait(10)


def test_the_same_thread_asking_again_before_the_body_ended_replays_the_stream(
    store: MemoryStore,
) -> None:
    # The openai SDK stops reading at [DONE]; the upstream's body has not ended yet when
    # the same thread asks again: it waits for that stream (read ahead, it ends without
    # its caller) and replays it, rather than asking the upstream a second time.
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    events = b"".join(
        b"data: " + json.dumps({**chunk, "choices": [c]}).encode() + b"\n\n"
        for c in (
            {"index": 0, "delta": {"content": "4"}},
            {"index": 0, "delta": {}, "finish_reason": "stop"},
        )
    )
    events += b"data: [DONE]\n\n"
    gate, asked = threading.Event(), []

    def upstream(request: httpx2.Request) -> httpx2.Response:
        asked.append(request)
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_EndsLate(events, gate)
        )

    client = opened(
        openai.OpenAI(
            base_url="http://models.test/v1",
            api_key="sk-test",
            max_retries=0,
            http_client=httpx2.Client(
                transport=door2.CacheTransport(
                    cache=store, transport=httpx2.MockTransport(upstream)
                )
            ),
        )
    )
    opener = threading.Timer(0.3, gate.set)
    opener.start()
    try:
        answers = []
        for _ in range(2):
            raw = client.chat.completions.with_raw_response.create(
                model="m", messages=USER, stream=True
            )
            answers.append(
                (raw.headers["x-llmcache"], [c.choices[0].delta.content for c in raw.parse()])
            )
    finally:
        gate.set()
        opener.cancel()
    assert answers == [("miss", ["4", None]), ("hit", ["4", None])] and len(asked) == 1
    assert store.stats()["sets"] == 1
