"""Semantic task search: llmcache's `VectorIndex` over task embeddings, fed in batches.

Embeddings come from the model server's ``/api/embed`` when its model supports it, else from
a local embedder of `llmcache.vector.embedders` (WordLlama, bundled with its weights; the
hashing embedder as a last resort). Both go through an `EmbeddingBatcher` (texts embedded
together share one request) and an `EmbeddingCache` on disk (a text is embedded once, ever).

The index is saved next to the database with a small JSON file naming the embedder; when the
embedder changes, or the index file is missing or damaged, it is rebuilt from the database.
On first use in a process the index is reconciled with the database (tasks added or deleted
by a run that crashed before saving are indexed or dropped), so it never drifts for long.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ai_todo.models import Task
from llmcache import AIResponse, AsyncBackend, EmbedResponse, StreamChunk
from llmcache.backends.errors import BackendError, BadRequest
from llmcache.batching import BatchConfig, EmbeddingBatcher
from llmcache.embeddings import EmbeddingCache
from llmcache.metrics import MetricsCollector
from llmcache.vector import IndexFileError, SearchHit, VectorIndex
from llmcache.vector.embedders import Embedder, HashingEmbedder

__all__ = ["EMBEDDERS", "LocalEmbedBackend", "TaskSearch", "choose_embedder"]

logger = logging.getLogger(__name__)

EMBEDDERS = ("auto", "backend", "wordllama", "hashing")


class LocalEmbedBackend(AsyncBackend):
    """An in-process embedder dressed as an `AsyncBackend`, so local vectors go through the
    same `EmbeddingBatcher` and cache as a server's. It only embeds."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.model = embedder.name

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        vectors = self.embedder.embed(list(texts))
        return EmbedResponse(embeddings=vectors.tolist(), model=self.model)

    async def generate(self, prompt: str, **kwargs: Any) -> AIResponse:
        raise BadRequest(f"{self.model} only embeds")

    async def chat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> AIResponse:
        raise BadRequest(f"{self.model} only embeds")

    async def generate_stream(self, prompt: str, **kwargs: Any) -> AsyncIterator[StreamChunk]:
        raise BadRequest(f"{self.model} only embeds")
        yield  # pragma: no cover - makes this an async generator

    async def chat_stream(
        self, messages: Sequence[Mapping[str, Any]], **kwargs: Any
    ) -> AsyncIterator[StreamChunk]:
        raise BadRequest(f"{self.model} only embeds")
        yield  # pragma: no cover - makes this an async generator


def _local(kind: str) -> Embedder:
    if kind in ("auto", "wordllama"):
        try:
            from llmcache.vector.embedders import WordLlamaEmbedder

            return WordLlamaEmbedder()
        except (ImportError, OSError) as exc:
            if kind == "wordllama":
                raise
            logger.warning(
                "WordLlama is not available (%s); using the hashing embedder, "
                "which matches words rather than meaning",
                exc,
            )
    return HashingEmbedder(dim=256)


async def choose_embedder(
    kind: str, backend: AsyncBackend, model: str, remembered: str | None = None
) -> tuple[AsyncBackend, str]:
    """``(backend to embed with, its model name)`` for embedder `kind` (see `EMBEDDERS`).

    ``auto`` asks the server once (one probe text) whether `model` embeds, unless
    `remembered` (the name saved with the index) already says which embedder was chosen.
    """
    if kind not in EMBEDDERS:
        raise ValueError(f"embedder must be one of {', '.join(EMBEDDERS)}, got {kind!r}")
    if kind == "backend" or (kind == "auto" and remembered == f"backend:{model}"):
        return backend, model
    if kind == "auto":
        if remembered is None or remembered.startswith("backend:"):
            try:
                await backend.embed(["probe"], model=model)
                return backend, model
            except BackendError as exc:  # e.g. '"smollm2" does not support embeddings'
                logger.info("the server does not embed with %s (%s); embedding locally", model, exc)
        elif remembered.startswith("hashing"):
            kind = "hashing"  # keep the index's embedder: vectors of two never mix
    local = LocalEmbedBackend(_local(kind))
    return local, local.model


