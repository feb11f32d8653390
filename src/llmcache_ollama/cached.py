"""`CachedOllamaClient`: the chapter's cached client, on llmcache's `CachedClient`.

It keeps the chapter's shape — ``CachedOllamaClient(client, cache)`` and
``generate(prompt, *, temperature=0.7, format=None, max_tokens=None, bypass_cache=False)`` —
and mirrors the client it wraps: around an `AsyncOllamaClient` its methods are coroutines and
it is an async context manager; around an `OllamaClient` they are plain calls.

Only requests at or below ``CACHE_TEMPERATURE_THRESHOLD`` (0.3) are cached, as in the chapter;
the default temperature of 0.7 therefore is not, unless the call carries a ``seed``.

>>> from llmcache import ResponseCache
>>> from llmcache_ollama import CachedOllamaClient, OllamaClient
>>> cached = CachedOllamaClient(OllamaClient(model="llama3.2"), ResponseCache())
>>> cached.model
'llama3.2'
>>> cached.close()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, overload

from llmcache import AIResponse, AsyncBackend, AsyncCachedClient, Backend, CachedClient
from llmcache._semantic_glue import SemanticTier
from llmcache.embeddings import EmbeddingCache
from llmcache.policy import CachePolicy

__all__ = ["AsyncCachedOllamaClient", "CachedOllamaClient"]

CACHE_TEMPERATURE_THRESHOLD = 0.3
DEFAULT_TEMPERATURE = 0.7


def _policy(policy: CachePolicy | None) -> CachePolicy:
    return policy or CachePolicy(temperature_threshold=CACHE_TEMPERATURE_THRESHOLD)


class CachedOllamaClient(CachedClient):
    """A response cache in front of an `OllamaClient` (see the module docstring)."""

    CACHE_TEMPERATURE_THRESHOLD = CACHE_TEMPERATURE_THRESHOLD

    @overload
    def __new__(  # type: ignore[misc]
        cls, client: AsyncBackend, cache: Any = ..., policy: CachePolicy | None = ...,
        *, namespace: str = ..., embedding_cache: EmbeddingCache | None = ...,
        semantic: SemanticTier | None = ...,
    ) -> AsyncCachedOllamaClient: ...

    @overload
    def __new__(cls, client: Backend, cache: Any = ..., policy: CachePolicy | None = ...,
                *, namespace: str = ..., embedding_cache: EmbeddingCache | None = ...,
        semantic: SemanticTier | None = ...,
                ) -> CachedOllamaClient: ...

    def __new__(cls, client: Backend | AsyncBackend, cache: Any = None,
                policy: CachePolicy | None = None, *, namespace: str = "",
                embedding_cache: EmbeddingCache | None = None,
                 semantic: SemanticTier | None = None) -> Any:
        if isinstance(client, AsyncBackend):
            return AsyncCachedOllamaClient(client, cache, policy, namespace=namespace,
                                           embedding_cache=embedding_cache, semantic=semantic)
        return object.__new__(cls)

    def __init__(self, client: Backend, cache: Any = None, policy: CachePolicy | None = None,
                 *, namespace: str = "", embedding_cache: EmbeddingCache | None = None,
                 semantic: SemanticTier | None = None) -> None:
        super().__init__(client, cache, _policy(policy), namespace=namespace,
                         embedding_cache=embedding_cache, semantic=semantic)
        self.client = client
        self.cache = cache

    def generate(self, prompt: str, *, temperature: float | None = DEFAULT_TEMPERATURE,
                 format: str | Mapping[str, Any] | None = None, max_tokens: int | None = None,
                 bypass_cache: bool = False, **kwargs: Any) -> AIResponse:
        """Generate, cached when ``temperature <= 0.3`` (or seeded) and not bypassed."""
        return super().generate(prompt, temperature=temperature, format=format,
                                max_tokens=max_tokens, bypass_cache=bypass_cache, **kwargs)

    def chat(self, messages: Sequence[Mapping[str, Any]], *,
             temperature: float | None = DEFAULT_TEMPERATURE, **kwargs: Any) -> AIResponse:
        """Chat, cached under the same rule as `generate`."""
        return super().chat(messages, temperature=temperature, **kwargs)


class AsyncCachedOllamaClient(AsyncCachedClient):
    """The coroutine twin of `CachedOllamaClient`, for an `AsyncOllamaClient`."""

    CACHE_TEMPERATURE_THRESHOLD = CACHE_TEMPERATURE_THRESHOLD

    def __init__(self, client: AsyncBackend, cache: Any = None,
                 policy: CachePolicy | None = None, *, namespace: str = "",
                 embedding_cache: EmbeddingCache | None = None,
                 semantic: SemanticTier | None = None) -> None:
        super().__init__(client, cache, _policy(policy), namespace=namespace,
                         embedding_cache=embedding_cache, semantic=semantic)
        self.client = client
        self.cache = cache

    async def generate(self, prompt: str, *, temperature: float | None = DEFAULT_TEMPERATURE,
                       format: str | Mapping[str, Any] | None = None,
                       max_tokens: int | None = None, bypass_cache: bool = False,
                       **kwargs: Any) -> AIResponse:
        """Generate, cached when ``temperature <= 0.3`` (or seeded) and not bypassed."""
        return await super().generate(prompt, temperature=temperature, format=format,
                                      max_tokens=max_tokens, bypass_cache=bypass_cache,
                                      **kwargs)

    async def chat(self, messages: Sequence[Mapping[str, Any]], *,
                   temperature: float | None = DEFAULT_TEMPERATURE,
                   **kwargs: Any) -> AIResponse:
        """Chat, cached under the same rule as `generate`."""
        return await super().chat(messages, temperature=temperature, **kwargs)
