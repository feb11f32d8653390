"""The constructor and the calls of `AsyncCachedClient`, over the pipeline's `AsyncRunner`.

Of this pair of modules the async one is written by hand and its sync twin generated from it
by scripts/unasync.py; `llmcache.client` builds the public classes on the two (the
constructor's overloads and the typing arrangement live there) and its docstring tells what
the client does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmcache._client_core import ClientCore
from llmcache._closing import AsyncClosing
from llmcache._pipeline import AsyncRunner
from llmcache._pipeline.function_key import HasStore
from llmcache._pipeline.semantic import SemanticTier
from llmcache.backends.base import AIResponse, AsyncBackend, EmbedResponse, StreamChunk
from llmcache.policy import CachePolicy
from llmcache.stores.base import Store

if TYPE_CHECKING:
    from llmcache.embeddings import EmbeddingCache

Message = Mapping[str, Any]
Cache = Store | HasStore | None


class AsyncCachedClientBase(ClientCore[AsyncBackend], AsyncClosing):
    """The constructor and the calls of `AsyncCachedClient` (see `llmcache.client`)."""

    _runner: AsyncRunner[AIResponse]

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
        super().__init__(
            backend,
            cache,
            policy,
            namespace=namespace,
            embedding_cache=embedding_cache,
            semantic=semantic,
            runner=AsyncRunner,
        )

    async def generate(
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

    async def chat(
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

    # unasync: begin async-only
    # Plain methods returning the async generator, as `AsyncBackend`'s are: the arguments
    # are checked (and the call planned) where the caller passes them, as in `CachedClient`.
    # unasync: end
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
    ) -> AsyncIterator[StreamChunk]:
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
    ) -> AsyncIterator[StreamChunk]:
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

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        """Vectors for `texts`; only texts missing from the embedding cache are sent."""
        plan = self.plan_embed(texts, model)
        fetched = await self.backend.embed(plan.missing, model=plan.model) if plan.missing else None
        return self.finish_embed(plan, fetched)

    async def aclose(self) -> None:
        """Close the backend (the cache stays open; close it yourself if you own it)."""
        await self.backend.aclose()
