"""BatchProcessor and EmbeddingBatcher: batching rules, isolation, cancellation, closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmcache.backends import AIResponse, AsyncBackend, EmbedResponse, StreamChunk
from llmcache.batching import BatchConfig, BatchProcessor, EmbeddingBatcher
from llmcache.embeddings import EmbeddingCache
from llmcache.metrics import MetricsCollector

# Generous bound for "does not hang": never a timing assertion on speed.
HANG = 10.0


class Boom(Exception):
    pass


class Recorder:
    """An instrumented processor: records batches and the peak number running at once."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, str]]] = []
        self.active = 0
        self.peak = 0

    async def __call__(self, items: list[tuple[int, str]]) -> list[tuple[str, int]]:
        self.active += 1
        self.peak = max(self.peak, self.active)
        self.batches.append(list(items))
        try:
            await asyncio.sleep(0.001 * (len(items) % 3))
            if any(kind == "raise" for _, kind in items):
                raise Boom([i for i, _ in items])
            out = [("r", i) for i, _ in items]
            if any(kind == "wrong" for _, kind in items):
                out.pop()
            return out
        finally:
            self.active -= 1


arrival = st.tuples(
    st.integers(0, 2),  # delay before this submit, ms
    st.sampled_from(["ok", "ok", "ok", "ok", "wrong", "raise"]),
    st.one_of(st.none(), st.none(), st.integers(0, 3)),  # cancel the caller after N ms
)


@given(
    max_batch_size=st.integers(1, 5),
    max_concurrent=st.integers(1, 3),
    max_wait_ms=st.sampled_from([0, 1, 3]),
    arrivals=st.lists(arrival, min_size=1, max_size=20),
)
def test_arrival_patterns(
    max_batch_size: int,
    max_concurrent: int,
    max_wait_ms: int,
    arrivals: list[tuple[int, str, int | None]],
) -> None:
    rec = Recorder()
    # Created outside any event loop, on purpose.
    bp = BatchProcessor(rec, BatchConfig(max_batch_size, max_wait_ms, max_concurrent))

    async def scenario() -> list[Any]:
        loop = asyncio.get_running_loop()
        tasks = []
        for i, (delay, kind, cancel_after) in enumerate(arrivals):
            if delay:
                await asyncio.sleep(delay / 1000)
            task = asyncio.create_task(bp.submit((i, kind)))
            tasks.append(task)
            if cancel_after is not None:
                loop.call_later(cancel_after / 1000, task.cancel)
        await asyncio.wait_for(bp.aclose(), HANG)
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), HANG)

    results = asyncio.run(scenario())

    assert all(1 <= len(b) <= max_batch_size for b in rec.batches)
    assert rec.peak <= max_concurrent
    where: dict[int, list[tuple[int, str]]] = {}
    for batch in rec.batches:
        for i, _ in batch:
            assert i not in where, "an item was processed twice"
            where[i] = batch
    for i, result in enumerate(results):
        if isinstance(result, asyncio.CancelledError):
            continue
        batch = where[i]  # every caller that did not give up was processed
        kinds = {kind for _, kind in batch}
        if "raise" in kinds:
            assert isinstance(result, Boom) and i in result.args[0]
        elif "wrong" in kinds:
            assert isinstance(result, ValueError)
            assert f"expected {len(batch)} got {len(batch) - 1}" in str(result)
        else:
            assert result == ("r", i)


async def test_full_batch_goes_out_without_waiting() -> None:
    rec = Recorder()
    bp = BatchProcessor(rec, BatchConfig(max_batch_size=3, max_wait_ms=600_000))
    got = await asyncio.wait_for(asyncio.gather(*(bp.submit((i, "ok")) for i in range(3))), HANG)
    assert got == [("r", 0), ("r", 1), ("r", 2)]
    assert [len(b) for b in rec.batches] == [3]
    await bp.aclose()


async def test_partial_batch_goes_out_after_max_wait() -> None:
    rec = Recorder()
    bp = BatchProcessor(rec, BatchConfig(max_batch_size=100, max_wait_ms=5))
    assert await asyncio.wait_for(bp.submit((7, "ok")), HANG) == ("r", 7)
    await bp.aclose()


async def test_items_submitted_together_share_a_batch() -> None:
    rec = Recorder()
    async with BatchProcessor(rec, BatchConfig(max_batch_size=10, max_wait_ms=0)) as bp:
        await asyncio.gather(*(bp.submit((i, "ok")) for i in range(4)))
    assert [len(b) for b in rec.batches] == [4]


