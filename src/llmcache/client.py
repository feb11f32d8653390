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

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from llmcache._client_core import ClientCore
from llmcache._closing import AsyncClosing, Closing
from llmcache._pipeline import AsyncRunner, Runner
from llmcache._pipeline.function_key import HasStore
from llmcache._pipeline.semantic import SemanticTier
from llmcache.backends.base import AIResponse, AsyncBackend, Backend, EmbedResponse, StreamChunk
from llmcache.policy import CachePolicy
from llmcache.stores.base import Store

if TYPE_CHECKING:
    from llmcache.embeddings import EmbeddingCache

# HasStore and SemanticTier appear in the clients' signatures: public here, so plugins built
# on CachedClient import them from a public module.
__all__ = ["AsyncCachedClient", "CachedClient", "HasStore", "SemanticTier"]

Message = Mapping[str, Any]
Cache = Store | HasStore | None
_C = TypeVar("_C", bound="CachedClient")


class _SyncCore(ClientCore[Backend]):
    # __init__ lives here, a class above the one defining __new__, so that type checkers
    # take CachedClient(...)'s type from __new__'s overloads (mypy prefers __init__ when one
    # class defines both).
    def __init__(
        self,
        backend: Backend,
        cache: Cache = None,
        policy: CachePolicy | None = None,
        *,
        namespace: str = "",
        embedding_cache: EmbeddingCache | None = None,
        semantic: SemanticTier | None = None,
    ) -> None:
        if not isinstance(backend, Backend):
            raise TypeError(f"backend: expected an llmcache Backend, got {type(backend).__name__}")
        super().__init__(
            backend,
            cache,
            policy,
            namespace=namespace,
            embedding_cache=embedding_cache,
            semantic=semantic,
            runner=Runner,
        )


class CachedClient(_SyncCore, Closing):
    """Caching wrapper of a blocking `Backend` (see the module docstring).

    ``CachedClient(backend, cache=None, policy=None, *, namespace="", embedding_cache=None,
    semantic=None)``; around an `AsyncBackend` it gives an `AsyncCachedClient`.
    """

    _runner: Runner[AIResponse]

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

    def generate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        system: str | None = None,
        format: str | Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        images: Sequence[str | bytes] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        bypass_cache: bool = False,
        **extra: Any,
    ) -> AIResponse:
        """Complete `prompt`, from the cache when the same request was answered before."""
        plan, kwargs = self.prepare_generate(
            prompt,
            model,
            system,
            format,
            options,
            images,
            temperature,
            max_tokens,
            extra,
            bypass_cache,
        )
        return self._runner.call(plan, self.backend.generate, (prompt,), kwargs)

    def chat(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        format: str | Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        bypass_cache: bool = False,
        **extra: Any,
    ) -> AIResponse:
        """Answer the next turn of `messages`, from the cache when possible."""
        plan, kwargs = self.prepare_chat(
            messages, model, tools, format, options, temperature, max_tokens, extra, bypass_cache
        )
        return self._runner.call(plan, self.backend.chat, (messages,), kwargs)

    def generate_stream(
        self,
        prompt: str,
        *,
        model: str | None = None,
        system: str | None = None,
        format: str | Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        images: Sequence[str | bytes] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        bypass_cache: bool = False,
        **extra: Any,
    ) -> Iterator[StreamChunk]:
        """Stream a completion; a hit replays the stored chunks in order, marked cached."""
        plan, kwargs = self.prepare_generate(
            prompt,
            model,
            system,
            format,
            options,
            images,
            temperature,
            max_tokens,
            extra,
            bypass_cache,
            "generate_stream",
        )
        return self._runner.stream(plan, self.backend.generate_stream, (prompt,), kwargs)

    def chat_stream(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        format: str | Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        bypass_cache: bool = False,
        **extra: Any,
    ) -> Iterator[StreamChunk]:
        """Stream the next turn of `messages`; a hit replays the stored chunks in order."""
        plan, kwargs = self.prepare_chat(
            messages,
            model,
            tools,
            format,
            options,
            temperature,
            max_tokens,
            extra,
            bypass_cache,
            "chat_stream",
        )
        return self._runner.stream(plan, self.backend.chat_stream, (messages,), kwargs)

    def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        """Vectors for `texts`; only texts missing from the embedding cache are sent."""
        plan = self.plan_embed(texts, model)
        fetched = self.backend.embed(plan.missing, model=plan.model) if plan.missing else None
        return self.finish_embed(plan, fetched)

    def close(self) -> None:
        """Close the backend (the cache stays open; close it yourself if you own it)."""
        self.backend.close()


