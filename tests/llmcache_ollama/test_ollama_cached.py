"""CachedOllamaClient over real httpx clients and the Ollama-compatible server on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from llmcache_testserver import Faults, OllamaServer

from llmcache import BackendError, MemoryStore, ResponseCache, StreamError
from llmcache_ollama import (
    AsyncCachedOllamaClient,
    AsyncOllamaClient,
    CachedOllamaClient,
    OllamaClient,
)

ServerFactory = Callable[..., OllamaServer]


def test_chapter_shape_and_hits(ollama_server: OllamaServer, tmp_path: Path) -> None:
    cache = ResponseCache(persist_path=tmp_path / "cache")
    with CachedOllamaClient(OllamaClient(ollama_server.url, timeout=10), cache) as cached:
        first = cached.generate("buy milk", temperature=0.1, format="json")
        hit = cached.generate("buy milk", temperature=0.1, format="json")
        assert not first.cached and hit.cached and hit.duration_ms == 0
        assert hit.content == first.content
        # The chapter's default temperature (0.7) is above the threshold: never cached.
        cached.generate("buy milk")
        assert not cached.generate("buy milk").cached
    assert ollama_server.calls["generate"] == 3
    assert cache.stats()["disk_entries"] == 1
    cache.close()


def test_hits_survive_a_restart(ollama_server: OllamaServer, tmp_path: Path) -> None:
    for expected_calls in (1, 1):
        with (
            ResponseCache(persist_path=tmp_path / "c") as cache,
            CachedOllamaClient(OllamaClient(ollama_server.url, timeout=10), cache) as cached,
        ):
            cached.generate("q", temperature=0)
        assert ollama_server.calls["generate"] == expected_calls


async def test_async_twin(ollama_server: OllamaServer) -> None:
    client = CachedOllamaClient(AsyncOllamaClient(ollama_server.url, timeout=10), MemoryStore())
    assert isinstance(client, AsyncCachedOllamaClient)
    async with client as cached:
        results = await asyncio.gather(*(cached.generate("same", temperature=0) for _ in range(20)))
        assert len({r.content for r in results}) == 1
        assert (await cached.generate("same", temperature=0)).cached
        chat = [{"role": "user", "content": "hi"}]
        await cached.chat(chat, temperature=0)
        assert (await cached.chat(chat, temperature=0)).cached
    assert ollama_server.calls["generate"] == 1
    assert ollama_server.calls["chat"] == 1


def test_stream_replay_over_http(ollama_server: OllamaServer) -> None:
    with CachedOllamaClient(OllamaClient(ollama_server.url, timeout=10), MemoryStore()) as c:
        live = [chunk.content for chunk in c.generate_stream("one two three", temperature=0)]
        replay = list(c.generate_stream("one two three", temperature=0))
        assert [chunk.content for chunk in replay] == live and replay[-1].done
    assert ollama_server.calls["generate"] == 1


def test_mid_stream_error_stores_nothing(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(faults=Faults(fail_after=2))
    store = MemoryStore()
    with CachedOllamaClient(OllamaClient(server.url, timeout=10), store) as cached:
        with pytest.raises(StreamError):
            list(cached.generate_stream("a b c d e", temperature=0))
        assert len(store) == 0
        server.faults.fail_after = None
        list(cached.generate_stream("a b c d e", temperature=0))
        assert len(store) == 1


def test_truncated_stream_stores_nothing(make_ollama_server: ServerFactory) -> None:
    server = make_ollama_server(faults=Faults(truncate_after=2))
    store = MemoryStore()
    with CachedOllamaClient(OllamaClient(server.url, timeout=10), store) as cached:
        with pytest.raises(StreamError):
            list(cached.generate_stream("a b c d e", temperature=0))
    assert len(store) == 0


def test_followers_of_a_failed_call_get_its_exception(make_ollama_server: ServerFactory) -> None:
    # A long call, so every thread joins the flight even on a loaded machine.
    server = make_ollama_server(latency_ms=1000, faults=Faults(server_error=True))
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(10)
    cached = CachedOllamaClient(OllamaClient(server.url, timeout=10, retries=0), MemoryStore())

    def worker() -> None:
        barrier.wait()
        try:
            cached.generate("q", temperature=0)
        except BackendError as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cached.close()
    assert len(errors) == 10
    assert len({id(e) for e in errors}) == 1  # the leader's exception, shared
    assert server.calls["generate"] == 1
    assert len(cached.store) == 0


def test_embed_sends_only_missing_texts(ollama_server: OllamaServer) -> None:
    backend = OllamaClient(ollama_server.url, timeout=10, model="nomic-embed-text")
    with CachedOllamaClient(backend, MemoryStore()) as cached:
        first = cached.embed(["alpha", "beta", "alpha"])
        assert len(first.embeddings) == 3 and first.embeddings[0] == first.embeddings[2]
        assert ollama_server.calls["embed"] == 1
        second = cached.embed(["beta", "gamma"])
        assert second.embeddings[0] == first.embeddings[1]
        assert ollama_server.calls["embed"] == 2
        cached.embed(["alpha", "gamma"])
        assert ollama_server.calls["embed"] == 2