async def test_concurrency_limit_and_growth_while_busy() -> None:
    gate = asyncio.Event()
    seen: list[list[int]] = []
    running = 0
    peak = 0

    async def proc(items: list[int]) -> list[int]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        seen.append(items)
        await gate.wait()
        running -= 1
        return items

    bp = BatchProcessor(proc, BatchConfig(max_batch_size=2, max_wait_ms=0, max_concurrent=2))
    tasks = [asyncio.create_task(bp.submit(i)) for i in range(4)]
    await asyncio.sleep(0.01)
    assert bp.in_flight == 2 and seen == [[0, 1], [2, 3]]
    # Slots are busy: a due batch keeps taking items up to its size, it does not go out.
    more = [asyncio.create_task(bp.submit(i)) for i in range(4, 7)]
    await asyncio.sleep(0.01)
    assert bp.in_flight == 2 and bp.pending == 3
    gate.set()
    assert await asyncio.wait_for(asyncio.gather(*tasks, *more), HANG) == list(range(7))
    assert peak == 2
    assert [len(b) for b in seen] == [2, 2, 2, 1]
    await bp.aclose()


async def test_wrong_result_count_fails_only_that_batch() -> None:
    async def proc(items: list[int]) -> list[int]:
        return items[:-1] if 0 in items else items

    bp = BatchProcessor(proc, BatchConfig(max_batch_size=2, max_wait_ms=0))
    results = await asyncio.gather(*(bp.submit(i) for i in range(4)), return_exceptions=True)
    assert isinstance(results[0], ValueError) and isinstance(results[1], ValueError)
    assert "expected 2 got 1" in str(results[0])
    assert results[2:] == [2, 3]
    await bp.aclose()


async def test_exception_fails_only_its_batch() -> None:
    async def proc(items: list[int]) -> list[int]:
        if 1 in items:
            raise Boom("bad batch")
        return items

    async with BatchProcessor(proc, BatchConfig(max_batch_size=2, max_wait_ms=0)) as bp:
        results = await asyncio.gather(*(bp.submit(i) for i in range(4)), return_exceptions=True)
    assert [type(r) for r in results[:2]] == [Boom, Boom]
    assert results[2:] == [2, 3]


async def test_cancelled_before_dispatch_is_withdrawn() -> None:
    rec = Recorder()
    bp = BatchProcessor(rec, BatchConfig(max_batch_size=10, max_wait_ms=20))
    keep = asyncio.create_task(bp.submit((0, "ok")))
    drop = asyncio.create_task(bp.submit((1, "ok")))
    await asyncio.sleep(0)
    drop.cancel()
    assert await asyncio.wait_for(keep, HANG) == ("r", 0)
    assert drop.cancelled()
    assert rec.batches == [[(0, "ok")]]
    await bp.aclose()


async def test_cancelled_during_processing_does_not_break_others() -> None:
    gate = asyncio.Event()
    started = asyncio.Event()

    async def proc(items: list[int]) -> list[int]:
        started.set()
        await gate.wait()
        return [i * 10 for i in items]

    bp = BatchProcessor(proc, BatchConfig(max_batch_size=3, max_wait_ms=0))
    tasks = [asyncio.create_task(bp.submit(i)) for i in range(3)]
    await started.wait()
    tasks[1].cancel()
    await asyncio.sleep(0)
    gate.set()  # set_result must skip the cancelled caller's future (no InvalidStateError)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == 0 and results[2] == 20
    assert isinstance(results[1], asyncio.CancelledError)
    await bp.aclose()


async def test_all_cancelled_leaves_no_empty_batch() -> None:
    rec = Recorder()
    bp = BatchProcessor(rec, BatchConfig(max_batch_size=10, max_wait_ms=5))
    t = asyncio.create_task(bp.submit((0, "ok")))
    await asyncio.sleep(0)
    t.cancel()
    await asyncio.sleep(0.02)
    assert rec.batches == [] and bp.pending == 0
    await bp.aclose()


async def test_aclose_flushes_pending_and_rejects_new_items() -> None:
    rec = Recorder()
    bp = BatchProcessor(rec, BatchConfig(max_batch_size=100, max_wait_ms=600_000))
    tasks = [asyncio.create_task(bp.submit((i, "ok"))) for i in range(5)]
    await asyncio.sleep(0)
    assert bp.pending == 5
    await asyncio.wait_for(bp.aclose(), HANG)
    assert [t.result() for t in tasks] == [("r", i) for i in range(5)]
    with pytest.raises(RuntimeError, match="closed"):
        await bp.submit((9, "ok"))
    await bp.aclose()  # idempotent


def test_created_outside_a_loop_and_config_validation() -> None:
    bp = BatchProcessor(Recorder())
    assert bp.config == BatchConfig(10, 100, 3)
    assert asyncio.run(bp.submit((1, "ok"))) == ("r", 1)
    for kwargs, name in [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"max_concurrent": -1}, "max_concurrent"),
        ({"max_concurrent": 1.5}, "max_concurrent"),
        ({"max_wait_ms": -1}, "max_wait_ms"),
        ({"max_wait_ms": float("nan")}, "max_wait_ms"),
        ({"max_wait_ms": float("inf")}, "max_wait_ms"),
    ]:
        with pytest.raises(ValueError, match=name):
            BatchConfig(**kwargs)  # type: ignore[arg-type]


