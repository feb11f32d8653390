"""`AsyncOllamaClient`: Ollama's HTTP API (``/api/generate``, ``/api/chat``, ``/api/embed``,
``/api/tags``, ``/api/version``) on the HTTP layer the plugins share (`llmcache_http`).

Requests are built and replies parsed by `_protocol`, errors mapped by `_boundary`. Both
faces come from one source: the asyncio client is written by hand and the blocking one
generated from it by ``scripts/unasync.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from llmcache.backends.base import AsyncBackend, EmbedResponse, StreamChunk
from llmcache_http import AsyncModelClient
from llmcache_ollama._base import ClientBase
from llmcache_ollama._protocol import (
    Call,
    StreamDecoder,
    embed_call,
    models_of,
    to_embed,
    version_of,
)

__all__ = ["AsyncOllamaClient"]


class AsyncOllamaClient(ClientBase, AsyncModelClient[Call], AsyncBackend):
    """A client of an Ollama server (or anything speaking its HTTP API).

    ``host`` defaults to ``$OLLAMA_HOST``, then ``http://127.0.0.1:11434``; ``timeout`` (seconds
    or an ``httpx.Timeout``, never infinite) bounds each call including its retries. Refused
    connections and 503 replies are retried ``retries`` times with exponential ``backoff``.
    At most ``max_connections`` requests are in flight (others wait up to the pool timeout);
    ``transport`` and ``headers`` go to ``httpx.AsyncClient``. Failures raise the error tree
    of `llmcache.backends.errors`. The blocking and the asyncio client have the same
    constructor and methods; examples are in `llmcache_ollama`.

    ``generate`` is ``POST /api/generate`` and ``chat`` ``POST /api/chat``; their ``extra``
    fields (``think``, ``keep_alive``, ``suffix`` ...) are sent as they are.
    """

    def __init__(
        self,
        host: str | None = None,
        *,
        model: str = "llama3.2",
        timeout: float | httpx.Timeout = 30.0,
        retries: int = 2,
        backoff: float = 0.1,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 16,
    ) -> None:
        super().__init__(
            host,
            model=model,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_connections=max_connections,
        )
        self._connect(transport, headers)

    async def _stream(self, call: Call) -> AsyncIterator[StreamChunk]:
        async with self._streaming(call.path, call.body, call.model) as response:
            decoder = StreamDecoder(call)
            async for line in response.aiter_lines():
                chunk = decoder.feed(line)
                if chunk is not None:
                    yield chunk
                    if chunk.done:
                        return
            decoder.finish()

    async def embed(
        self, texts: Sequence[str], *, model: str | None = None, **extra: Any
    ) -> EmbedResponse:
        """Embed all `texts` in one ``POST /api/embed``; vectors come back in input order."""
        call = embed_call(texts, model=self._model(model), **extra)
        reply, wall_ms = await self._json("POST", call.path, call.body, call.model)
        return to_embed(call, reply, wall_ms)

    async def list_models(self) -> list[dict[str, Any]]:
        """The server's models (``GET /api/tags``), each a dict with ``name``, ``details`` ..."""
        reply, _ = await self._json("GET", "/api/tags", None, self.model)
        return models_of(reply)

    async def version(self) -> str:
        """The server's version string (``GET /api/version``)."""
        reply, _ = await self._json("GET", "/api/version", None, self.model)
        return version_of(reply)
