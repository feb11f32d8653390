"""`AsyncOllamaClient`: the asyncio twin of `OllamaClient` (`_sync.py`), method for method.

Keep the two in step: `tests/llmcache_ollama/test_ollama_parity.py` checks they agree."""

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
from llmcache_ollama._base import ClientBase
from llmcache_ollama._protocol import (
    Call,
    StreamDecoder,
    embed_call,
    models_of,
    to_embed,
    to_response,
    version_of,
)
from llmcache_ollama._transport import AsyncTransport

__all__ = ["AsyncOllamaClient"]


class AsyncOllamaClient(ClientBase, AsyncTransport, AsyncBackend):
    """The asyncio client of an Ollama server; the same constructor and methods as
    `OllamaClient`, as coroutines (``*_stream`` methods return async iterators).

    >>> import asyncio
    >>> from llmcache_ollama.server import OllamaServer
    >>> async def main(url: str) -> list[str]:
    ...     async with AsyncOllamaClient(url, timeout=5) as client:
    ...         reply = await client.chat([{"role": "user", "content": "hello"}])
    ...         pieces = [c.content async for c in client.generate_stream("a b")]
    ...         return [reply.content, "".join(pieces)]
    >>> with OllamaServer() as server:
    ...     asyncio.run(main(server.url))
    ['echo: hello', 'echo: a b']
    """

    def __init__(self, host: str | None = None, *, model: str = "llama3.2",
                 timeout: float | httpx.Timeout = 30.0, retries: int = 2, backoff: float = 0.1,
                 transport: httpx.AsyncBaseTransport | None = None,
                 headers: Mapping[str, str] | None = None, max_connections: int = 16) -> None:
        super().__init__(host, model=model, timeout=timeout, retries=retries, backoff=backoff,
                         max_connections=max_connections)
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

    # -- the API ----------------------------------------------------------------------------

    async def generate(self, prompt: str, *, model: str | None = None,
                       system: str | None = None, format: Format = None,
                       options: Mapping[str, Any] | None = None,
                       images: Sequence[str | bytes] | None = None,
                       temperature: float | None = None, max_tokens: int | None = None,
                       **extra: Any) -> AIResponse:
        """Complete `prompt`; see `OllamaClient.generate`."""
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
        """Answer the next turn; see `OllamaClient.chat`."""
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
        """Embed all `texts` in one request; see `OllamaClient.embed`."""
        call = embed_call(texts, model=self._model(model), **extra)
        return to_embed(call, *await self._json("POST", call.path, call.body, call.model))

    async def list_models(self) -> list[dict[str, Any]]:
        """The server's models (``GET /api/tags``)."""
        return models_of((await self._json("GET", "/api/tags", None, self.model))[0])

    async def version(self) -> str:
        """The server's version string (``GET /api/version``)."""
        return version_of((await self._json("GET", "/api/version", None, self.model))[0])
