"""@cached_generate: keys from bound arguments, values, policy, single-flight, errors."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from llmcache import (
    AIResponse,
    CachedResponse,
    CachePolicy,
    DiskStore,
    MemoryStore,
    cache_control,
    cached_generate,
)
from llmcache.stores.base import Store


def counting(store: Store | None = None, **options: Any) -> tuple[Any, list[tuple[Any, ...]]]:
    calls: list[tuple[Any, ...]] = []
    # `generate` captures `calls`, a list: on a store that could be shared, the decorator
    # asks for a namespace (see test_decorator_identity.py).
    options.setdefault("namespace", "counting")

    @cached_generate(cache=store if store is not None else MemoryStore(), **options)
    def generate(prompt: str, model: str = "m", temperature: float = 0.0) -> str:
        calls.append((prompt, model, temperature))
        return f"{model}:{prompt}"

    return generate, calls


def test_bare_and_bound_arguments_share_an_entry() -> None:
    generate, calls = counting()
    assert generate("x", model="m") == "m:x"
    assert generate(prompt="x", model="m") == "m:x"
    assert generate("x") == "m:x"  # the default model applies
    assert generate("x", "m", 0.0) == "m:x"
    assert len(calls) == 1
    assert generate.cache_info().hits == 3
    assert generate("x", model="other") == "other:x"
    assert len(calls) == 2


def test_bare_decorator_form() -> None:
    calls = []

    @cached_generate
    def f(prompt: str) -> str:
        calls.append(prompt)
        return prompt * 2

    assert f("a") == f("a") == "aa"
    assert len(calls) == 1
    assert f.uncached("a") == "aa"
    assert len(calls) == 2


def test_functions_do_not_share_entries() -> None:
    store = MemoryStore()

    @cached_generate(cache=store)
    def f(prompt: str) -> str:
        return "f"

    @cached_generate(cache=store)
    def g(prompt: str) -> str:
        return "g"

    assert (f("x"), g("x")) == ("f", "g")


def test_namespaces_are_apart() -> None:
    store = MemoryStore()
    a, calls_a = counting(store, namespace="tenant-a")
    b, calls_b = counting(store, namespace="tenant-b")
    a("x")
    b("x")
    assert len(calls_a) == len(calls_b) == 1


def test_temperature_policy() -> None:
    generate, calls = counting()
    generate("x", temperature=0.9)
    generate("x", temperature=0.9)
    assert len(calls) == 2  # sampling: not cached
    generate("x", temperature=0.2)
    generate("x", temperature=0.2)
    assert len(calls) == 3

    everything, calls2 = counting(policy=CachePolicy(temperature_threshold=None))
    everything("x", temperature=1.5)
    everything("x", temperature=1.5)
    assert len(calls2) == 1


def test_seed_in_options_makes_sampling_cacheable() -> None:
    calls = []

    @cached_generate
    def gen(prompt: str, options: dict[str, Any] | None = None) -> str:
        calls.append(prompt)
        return prompt

    gen("x", options={"temperature": 0.9, "seed": 3})
    gen("x", options={"temperature": 0.9, "seed": 3})
    assert len(calls) == 1
    gen("x", options={"temperature": 0.9})
    gen("x", options={"temperature": 0.9})
    assert len(calls) == 3


def test_cache_control_switches() -> None:
    generate, calls = counting()
    generate("x")
    with cache_control(bypass=True):
        generate("x")
    assert len(calls) == 2
    with cache_control(refresh=True):
        generate("x")  # no read, but a write
    assert len(calls) == 3
    with cache_control(no_store=True):
        generate("new")
    generate("new")
    assert len(calls) == 5
    with (
        pytest.raises(ValueError, match="bypass and refresh"),
        cache_control(bypass=True, refresh=True),
    ):
        pass


def test_json_values_are_copied_on_every_hit() -> None:
    @cached_generate
    def f(prompt: str) -> dict[str, Any]:
        return {"items": [1, 2.5, None, True], "nested": {"k": "v"}}

    first = f("x")
    first["items"].append("mutated")
    second = f("x")
    assert second == {"items": [1, 2.5, None, True], "nested": {"k": "v"}}
    second["nested"]["k"] = "changed"
    assert f("x")["nested"]["k"] == "v"


def test_ai_response_round_trips_as_cached() -> None:
    @cached_generate
    def f(prompt: str) -> AIResponse:
        return AIResponse(
            content="hi",
            model="m",
            tokens_used=5,
            duration_ms=120.0,
            prompt_tokens=2,
            completion_tokens=3,
            done_reason="stop",
        )

    first = f("x")
    hit = f("x")
    assert not first.cached
    assert hit.cached and hit.duration_ms == 0
    assert (hit.content, hit.model, hit.tokens_used, hit.done_reason) == ("hi", "m", 5, "stop")
    assert f.cache_counters()["tokens_saved"] == 5


def test_cached_response_return_value() -> None:
    @cached_generate
    def f(prompt: str) -> CachedResponse:
        return CachedResponse(content="c", model="m", metadata={"a": 1})

    f("x")
    hit = f("x")
    assert isinstance(hit, CachedResponse)
    assert hit.content == "c" and hit.metadata == {"a": 1}


@pytest.mark.parametrize("bad", [object(), {1: "x"}, {"x": float("nan")}, b"bytes", {"s": {1}}])
def test_unstorable_results_raise_and_store_nothing(bad: Any) -> None:
    store = MemoryStore()

    @cached_generate(cache=store, namespace="unstorable")  # it captures `bad`
    def f(prompt: str) -> Any:
        return bad

    with pytest.raises((TypeError, ValueError)):
        f("x")
    assert len(store) == 0


def test_unkeyable_arguments_name_the_argument() -> None:
    @cached_generate
    def f(prompt: str, client: Any = None) -> str:
        return "x"

    with pytest.raises(TypeError, match=r"args\.client.*key="):
        f("x", client=object())


def test_custom_key_function() -> None:
    calls = []

    @cached_generate(key=lambda prompt, request_id=None: prompt)
    def f(prompt: str, request_id: str | None = None) -> str:
        calls.append(request_id)
        return prompt

    f("x", request_id="1")
    f("x", request_id="2")
    assert calls == ["1"]


def test_exceptions_are_not_stored() -> None:
    attempts = []

    @cached_generate
    def f(prompt: str) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("model timed out")
        return "ok"

    with pytest.raises(RuntimeError):
        f("x")
    assert f("x") == "ok"
    assert f("x") == "ok"
    assert len(attempts) == 2


def test_cache_clear_and_info() -> None:
    generate, calls = counting()
    generate("x")
    generate("x")
    assert generate.cache_info().currsize == 1
    generate.cache_clear()
    assert generate.cache_info().hits == 0 and generate.cache_info().currsize == 0
    generate("x")
    assert len(calls) == 2


def test_ttl_expires_entries() -> None:
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    generate, calls = counting(store, ttl=10)
    generate("x")
    now[0] += 5
    generate("x")
    assert len(calls) == 1
    now[0] += 6
    generate("x")
    assert len(calls) == 2


def test_a_foreign_entry_under_the_key_is_a_miss() -> None:
    store = MemoryStore()
    generate, calls = counting(store)
    generate("x")
    (key,) = list(store._cache.keys())  # type: ignore[attr-defined]
    store.set(key, CachedResponse(content="poisoned", fingerprint="0" * 16))
    assert generate("x") == "m:x"
    assert len(calls) == 2


def test_hundred_threads_make_one_call() -> None:
    calls = []
    lock = threading.Lock()
    barrier = threading.Barrier(100)

    @cached_generate
    def slow(prompt: str) -> dict[str, str]:
        with lock:
            calls.append(prompt)
        time.sleep(0.2)
        return {"answer": prompt}

    results: list[dict[str, str]] = []

    def worker() -> None:
        barrier.wait()
        value = slow("same")
        with lock:
            results.append(value)

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert results == [{"answer": "same"}] * 100
    # Every thread has its own dict.
    assert len({id(r) for r in results}) == 100


async def test_hundred_tasks_make_one_call() -> None:
    calls = []

    @cached_generate
    async def slow(prompt: str) -> str:
        calls.append(prompt)
        await asyncio.sleep(0.1)
        return prompt.upper()

    results = await asyncio.gather(*(slow("same") for _ in range(100)))
    assert results == ["SAME"] * 100
    assert len(calls) == 1
    assert await slow("same") == "SAME"
    assert slow.cache_info().hits >= 1


async def test_async_followers_get_the_exception_and_nothing_is_stored() -> None:
    calls = []

    @cached_generate
    async def failing(prompt: str) -> str:
        calls.append(prompt)
        await asyncio.sleep(0.05)
        raise ConnectionError("backend down")

    results = await asyncio.gather(*(failing("x") for _ in range(20)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert len(calls) == 1
    assert failing.cache_info().currsize == 0


async def test_cancelled_first_caller_does_not_strand_the_others() -> None:
    calls = []

    @cached_generate
    async def slow(prompt: str) -> str:
        calls.append(prompt)
        await asyncio.sleep(0.1)
        return "done"

    first = asyncio.create_task(slow("x"))
    await asyncio.sleep(0.01)
    others = [asyncio.create_task(slow("x")) for _ in range(5)]
    await asyncio.sleep(0.01)
    first.cancel()
    assert await asyncio.gather(*others) == ["done"] * 5
    assert len(calls) == 1


def test_thread_followers_get_the_exception() -> None:
    calls = []
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []
    lock = threading.Lock()

    @cached_generate
    def failing(prompt: str) -> str:
        calls.append(prompt)
        time.sleep(0.2)
        raise TimeoutError("slow model")

    def worker() -> None:
        barrier.wait()
        try:
            failing("x")
        except TimeoutError as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 10
    assert len(calls) == 1


def test_disk_tier_survives_a_restart(tmp_path: Any) -> None:
    with DiskStore(tmp_path) as store:
        first, calls = counting(store)
        first("x")
    with DiskStore(tmp_path) as store:
        second, calls2 = counting(store)
        # Same function identity (name, code, namespace) and arguments: served from disk.
        assert second("x") == "m:x"
        assert calls2 == []


def test_garbage_on_disk_still_answers(tmp_path: Any) -> None:
    store = DiskStore(tmp_path)
    generate, calls = counting(store)
    generate("x")
    store.close()
    for f in tmp_path.rglob("*.db"):
        f.write_bytes(b"garbage" * 100)
    with DiskStore(tmp_path) as reopened:
        again, calls2 = counting(reopened)
        assert again("x") == "m:x"
        assert len(calls2) == 1
