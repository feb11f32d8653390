"""`CachedClient`: a cache in front of any backend, sync or async, with stream replay.

``CachedClient(backend, cache, policy)`` mirrors what it wraps: around a `Backend` its methods
are plain calls; around an `AsyncBackend` the constructor returns an `AsyncCachedClient`, whose
methods are coroutines and which is an async context manager.

- ``generate`` and ``chat`` are cached under a key covering model, prompt or messages, system,
  format or schema, options, tools, images and namespace; concurrent identical misses make
  one backend call (single-flight), across processes too when the store can hold shared
  locks (`RedisStore`, alone or as a tier); a hit is an ``AIResponse`` with
  ``cached=True`` and ``duration_ms=0``. `AsyncCachedClient` awaits a store's coroutine
  methods (``aget``/``aset``) when it has them.
- A completed stream is stored with its chunks and a hit replays them in order; a stream that
  fails, is abandoned or is cancelled is never stored; one cut by the token limit is stored
  only when the policy says so. Streamed and plain calls share entries, and each face gives
  back all the other stored: text, thinking, tool calls, token counts and the reason (a
  plain answer replays as a thinking chunk, a text chunk and a final chunk holding the tool
  calls, counts and reason; a stream's answer joins its text and thinking deltas and
  gathers every chunk's tool calls). A replayed chunk says ``cached=True``.
- Arguments are checked where they are passed: a ``messages`` that is not a list of
  ``{'role': ..., 'content': ...}`` mappings, a ``prompt`` that is not text, a
  ``temperature`` that is not a finite number raise an error naming the method, the
  argument and the fix, before anything is sent or stored. A request no key can hold (text
  with a lone surrogate) goes to the backend without the cache, counted in ``bypasses``.
- The temperature rule is every door's (`llmcache._pipeline.steps`): a call that sends no
  temperature is cached, whatever the server samples at; one above the policy's threshold
  without a seed is not (counted in ``uncacheable`` and logged once per client).
  ``counters()`` counts every call once: hits, misses, coalesced, bypasses, uncacheable.
- ``embed`` goes through an `EmbeddingCache` and sends only the missing texts, once each, in
  one request.

>>> from llmcache import CachedClient, MemoryStore
>>> from llmcache.backends.mock import MockBackend
>>> client = CachedClient(MockBackend(), MemoryStore())
>>> first = client.generate("hello", temperature=0)
>>> again = client.generate("hello", temperature=0)
>>> first.cached, again.cached, again.content == first.content
(False, True, True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, overload

from llmcache._async_cached_client import AsyncCachedClientBase
from llmcache._pipeline.function_key import HasStore
from llmcache._pipeline.semantic import SemanticTier
from llmcache._sync_cached_client import Cache, CachedClientBase
from llmcache.backends.base import AsyncBackend, Backend
from llmcache.policy import CachePolicy

if TYPE_CHECKING:
    from llmcache.embeddings import EmbeddingCache

# HasStore and SemanticTier appear in the clients' signatures: public here, so plugins built
# on CachedClient import them from a public module.
__all__ = ["AsyncCachedClient", "CachedClient", "HasStore", "SemanticTier"]

_C = TypeVar("_C", bound="CachedClient")


# The calls are CachedClientBase's, generated from AsyncCachedClientBase's by
# scripts/unasync.py. __init__ lives there, a class above the one defining __new__, so that
# type checkers take CachedClient(...)'s type from __new__'s overloads (mypy prefers __init__
# when one class defines both).
class CachedClient(CachedClientBase):
    """Caching wrapper of a blocking `Backend` (see the module docstring).

    ``CachedClient(backend, cache=None, policy=None, *, namespace="", embedding_cache=None,
    semantic=None)``; around an `AsyncBackend` it gives an `AsyncCachedClient`.
    """

    @overload
    def __new__(
        cls,
        backend: AsyncBackend,
        cache: Cache = ...,
        policy: CachePolicy | None = ...,
        *,
        namespace: str = ...,
        embedding_cache: EmbeddingCache | None = ...,
        semantic: SemanticTier | None = ...,
    ) -> AsyncCachedClient: ...

    @overload
    def __new__(
        cls: type[_C],
        backend: Backend,
        cache: Cache = ...,
        policy: CachePolicy | None = ...,
        *,
        namespace: str = ...,
        embedding_cache: EmbeddingCache | None = ...,
        semantic: SemanticTier | None = ...,
    ) -> _C: ...

    def __new__(
        cls,
        backend: Backend | AsyncBackend,
        cache: Cache = None,
        policy: CachePolicy | None = None,
        *,
        namespace: str = "",
        embedding_cache: EmbeddingCache | None = None,
        semantic: SemanticTier | None = None,
    ) -> Any:
        # Around an async backend the constructor hands back the async twin.
        if cls is CachedClient and isinstance(backend, AsyncBackend):
            return AsyncCachedClient(
                backend,
                cache,
                policy,
                namespace=namespace,
                embedding_cache=embedding_cache,
                semantic=semantic,
            )
        return super().__new__(cls)


if TYPE_CHECKING:
    # mypy honours an overloaded __new__ only when it returns a subtype of the class
    # (python/mypy#15182), so for the checker alone the async twin derives from
    # CachedClient too: ``CachedClient(AsyncOllamaClient(...))`` is then typed
    # AsyncCachedClient, whose calls (first in its MRO) are the coroutines. At run time it
    # does not: isinstance(AsyncCachedClient(...), CachedClient) is False.
    class _AsyncBase(AsyncCachedClientBase, CachedClient):  # type: ignore[misc]
        pass
else:
    _AsyncBase = AsyncCachedClientBase


class AsyncCachedClient(_AsyncBase):
    """Caching wrapper of an `AsyncBackend`: the coroutine twin of `CachedClient`.

    Its ``generate_stream`` and ``chat_stream`` are plain methods returning an async
    iterator, as `AsyncBackend`'s are, so the arguments are checked (and the call planned)
    where the caller passes them.
    """
