"""Wiring: one `TodoApp` per command, built from `Settings`.

The model is reached through ``llmcache.get_backend`` (the async twin of the named backend
when one is installed, e.g. ``ollama`` -> ``ollama-async``), behind a ``CachedOllamaClient``
whose `ResponseCache` persists in ``<home>/cache``: a repeated note is answered from disk in a
new process. Between the cache and the model sits a `CheckedBackend`, so an answer that fails
validation is never stored. Metrics are the app's own `MetricsCollector`, merged into
``<home>/metrics.json`` when the command ends, so ``ai-todo stats`` in a fresh process shows
every earlier run.

Nothing is created until a command writes: the parts open lazily, and the data folder is made
by the first write (a task, the response cache, the metrics of a command that ran).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from ai_todo.config import Settings
from ai_todo.extraction import CheckedBackend, TaskExtractor
from ai_todo.repository import TaskRepository
from ai_todo.search import TaskSearch
from ai_todo.services import OptimizedTaskService, PendingInputs
from llmcache import (
    AIResponse,
    AsyncBackend,
    Backend,
    EmbedResponse,
    MetricsCollector,
    ResponseCache,
    StreamChunk,
    get_backend,
)
from llmcache.backends.registry import BackendNotFound
from llmcache.embeddings import EmbeddingCache
from llmcache_ollama import AsyncCachedOllamaClient

__all__ = ["ThreadedBackend", "TodoApp", "load_metrics", "make_backend", "save_metrics"]

logger = logging.getLogger(__name__)

_DAY = 24 * 3600.0


class ThreadedBackend(AsyncBackend):
    """A blocking `Backend` used from asyncio: each call runs in a worker thread."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.model = backend.model

    async def generate(self, prompt: str, **kwargs: Any) -> AIResponse:
        return await asyncio.to_thread(lambda: self.backend.generate(prompt, **kwargs))

    async def chat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> AIResponse:
        return await asyncio.to_thread(lambda: self.backend.chat(messages, **kwargs))

    async def generate_stream(self, prompt: str, **kwargs: Any) -> AsyncIterator[StreamChunk]:
        chunks = await asyncio.to_thread(
            lambda: list(self.backend.generate_stream(prompt, **kwargs))
        )
        for chunk in chunks:
            yield chunk

    async def chat_stream(
        self, messages: Sequence[Mapping[str, Any]], **kwargs: Any
    ) -> AsyncIterator[StreamChunk]:
        chunks = await asyncio.to_thread(lambda: list(self.backend.chat_stream(messages, **kwargs)))
        for chunk in chunks:
            yield chunk

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        return await asyncio.to_thread(lambda: self.backend.embed(texts, model=model))

    async def aclose(self) -> None:
        await asyncio.to_thread(self.backend.close)


def make_backend(settings: Settings) -> AsyncBackend:
    """The backend named in `settings`, as an `AsyncBackend`."""
    config: dict[str, Any] = {"model": settings.model}
    if settings.backend.startswith("ollama"):
        # A long read timeout (a small CPU model may take a while) but a short connect one:
        # a server that is not there should say so at once.
        config.update(
            host=settings.host, timeout=httpx.Timeout(settings.request_timeout, connect=5.0)
        )
    name = settings.backend
    backend: Any = None
    if not name.endswith("-async"):
        with contextlib.suppress(BackendNotFound):
            backend = get_backend(f"{name}-async", **config)
    if backend is None:
        backend = get_backend(name, **config)
    return backend if isinstance(backend, AsyncBackend) else ThreadedBackend(backend)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (POSIX), so two commands ending at once merge, not clobber."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: last writer wins
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_metrics(path: Path, *, set_aside: bool = True) -> MetricsCollector:
    """The metrics saved at `path` (empty if there are none). A damaged file reads as empty,
    and is moved to ``*.bad.json`` when `set_aside` (a writer's job: `stats` only reads)."""
    try:
        return MetricsCollector.load(path, missing_ok=True)
    except ValueError as exc:
        logger.warning(
            "%s; %s", exc, "starting the metrics afresh" if set_aside else "showing none"
        )
        if set_aside:
            with contextlib.suppress(OSError):
                os.replace(path, path.with_suffix(".bad.json"))
        return MetricsCollector()


