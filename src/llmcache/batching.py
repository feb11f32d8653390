"""Collect single requests into batches: `BatchProcessor` and `EmbeddingBatcher`.

A batch is dispatched as soon as it is full, or ``max_wait_ms`` after its first item,
whichever comes first; at most ``max_concurrent`` batches are in flight. While every slot is
busy, a batch that is due but not full keeps accepting items (so load makes batches larger,
not queues longer). Each caller gets the result for its own item; a failing batch fails only
its own callers; a caller that gives up (is cancelled) is removed from its batch if the batch
has not gone out yet, and never breaks anyone else.

`EmbeddingBatcher` applies this to embeddings with an `EmbeddingCache` in front.

>>> import asyncio
>>> async def double(items: list[int]) -> list[int]:
...     return [2 * i for i in items]
>>> async def main() -> list[int]:
...     async with BatchProcessor(double, BatchConfig(max_batch_size=4)) as bp:
...         return list(await asyncio.gather(*(bp.submit(i) for i in range(6))))
>>> asyncio.run(main())
[0, 2, 4, 6, 8, 10]
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from llmcache._closing import AsyncClosing
from llmcache._numbers import is_number
from llmcache.backends.base import AsyncBackend
from llmcache.metrics import MetricsCollector

if TYPE_CHECKING:
    from llmcache.embeddings import EmbeddingCache, Vector

__all__ = ["BatchConfig", "BatchProcessor", "EmbeddingBatcher"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """How batches are formed: size bound, wait bound for the first item, batches in flight.

    ``max_wait_ms`` may be 0 (dispatch at the next turn of the event loop: items submitted
    together still share a batch).

    >>> BatchConfig(max_batch_size=32).max_concurrent
    3
    >>> BatchConfig(max_concurrent=0)
    Traceback (most recent call last):
    ...
    ValueError: max_concurrent: expected a positive int, got 0
    """

    max_batch_size: int = 10
    max_wait_ms: float = 100
    max_concurrent: int = 3

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_concurrent"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        wait = self.max_wait_ms
        if not is_number(wait) or not 0 <= wait < math.inf:
            raise ValueError(f"max_wait_ms: expected a finite number >= 0, got {wait!r}")


@dataclass(eq=False)
class _Batch(Generic[T, R]):
    started: float  # perf_counter of the first item
    items: list[T] = field(default_factory=list)
    futures: list[asyncio.Future[R]] = field(default_factory=list)
    due: bool = False
    timer: asyncio.TimerHandle | None = None


class BatchProcessor(AsyncClosing, Generic[T, R]):
    """Batch ``submit``-ted items through ``processor(items) -> results`` (same length/order).

    Safe to create outside an event loop; bound to the loop of its first `submit`. Use as
    ``async with`` or call `aclose`, which flushes pending items and waits for batches in
    flight. ``metrics`` (if given) receives each batch's size, the wait of its oldest item,
    and the processor's duration, under ``name``.

    >>> import asyncio
    >>> async def upper(items: list[str]) -> list[str]:
    ...     return [s.upper() for s in items]
    >>> async def main() -> str:
    ...     bp = BatchProcessor(upper, BatchConfig(max_wait_ms=5))
    ...     try:
    ...         return await bp.submit("a")
    ...     finally:
    ...         await bp.aclose()
    >>> asyncio.run(main())
    'A'
    """

    def __init__(
        self,
        processor: Callable[[list[T]], Awaitable[Sequence[R]]],
        config: BatchConfig | None = None,
        *,
        metrics: MetricsCollector | None = None,
        name: str = "batch",
    ) -> None:
        self.processor = processor
        self.config = config or BatchConfig()
        self.metrics = metrics
        self.name = name
        self._waiting: deque[_Batch[T, R]] = deque()  # formed, not yet dispatched
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pending(self) -> int:
        """Items submitted and not yet dispatched."""
        return sum(len(b.items) for b in self._waiting)

    @property
    def in_flight(self) -> int:
        """Batches being processed right now."""
        return len(self._running)

    async def submit(self, item: T) -> R:
        """Queue ``item`` and return its result once its batch has been processed."""
        if self._closed:
            raise RuntimeError(f"{self.name}: BatchProcessor is closed")
        loop = asyncio.get_running_loop()
        cfg = self.config
        batch = self._waiting[-1] if self._waiting else None
        if batch is None or len(batch.items) >= cfg.max_batch_size:
            batch = _Batch(started=time.perf_counter())
            batch.timer = loop.call_later(cfg.max_wait_ms / 1000.0, self._on_timer, batch)
            self._waiting.append(batch)
        future: asyncio.Future[R] = loop.create_future()
        batch.items.append(item)
        batch.futures.append(future)
        if len(batch.items) >= cfg.max_batch_size:
            self._mark_due(batch)  # full: no reason to wait for the timer
        self._pump()
        try:
            return await future
        except asyncio.CancelledError:
            self._withdraw(batch, future)
            raise

    def _mark_due(self, batch: _Batch[T, R]) -> None:
        batch.due = True
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None

    def _on_timer(self, batch: _Batch[T, R]) -> None:
        batch.timer = None
        batch.due = True
        self._pump()

    def _withdraw(self, batch: _Batch[T, R], future: asyncio.Future[R]) -> None:
        # The caller gave up before its batch went out: do not spend a slot on its item.
        if batch not in self._waiting:
            return
        for i, f in enumerate(batch.futures):
            if f is future:
                del batch.items[i], batch.futures[i]
                break
        if not batch.items:
            self._mark_due(batch)
            self._waiting.remove(batch)

    def _pump(self) -> None:
        # Only the oldest waiting batch can be due without being full (all others are full).
        while (
            self._waiting
            and self._waiting[0].due
            and len(self._running) < self.config.max_concurrent
        ):
            batch = self._waiting.popleft()
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s: batch task failed", self.name, exc_info=task.exception())
        self._pump()

    async def _run(self, batch: _Batch[T, R]) -> None:
        start = time.perf_counter()
        n = len(batch.items)
        if self.metrics is not None:
            self.metrics.record_batch(self.name, n, (start - batch.started) * 1000.0)
        try:
            results = list(await self.processor(batch.items))
            if len(results) != n:
                raise ValueError(
                    f"{self.name}: processor returned a wrong number of results "
                    f"for a batch: expected {n} got {len(results)}"
                )
        except asyncio.CancelledError:
            for f in batch.futures:
                f.cancel()
            raise
        except Exception as exc:
            self._record(start, error=True)
            for f in batch.futures:
                if not f.done():  # a cancelled caller's future is done: leave it alone
                    f.set_exception(exc)
            return
        self._record(start, error=False)
        for f, result in zip(batch.futures, results, strict=True):
            if not f.done():
                f.set_result(result)

    def _record(self, start: float, *, error: bool) -> None:
        if self.metrics is not None:
            self.metrics.record(self.name, (time.perf_counter() - start) * 1000.0, error=error)

    async def aclose(self) -> None:
        """Refuse new items, dispatch everything pending now, and wait for all batches."""
        self._closed = True
        for batch in self._waiting:
            self._mark_due(batch)
        while self._waiting or self._running:
            self._pump()
            if self._running:
                await asyncio.wait(set(self._running))
            elif self._waiting:  # cannot happen while pump has free slots; never spin
                await asyncio.sleep(0)


class EmbeddingBatcher(AsyncClosing):
    """Embed texts one at a time from many coroutines; the backend sees batches.

    ``backend`` is an `llmcache.backends.AsyncBackend`; ``model`` defaults to
    ``backend.model``. Texts found in ``cache`` never reach the backend; new vectors are
    written to it. A text already being embedded is not sent again (its callers share one
    request), and duplicates within a batch are sent once. Vectors are read-only float32
    arrays; `embed_many` returns a list of them in input order (``np.stack`` it for a matrix).

    >>> import asyncio
    >>> from llmcache.backends.mock import AsyncMockBackend
    >>> from llmcache.embeddings import EmbeddingCache
    >>> async def main() -> int:
    ...     async with EmbeddingBatcher(AsyncMockBackend(), cache=EmbeddingCache()) as eb:
    ...         vectors = await eb.embed_many(["a", "b", "a"])
    ...     return len(vectors)
    >>> asyncio.run(main())
    3
    """

    def __init__(
        self,
        backend: AsyncBackend,
        config: BatchConfig | None = None,
        *,
        cache: EmbeddingCache | None = None,
        model: str | None = None,
        metrics: MetricsCollector | None = None,
    ) -> None:
        self.backend = backend
        self.config = config or BatchConfig(max_batch_size=20)
        self.cache = cache
        self.model = model or backend.model
        self._processor: BatchProcessor[str, Vector] = BatchProcessor(
            self._process_batch, self.config, metrics=metrics, name="embed_batch"
        )
        self._inflight: dict[str, asyncio.Future[Vector]] = {}

    async def embed(self, text: str) -> Vector:
        """The embedding of one text (from the cache, a shared request, or a batch)."""
        if type(text) is not str:
            raise TypeError(f"text: expected str, got {type(text).__name__}")
        if self.cache is not None:
            found = self.cache.get(text, self.model)
            if found is not None:
                return found
        return await self._embed_uncached(text)

    async def embed_many(self, texts: Iterable[str]) -> list[Vector]:
        """Embeddings of many texts, in input order; one cache query for all of them."""
        texts = list(texts)
        for i, text in enumerate(texts):
            if type(text) is not str:
                raise TypeError(f"texts[{i}]: expected str, got {type(text).__name__}")
        found: dict[str, Vector | None] = {}
        if self.cache is not None and texts:
            found = self.cache.get_batch(texts, self.model)
        missing = [t for t in dict.fromkeys(texts) if found.get(t) is None]
        fetched = await asyncio.gather(*(self._embed_uncached(t) for t in missing))
        vectors: dict[str, Vector] = {t: v for t, v in found.items() if v is not None}
        vectors.update(zip(missing, fetched, strict=True))
        return [vectors[t] for t in texts]

    async def _embed_uncached(self, text: str) -> Vector:
        shared = self._inflight.get(text)
        if shared is None:
            # A task, not a bare submit: a caller that gives up must not cancel the request
            # other callers of the same text are waiting on.
            shared = asyncio.ensure_future(self._processor.submit(text))
            self._inflight[text] = shared
            shared.add_done_callback(functools.partial(self._forget, text))
        return await asyncio.shield(shared)

    def _forget(self, text: str, future: asyncio.Future[Vector]) -> None:
        if self._inflight.get(text) is future:
            del self._inflight[text]
        if not future.cancelled():
            future.exception()  # retrieved: no "never retrieved" noise if every caller left

    async def _process_batch(self, texts: list[str]) -> list[Vector]:
        unique = list(dict.fromkeys(texts))
        vectors: dict[str, Vector] = {}
        if self.cache is not None:
            # Another batch may have stored some of these since they were queued.
            cached = self.cache.get_batch(unique, self.model)
            vectors = {t: v for t, v in cached.items() if v is not None}
            unique = [t for t in unique if t not in vectors]
        if unique:
            from llmcache.embeddings import as_vector  # numpy: loaded where first used

            logger.debug("embedding a batch of %d texts", len(unique))
            response = await self.backend.embed(unique, model=self.model)
            got = response.embeddings
            if len(got) != len(unique):
                raise ValueError(
                    f"backend returned a wrong number of embeddings: "
                    f"expected {len(unique)} got {len(got)}"
                )
            fresh = {
                t: as_vector(v, f"embeddings[{i}]")
                for i, (t, v) in enumerate(zip(unique, got, strict=True))
            }
            if self.cache is not None:
                self.cache.set_batch(fresh, self.model)
            vectors.update(fresh)
        return [vectors[t] for t in texts]

    async def aclose(self) -> None:
        """Flush pending texts and wait for batches in flight (the backend stays open)."""
        await self._processor.aclose()
