"""`AsyncOpenAIClient`: the asyncio twin of `OpenAIClient` (`_sync.py`), method for method.

Keep the two in step: `tests/llmcache_openai/test_openai_client.py` runs every call on both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from llmcache.backends.base import (
    AIResponse,
    AsyncBackend,
    EmbedResponse,
    Format,
    Message,
    StreamChunk,
)
from llmcache_ollama._transport import AsyncTransport
from llmcache_openai._base import ClientBase
from llmcache_openai._protocol import (
    Call,
    StreamDecoder,
    embed_call,
    models_of,
    to_embed,
    to_response,
)

__all__ = ["AsyncOpenAIClient"]


class AsyncOpenAIClient(ClientBase, AsyncTransport, AsyncBackend):
    """The asyncio client of OpenAI-compatible servers; the same constructor and methods as
    `OpenAIClient`, as coroutines (``*_stream`` methods return async iterators).

    >>> import asyncio
    >>> from llmcache_ollama.server import OllamaServer
    >>> async def main(url: str) -> list[str]:
    ...     async with AsyncOpenAIClient(url, model="llama3.2") as client:
    ...         reply = await client.chat([{"role": "user", "content": "hello"}])
    ...         pieces = [c.content async for c in client.generate_stream("a b")]
    ...         return [reply.content, "".join(pieces)]
    >>> with OllamaServer() as server:
    ...     asyncio.run(main(server.openai_url))
    ['echo: hello', 'echo: a b']
    """

    def __init__(self, base_url: str | None = None, *, model: str = "gpt-4o-mini",
                 api_key: str | None = None, embed_model: str | None = None,
                 timeout: float | httpx.Timeout = 120.0, retries: int = 2,
                 backoff: float = 0.5, transport: httpx.AsyncBaseTransport | None = None,
                 headers: Mapping[str, str] | None = None, max_connections: int = 16) -> None:
        super().__init__(base_url, model=model, api_key=api_key, embed_model=embed_model,
                         timeout=timeout, retries=retries, backoff=backoff,
                         max_connections=max_connections)
        self._connect(transport, headers)

    async def _stream(self, call: Call) -> AsyncIterator[StreamChunk]:
        async with self._streaming(call.path, call.body, call.model) as response:
            decoder = StreamDecoder(call)
            async for text in response.aiter_text():
                for chunk in decoder.feed(text):
                    yield chunk
                    if chunk.done:
                        return
            for chunk in decoder.finish():
                yield chunk

    # -- the API ----------------------------------------------------------------------------

    async def generate(self, prompt: str, *, model: str | None = None,
                       system: str | None = None, format: Format = None,
                       options: Mapping[str, Any] | None = None,
                       images: Sequence[str | bytes] | None = None,
                       temperature: float | None = None, max_tokens: int | None = None,
                       **extra: Any) -> AIResponse:
        """Complete `prompt`; see `OpenAIClient.generate`."""
        call = self._generate_call(prompt, model=self._model(model), stream=False,
                                   system=system, format=format, options=options,
                                   images=images, temperature=temperature,
                                   max_tokens=max_tokens, **extra)
        return to_response(call, *await self._json("POST", call.path, call.body, call.model))

    def generate_stream(self, prompt: str, *, model: str | None = None,
                        system: str | None = None, format: Format = None,
                        options: Mapping[str, Any] | None = None,
                        images: Sequence[str | bytes] | None = None,
                        temperature: float | None = None, max_tokens: int | None = None,
                        **extra: Any) -> AsyncIterator[StreamChunk]:
        """Like `generate`, an async iterator of chunks; the last has ``done=True``.

        Exhaust or ``aclose()`` the iterator: an open stream holds a connection.
        """
        return self._stream(self._generate_call(
            prompt, model=self._model(model), stream=True, system=system, format=format,
            options=options, images=images, temperature=temperature, max_tokens=max_tokens,
            **extra))

    async def chat(self, messages: Sequence[Message], *, model: str | None = None,
                   tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
                   options: Mapping[str, Any] | None = None, temperature: float | None = None,
                   max_tokens: int | None = None, **extra: Any) -> AIResponse:
        """Answer the next turn; see `OpenAIClient.chat`."""
        call = self._chat_call(messages, model=self._model(model), stream=False, tools=tools,
                               format=format, options=options, temperature=temperature,
                               max_tokens=max_tokens, **extra)
        return to_response(call, *await self._json("POST", call.path, call.body, call.model))

    def chat_stream(self, messages: Sequence[Message], *, model: str | None = None,
                    tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
                    options: Mapping[str, Any] | None = None, temperature: float | None = None,
                    max_tokens: int | None = None,
                    **extra: Any) -> AsyncIterator[StreamChunk]:
        """Like `chat`, an async iterator of chunks."""
        return self._stream(self._chat_call(
            messages, model=self._model(model), stream=True, tools=tools, format=format,
            options=options, temperature=temperature, max_tokens=max_tokens, **extra))

    async def embed(self, texts: Sequence[str], *, model: str | None = None,
                    **extra: Any) -> EmbedResponse:
        """Embed all `texts` in one request; see `OpenAIClient.embed`."""
        call = embed_call(texts, model=model or self.embed_model, **extra)
        if not call.body["input"]:
            return EmbedResponse(embeddings=[], model=call.model)
        return to_embed(call, *await self._json("POST", call.path, call.body, call.model))

    async def list_models(self) -> list[dict[str, Any]]:
        """The server's models (``GET /models``)."""
        return models_of((await self._json("GET", "/models", None, self.model))[0])
