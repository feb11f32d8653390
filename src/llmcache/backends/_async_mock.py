"""`AsyncMockBackend`: the mock backend's shell over `MockCore`, which runs the handler.

Both faces come from one source: the asyncio mock is written by hand and the blocking one
generated from it by ``scripts/unasync.py``; the public face is `llmcache.backends.mock`.
"""

from __future__ import annotations

import asyncio  # unasync: async-only
import inspect  # unasync: async-only
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any

from llmcache.backends._async_backend import AsyncBackend
from llmcache.backends._mock_core import MockCall, MockCore, MockHandler, aiter_pieces

# unasync: sync from llmcache.backends._mock_core import refuse_async
from llmcache.backends.base import AIResponse, EmbedResponse, StreamChunk

__all__ = ["AsyncMockBackend"]


class AsyncMockBackend(MockCore, AsyncBackend):
    """A backend (`AsyncBackend`) answering from ``handler`` and recording every call (see
    `llmcache.backends.mock` for what a handler may return).

    ``latency`` seconds are slept before each answer (before the first chunk of a stream).
    Calls after `aclose` raise `BackendUnavailable`, like a real client would. The asyncio
    mock also takes coroutine handlers, and async iterables of pieces.
    """

    def __init__(
        self,
        handler: MockHandler | None = None,
        *,
        model: str = "mock",
        latency: float = 0.0,
        embed_dim: int = 8,
    ) -> None:
        super().__init__(handler, model=model, latency=latency, embed_dim=embed_dim)

    async def _run(self, call: MockCall) -> Any:
        if self.latency:
            await asyncio.sleep(self.latency)
        result = self.handler(call)
        if inspect.isawaitable(result):  # unasync: async-only
            result = await result  # unasync: async-only
        # unasync: sync refuse_async(result, type(self).__name__)
        return result

    async def _answer(self, call: MockCall) -> AIResponse:
        started = time.perf_counter()
        result = await self._run(call)
        # unasync: begin async-only
        if isinstance(result, AsyncIterable):
            return self._joined(call, [p async for p in result], started)
        # unasync: end
        if self._is_pieces(result):
            return self._joined(call, list(result), started)
        return self._response(call, result, started)

    async def _stream(self, call: MockCall) -> AsyncIterator[StreamChunk]:
        started = time.perf_counter()
        result = await self._run(call)
        if not self._is_pieces(result):
            response = self._response(call, result, started)
            # unasync: sync yield from self._chunks_of(call, response)
            for chunk in self._chunks_of(call, response):  # unasync: async-only
                yield chunk  # unasync: async-only
            return
        text: list[str] = []
        last: StreamChunk | None = None
        # unasync: sync for piece in result:
        async for piece in aiter_pieces(result):  # unasync: async-only
            last = self._as_chunk(call, piece)
            text.append(last.content)
            yield last
        if last is None or not last.done:
            yield self._done_chunk(call, text="".join(text))

    def _call(self, method: str, fields: dict[str, Any], extra: dict[str, Any]) -> MockCall:
        # The mock samples nothing: ``temperature=`` and ``max_tokens=`` are recorded as
        # they came, with the other keywords, for a handler or a test to read.
        for name in ("temperature", "max_tokens"):
            value = fields.pop(name)
            if value is not None:
                extra[name] = value
        model, options = fields.pop("model"), fields.pop("options")
        return self._record_text(method, model, options, extra, **fields)

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        call = self._record("embed", model, texts=list(texts))
        started = time.perf_counter()
        return self._embedding(call, await self._run(call), started)

    async def aclose(self) -> None:
        self.closed = True