def save_metrics(path: Path, measured: MetricsCollector) -> None:
    """Merge `measured` into the file at `path` (whose folder must exist: metrics alone never
    create a data folder)."""
    with _file_lock(path.with_name(path.name + ".lock")):
        total = load_metrics(path)
        total.merge(measured)
        total.save(path)


class TodoApp:
    """The parts of the app, opened lazily: a command that only lists tasks never builds a
    model client, and ``stats`` never opens the task database."""

    def __init__(self, settings: Settings, *, backend: AsyncBackend | None = None) -> None:
        self.settings = settings
        self.metrics = MetricsCollector()
        self._response_cache: ResponseCache | None = None
        self._backend = backend
        self._ai: AsyncCachedOllamaClient | None = None
        self._repo: TaskRepository | None = None
        self._embeddings: EmbeddingCache | None = None
        self._tasks: OptimizedTaskService | None = None

    @property
    def backend(self) -> AsyncBackend:
        if self._backend is None:
            self._backend = make_backend(self.settings)
        return self._backend

    @property
    def response_cache(self) -> ResponseCache:
        """The response cache on disk (opened, and its folder made, on first use)."""
        if self._response_cache is None:
            # A day: the extraction prompt carries today's date, so older answers never match.
            self._response_cache = ResponseCache(
                max_entries=10_000, ttl_seconds=_DAY, persist_path=self.settings.cache_dir
            )
        return self._response_cache

    @property
    def ai(self) -> AsyncCachedOllamaClient:
        """A ``CachedOllamaClient`` around the async backend, which answers are checked
        against before the cache may store them (`CheckedBackend`)."""
        if self._ai is None:
            self._ai = AsyncCachedOllamaClient(CheckedBackend(self.backend), self.response_cache)
        return self._ai

    @property
    def repo(self) -> TaskRepository:
        if self._repo is None:
            self._repo = TaskRepository(self.settings.db_path, timeout=self.settings.db_timeout)
        return self._repo

    @property
    def tasks(self) -> OptimizedTaskService:
        if self._tasks is None:
            s = self.settings
            self._embeddings = EmbeddingCache(s.embeddings_path)
            search = TaskSearch(
                s.index_path,
                embedder=s.embedder,
                backend=self.backend,
                model=s.embed_model or s.model,
                cache=self._embeddings,
                metrics=self.metrics,
            )
            extractor = TaskExtractor(self.ai, model=s.model)
            self._tasks = OptimizedTaskService(
                extractor,
                self.repo,
                search,
                metrics=self.metrics,
                pending=PendingInputs(s.pending_path),
            )
        return self._tasks

    def cache_stats(self) -> dict[str, Any]:
        """The response cache's statistics. Entries are on disk; hits and misses are the disk
        tier's, summed over every process (the memory tier's live and die with a process).
        A cache never written is reported empty, without creating it."""
        if self._response_cache is None and not self.settings.cache_dir.exists():
            return {
                "memory_entries": 0,
                "disk_entries": 0,
                "hits": 0,
                "misses": 0,
                "bytes_on_disk": None,
                "hit_rate": 0.0,
            }
        stats = self.response_cache.stats()
        tiers = stats.get("store", {}).get("tiers") or []
        disk = tiers[-1] if tiers else {}
        out = {
            "memory_entries": stats["memory_entries"],
            "disk_entries": stats["disk_entries"],
            "hits": int(disk.get("hits", stats["total_hits"])),
            "misses": int(disk.get("misses", stats["misses"])),
            "bytes_on_disk": disk.get("volume"),
        }
        lookups = out["hits"] + out["misses"]
        out["hit_rate"] = out["hits"] / lookups if lookups else 0.0
        if self.settings.embeddings_path.exists():
            with EmbeddingCache(self.settings.embeddings_path) as embeddings:
                out["embedding_entries"] = embeddings.stats()["persisted_entries"]
        return out

    async def aclose(self) -> None:
        """Save the index, close everything, and merge this command's metrics into the file."""
        try:
            if self._tasks is not None:
                await self._tasks.aclose()
        finally:
            try:
                if self._ai is not None:
                    await self._ai.aclose()
                elif self._backend is not None:
                    await self._backend.aclose()
            finally:
                for part in (self._embeddings, self._repo, self._response_cache):
                    if part is not None:
                        part.close()
                if self.metrics.get_summary() and self.settings.home.is_dir():
                    try:
                        save_metrics(self.settings.metrics_path, self.metrics)
                    except OSError as exc:
                        logger.warning("could not save the metrics: %s", exc)
