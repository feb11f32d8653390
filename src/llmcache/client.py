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
  gathers every chunk's tool calls).
- Arguments are checked where they are passed: a ``messages`` that is not a list of
  ``{'role': ..., 'content': ...}`` mappings, a ``prompt`` that is not text, a
  ``temperature`` that is not a finite number raise an error naming the method, the
  argument and the fix, before anything is sent or stored. A request no key can hold (text
  with a lone surrogate) goes to the backend without the cache, counted in ``bypasses``.
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
from types import TracebackType
from typing import Any, overload

from llmcache._client_core import ClientCore, Prepared
from llmcache._semantic_glue import SemanticTier
from llmcache.backends.base import AIResponse, AsyncBackend, Backend, EmbedResponse, StreamChunk
from llmcache.embeddings import EmbeddingCache
from llmcache.policy import CachePolicy
from llmcache.singleflight import AsyncSingleFlight, SingleFlight

__all__ = ["AsyncCachedClient", "CachedClient"]

Message = Mapping[str, Any]


class CachedClient(ClientCore):
    """Caching wrapper of a blocking `Backend` (see the module docstring)."""

    backend: Backend

    # Around an async backend the constructor hands back the async twin; mypy wants __new__
    # to return a subtype, but the twin's methods are coroutines, so it cannot be one.
    @overload
    def __new__(  # type: ignore[misc]
        cls, backend: AsyncBackend, cache: Any = ..., policy: CachePolicy | None = ...,
        *, namespace: str = ..., embedding_cache: EmbeddingCache | None = ...,
        semantic: SemanticTier | None = ...,
    ) -> AsyncCachedClient: ...

    @overload
    def __new__(cls, backend: Backend, cache: Any = ..., policy: CachePolicy | None = ...,
                *, namespace: str = ..., embedding_cache: EmbeddingCache | None = ...,
        semantic: SemanticTier | None = ...,
                ) -> CachedClient: ...

    def __new__(cls, backend: Backend | AsyncBackend, cache: Any = None,
                policy: CachePolicy | None = None, *, namespace: str = "",
                embedding_cache: EmbeddingCache | None = None,
                 semantic: SemanticTier | None = None) -> Any:
        if cls is CachedClient and isinstance(backend, AsyncBackend):
            return AsyncCachedClient(backend, cache, policy, namespace=namespace,
                                     embedding_cache=embedding_cache, semantic=semantic)
        return super().__new__(cls)

    def __init__(self, backend: Backend, cache: Any = None, policy: CachePolicy | None = None,
                 *, namespace: str = "", embedding_cache: EmbeddingCache | None = None,
                 semantic: SemanticTier | None = None) -> None:
        if not isinstance(backend, Backend):
            raise TypeError(f"backend: expected an llmcache Backend, got "
                            f"{type(backend).__name__}")
        super().__init__(backend, cache, policy, namespace=namespace,
                         embedding_cache=embedding_cache, semantic=semantic)
        self._flight: SingleFlight[AIResponse] = SingleFlight()

    def generate(self, prompt: str, *, model: str | None = None, system: str | None = None,
                 format: str | Mapping[str, Any] | None = None,
                 options: Mapping[str, Any] | None = None,
                 images: Sequence[str | bytes] | None = None, temperature: float | None = None,
                 max_tokens: int | None = None, bypass_cache: bool = False,
                 **extra: Any) -> AIResponse:
        """Complete `prompt`, from the cache when the same request was answered before."""
        prep = self.prepare_generate(prompt, model, system, format, options, images,
                                     temperature, max_tokens, extra, bypass_cache)
        return self._call(prep, lambda: self.backend.generate(prompt, **prep.call_kwargs))

    def chat(self, messages: Sequence[Message], *, model: str | None = None,
             tools: Sequence[Mapping[str, Any]] | None = None,
             format: str | Mapping[str, Any] | None = None,
             options: Mapping[str, Any] | None = None, temperature: float | None = None,
             max_tokens: int | None = None, bypass_cache: bool = False,
             **extra: Any) -> AIResponse:
        """Answer the next turn of `messages`, from the cache when possible."""
        prep = self.prepare_chat(messages, model, tools, format, options, temperature,
                                 max_tokens, extra, bypass_cache)
        return self._call(prep, lambda: self.backend.chat(messages, **prep.call_kwargs))

    def _call(self, prep: Prepared, upstream: Any) -> AIResponse:
        if not prep.read and not prep.write:
            return self.count_miss(upstream())
        if prep.read:
            hit = self.lookup(prep)
            if hit is not None:
                return hit

        def compute() -> AIResponse:
            similar = self.semantic_lookup(prep)
            if similar is not None:
                return similar
            # The only place the backend is called on this path, so the only miss to count
            # (a hit found by `lead`'s second lookup was counted as a hit).
            response: AIResponse = self.count_miss(upstream())
            self.store_response(prep, response)
            self.semantic_store(prep, response)
            return response

        def lead() -> AIResponse:
            if prep.read:
                again = self.lookup(prep)
                if again is not None:
                    return again
                if self.flight is not None and prep.write:
                    # Other processes may miss this key too: one call among all of them.
                    return self.flight.do(prep.key, lambda: self.lookup(prep), compute)
            return compute()

        response, shared = self._flight.do_ex(prep.key, lead)
        return self.copy_shared(response) if shared else response

    def generate_stream(self, prompt: str, *, model: str | None = None,
                        system: str | None = None,
                        format: str | Mapping[str, Any] | None = None,
                        options: Mapping[str, Any] | None = None,
                        images: Sequence[str | bytes] | None = None,
                        temperature: float | None = None, max_tokens: int | None = None,
                        bypass_cache: bool = False, **extra: Any) -> Iterator[StreamChunk]:
        """Stream a completion; a hit replays the stored chunks in order."""
        prep = self.prepare_generate(prompt, model, system, format, options, images,
                                     temperature, max_tokens, extra, bypass_cache,
                                     "generate_stream")
        return self._stream(prep, lambda: self.backend.generate_stream(prompt,
                                                                       **prep.call_kwargs))

    def chat_stream(self, messages: Sequence[Message], *, model: str | None = None,
                    tools: Sequence[Mapping[str, Any]] | None = None,
                    format: str | Mapping[str, Any] | None = None,
                    options: Mapping[str, Any] | None = None, temperature: float | None = None,
                    max_tokens: int | None = None, bypass_cache: bool = False,
                    **extra: Any) -> Iterator[StreamChunk]:
        """Stream the next turn of `messages`; a hit replays the stored chunks in order."""
        prep = self.prepare_chat(messages, model, tools, format, options, temperature,
                                 max_tokens, extra, bypass_cache, "chat_stream")
        return self._stream(prep, lambda: self.backend.chat_stream(messages,
                                                                   **prep.call_kwargs))

    def _stream(self, prep: Prepared, upstream: Any) -> Iterator[StreamChunk]:
        if prep.read:
            replay = self.lookup_stream(prep)
            if replay is not None:
                yield from replay
                return
        recorder = self.recorder(prep)
        for chunk in upstream():
            recorder.add(chunk)
            yield chunk
        # Reached only when the stream ran to its end: an exception, or a consumer that
        # stopped early (GeneratorExit), leaves before this line and nothing is stored.
        recorder.finish()

    def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        """Vectors for `texts`; only texts missing from the embedding cache are sent."""
        plan = self.plan_embed(texts, model)
        fetched = self.backend.embed(plan.missing, model=plan.model) if plan.missing else None
        return self.finish_embed(plan, fetched)

    def close(self) -> None:
        """Close the backend (the cache stays open; close it yourself if you own it)."""
        self.backend.close()

    def __enter__(self) -> CachedClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsyncCachedClient(ClientCore):
    """Caching wrapper of an `AsyncBackend`: the coroutine twin of `CachedClient`."""

    backend: AsyncBackend

    def __init__(self, backend: AsyncBackend, cache: Any = None,
                 policy: CachePolicy | None = None, *, namespace: str = "",
                 embedding_cache: EmbeddingCache | None = None,
                 semantic: SemanticTier | None = None) -> None:
        if not isinstance(backend, AsyncBackend):
            raise TypeError(f"backend: expected an llmcache AsyncBackend, got "
                            f"{type(backend).__name__}")
        super().__init__(backend, cache, policy, namespace=namespace,
                         embedding_cache=embedding_cache, semantic=semantic)
        self._flight: AsyncSingleFlight[AIResponse] = AsyncSingleFlight()
        if self.aget is not None:
            # Chosen here so the hit path of a sync store stays exactly as it is.
            self._call = self._call_async_store  # type: ignore[method-assign]

    async def generate(self, prompt: str, *, model: str | None = None,
                       system: str | None = None,
                       format: str | Mapping[str, Any] | None = None,
                       options: Mapping[str, Any] | None = None,
                       images: Sequence[str | bytes] | None = None,
                       temperature: float | None = None, max_tokens: int | None = None,
                       bypass_cache: bool = False, **extra: Any) -> AIResponse:
        """Complete `prompt`, from the cache when the same request was answered before."""
        prep = self.prepare_generate(prompt, model, system, format, options, images,
                                     temperature, max_tokens, extra, bypass_cache)
        return await self._call(prep, lambda: self.backend.generate(prompt,
                                                                    **prep.call_kwargs))

    async def chat(self, messages: Sequence[Message], *, model: str | None = None,
                   tools: Sequence[Mapping[str, Any]] | None = None,
                   format: str | Mapping[str, Any] | None = None,
                   options: Mapping[str, Any] | None = None, temperature: float | None = None,
                   max_tokens: int | None = None, bypass_cache: bool = False,
                   **extra: Any) -> AIResponse:
        """Answer the next turn of `messages`, from the cache when possible."""
        prep = self.prepare_chat(messages, model, tools, format, options, temperature,
                                 max_tokens, extra, bypass_cache)
        return await self._call(prep, lambda: self.backend.chat(messages, **prep.call_kwargs))

    async def _call(self, prep: Prepared, upstream: Any) -> AIResponse:
        if not prep.read and not prep.write:
            return self.count_miss(await upstream())
        if prep.read:
            hit = self.lookup(prep)
            if hit is not None:
                return hit

        return await self._missed(prep, upstream)

    async def _call_async_store(self, prep: Prepared, upstream: Any) -> AIResponse:
        if not prep.read and not prep.write:
            return self.count_miss(await upstream())
        if prep.read:
            hit = await self.alookup(prep)
            if hit is not None:
                return hit
        return await self._missed(prep, upstream)

    async def _lookup(self, prep: Prepared) -> AIResponse | None:
        return await self.alookup(prep) if self.aget is not None else self.lookup(prep)

    async def _missed(self, prep: Prepared, upstream: Any) -> AIResponse:
        async def compute() -> AIResponse:
            similar = await self.asemantic_lookup(prep)
            if similar is not None:
                return similar
            response: AIResponse = self.count_miss(await upstream())
            await self.astore_response(prep, response)
            await self.asemantic_store(prep, response)
            return response

        async def lead() -> AIResponse:
            if prep.read:
                again = await self._lookup(prep)
                if again is not None:
                    return again
                if self.flight is not None and prep.write:
                    return await self.flight.ado(prep.key, lambda: self._lookup(prep), compute)
            return await compute()

        response, shared = await self._flight.do_ex(prep.key, lead)
        return self.copy_shared(response) if shared else response

    # Plain methods returning the async generator, as `AsyncBackend`'s are: the arguments
    # are checked (and the key planned) where the caller passes them, as in `CachedClient`.
    def generate_stream(self, prompt: str, *, model: str | None = None,
                        system: str | None = None,
                        format: str | Mapping[str, Any] | None = None,
                        options: Mapping[str, Any] | None = None,
                        images: Sequence[str | bytes] | None = None,
                        temperature: float | None = None, max_tokens: int | None = None,
                        bypass_cache: bool = False,
                        **extra: Any) -> AsyncIterator[StreamChunk]:
        """Stream a completion (an async iterator); a hit replays the stored chunks in
        order."""
        prep = self.prepare_generate(prompt, model, system, format, options, images,
                                     temperature, max_tokens, extra, bypass_cache,
                                     "generate_stream")
        return self._stream(prep, lambda: self.backend.generate_stream(prompt,
                                                                       **prep.call_kwargs))

    def chat_stream(self, messages: Sequence[Message], *, model: str | None = None,
                    tools: Sequence[Mapping[str, Any]] | None = None,
                    format: str | Mapping[str, Any] | None = None,
                    options: Mapping[str, Any] | None = None,
                    temperature: float | None = None, max_tokens: int | None = None,
                    bypass_cache: bool = False,
                    **extra: Any) -> AsyncIterator[StreamChunk]:
        """Stream the next turn of `messages` (an async iterator); a hit replays the stored
        chunks in order."""
        prep = self.prepare_chat(messages, model, tools, format, options, temperature,
                                 max_tokens, extra, bypass_cache, "chat_stream")
        return self._stream(prep, lambda: self.backend.chat_stream(messages,
                                                                   **prep.call_kwargs))

    async def _stream(self, prep: Prepared, upstream: Any) -> AsyncIterator[StreamChunk]:
        if prep.read:
            # A store with coroutine methods (Redis, a tiered store) is awaited: a sync
            # read there would block the event loop for a network round trip.
            replay = (await self.alookup_stream(prep) if self.aget is not None
                      else self.lookup_stream(prep))
            if replay is not None:
                for chunk in replay:
                    yield chunk
                return
        recorder = self.recorder(prep)
        async for chunk in upstream():
            recorder.add(chunk)
            yield chunk
        # Only after a complete stream (see CachedClient._stream); awaits the store's
        # ``aset`` when it has one.
        await recorder.afinish()

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        """Vectors for `texts`; only texts missing from the embedding cache are sent."""
        plan = self.plan_embed(texts, model)
        fetched = (await self.backend.embed(plan.missing, model=plan.model)
                   if plan.missing else None)
        return self.finish_embed(plan, fetched)

    async def aclose(self) -> None:
        """Close the backend (the cache stays open; close it yourself if you own it)."""
        await self.backend.aclose()

    async def __aenter__(self) -> AsyncCachedClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
