"""`CachedOllamaClient`: an Ollama client with a response cache, on llmcache's `CachedClient`.

Its shape is ``CachedOllamaClient(client, cache)`` and
``generate(prompt, *, temperature=0.7, format=None, max_tokens=None, bypass_cache=False)``;
it mirrors the client it wraps: around an `AsyncOllamaClient` its methods are coroutines and
it is an async context manager; around an `OllamaClient` they are plain calls.

Only requests at or below ``CACHE_TEMPERATURE_THRESHOLD`` (0.3) are cached;
the default temperature of 0.7 therefore is not, unless the call carries a ``seed``. Every
method has that default (``generate``, ``chat`` and their streams), so a call gets one
decision whichever method makes it; a call that is not cached is counted in
``counters()["uncacheable"]`` and logged once per client.

>>> from llmcache import ResponseCache
>>> from llmcache_ollama import CachedOllamaClient, OllamaClient
>>> cached = CachedOllamaClient(OllamaClient(model="llama3.2"), ResponseCache())
>>> cached.model
'llama3.2'
>>> cached.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, overload

from llmcache import AsyncBackend, Backend
from llmcache.client import SemanticTier
from llmcache.embeddings import EmbeddingCache
from llmcache.policy import CachePolicy
from llmcache_ollama._async_cached import (
    CACHE_TEMPERATURE_THRESHOLD as CACHE_TEMPERATURE_THRESHOLD,
)
from llmcache_ollama._async_cached import (
    DEFAULT_TEMPERATURE as DEFAULT_TEMPERATURE,
)
from llmcache_ollama._async_cached import AsyncCachedOllamaBase
from llmcache_ollama._sync_cached import Cache, CachedOllamaBase

__all__ = ["AsyncCachedOllamaClient", "CachedOllamaClient"]

_C = TypeVar("_C", bound="CachedOllamaClient")


# The calls are CachedOllamaBase's, generated from AsyncCachedOllamaBase's by
# scripts/unasync.py. __init__ lives there, a class above __new__'s, so type checkers read
# CachedOllamaClient(...)'s type from __new__'s overloads (see llmcache.client).
class CachedOllamaClient(CachedOllamaBase):
    """A response cache in front of an `OllamaClient` (see the module docstring); around an
    `AsyncOllamaClient` it gives an `AsyncCachedOllamaClient`."""

    @overload
    def __new__(
        cls,
        client: AsyncBackend,
        cache: Cache = ...,
        policy: CachePolicy | None = ...,
        *,
        namespace: str = ...,
        embedding_cache: EmbeddingCache | None = ...,
        semantic: SemanticTier | None = ...,
    ) -> AsyncCachedOllamaClient: ...

    @overload
    def __new__(
        cls: type[_C],
        client: Backend,
        cache: Cache = ...,
        policy: CachePolicy | None = ...,
        *,
        namespace: str = ...,
        embedding_cache: EmbeddingCache | None = ...,
        semantic: SemanticTier | None = ...,
    ) -> _C: ...

    def __new__(
        cls,
        client: Backend | AsyncBackend,
        cache: Cache = None,
        policy: CachePolicy | None = None,
        *,
        namespace: str = "",
        embedding_cache: EmbeddingCache | None = None,
        semantic: SemanticTier | None = None,
    ) -> Any:
        if isinstance(client, AsyncBackend):
            return AsyncCachedOllamaClient(
                client,
                cache,
                policy,
                namespace=namespace,
                embedding_cache=embedding_cache,
                semantic=semantic,
            )
        return object.__new__(cls)


if TYPE_CHECKING:
    # For mypy alone the async twin derives from CachedOllamaClient too, so that
    # CachedOllamaClient(AsyncOllamaClient(...)) is typed AsyncCachedOllamaClient (mypy
    # honours __new__ only when it returns a subtype; see llmcache.client).
    class _AsyncBase(AsyncCachedOllamaBase, CachedOllamaClient):  # type: ignore[misc]
        pass
else:
    _AsyncBase = AsyncCachedOllamaBase


class AsyncCachedOllamaClient(_AsyncBase):
    """The coroutine twin of `CachedOllamaClient`, for an `AsyncOllamaClient`."""
