"""`@cached_generate(semantic=...)` and `CachedClient(..., semantic=...)`."""

from __future__ import annotations

from typing import Any

from llmcache import AsyncMockBackend, CachedClient, MemoryStore, MockBackend, cached_generate
from llmcache.vector import SemanticCache
from llmcache.vector.embedders import HashingEmbedder


def semantic() -> SemanticCache:
    return SemanticCache(HashingEmbedder(), threshold=0.6)


def test_decorator_serves_a_paraphrase_and_keeps_scopes() -> None:
    calls: list[str] = []

    @cached_generate(semantic=semantic(), namespace="t")  # it captures `calls`
    def answer(prompt: str, model: str = "m", temperature: float = 0.0, style: str = "") -> str:
        calls.append(prompt)
        return f"answer to {prompt}"

    first = answer("How do I reverse a list in Python?")
    assert answer("how do i reverse a list in python") == first
    assert len(calls) == 1
    assert answer.cache_counters()["semantic_hits"] == 1
    # Other model, other argument, or a trap the guards veto: the function runs.
    answer("how do i reverse a list in python", model="other")
    answer("how do i reverse a list in python", style="terse")
    answer("How do I reverse a list in Java?")
    assert len(calls) == 4


async def test_async_decorator_semantic_hit() -> None:
    calls: list[str] = []

    @cached_generate(semantic=semantic(), namespace="t")  # it captures `calls`
    async def answer(prompt: str, model: str = "m") -> dict[str, Any]:
        calls.append(prompt)
        return {"answer": prompt}

    await answer("What is the capital of France?")
    assert await answer("what is the capital of france") == {
        "answer": "What is the capital of France?"
    }
    assert len(calls) == 1


def test_functions_without_prompt_still_work() -> None:
    @cached_generate(semantic=semantic())
    def f(text: str) -> str:
        return text.upper()

    assert f("abc") == f("abc") == "ABC"


def test_client_semantic_hit_carries_similarity() -> None:
    backend = MockBackend()
    client = CachedClient(backend, MemoryStore(), semantic=semantic())
    client.generate("How do I reverse a list in Python?", temperature=0)
    hit = client.generate("how do i reverse a list in python", temperature=0)
    assert hit.cached and backend.call_count == 1
    assert hit.raw["semantic"]["similarity"] >= 0.6
    assert not client.generate(
        "how do i reverse a list in python", temperature=0, system="You are terse."
    ).cached
    assert not client.generate(
        "how do i reverse a list in python", temperature=0, model="other"
    ).cached
    assert client.counters()["semantic_hits"] == 1


async def test_async_client_semantic_hit() -> None:
    backend = AsyncMockBackend()
    async with CachedClient(backend, MemoryStore(), semantic=semantic()) as client:
        await client.generate("How many days are in a leap year?", temperature=0)
        hit = await client.generate("how many days are in a leap year", temperature=0)
        assert hit.cached and backend.call_count == 1
        # A changed number is a trap: the guard vetoes it.
        miss = await client.generate("How many days are in 3 leap years?", temperature=0)
        assert not miss.cached