async def test_metrics_receive_batches() -> None:
    m = MetricsCollector()
    rec = Recorder()
    async with BatchProcessor(
        rec, BatchConfig(max_batch_size=2, max_wait_ms=0), metrics=m, name="items"
    ) as bp:
        await asyncio.gather(*(bp.submit((i, "ok")) for i in range(5)))
    s = m.get_summary()["items"]
    assert s["batches"]["count"] == 3 and s["batches"]["max_size"] == 2
    assert s["count"] == 3 and s["errors"] == 0


# -- EmbeddingBatcher ---------------------------------------------------------------------


class ScriptedBackend(AsyncBackend):
    """A test double: vectors derived from the text; records every embed call."""

    def __init__(self, *, model: str = "emb", wrong_count: bool = False) -> None:
        self.model = model
        self.calls: list[tuple[list[str], str | None]] = []
        self.wrong_count = wrong_count
        self.gate: asyncio.Event | None = None

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        self.calls.append((list(texts), model))
        if self.gate is not None:
            await self.gate.wait()
        vectors = [[float(len(t)), float(sum(map(ord, t)) % 97)] for t in texts]
        if self.wrong_count:
            vectors = vectors[:-1]
        return EmbedResponse(embeddings=vectors, model=model or self.model)

    async def generate(self, prompt: str, **kwargs: Any) -> AIResponse:
        raise NotImplementedError

    def generate_stream(self, prompt: str, **kwargs: Any) -> AsyncIterator[StreamChunk]:
        raise NotImplementedError

    async def chat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> AIResponse:
        raise NotImplementedError

    def chat_stream(
        self, messages: Sequence[Mapping[str, Any]], **kwargs: Any
    ) -> AsyncIterator[StreamChunk]:
        raise NotImplementedError


def _expected(text: str) -> list[float]:
    return [float(len(text)), float(sum(map(ord, text)) % 97)]


async def test_embedder_batches_and_dedupes() -> None:
    backend = ScriptedBackend()
    cfg = BatchConfig(max_batch_size=10, max_wait_ms=5)
    async with EmbeddingBatcher(backend, cfg) as eb:
        texts = ["a", "bb", "a", "ccc", "bb", "a"]
        vectors = await asyncio.wait_for(asyncio.gather(*(eb.embed(t) for t in texts)), HANG)
    assert [v.tolist() for v in vectors] == [_expected(t) for t in texts]
    assert backend.calls == [(["a", "bb", "ccc"], "emb")]  # one call, each text once
    assert all(v.dtype == np.float32 and not v.flags.writeable for v in vectors)


async def test_processor_dedupes_within_a_batch() -> None:
    backend = ScriptedBackend()
    eb = EmbeddingBatcher(backend, BatchConfig(max_wait_ms=0), model="other")
    out = await eb._process_batch(["x", "y", "x"])
    assert backend.calls == [(["x", "y"], "other")]
    assert out[0] is out[2]
    await eb.aclose()


async def test_cached_texts_never_reach_the_backend() -> None:
    backend = ScriptedBackend()
    cache = EmbeddingCache()
    cache.set("known", "emb", [9.0, 9.0])
    async with EmbeddingBatcher(backend, BatchConfig(max_wait_ms=0), cache=cache) as eb:
        single = await eb.embed("known")
        many = await eb.embed_many(["known", "new", "new", "fresh"])
        again = await eb.embed_many(["new", "fresh"])
    assert single.tolist() == [9.0, 9.0]
    assert [v.tolist() for v in many] == [
        [9.0, 9.0],
        _expected("new"),
        _expected("new"),
        _expected("fresh"),
    ]
    assert backend.calls == [(["new", "fresh"], "emb")]
    assert [v.tolist() for v in again] == [_expected("new"), _expected("fresh")]
    stored = cache.get("fresh", "emb")
    assert stored is not None and stored.tolist() == _expected("fresh")


async def test_text_in_flight_is_not_sent_twice() -> None:
    backend = ScriptedBackend()
    backend.gate = asyncio.Event()
    eb = EmbeddingBatcher(backend, BatchConfig(max_batch_size=1, max_wait_ms=0))
    first = asyncio.create_task(eb.embed("same"))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(eb.embed("same"))
    await asyncio.sleep(0.01)
    first.cancel()  # the first caller leaving must not fail the second
    backend.gate.set()
    assert (await asyncio.wait_for(second, HANG)).tolist() == _expected("same")
    assert backend.calls == [(["same"], "emb")]
    await eb.aclose()


async def test_embedder_wrong_count_is_an_error() -> None:
    eb = EmbeddingBatcher(ScriptedBackend(wrong_count=True), BatchConfig(max_wait_ms=0))
    with pytest.raises(ValueError, match="expected 2 got 1"):
        await eb.embed_many(["a", "b"])
    await eb.aclose()


async def test_embedder_validates_input() -> None:
    eb = EmbeddingBatcher(ScriptedBackend())
    with pytest.raises(TypeError, match="text"):
        await eb.embed(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        await eb.embed_many(["a", None])  # type: ignore[list-item]
    assert await eb.embed_many([]) == []
    await eb.aclose()
