"""Re-entry never deadlocks (issue 13, finding 3).

A decorated function that calls itself with the same arguments (a "retry once" written as
recursion), or two that call each other, used to wait on the single-flight its own call
chain leads: a hang. Now such a call runs on its own. Every test has a timeout, so a
regression fails instead of hanging the suite.

The decorated functions are module-level functions, decorated inside each test (a private
memory store per test); they reach the decorated wrapper through `_WRAPPED` so that what
they capture never changes their identity in the key.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest

from llmcache import cached_generate

_WRAPPED: dict[str, Any] = {}
_CALLS: Counter[str] = Counter()
_BARRIER: dict[str, threading.Barrier] = {}


@pytest.fixture(autouse=True)
def _fresh_state() -> None:
    _WRAPPED.clear()
    _CALLS.clear()
    _BARRIER.clear()


def retry_once(prompt: str) -> str:
    _CALLS[prompt] += 1
    if _CALLS[prompt] == 1:
        return str(_WRAPPED["retry_once"](prompt))  # the first attempt "failed": again
    return f"answer:{prompt}"


async def aretry_once(prompt: str) -> str:
    _CALLS[prompt] += 1
    if _CALLS[prompt] == 1:
        return str(await _WRAPPED["aretry_once"](prompt))
    await asyncio.sleep(0)
    return f"answer:{prompt}"


def ping(prompt: str) -> str:
    _CALLS["ping"] += 1
    if _CALLS["ping"] == 1:
        return "ping>" + str(_WRAPPED["pong"](prompt))
    return "ping!"


def pong(prompt: str) -> str:
    _CALLS["pong"] += 1
    return "pong>" + str(_WRAPPED["ping"](prompt))


async def aping(prompt: str) -> str:
    _CALLS["ping"] += 1
    if _CALLS["ping"] == 1:
        return "ping>" + str(await _WRAPPED["apong"](prompt))
    return "ping!"


async def apong(prompt: str) -> str:
    _CALLS["pong"] += 1
    # Through a task of its own: tasks inherit the chain, as the issue asks.
    return "pong>" + str(await asyncio.create_task(_WRAPPED["aping"](prompt)))


def _other(prompt: str) -> str:
    return "b" if prompt == "a" else "a"


def crossed(prompt: str) -> str:
    """First call per prompt: wait until both threads lead their key, then call the other
    prompt, which the other thread leads and which calls this one: a cycle of two threads."""
    _CALLS[prompt] += 1
    if _CALLS[prompt] == 1:
        _BARRIER["both"].wait(2)
        return f"{prompt}>" + str(_WRAPPED["crossed"](_other(prompt)))
    return f"{prompt}!"


async def acrossed(prompt: str) -> str:
    _CALLS[prompt] += 1
    if _CALLS[prompt] == 1:
        await _arrive(prompt)
        return f"{prompt}>" + str(await _WRAPPED["acrossed"](_other(prompt)))
    return f"{prompt}!"


async def _arrive(prompt: str) -> None:
    _CALLS["arrived"] += 1
    while _CALLS["arrived"] < 2:
        await asyncio.sleep(0.001)


def _crossed_results_are_consistent(results: dict[str, str]) -> None:
    # One thread's inner call ran on its own; the other followed the finished call.
    assert results in ({"a": "a>b>a!", "b": "b>a!"}, {"a": "a>b!", "b": "b>a>b!"})
    assert _CALLS["a"] + _CALLS["b"] == 3


@pytest.mark.timeout(5)
def test_sync_function_that_calls_itself_runs_again() -> None:
    generate = _WRAPPED["retry_once"] = cached_generate(retry_once)
    assert generate("q") == "answer:q"
    assert _CALLS["q"] == 2
    assert generate("q") == "answer:q" and _CALLS["q"] == 2  # now a hit
    info = generate.cache_info()
    assert info.hits == 1 and info.misses == 2


@pytest.mark.timeout(5)
async def test_async_function_that_calls_itself_runs_again() -> None:
    generate = _WRAPPED["aretry_once"] = cached_generate(aretry_once)
    assert await generate("q") == "answer:q"
    assert _CALLS["q"] == 2
    assert await generate("q") == "answer:q" and _CALLS["q"] == 2


@pytest.mark.timeout(5)
def test_sync_two_key_cycle_runs_the_inner_call_on_its_own() -> None:
    _WRAPPED["ping"] = cached_generate(ping)
    _WRAPPED["pong"] = cached_generate(pong)
    assert _WRAPPED["ping"]("q") == "ping>pong>ping!"
    assert _CALLS == Counter({"ping": 2, "pong": 1})


@pytest.mark.timeout(5)
async def test_async_two_key_cycle_through_a_child_task() -> None:
    _WRAPPED["aping"] = cached_generate(aping)
    _WRAPPED["apong"] = cached_generate(apong)
    assert await _WRAPPED["aping"]("q") == "ping>pong>ping!"
    assert _CALLS == Counter({"ping": 2, "pong": 1})


@pytest.mark.timeout(5)
def test_cycle_across_two_threads_is_broken() -> None:
    _WRAPPED["crossed"] = cached_generate(crossed)
    _BARRIER["both"] = threading.Barrier(2)
    results: dict[str, str] = {}

    def call(prompt: str) -> None:
        results[prompt] = str(_WRAPPED["crossed"](prompt))

    threads = [threading.Thread(target=call, args=(p,), daemon=True) for p in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _crossed_results_are_consistent(results)


@pytest.mark.timeout(5)
async def test_cycle_across_two_tasks_is_broken() -> None:
    generate = _WRAPPED["acrossed"] = cached_generate(acrossed)
    a, b = await asyncio.gather(generate("a"), generate("b"))
    _crossed_results_are_consistent({"a": a, "b": b})