if TYPE_CHECKING:
    # mypy honours an overloaded __new__ only when it returns a subtype of the class
    # (python/mypy#15182), so for the checker alone the async twin derives from
    # CachedClient: ``CachedClient(AsyncOllamaClient(...))`` is then typed AsyncCachedClient.
    # At run time it does not: isinstance(AsyncCachedClient(...), CachedClient) is False.
    _AsyncBase = CachedClient
else:
    _AsyncBase = ClientCore


class AsyncCachedClient(_AsyncBase, AsyncClosing):
    """Caching wrapper of an `AsyncBackend`: the coroutine twin of `CachedClient`."""

    backend: AsyncBackend  # type: ignore[assignment]
    _runner: AsyncRunner[AIResponse]  # type: ignore[assignment]

    def __init__(
        self,
        backend: AsyncBackend,
        cache: Cache = None,
        policy: CachePolicy | None = None,
        *,
        namespace: str = "",
        embedding_cache: EmbeddingCache | None = None,
        semantic: SemanticTier | None = None,
    ) -> None:
        if not isinstance(backend, AsyncBackend):
            raise TypeError(
                f"backend: expected an llmcache AsyncBackend, got {type(backend).__name__}"
            )
        core: Any = ClientCore  # the real base (see _AsyncBase above)
        core.__init__(
            self,
            backend,
            cache,
            policy,
            namespace=namespace,
            embedding_cache=embedding_cache,
            semantic=semantic,
            runner=AsyncRunner,
        )

    async def generate(  # type: ignore[override]
        self,
        prompt: str,
        *,
        model: str | None = None,
        system: str | None = None,
        format: str | Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        images: Sequence[str | bytes] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        bypass_cache: bool = False,
        **extra: Any,
    ) -> AIResponse:
        """Complete `prompt`, from the cache when the same request was answered before."""
        plan, kwargs = self.prepare_generate(
            prompt,
            model,
            system,
            format,
            options,
            images,
            temperature,
            max_tokens,
            extra,
            bypass_cache,
        )
        return await self._runner.call(plan, self.backend.generate, (prompt,), kwargs)

    async def chat(  # type: ignore[override]
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        format: str | Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        bypass_cache: bool = False,
        **extra: Any,
    ) -> AIResponse:
        """Answer the next turn of `messages`, from the cache when possible."""
        plan, kwargs = self.prepare_chat(
            messages, model, tools, format, options, temperature, max_tokens, extra, bypass_cache
        )
        return await self._runner.call(plan, self.backend.chat, (messages,), kwargs)

    # Plain methods returning the async generator, as `AsyncBackend`'s are: the arguments
    # are checked (and the call planned) where the caller passes them, as in `CachedClient`.
    def generate_stream(  # type: ignore[override]
        self,
        prompt: str,
        *,
        model: str | None = None,
        system: str | None = None,
        format: str | Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        images: Sequence[str | bytes] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        bypass_cache: bool = False,
        **extra: Any,
    ) -> AsyncIterator[StreamChunk]:
        """Stream a completion (an async iterator); a hit replays the stored chunks in
        order, marked cached."""
        plan, kwargs = self.prepare_generate(
            prompt,
            model,
            system,
            format,
            options,
            images,
            temperature,
            max_tokens,
            extra,
            bypass_cache,
            "generate_stream",
        )
        return self._runner.stream(plan, self.backend.generate_stream, (prompt,), kwargs)

    def chat_stream(  # type: ignore[override]
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        format: str | Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        bypass_cache: bool = False,
        **extra: Any,
    ) -> AsyncIterator[StreamChunk]:
        """Stream the next turn of `messages` (an async iterator); a hit replays the stored
        chunks in order."""
        plan, kwargs = self.prepare_chat(
            messages,
            model,
            tools,
            format,
            options,
            temperature,
            max_tokens,
            extra,
            bypass_cache,
            "chat_stream",
        )
        return self._runner.stream(plan, self.backend.chat_stream, (messages,), kwargs)

    async def embed(  # type: ignore[override]
        self, texts: Sequence[str], *, model: str | None = None
    ) -> EmbedResponse:
        """Vectors for `texts`; only texts missing from the embedding cache are sent."""
        plan = self.plan_embed(texts, model)
        fetched = await self.backend.embed(plan.missing, model=plan.model) if plan.missing else None
        return self.finish_embed(plan, fetched)

    async def aclose(self) -> None:
        """Close the backend (the cache stays open; close it yourself if you own it)."""
        await self.backend.aclose()
