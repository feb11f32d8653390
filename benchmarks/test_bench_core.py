"""Keys and the decorator's memory hit, against their raw baselines in the same run.

Targets (../shared/DESIGN.md): a key for a 2 KB request stays around 1 µs and far below
json.dumps + sha256; a memory hit through @cached_generate costs at most 2x the raw path
(orjson + xxh3_128 + a cachetools TTLCache get under a lock).
"""

from __future__ import annotations

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
    return {"model": "llama3.2:1b", "prompt": PROMPT, "system": "You extract tasks.",
            "options": dict(OPTIONS)}


def test_key_json_sha256_baseline(benchmark: Any) -> None:
    benchmark.group = "key for a 2 KB request"
    benchmark.extra_info["role"] = "baseline"
    data = _request_dict()
    benchmark(lambda: hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest())


def test_key_make_key(benchmark: Any) -> None:
    benchmark.group = "key for a 2 KB request"
    benchmark.extra_info.update(role="candidate", target=1.0)
    request = Request(model="llama3.2:1b", prompt=PROMPT, system="You extract tasks.",
                      options=OPTIONS)
    benchmark(make_key, request)


def test_key_raw_orjson_xxh3_floor(benchmark: Any) -> None:
    """The floor: orjson + xxh3 on an already-normalised dict (what make_key adds to)."""
    benchmark.group = "key: make_key vs bare orjson+xxh3"
    benchmark.extra_info["role"] = "baseline"
    data = _request_dict()
    benchmark(lambda: xxhash.xxh3_128_hexdigest(orjson.dumps(data,
                                                              option=orjson.OPT_SORT_KEYS)))


def test_key_make_key_vs_floor(benchmark: Any) -> None:
    benchmark.group = "key: make_key vs bare orjson+xxh3"
    benchmark.extra_info["role"] = "candidate"
    request = Request(model="llama3.2:1b", prompt=PROMPT, system="You extract tasks.",
                      options=OPTIONS)
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
    benchmark.extra_info.update(role="candidate", target=2.0)

    @cached_generate(cache=MemoryStore(max_entries=1024), ttl=3600)
    def generate(prompt: str, model: str = "llama3.2:1b", temperature: float = 0.0) -> str:
        return "answer"

    generate(PROMPT)
    assert generate.cache_info().misses == 1
    benchmark(generate, PROMPT)
    assert generate.cache_info().misses == 1
