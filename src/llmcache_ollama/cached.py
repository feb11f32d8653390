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

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from llmcache import (
    AIResponse,
    AsyncBackend,
    AsyncCachedClient,
    Backend,
    CachedClient,
    StreamChunk,
)
from llmcache.client import HasStore, SemanticTier
from llmcache.embeddings import EmbeddingCache
from llmcache.policy import CachePolicy
from llmcache.stores.base import Store

__all__ = ["AsyncCachedOllamaClient", "CachedOllamaClient"]

CACHE_TEMPERATURE_THRESHOLD = 0.3
DEFAULT_TEMPERATURE = 0.7


Cache = Store | HasStore | None
_C = TypeVar("_C", bound="CachedOllamaClient")


def _policy(policy: CachePolicy | None) -> CachePolicy:
    return policy or CachePolicy(temperature_threshold=CACHE_TEMPERATURE_THRESHOLD)


class _OllamaCore(CachedClient):
    # __init__ lives a class above __new__'s, so type checkers read CachedOllamaClient(...)'s
    # type from __new__'s overloads (see llmcache.client).
    def __init__(
        self,
        client: Backend,
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
            _policy(policy),
            namespace=namespace,
            embedding_cache=embedding_cache,
            semantic=semantic,
        )
        self.client = client
        self.cache = cache


class CachedOllamaClient(_OllamaCore):
    """A response cache in front of an `OllamaClient` (see the module docstring); around an
    `AsyncOllamaClient` it gives an `AsyncCachedOllamaClient`."""

    CACHE_TEMPERATURE_THRESHOLD = CACHE_TEMPERATURE_THRESHOLD

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

    def generate(
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
        return super().generate(
            prompt,
            temperature=temperature,
            format=format,
            max_tokens=max_tokens,
            bypass_cache=bypass_cache,
            **kwargs,
        )

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float | None = DEFAULT_TEMPERATURE,
        **kwargs: Any,
    ) -> AIResponse:
        """Chat, cached under the same rule as `generate`."""
        return super().chat(messages, temperature=temperature, **kwargs)

    def generate_stream(
        self, prompt: str, *, temperature: float | None = DEFAULT_TEMPERATURE, **kwargs: Any
    ) -> Iterator[StreamChunk]:
        """Stream, cached under the same rule as `generate` (a hit replays the chunks)."""
        return super().generate_stream(prompt, temperature=temperature, **kwargs)

    def chat_stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float | None = DEFAULT_TEMPERATURE,
        **kwargs: Any,
    ) -> Iterator[StreamChunk]:
        """Stream a chat turn, cached under the same rule as `generate`."""
        return super().chat_stream(messages, temperature=temperature, **kwargs)


if TYPE_CHECKING:
    # For mypy alone the async twin derives from CachedOllamaClient too, so that
    # CachedOllamaClient(AsyncOllamaClient(...)) is typed AsyncCachedOllamaClient (mypy
    # honours __new__ only when it returns a subtype; see llmcache.client).
    class _AsyncBase(AsyncCachedClient, CachedOllamaClient):  # type: ignore[misc]
        pass
else:
    _AsyncBase = AsyncCachedClient


class AsyncCachedOllamaClient(_AsyncBase):
    """The coroutine twin of `CachedOllamaClient`, for an `AsyncOllamaClient`."""

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
            _policy(policy),
            namespace=namespace,
            embedding_cache=embedding_cache,
            semantic=semantic,
        )
        self.client = client  # type: ignore[assignment]
        self.cache = cache

    # The ignores: for mypy alone AsyncCachedClient derives from CachedClient (see
    # llmcache.client), whose methods are plain calls.
    async def generate(  # type: ignore[override]
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

    async def chat(  # type: ignore[override]
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float | None = DEFAULT_TEMPERATURE,
        **kwargs: Any,
    ) -> AIResponse:
        """Chat, cached under the same rule as `generate`."""
        return await super().chat(messages, temperature=temperature, **kwargs)

    def generate_stream(  # type: ignore[override]
        self, prompt: str, *, temperature: float | None = DEFAULT_TEMPERATURE, **kwargs: Any
    ) -> AsyncIterator[StreamChunk]:
        """Stream, cached under the same rule as `generate` (a hit replays the chunks)."""
        return super().generate_stream(prompt, temperature=temperature, **kwargs)

    def chat_stream(  # type: ignore[override]
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float | None = DEFAULT_TEMPERATURE,
        **kwargs: Any,
    ) -> AsyncIterator[StreamChunk]:
        """Stream a chat turn, cached under the same rule as `generate`."""
        return super().chat_stream(messages, temperature=temperature, **kwargs)
