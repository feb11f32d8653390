"""TieredStore over a real ``redis-server`` when the shared tier fails or is cleared elsewhere.

Each test checks one row of the fault table in `llmcache.stores.tiered`: a clear that did not
reach every tier raises `StoreError` naming the tier; a clear made in another process (a real
one here) takes back this process's local copies within `generation_check`; a Redis
restarted from a snapshot taken before a clear brings nothing from before back, through any
tier; a Redis that never answered leaves the local tiers working. The model is the public
`MockBackend`, numbering its answers so that an old answer served again would show.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from llmcache import CachedClient, DiskStore, MemoryStore, TieredStore, cached_generate
from llmcache.backends.mock import AsyncMockBackend, MockBackend, MockCall
from llmcache.errors import StoreError
from llmcache.stores.redis import RedisStore

if TYPE_CHECKING:
    from conftest import RedisServer


def _numbered(call: MockCall) -> str:
    return f"answer {call.index} to {call.text}"


def _clear_in_another_process(url: str, namespace: str) -> None:
    code = (
        "from llmcache.stores.redis import RedisStore\n"
        f"with RedisStore({url!r}, namespace={namespace!r}) as store:\n"
        "    store.clear()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def _asker(store: Any, backend: MockBackend) -> Any:
    @cached_generate(cache=store, namespace="tiered-faults")
    def ask(prompt: str) -> str:
        return backend.generate(prompt).content

    return ask


def test_a_clear_with_redis_paused_raises_naming_redis_and_still_clears_memory(
    fault_server: RedisServer,
) -> None:
    backend = MockBackend(_numbered)
    memory = MemoryStore()
    with RedisStore(fault_server.url, namespace="t", retry_after=30) as shared:
        tiered = TieredStore(memory, shared)
        client = CachedClient(backend, tiered)
        assert client.generate("q", temperature=0).content == "answer 0 to q"
        fault_server.pause()
        try:
            with pytest.raises(StoreError, match="redis") as raised:
                tiered.clear()
            assert (raised.value.store, raised.value.operation) == ("tiered", "clear")
            assert "memory" not in str(raised.value)
            assert len(memory) == 0  # the tier that could be cleared was
            with pytest.raises(StoreError, match="redis"):
                tiered.delete("q")
            # The request path never raises: the model answers, memory serves it again.
            assert client.generate("p", temperature=0).content == "answer 1 to p"
            assert client.generate("p", temperature=0).content == "answer 1 to p"
        finally:
            fault_server.resume()
        tiered.clear()  # reported, so the caller retries: now it happens everywhere
        assert client.generate("q", temperature=0).content == "answer 2 to q"
        assert client.generate("p", temperature=0).content == "answer 3 to p"


def test_a_clear_in_another_process_takes_back_this_process_memory_copies(redis_url: str) -> None:
    backend = MockBackend(_numbered)
    with RedisStore(redis_url, namespace="t") as shared:
        memory = MemoryStore()
        tiered = TieredStore(memory, shared, generation_check=0)
        ask = _asker(tiered, backend)
        assert ask("q") == ask("q") == "answer 0 to q"
        assert tiered.stats()["tier_hits"] == {"memory": 1, "redis": 0}
        _clear_in_another_process(redis_url, "t")
        assert len(memory) == 1  # the copy is still there, under the old generation...
        assert ask("q") == "answer 1 to q"  # ...and never served again
        assert ask("q") == "answer 1 to q"
        assert tiered.stats()["tier_hits"] == {"memory": 2, "redis": 0}


def test_with_a_generation_check_window_the_old_copy_stops_within_it(redis_url: str) -> None:
    backend = MockBackend(_numbered)
    with (
        RedisStore(redis_url, namespace="t") as here,
        RedisStore(redis_url, namespace="t") as elsewhere,
    ):
        tiered = TieredStore(MemoryStore(), here, generation_check=0.2)
        ask = _asker(tiered, backend)
        assert ask("q") == "answer 0 to q"
        elsewhere.clear()
        time.sleep(0.25)  # past the window: the next local hit asks Redis first
        assert ask("q") == "answer 1 to q"


def test_a_local_disk_tier_reopened_after_a_clear_elsewhere_serves_nothing_old(
    redis_url: str, tmp_path: Path
) -> None:
    backend = MockBackend(_numbered)
    with RedisStore(redis_url, namespace="t") as shared:
        with TieredStore(DiskStore(tmp_path / "local"), shared) as before:
            assert _asker(before, backend)("q") == "answer 0 to q"
        _clear_in_another_process(redis_url, "t")  # while this process was not running
        with (
            RedisStore(redis_url, namespace="t") as again,
            TieredStore(DiskStore(tmp_path / "local"), again) as after,
        ):
            assert _asker(after, backend)("q") == "answer 1 to q"


def test_a_restart_from_a_snapshot_taken_before_a_clear_brings_nothing_back(
    fault_server: RedisServer,
) -> None:
    backend = MockBackend(_numbered)
    with (
        RedisStore(fault_server.url, namespace="t", retry_after=0.1) as here,
        RedisStore(fault_server.url, namespace="t") as elsewhere,
    ):
        ask = _asker(TieredStore(MemoryStore(), here, generation_check=0), backend)
        assert ask("q") == "answer 0 to q"
        fault_server.save()  # a backup holding answer 0, at generation 0
        TieredStore(MemoryStore(), elsewhere).clear()  # another process clears
        assert ask("q") == "answer 1 to q"
        fault_server.restart()  # the server comes back from the backup: answer 0 is back
        answers = [ask("q")]  # Redis is reconnecting: the memory copy of answer 1, or a miss
        time.sleep(0.15)  # past retry_after
        answers.append(ask("q"))  # Redis again: its generation is moved forward first
        with RedisStore(fault_server.url, namespace="t") as fresh:  # a process started now
            answers.append(_asker(TieredStore(MemoryStore(), fresh), backend)("q"))
        assert "answer 0 to q" not in answers, answers


def test_redis_down_from_the_start_leaves_memory_working_and_reports_clears() -> None:
    backend = MockBackend(_numbered)
    memory = MemoryStore()
    with TieredStore(
        memory, RedisStore("redis://127.0.0.1:1/0", namespace="t", retry_after=30)
    ) as tiered:
        client = CachedClient(backend, tiered)
        assert client.generate("q", temperature=0).content == "answer 0 to q"
        assert client.generate("q", temperature=0).content == "answer 0 to q"  # memory
        with pytest.raises(StoreError, match="redis"):
            tiered.delete("anything")
        with pytest.raises(StoreError, match="redis"):
            tiered.clear()
        assert len(memory) == 0
        assert client.generate("q", temperature=0).content == "answer 1 to q"


async def test_async_clear_paused_and_cleared_elsewhere(fault_server: RedisServer) -> None:
    backend = AsyncMockBackend(_numbered)
    async with (
        RedisStore(fault_server.url, namespace="t", retry_after=30) as here,
        RedisStore(fault_server.url, namespace="t") as elsewhere,
    ):
        tiered = TieredStore(MemoryStore(), here, generation_check=0)
        client = CachedClient(backend, tiered)
        assert (await client.generate("q", temperature=0)).content == "answer 0 to q"
        await elsewhere.aclear()
        assert (await client.generate("q", temperature=0)).content == "answer 1 to q"
        fault_server.pause()
        try:
            with pytest.raises(StoreError, match="redis"):
                await tiered.aclear()
            with pytest.raises(StoreError, match="redis"):
                await tiered.adelete("q")
        finally:
            fault_server.resume()
        await tiered.aclear()
        assert (await client.generate("q", temperature=0)).content == "answer 2 to q"
