"""`AsyncOpenAIClient`: an OpenAI-compatible API (``/chat/completions`` plain and streamed as
server-sent events, ``/embeddings``, ``/models``) on the shared `llmcache_http` layer.

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
from llmcache_openai._base import ClientBase
from llmcache_openai._protocol import Call, StreamDecoder, embed_call, models_of, to_embed

__all__ = ["AsyncOpenAIClient"]


class AsyncOpenAIClient(ClientBase, AsyncModelClient[Call], AsyncBackend):
    """A client of the OpenAI API or any server speaking it (vLLM, llama.cpp's server,
    LM Studio, Ollama's ``/v1`` ...).

    ``base_url`` defaults to ``$OPENAI_BASE_URL``, then ``https://api.openai.com/v1``;
    ``api_key`` to ``$OPENAI_API_KEY`` (none: no ``Authorization`` header, as local servers
    expect). ``timeout`` (seconds or an ``httpx.Timeout``, never infinite) bounds each call
    including its retries; refused connections, 429 and 5xx replies are retried ``retries``
    times with exponential ``backoff``. ``embed_model`` is what `embed` uses when the call
    names no model (default: ``model``). ``transport`` and ``headers`` go to
    ``httpx.AsyncClient``. Failures raise `llmcache.backends.errors`. The blocking and the
    asyncio client have the same constructor and methods; examples are in `llmcache_openai`.

    ``generate`` is a chat completion (``POST /chat/completions``) with `system` and one user
    message. ``options`` use llmcache's names (``temperature``, ``top_p``, ``seed``,
    ``stop``, ``num_predict`` for the token limit, sent as ``max_tokens``; others are sent as
    they are); ``extra`` fields (``user``, ``logprobs``, ``reasoning_effort`` ...) go in the
    body; tool calls come back with their arguments parsed.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        model: str = "gpt-4o-mini",
        api_key: str | None = None,
        embed_model: str | None = None,
        timeout: float | httpx.Timeout = 120.0,
        retries: int = 2,
        backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 16,
    ) -> None:
        super().__init__(
            base_url,
            model=model,
            api_key=api_key,
            embed_model=embed_model,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_connections=max_connections,
        )
        self._connect(transport, headers)

    async def _stream(self, call: Call) -> AsyncIterator[StreamChunk]:
        async with self._streaming(call.path, call.body, call.model) as response:
            decoder = StreamDecoder(call)
            async for text in response.aiter_text():
                for chunk in decoder.feed(text):
                    yield chunk
                    if chunk.done:
                        return
            # unasync: sync yield from decoder.finish()
            for chunk in decoder.finish():  # unasync: async-only
                yield chunk  # unasync: async-only

    async def embed(
        self, texts: Sequence[str], *, model: str | None = None, **extra: Any
    ) -> EmbedResponse:
        """Embed all `texts` in one ``POST /embeddings`` (`embed_model` unless `model` is
        given); vectors come back in input order. No texts: no request."""
        call = embed_call(texts, model=model or self.embed_model, **extra)
        if not call.body["input"]:
            return EmbedResponse(embeddings=[], model=call.model)
        reply, wall_ms = await self._json("POST", call.path, call.body, call.model)
        return to_embed(call, reply, wall_ms)

    async def list_models(self) -> list[dict[str, Any]]:
        """The server's models (``GET /models``), each a dict with an ``id``."""
        reply, _ = await self._json("GET", "/models", None, self.model)
        return models_of(reply)