def _atomic_json(path: Path, data: Mapping[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class TaskSearch:
    """The task index. ``connect`` (async, lazy) picks the embedder and loads or rebuilds the
    index; `remove` and `save` work without it."""

    def __init__(
        self,
        index_path: Path,
        *,
        embedder: str,
        backend: AsyncBackend,
        model: str,
        cache: EmbeddingCache,
        metrics: MetricsCollector | None = None,
        min_score: float = 0.25,
    ) -> None:
        self.index_path = index_path
        self.meta_path = index_path.with_name(index_path.name + ".json")
        self.kind = embedder
        self.backend = backend
        self.model = model
        self.cache = cache
        self.metrics = metrics
        self.min_score = min_score
        self.embedder_name: str | None = None
        self._batcher: EmbeddingBatcher | None = None
        self._index: VectorIndex | None = None
        self._dirty = False

    def _meta(self) -> dict[str, Any]:
        try:
            data = json.loads(self.meta_path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _load(self, embedder_name: str) -> VectorIndex | None:
        meta = self._meta()
        if meta.get("embedder") != embedder_name or not self.index_path.exists():
            return None
        try:
            return VectorIndex.load(self.index_path)
        except (IndexFileError, OSError, ValueError) as exc:
            logger.warning("rebuilding the search index: %s", exc)
            return None

    async def connect(self, tasks: Callable[[], Sequence[Task]]) -> None:
        """Choose the embedder, load the saved index, and reconcile it with `tasks()`."""
        if self._batcher is not None:
            return
        remembered = self._meta().get("embedder")
        backend, model = await choose_embedder(
            self.kind, self.backend, self.model, remembered if isinstance(remembered, str) else None
        )
        self.embedder_name = f"backend:{model}" if backend is self.backend else model
        # A short wait: a lone `add` should not sit 100 ms for company that never comes,
        # while texts submitted together (a batch) still share one request.
        self._batcher = EmbeddingBatcher(
            backend,
            BatchConfig(max_batch_size=32, max_wait_ms=2),
            cache=self.cache,
            model=model,
            metrics=self.metrics,
        )
        loaded = self._load(self.embedder_name)
        self._index = loaded
        if loaded is None:
            self._dirty = True
        current = {t.id: t for t in tasks()}
        stale = [i for i in (loaded.ids() if loaded else []) if i not in current]
        missing = [t for i, t in current.items() if loaded is None or i not in loaded]
        if stale and self._index is not None:
            self._index.remove(stale)
            self._dirty = True
        if missing:
            await self.index_tasks(missing)

    @property
    def connected(self) -> bool:
        return self._batcher is not None

    async def index_tasks(self, tasks: Sequence[Task]) -> int:
        """Embed and index `tasks` (one batched embedding request for the texts not cached);
        returns how many were indexed (a text with nothing to embed is skipped)."""
        if not tasks:
            return 0
        if self._batcher is None:
            raise RuntimeError("TaskSearch.connect() first")
        vectors = await self._batcher.embed_many([t.search_text() for t in tasks])
        keep = [
            (t.id, v)
            for t, v in zip(tasks, vectors, strict=True)
            if np.isfinite(v).all() and np.any(v)
        ]
        if not keep:
            return 0
        if self._index is None:
            self._index = VectorIndex(int(keep[0][1].shape[0]))
        self._index.add([i for i, _ in keep], np.stack([v for _, v in keep]))
        self._dirty = True
        return len(keep)

    def remove(self, task_ids: Sequence[str]) -> None:
        """Drop tasks from the index (loading the saved one if not connected)."""
        if self._index is None and self._batcher is None:
            meta = self._meta().get("embedder")
            self._index = self._load(meta) if isinstance(meta, str) else None
            if self._index is not None:
                self.embedder_name = meta if isinstance(meta, str) else None
        if self._index is not None and self._index.remove(list(task_ids)):
            self._dirty = True

    async def search(
        self, query: str, k: int = 5, min_score: float | None = None
    ) -> list[SearchHit]:
        """The `k` tasks closest in meaning to `query`, best first, above ``min_score``."""
        if self._batcher is None:
            raise RuntimeError("TaskSearch.connect() first")
        if self._index is None or len(self._index) == 0:
            return []
        vector = await self._batcher.embed(query)
        if not np.any(vector):
            return []
        threshold = self.min_score if min_score is None else min_score
        return self._index.search(vector, k=k, threshold=threshold)

    def save(self) -> None:
        """Write the index and its embedder name, if anything changed."""
        if not self._dirty or self._index is None or self.embedder_name is None:
            return
        self._index.save(self.index_path)
        _atomic_json(
            self.meta_path,
            {"embedder": self.embedder_name, "dim": self._index.dim, "size": len(self._index)},
        )
        self._dirty = False

    async def aclose(self) -> None:
        """Flush the batcher and save the index."""
        if self._batcher is not None:
            await self._batcher.aclose()
        self.save()
