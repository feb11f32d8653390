"""`LLMCache` beyond LangChain's standard suites: faithful round trips, the key, untrusted
entries, native async, a real (fake) chat model, and the semantic tier."""

from __future__ import annotations

import doctest
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core", reason="needs the extra: pip install 'llmcache[langchain]'")

from langchain_core.caches import BaseCache  # noqa: E402
from langchain_core.globals import get_llm_cache, set_llm_cache  # noqa: E402
from langchain_core.language_models.fake_chat_models import FakeListChatModel  # noqa: E402
from langchain_core.messages import AIMessage, AIMessageChunk  # noqa: E402
from langchain_core.outputs import (  # noqa: E402
    ChatGeneration,
    ChatGenerationChunk,
    Generation,
    GenerationChunk,
)

import llmcache.integrations.langchain  # noqa: E402
from llmcache.entry import CachedResponse  # noqa: E402
from llmcache.integrations.langchain import LLMCache  # noqa: E402
from llmcache.keys import canonical_call, key_and_fingerprint  # noqa: E402
from llmcache.stores import DiskStore, MemoryStore, Store  # noqa: E402
from llmcache.testing import FakeClock  # noqa: E402

LLM = "model=fake temperature=0"
GENERATIONS: list[Generation] = [
    Generation(text="plain", generation_info={"finish_reason": "stop", "n": [1, 2.5]}),
    GenerationChunk(text="chunk", generation_info={"lc": "a key LangChain escapes"}),
    ChatGeneration(
        message=AIMessage(
            content="4",
            id="run-1",
            name="bot",
            additional_kwargs={"refusal": None},
            response_metadata={"model_name": "m", "finish_reason": "stop"},
            tool_calls=[{"name": "add", "args": {"a": 2, "b": 2}, "id": "c1"}],
            usage_metadata={"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
        ),
        generation_info={"logprobs": None},
    ),
    ChatGenerationChunk(message=AIMessageChunk(content=[{"type": "text", "text": "hi"}])),
]


@pytest.fixture(params=["memory", "disk"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store = MemoryStore() if request.param == "memory" else DiskStore(tmp_path / "d")
    with made:
        yield made


@pytest.fixture
def global_cache() -> Iterator[None]:
    """Whatever a test sets with `set_llm_cache` is undone afterwards."""
    previous = get_llm_cache()
    try:
        yield
    finally:
        set_llm_cache(previous)


def _key(prompt: str, llm_string: str, namespace: str = "langchain") -> tuple[str, str]:
    data = canonical_call("langchain", namespace, {"prompt": prompt, "llm_string": llm_string})
    return key_and_fingerprint(data)


def test_generations_round_trip_faithfully(store: Store) -> None:
    cache = LLMCache(store)
    cache.update("p", LLM, GENERATIONS)
    for _ in range(2):  # a second hit must not see anything the first one changed
        found = cache.lookup("p", LLM)
        assert found == GENERATIONS
        assert found is not None and [type(g) for g in found] == [type(g) for g in GENERATIONS]
    chat = found[2]
    assert isinstance(chat, ChatGeneration) and isinstance(chat.message, AIMessage)
    assert chat.message.tool_calls[0]["args"] == {"a": 2, "b": 2}
    assert chat.message.usage_metadata == GENERATIONS[2].message.usage_metadata  # type: ignore


def test_the_key_covers_prompt_and_llm_string_unambiguously() -> None:
    cache = LLMCache()
    cache.update("a|b", "c", [Generation(text="1")])
    assert cache.lookup("a", "b|c") is None
    assert cache.lookup("a|b", "c ") is None and cache.lookup("a|b ", "c") is None
    assert cache.lookup("a|b", "c") == [Generation(text="1")]
    other = LLMCache(cache.store, namespace="tenant-2")
    assert other.lookup("a|b", "c") is None


def test_entries_failing_the_fingerprint_are_misses() -> None:
    store = MemoryStore()
    key, _ = _key("p", LLM)
    store.set(
        key,
        CachedResponse(
            content=[{"lc": 1}], fingerprint="planted", metadata={"kind": "langchain.generations"}
        ),
    )
    assert LLMCache(store).lookup("p", LLM) is None


def test_entries_naming_other_classes_are_never_instantiated() -> None:
    store = MemoryStore()
    key, fp = _key("p", LLM)
    planted = {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "llms", "openai", "OpenAI"],
        "kwargs": {"openai_api_base": "http://attacker.invalid"},
    }
    store.set(
        key,
        CachedResponse(
            content=[planted], fingerprint=fp, metadata={"kind": "langchain.generations"}
        ),
    )
    cache = LLMCache(store)
    assert cache.lookup("p", LLM) is None
    assert cache.errors == 1 and cache.stats()["misses"] == 1


def test_what_langchain_cannot_serialize_is_not_cached() -> None:
    cache = LLMCache()
    cache.update("p", LLM, [Generation(text="x", generation_info={"when": object()})])
    cache.update("q", LLM, [Generation(text="x", generation_info={"nan": float("nan")})])
    assert cache.lookup("p", LLM) is None and cache.lookup("q", LLM) is None
    assert len(cache.store) == 0 and cache.errors == 2


def test_ttl() -> None:
    clock = FakeClock()
    cache = LLMCache(MemoryStore(clock=clock), ttl=10)
    cache.update("p", LLM, [Generation(text="x")])
    clock.advance(9)
    assert cache.lookup("p", LLM) is not None
    clock.advance(2)
    assert cache.lookup("p", LLM) is None


class _BrokenStore(MemoryStore):
    def get(self, key: str) -> CachedResponse | None:
        raise OSError("disk on fire")

    def set(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        raise OSError("disk on fire")


def test_a_failing_store_is_a_miss_not_a_failure() -> None:
    cache = LLMCache(_BrokenStore())
    cache.update("p", LLM, [Generation(text="x")])
    assert cache.lookup("p", LLM) is None and cache.errors == 2


class _AsyncStore(MemoryStore):
    """A store with coroutine methods, as `RedisStore` has."""

    awaited = 0

    async def aget(self, key: str) -> CachedResponse | None:
        self.awaited += 1
        return self.get(key)

    async def aset(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        self.awaited += 1
        self.set(key, entry, ttl)


async def test_async_methods_are_native(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_executor(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("went through run_in_executor")

    monkeypatch.setattr("langchain_core.caches.run_in_executor", no_executor)
    store = _AsyncStore()
    cache = LLMCache(store)
    await cache.aupdate("p", LLM, GENERATIONS)
    assert await cache.alookup("p", LLM) == GENERATIONS
    assert store.awaited == 2
    await cache.aclear()
    assert await cache.alookup("p", LLM) is None


def test_a_fake_chat_model_is_served_from_the_cache(global_cache: None, tmp_path: Path) -> None:
    model = FakeListChatModel(responses=["first answer", "second answer"])
    with LLMCache(DiskStore(tmp_path / "lc")) as cache:
        set_llm_cache(cache)
        one = model.invoke("What is 2 + 2?")
        two = model.invoke("What is 2 + 2?")
        assert one.content == two.content == "first answer"
        assert model.i == 1  # one model call for two invocations
        assert cache.hits == 1 and cache.misses == 1
        assert model.invoke("Something else?").content == "second answer"


async def test_a_fake_chat_model_async(global_cache: None) -> None:
    model = FakeListChatModel(responses=["first answer", "second answer"])
    set_llm_cache(LLMCache())
    one = await model.ainvoke("hello")
    two = await model.ainvoke("hello")
    assert one.content == two.content == "first answer" and model.i == 1


def test_a_model_given_its_own_cache(global_cache: None) -> None:
    set_llm_cache(None)
    cache = LLMCache()
    model = FakeListChatModel(responses=["a", "b"], cache=cache)
    assert [model.invoke("x").content for _ in range(3)] == ["a"] * 3
    assert isinstance(cache, BaseCache) and cache.hits == 2


def test_import_errors_name_the_extra() -> None:
    code = (
        "import sys; sys.modules['langchain_core'] = None\n"
        "import llmcache\n"
        "try:\n    import llmcache.integrations.langchain\n"
        "except ImportError as exc:\n    print(exc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'llmcache[langchain]'" in out.stdout
    plain = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, llmcache, llmcache.testing; "
            "print([m for m in ('langchain_core', 'pytest') "
            "if m in sys.modules])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert plain.stdout.strip() == "[]"


def test_doctests_run() -> None:
    failures, tried = doctest.testmod(llmcache.integrations.langchain)
    assert failures == 0 and tried > 0


# -- the semantic tier -----------------------------------------------------------------------

semantic = pytest.importorskip  # named for readability below


def _semantic_cache() -> Any:
    module = semantic("llmcache.vector.semantic", reason="SemanticCache not available")
    embedders = semantic("llmcache.vector.embedders", reason="embedders not available")
    return module.SemanticCache(embedders.HashingEmbedder(), threshold=0.6)


def test_semantic_tier_answers_a_rephrased_prompt() -> None:
    with LLMCache(MemoryStore(), semantic=_semantic_cache()) as cache:
        cache.update("How do I reverse a list in Python?", LLM, [Generation(text="xs[::-1]")])
        assert cache.lookup("how do i reverse a list in python", LLM) == [
            Generation(text="xs[::-1]")
        ]
        assert cache.lookup("how do i reverse a list in python", "model=other") is None
        assert cache.lookup("How do I reverse a list in Java?", LLM) is None
        # As at every door: hits counts every answer from the cache, semantic_hits the
        # ones the semantic tier gave.
        assert (cache.hits, cache.semantic_hits) == (1, 1)
        cache.clear()
        assert cache.lookup("how do i reverse a list in python", LLM) is None


def test_semantic_tier_behind_a_chat_model(global_cache: None) -> None:
    model = FakeListChatModel(responses=["xs[::-1]", "other"])
    with LLMCache(semantic=_semantic_cache()) as cache:
        set_llm_cache(cache)
        model.invoke("How do I reverse a list in Python?")
        assert model.invoke("how do i reverse a list in python").content == "xs[::-1]"
        assert model.i == 1 and cache.semantic_hits == 1
        assert model.invoke("How do I sort a dict in Go?").content == "other"


async def test_semantic_tier_async() -> None:
    with LLMCache(semantic=_semantic_cache()) as cache:
        await cache.aupdate("How do I reverse a list in Python?", LLM, [Generation(text="r")])
        assert await cache.alookup("how do i reverse a list in python", LLM) == [
            Generation(text="r")
        ]


def test_plain_generation_fast_path_matches_load() -> None:
    from langchain_core.load import dumpd, load
    from langchain_core.outputs import ChatGeneration, Generation

    from llmcache.integrations.langchain import _ALLOWED, _plain_generations, _quiet

    plain = [Generation(text="a"), Generation(text="b", generation_info={"k": [1, None]})]
    payload = [dumpd(g) for g in plain]
    fast = _plain_generations(payload)
    with _quiet():  # load() warns that it is in beta; the adapter silences it the same way
        general = load(payload, allowed_objects=_ALLOWED)
    assert fast == general == plain
    # Anything but a plain Generation with its own fields takes the allow-listed path.
    chat = [
        dumpd(
            ChatGeneration(
                message=__import__("langchain_core.messages").messages.AIMessage(content="hi")
            )
        )
    ]
    assert _plain_generations(chat) is None
    odd = [dict(payload[0], kwargs={**payload[0]["kwargs"], "extra": 1})]
    assert _plain_generations(odd) is None
    assert _plain_generations([{**payload[0], "id": ["os", "system"]}]) is None
