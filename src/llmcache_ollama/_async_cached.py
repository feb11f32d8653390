"""The constructor and the calls of `AsyncCachedOllamaClient`, on llmcache's `AsyncCachedClient`.

Of this pair of modules the async one is written by hand and its sync twin generated from it
by scripts/unasync.py; `llmcache_ollama.cached` builds the public classes on the two (the
constructor's overloads and the typing arrangement live there) and its docstring tells what
the client does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from llmcache import AIResponse, AsyncBackend, AsyncCachedClient, StreamChunk
from llmcache.client import HasStore, SemanticTier
from llmcache.embeddings import EmbeddingCache
from llmcache.policy import CachePolicy
from llmcache.stores.base import Store

__all__ = [
    "CACHE_TEMPERATURE_THRESHOLD",
    "DEFAULT_TEMPERATURE",
    "AsyncCachedOllamaBase",
    "Cache",
]

CACHE_TEMPERATURE_THRESHOLD = 0.3
DEFAULT_TEMPERATURE = 0.7

Cache = Store | HasStore | None


class AsyncCachedOllamaBase(AsyncCachedClient):
    """The constructor and the calls of `AsyncCachedOllamaClient` (see
    `llmcache_ollama.cached`)."""

    CACHE_TEMPERATURE_THRESHOLD = CACHE_TEMPERATURE_THRESHOLD

    def __init__(
        self,
        client: AsyncBackend,
        cache: Cache = None,
        policy: CachePolicy | None = None,
        *,
        namespace: str = "",
        embedding_cache: EmbeddingCache | None = None,
        semantic: SemanticTier | None = None,
    ) -> None:
        super().__init__(
            client,
            cache,
            policy or CachePolicy(temperature_threshold=CACHE_TEMPERATURE_THRESHOLD),
            namespace=namespace,
            embedding_cache=embedding_cache,
            semantic=semantic,
        )
        self.client = client
        self.cache = cache

    # unasync: begin async-only
    # The ignores: for mypy alone AsyncCachedClient derives from CachedClient (see
    # llmcache.client), whose methods are plain calls.
    # unasync: end
    # unasync: sync def generate(
    async def generate(  # type: ignore[override]  # unasync: async-only
        self,
        prompt: str,
        *,
        temperature: float | None = DEFAULT_TEMPERATURE,
        format: str | Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        bypass_cache: bool = False,
        **kwargs: Any,
    ) -> AIResponse:
        """Generate, cached when ``temperature <= 0.3`` (or seeded) and not bypassed."""
        return await super().generate(
            prompt,
            temperature=temperature,
            format=format,
            max_tokens=max_tokens,
            bypass_cache=bypass_cache,
            **kwargs,
        )

    # unasync: sync def chat(
    async def chat(  # type: ignore[override]  # unasync: async-only
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float | None = DEFAULT_TEMPERATURE,
        **kwargs: Any,
    ) -> AIResponse:
        """Chat, cached under the same rule as `generate`."""
        return await super().chat(messages, temperature=temperature, **kwargs)

    # unasync: sync def generate_stream(
    def generate_stream(  # type: ignore[override]  # unasync: async-only
        self, prompt: str, *, temperature: float | None = DEFAULT_TEMPERATURE, **kwargs: Any
    ) -> AsyncIterator[StreamChunk]:
        """Stream, cached under the same rule as `generate` (a hit replays the chunks)."""
        return super().generate_stream(prompt, temperature=temperature, **kwargs)

    # unasync: sync def chat_stream(
    def chat_stream(  # type: ignore[override]  # unasync: async-only
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float | None = DEFAULT_TEMPERATURE,
        **kwargs: Any,
    ) -> AsyncIterator[StreamChunk]:
        """Stream a chat turn, cached under the same rule as `generate`."""
        return super().chat_stream(messages, temperature=temperature, **kwargs)
