"""CachedClient over the public mock backends: caching, scoping, streams, embeddings."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from llmcache import (
    AIResponse,
    AsyncCachedClient,
    AsyncMockBackend,
    CachedClient,
    CachedResponse,
    CachePolicy,
    DiskStore,
    EmbeddingCache,
    MemoryStore,
    MockBackend,
    StreamChunk,
    TieredStore,
    cache_control,
)
from llmcache.backends.errors import BackendUnavailable
from llmcache.backends.mock import MockCall


def test_generate_hit_is_marked_cached() -> None:
    backend = MockBackend()
    client = CachedClient(backend, MemoryStore())
    first = client.generate("hi", temperature=0)
    hit = client.generate("hi", temperature=0)
    assert not first.cached and hit.cached
    assert hit.duration_ms == 0 and hit.content == first.content
    assert backend.call_count == 1


def test_wraps_async_backends_as_async_client() -> None:
    client = CachedClient(AsyncMockBackend(), MemoryStore())
    assert isinstance(client, AsyncCachedClient)


@pytest.mark.parametrize(
    "change",
    [
        {"model": "other"},
        {"system": "be terse"},
        {"format": "json"},
        {"format": {"type": "object"}},
        {"options": {"top_p": 0.5}},
        {"max_tokens": 5},
        {"temperature": 0.1},
        {"images": [b"img"]},
    ],
)
def test_every_field_scopes_the_entry(change: dict[str, Any]) -> None:
    backend = MockBackend()
    client = CachedClient(backend, MemoryStore())
    client.generate("q", temperature=0)
    base = {"temperature": 0, **change}
    response = client.generate("q", **base)
    assert not response.cached
    assert backend.call_count == 2


def test_chat_key_covers_messages_and_tools() -> None:
    backend = MockBackend()
    client = CachedClient(backend, MemoryStore())
    msgs = [{"role": "user", "content": "hi"}]
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    client.chat(msgs, temperature=0)
    assert client.chat(msgs, temperature=0).cached
    assert not client.chat(msgs, temperature=0, tools=[tool]).cached
    assert not client.chat([{"role": "system", "content": "x"}, *msgs], temperature=0).cached
    assert backend.call_count == 3


def test_high_temperature_is_not_cached_and_bypass_works() -> None:
    backend = MockBackend()
    client = CachedClient(backend, MemoryStore())
    client.generate("q", temperature=0.9)
    assert not client.generate("q", temperature=0.9).cached
    client.generate("q", temperature=0)
    assert not client.generate("q", temperature=0, bypass_cache=True).cached
    with cache_control(bypass=True):
        assert not client.generate("q", temperature=0).cached
    assert client.generate("q", temperature=0).cached


def test_length_limited_answers_follow_the_policy() -> None:
    from llmcache import AIResponse

    def cut(call: MockCall) -> AIResponse:
        return AIResponse(content="partial", model=call.model, done_reason="length")

    backend = MockBackend(cut)
    client = CachedClient(backend, MemoryStore())
    client.generate("q", temperature=0)
    assert not client.generate("q", temperature=0).cached
    keep = CachedClient(MockBackend(cut), MemoryStore(), CachePolicy(store_length_limited=True))
    keep.generate("q", temperature=0)
    assert keep.generate("q", temperature=0).cached


def test_errors_are_not_cached() -> None:
    state = {"n": 0}

    def flaky(call: MockCall) -> str:
        state["n"] += 1
        if state["n"] == 1:
            raise BackendUnavailable("down")
        return "ok"

    client = CachedClient(MockBackend(flaky), MemoryStore())
    with pytest.raises(BackendUnavailable):
        client.generate("q", temperature=0)
    assert client.generate("q", temperature=0).content == "ok"


def test_stream_is_recorded_and_replayed_in_order() -> None:
    backend = MockBackend()
    client = CachedClient(backend, MemoryStore())
    live = [c.content for c in client.generate_stream("a b c", temperature=0)]
    replay = list(client.generate_stream("a b c", temperature=0))
    assert [c.content for c in replay] == live
    assert replay[-1].done
    assert backend.call_count == 1
    # A plain call is served from the streamed entry too.
    assert client.generate("a b c", temperature=0).cached


def test_abandoned_stream_is_not_stored() -> None:
    backend = MockBackend()
    client = CachedClient(backend, MemoryStore())
    stream = client.generate_stream("a b c d", temperature=0)
    next(stream)
    stream.close()  # the consumer walks away
    assert not client.generate("a b c d", temperature=0).cached


def test_failed_stream_is_not_stored() -> None:
    def breaks(call: MockCall) -> Any:
        def pieces() -> Any:
            yield "first "
            raise BackendUnavailable("connection reset")

        return pieces()

    client = CachedClient(MockBackend(breaks), MemoryStore())
    with pytest.raises(BackendUnavailable):
        list(client.generate_stream("q", temperature=0))
    assert len(client.store) == 0


def test_stream_without_done_chunk_is_not_stored() -> None:
    def no_done(call: MockCall) -> Any:
        return iter([StreamChunk(content="a"), StreamChunk(content="b")])

    backend = MockBackend(no_done)
    client = CachedClient(backend, MemoryStore())
    chunks = list(client.generate_stream("q", temperature=0))
    if not chunks[-1].done:
        assert len(client.store) == 0


def test_plain_entry_replays_as_stream() -> None:
    client = CachedClient(MockBackend(), MemoryStore())
    answer = client.generate("x y", temperature=0)
    replay = list(client.generate_stream("x y", temperature=0))
    assert "".join(c.content for c in replay) == answer.content
    assert replay[-1].done


def test_threads_make_one_backend_call() -> None:
    def slow(call: MockCall) -> str:
        time.sleep(0.2)
        return "answer"

    backend = MockBackend(slow)
    client = CachedClient(backend, MemoryStore())
    barrier = threading.Barrier(30)
    results: list[str] = []

    def worker() -> None:
        barrier.wait()
        results.append(client.generate("q", temperature=0).content)

    threads = [threading.Thread(target=worker) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["answer"] * 30
    assert backend.call_count == 1


async def test_async_client_single_flight_and_errors() -> None:
    async def slow(call: MockCall) -> str:
        await asyncio.sleep(0.05)
        if "fail" in call.text:
            raise BackendUnavailable("down")
        return "answer"

    backend = AsyncMockBackend(slow)
    async with CachedClient(backend, MemoryStore()) as client:
        results = await asyncio.gather(*(client.generate("q", temperature=0) for _ in range(50)))
        assert {r.content for r in results} == {"answer"}
        assert backend.call_count == 1
        failures = await asyncio.gather(
            *(client.generate("fail", temperature=0) for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(f, BackendUnavailable) for f in failures)
        assert backend.call_count == 2
        assert (await client.generate("q", temperature=0)).cached


async def test_async_stream_replay() -> None:
    backend = AsyncMockBackend()
    client = CachedClient(backend, MemoryStore())
    live = [c.content async for c in client.generate_stream("p q", temperature=0)]
    replay = [c.content async for c in client.generate_stream("p q", temperature=0)]
    assert live == replay and backend.call_count == 1


def test_embed_sends_only_missing_texts_once() -> None:
    backend = MockBackend()
    client = CachedClient(backend, MemoryStore(), embedding_cache=EmbeddingCache())
    first = client.embed(["a", "b", "a"])
    assert len(first.embeddings) == 3 and first.embeddings[0] == first.embeddings[2]
    assert [c.texts for c in backend.calls if c.method == "embed"] == [["a", "b"]]
    second = client.embed(["b", "c"])
    assert second.embeddings[0] == first.embeddings[1]
    assert [c.texts for c in backend.calls if c.method == "embed"][-1] == ["c"]
    client.embed(["a", "c"])
    assert len([c for c in backend.calls if c.method == "embed"]) == 2


def test_embed_rejects_a_bare_string() -> None:
    client = CachedClient(MockBackend(), MemoryStore())
    with pytest.raises(TypeError, match="texts"):
        client.embed("a")  # type: ignore[arg-type]


def test_namespaces_keep_tenants_apart() -> None:
    store = MemoryStore()
    backend = MockBackend()
    a = CachedClient(backend, store, namespace="a")
    b = CachedClient(backend, store, namespace="b")
    a.generate("q", temperature=0)
    assert not b.generate("q", temperature=0).cached


# -- async streams over a store with coroutine methods ---------------------------------------


class RecordingTiered(TieredStore):
    """A real memory -> disk TieredStore that notes which face each call used."""

    def __init__(self, *tiers: Any) -> None:
        super().__init__(*tiers)
        self.calls: list[tuple[str, str]] = []

    def get(self, key: str) -> CachedResponse | None:
        self.calls.append(("get", key))
        return super().get(key)

    def set(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        self.calls.append(("set", key))
        super().set(key, entry, ttl)

    async def aget(self, key: str) -> CachedResponse | None:
        self.calls.append(("aget", key))
        return await super().aget(key)

    async def aset(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        self.calls.append(("aset", key))
        await super().aset(key, entry, ttl)

    def faces(self) -> list[str]:
        return [face for face, _ in self.calls]


class FailingAsyncStore(MemoryStore):
    """A third-party store whose coroutine methods raise (TieredStore's never do)."""

    async def aget(self, key: str) -> CachedResponse | None:
        raise ConnectionError("down")

    async def aset(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        raise ConnectionError("down")


async def test_async_stream_looks_up_and_stores_through_the_store_coroutines(
    tmp_path: Path,
) -> None:
    backend = AsyncMockBackend()
    store = RecordingTiered(MemoryStore(), DiskStore(tmp_path))
    client = CachedClient(backend, store)
    live = [c async for c in client.generate_stream("a b c", temperature=0)]
    replay = [c async for c in client.generate_stream("a b c", temperature=0)]
    assert [c.content for c in replay] == [c.content for c in live] and replay[-1].done
    assert backend.call_count == 1 and (client.hits, client.misses) == (1, 1)
    assert store.faces() == ["aget", "aset", "aget"]
    # Another process: its own memory tier, the same disk; the entry keeps its chunks.
    other = RecordingTiered(MemoryStore(), DiskStore(tmp_path))
    again = [c async for c in CachedClient(backend, other).generate_stream("a b c", temperature=0)]
    assert [c.content for c in again] == [c.content for c in live]
    assert other.faces() == ["aget"] and backend.call_count == 1
    assert other.stats()["tier_hits"] == {"memory": 0, "disk": 1}


async def test_async_stream_incomplete_failed_or_abandoned_is_never_stored(tmp_path: Path) -> None:
    class NoDone(AsyncMockBackend):
        def generate_stream(self, prompt: str, **kwargs: Any) -> Any:
            async def pieces() -> Any:
                yield StreamChunk(content="a")
                yield StreamChunk(content="b")

            return pieces()

    async def breaks(call: MockCall) -> Any:
        async def pieces() -> Any:
            yield "first "
            raise BackendUnavailable("connection reset")

        return pieces()

    store = RecordingTiered(MemoryStore(), DiskStore(tmp_path))
    chunks = [c async for c in CachedClient(NoDone(), store).generate_stream("q", temperature=0)]
    assert not chunks[-1].done
    with pytest.raises(BackendUnavailable):
        [
            c
            async for c in CachedClient(AsyncMockBackend(breaks), store).generate_stream(
                "q", temperature=0
            )
        ]
    stream = CachedClient(AsyncMockBackend(), store).generate_stream("a b c d", temperature=0)
    await stream.__anext__()
    await stream.aclose()  # type: ignore[attr-defined]
    assert len(store) == 0 and store.faces() == ["aget"] * 3


async def test_async_stream_lookup_rejects_another_requests_entry(tmp_path: Path) -> None:
    backend = AsyncMockBackend()
    store = RecordingTiered(MemoryStore(), DiskStore(tmp_path))
    client = CachedClient(backend, store)
    [c async for c in client.generate_stream("q", temperature=0)]
    key = store.calls[-1][1]
    stored = store.tiers[1].get(key)
    assert stored is not None and stored.chunks
    store.set(key, replace(stored, fingerprint="another request"))
    [c async for c in client.generate_stream("q", temperature=0)]
    assert backend.call_count == 2 and client.hits == 0


async def test_async_stream_over_a_failing_async_store_still_streams() -> None:
    backend = AsyncMockBackend()
    client = CachedClient(backend, FailingAsyncStore())
    for _ in range(2):
        assert [c.content async for c in client.generate_stream("x", temperature=0)][-1] == ""
    assert backend.call_count == 2 and client.errors == 4  # two lookups, two stores


async def test_async_stream_policy_still_decides_what_is_stored(tmp_path: Path) -> None:
    store = RecordingTiered(MemoryStore(), DiskStore(tmp_path))
    client = CachedClient(AsyncMockBackend(), store, CachePolicy(temperature_threshold=0.5))
    [c async for c in client.generate_stream("q", temperature=0.9)]
    assert store.faces() == [] and len(store) == 0
    with cache_control(no_store=True):
        [c async for c in client.generate_stream("q", temperature=0)]
    assert store.faces() == ["aget"] and len(store) == 0


# -- arguments checked where the user passes them (issue 13, finding 8) -----------------------

USER = [{"role": "user", "content": "hi"}]
# method, positional argument, keyword arguments, error, what the message must name
BAD_ARGUMENTS = [
    (
        "chat",
        "hello",
        {},
        TypeError,
        ["messages", "chat", "[{'role': 'user', 'content': 'hello'}]"],
    ),
    ("chat", {"role": "user", "content": "hi"}, {}, TypeError, ["messages", "chat", "list"]),
    ("chat", ["hello"], {}, TypeError, ["messages[0]", "'role'", "'content'"]),
    ("chat", [{"content": "hi"}], {}, ValueError, ["messages[0]", "'role'"]),
    ("chat", [{"role": "user"}], {}, ValueError, ["messages[0]", "'content'"]),
    ("chat", [{"role": 1, "content": "hi"}], {}, TypeError, ["messages[0]['role']"]),
    ("chat", USER, {"temperature": "0.0"}, TypeError, ["temperature", "chat"]),
    ("chat", USER, {"tools": {"type": "function"}}, TypeError, ["tools", "chat"]),
    ("generate", 5, {}, TypeError, ["prompt", "generate", "str"]),
    ("generate", ["hi"], {}, TypeError, ["prompt", "generate"]),
    ("generate", "hi", {"temperature": "0.0"}, TypeError, ["temperature", "generate"]),
    ("generate", "hi", {"temperature": [0]}, TypeError, ["temperature", "list"]),
    ("generate", "hi", {"temperature": True}, TypeError, ["temperature", "bool"]),
    ("generate", "hi", {"temperature": float("nan")}, ValueError, ["temperature", "nan"]),
    ("generate", "hi", {"options": {"temperature": "0"}}, TypeError, ["options['temperature']"]),
    ("generate", "hi", {"options": "fast"}, TypeError, ["options"]),
    ("generate", "hi", {"max_tokens": "5"}, TypeError, ["max_tokens"]),
]
BAD_IDS = [f"{m}-{i}" for i, (m, *_) in enumerate(BAD_ARGUMENTS)]


@pytest.mark.parametrize(
    ("method", "given", "kwargs", "error", "names"), BAD_ARGUMENTS, ids=BAD_IDS
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_bad_arguments_name_themselves_and_store_nothing(
    method: str,
    given: Any,
    kwargs: dict[str, Any],
    error: type[Exception],
    names: list[str],
    stream: bool,
) -> None:
    backend = MockBackend()
    client = CachedClient(backend, MemoryStore())
    name = f"{method}_stream" if stream else method
    with pytest.raises(error) as caught:
        getattr(client, name)(given, **kwargs)  # raises where the arguments are passed
    for word in [f"CachedClient.{name}", *names]:
        assert word in str(caught.value)
    assert backend.call_count == 0 and len(client.store) == 0


@pytest.mark.parametrize(
    ("method", "given", "kwargs", "error", "names"), BAD_ARGUMENTS, ids=BAD_IDS
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_bad_arguments_async(
    method: str,
    given: Any,
    kwargs: dict[str, Any],
    error: type[Exception],
    names: list[str],
    stream: bool,
) -> None:
    backend = AsyncMockBackend()
    client = CachedClient(backend, MemoryStore())
    name = f"{method}_stream" if stream else method
    with pytest.raises(error) as caught:
        result = getattr(client, name)(given, **kwargs)
        assert not stream  # a stream raises when it is asked for, before any iteration
        await result
    for word in [f"AsyncCachedClient.{name}", *names]:
        assert word in str(caught.value)
    assert backend.call_count == 0 and len(client.store) == 0


def test_good_arguments_still_pass() -> None:
    client = CachedClient(MockBackend(), MemoryStore())
    history = [
        {"role": "system", "content": "terse"},
        *USER,
        {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]},
        {"role": "tool", "content": "4"},
    ]
    assert (
        client.chat(
            tuple(history), temperature=0, max_tokens=5, options={"temperature": 0.0}
        ).content
        == "echo: hi"
    )
    assert client.generate("hi", temperature=1).content == "echo: hi"


async def test_a_request_no_key_can_hold_is_a_counted_bypass() -> None:
    # A lone surrogate cannot be encoded as UTF-8: the call still gets the model's answer.
    backend = MockBackend()
    client = CachedClient(backend, MemoryStore())
    for _ in range(2):
        assert client.generate("a\ud800b", temperature=0).content == "echo: a\ud800b"
    chunks = list(client.chat_stream([{"role": "user", "content": "\udfff"}], temperature=0))
    assert chunks[-1].done
    assert backend.call_count == 3 and len(client.store) == 0
    assert client.counters()["bypasses"] == 3 and client.counters()["errors"] == 0
    aclient = CachedClient(AsyncMockBackend(), MemoryStore())
    assert (await aclient.generate("\ud800", temperature=0)).content == "echo: \ud800"
    assert aclient.counters()["bypasses"] == 1


async def test_followers_get_their_own_tool_calls() -> None:
    def call() -> dict[str, Any]:
        return {"function": {"name": "f", "arguments": {"city": "Paris"}}}

    async def slow(c: MockCall) -> AIResponse:
        await asyncio.sleep(0.05)
        return AIResponse(content="", model="m", tool_calls=[call()], done_reason="stop")

    client = CachedClient(AsyncMockBackend(slow), MemoryStore())
    answers = await asyncio.gather(*(client.chat(USER, temperature=0) for _ in range(5)))
    assert client.counters()["coalesced"] == 4
    for i, changed in enumerate(answers):
        assert changed.tool_calls is not None
        changed.tool_calls[0]["function"]["arguments"]["city"] = "Rome"
        assert [a.tool_calls == [call()] for a in answers] == [False] * (i + 1) + [True] * (4 - i)
    assert (await client.chat(USER, temperature=0)).tool_calls == [call()]


def test_the_sync_client_is_generated_from_the_async_one() -> None:
    """CachedClient's calls are generated from AsyncCachedClient's hand-written coroutines
    (scripts/unasync.py): an edit of the generated side alone fails here and in `make lint`."""
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("_unasync", root / "scripts" / "unasync.py")
    assert spec is not None and spec.loader is not None
    unasync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(unasync)
    source, target = "src/llmcache/_async_cached_client.py", "src/llmcache/_sync_cached_client.py"
    assert (source, target) in unasync.PAIRS
    text = (root / target).read_text(encoding="utf-8")
    assert text.startswith(f"# Generated by scripts/unasync.py from {source}")
    assert text == unasync.generate(source, target), f"{target} is stale"
    for name in ("__init__", "generate", "chat", "generate_stream", "chat_stream", "embed"):
        assert getattr(CachedClient, name).__module__ == "llmcache._sync_cached_client"
        assert getattr(AsyncCachedClient, name).__module__ == "llmcache._async_cached_client"
    assert CachedClient.close.__module__ == "llmcache._sync_cached_client"
    assert AsyncCachedClient.aclose.__module__ == "llmcache._async_cached_client"
