"""Keys and the decorator's memory hit, against their raw baselines in the same run.

Targets (../shared/DESIGN.md): a key for a 2 KB request stays around 1 µs and far below
json.dumps + sha256; a memory hit through @cached_generate costs at most 2x the raw path
(orjson + xxh3_128 + a cachetools TTLCache get under a lock).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from typing import Any

import orjson
import xxhash
from cachetools import TTLCache

from llmcache import MemoryStore, Request, cached_generate, make_key

PROMPT = ("Extract the task, its due date and its priority from this note. " * 32)[:2000]
OPTIONS = {"temperature": 0.2, "seed": 42, "top_p": 0.9, "num_predict": 256}


def _request_dict() -> dict[str, Any]:
    return {
        "model": "llama3.2:1b",
        "prompt": PROMPT,
        "system": "You extract tasks.",
        "options": dict(OPTIONS),
    }


def test_key_json_sha256_baseline(benchmark: Any) -> None:
    benchmark.group = "key for a 2 KB request"
    benchmark.extra_info["role"] = "baseline"
    data = _request_dict()
    benchmark(lambda: hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest())


def test_key_make_key(benchmark: Any) -> None:
    benchmark.group = "key for a 2 KB request"
    benchmark.extra_info.update(role="candidate", target=1.0)
    request = Request(
        model="llama3.2:1b", prompt=PROMPT, system="You extract tasks.", options=OPTIONS
    )
    benchmark(make_key, request)


def test_key_raw_orjson_xxh3_floor(benchmark: Any) -> None:
    """The floor: orjson + xxh3 on an already-normalised dict (what make_key adds to)."""
    benchmark.group = "key: make_key vs bare orjson+xxh3"
    benchmark.extra_info["role"] = "baseline"
    data = _request_dict()
    benchmark(lambda: xxhash.xxh3_128_hexdigest(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)))


def test_key_make_key_vs_floor(benchmark: Any) -> None:
    benchmark.group = "key: make_key vs bare orjson+xxh3"
    benchmark.extra_info["role"] = "candidate"
    request = Request(
        model="llama3.2:1b", prompt=PROMPT, system="You extract tasks.", options=OPTIONS
    )
    benchmark(make_key, request)


def test_memory_hit_raw_path(benchmark: Any) -> None:
    benchmark.group = "memory hit through @cached_generate"
    benchmark.extra_info["role"] = "baseline"
    cache: TTLCache[str, str] = TTLCache(maxsize=1024, ttl=3600)
    lock = threading.Lock()
    args = {"prompt": PROMPT, "model": "llama3.2:1b", "temperature": 0.0}

    def raw() -> str | None:
        key = xxhash.xxh3_128_hexdigest(orjson.dumps(args, option=orjson.OPT_SORT_KEYS))
        with lock:
            return cache.get(key)

    key = xxhash.xxh3_128_hexdigest(orjson.dumps(args, option=orjson.OPT_SORT_KEYS))
    cache[key] = "answer"
    assert raw() == "answer"
    benchmark(raw)


def test_memory_hit_decorator(benchmark: Any) -> None:
    benchmark.group = "memory hit through @cached_generate"
    benchmark.extra_info.update(role="candidate", target=1.5)

    @cached_generate(cache=MemoryStore(max_entries=1024), ttl=3600)
    def generate(prompt: str, model: str = "llama3.2:1b", temperature: float = 0.0) -> str:
        return "answer"

    generate(PROMPT)
    assert generate.cache_info().misses == 1
    benchmark(generate, PROMPT)
    assert generate.cache_info().misses == 1


# -- every door's memory hit, against the same raw floor (sync) and its coroutine (async) ----

_DOORS_SYNC = "memory hit per door (sync)"
_DOORS_ASYNC = "memory hit per door (async)"
_ARGS = {"prompt": PROMPT, "model": "llama3.2:1b", "temperature": 0.0}


def _raw_floor() -> Any:
    cache: TTLCache[str, str] = TTLCache(maxsize=1024, ttl=3600)
    lock = threading.Lock()

    def raw() -> str | None:
        key = xxhash.xxh3_128_hexdigest(orjson.dumps(_ARGS, option=orjson.OPT_SORT_KEYS))
        with lock:
            return cache.get(key)

    cache[xxhash.xxh3_128_hexdigest(orjson.dumps(_ARGS, option=orjson.OPT_SORT_KEYS))] = "a"
    return raw


def test_door_sync_raw_floor(benchmark: Any) -> None:
    benchmark.group = _DOORS_SYNC
    benchmark.extra_info["role"] = "baseline"
    raw = _raw_floor()
    assert raw() == "a"
    benchmark(raw)


def test_door_sync_decorator(benchmark: Any) -> None:
    benchmark.group = _DOORS_SYNC
    benchmark.extra_info["role"] = "candidate"

    @cached_generate(cache=MemoryStore(max_entries=1024), ttl=3600)
    def generate(prompt: str, model: str = "llama3.2:1b", temperature: float = 0.0) -> str:
        return "answer"

    generate(PROMPT)
    benchmark(generate, PROMPT)
    assert generate.cache_info().misses == 1


def test_door_sync_cached_client(benchmark: Any) -> None:
    from llmcache import CachedClient
    from llmcache.backends.mock import MockBackend

    benchmark.group = _DOORS_SYNC
    benchmark.extra_info["role"] = "candidate"
    backend = MockBackend(model="llama3.2:1b")
    client = CachedClient(backend, MemoryStore(max_entries=1024))
    client.generate(PROMPT, temperature=0.0)
    result = benchmark(client.generate, PROMPT, temperature=0.0)
    assert result.cached and backend.call_count == 1


def test_door_sync_langchain_lookup(benchmark: Any) -> None:
    from langchain_core.outputs import Generation

    from llmcache.integrations.langchain import LLMCache

    benchmark.group = _DOORS_SYNC
    benchmark.extra_info["role"] = "candidate"
    cache = LLMCache(MemoryStore(max_entries=1024))
    llm_string = "model=llama3.2:1b temperature=0.0"
    cache.update(PROMPT, llm_string, [Generation(text="answer")])
    result = benchmark(cache.lookup, PROMPT, llm_string)
    assert result is not None


def test_door_async_raw_floor(benchmark: Any) -> None:
    benchmark.group = _DOORS_ASYNC
    benchmark.extra_info["role"] = "baseline"
    raw = _raw_floor()

    async def araw() -> str | None:
        return raw()  # type: ignore[no-any-return]

    loop = asyncio.new_event_loop()
    try:
        benchmark(lambda: loop.run_until_complete(araw()))
    finally:
        loop.close()


def test_door_async_decorator(benchmark: Any) -> None:
    benchmark.group = _DOORS_ASYNC
    benchmark.extra_info["role"] = "candidate"

    @cached_generate(cache=MemoryStore(max_entries=1024), ttl=3600)
    async def generate(prompt: str, model: str = "llama3.2:1b", temperature: float = 0.0) -> str:
        return "answer"

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(generate(PROMPT))
        benchmark(lambda: loop.run_until_complete(generate(PROMPT)))
    finally:
        loop.close()
    assert generate.cache_info().misses == 1


def test_door_async_cached_client(benchmark: Any) -> None:
    from llmcache import CachedClient
    from llmcache.backends.mock import AsyncMockBackend

    benchmark.group = _DOORS_ASYNC
    benchmark.extra_info["role"] = "candidate"
    backend = AsyncMockBackend(model="llama3.2:1b")
    client = CachedClient(backend, MemoryStore(max_entries=1024))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(client.generate(PROMPT, temperature=0.0))
        result = benchmark(
            lambda: loop.run_until_complete(client.generate(PROMPT, temperature=0.0))
        )
    finally:
        loop.close()
    assert result.cached and backend.call_count == 1
