"""`OllamaClient`: the blocking Ollama client on httpx. Its asyncio twin is in `_async.py`;
both build requests and parse replies with `_protocol`, map errors with `_boundary`, and send
through the transport the HTTP plugins share (`llmcache_ollama._transport`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from llmcache.backends.base import AIResponse, Backend, EmbedResponse, Format, Message, StreamChunk
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
from llmcache_ollama._transport import SyncTransport

__all__ = ["OllamaClient"]


class OllamaClient(ClientBase, SyncTransport, Backend):
    """A blocking client of an Ollama server (or anything speaking its HTTP API).

    ``host`` defaults to ``$OLLAMA_HOST``, then ``http://127.0.0.1:11434``; ``timeout`` (seconds
    or an ``httpx.Timeout``, never infinite) bounds each call including its retries. Refused
    connections and 503 replies are retried ``retries`` times with exponential ``backoff``.
    At most ``max_connections`` requests are in flight (others wait up to the pool timeout);
    ``transport`` and ``headers`` go to ``httpx.Client``. Failures raise the error tree of
    `llmcache.backends.errors`.

    >>> from llmcache_ollama.server import OllamaServer
    >>> with OllamaServer() as server, OllamaClient(server.url, timeout=5) as client:
    ...     print(client.generate("Why is the sky blue?", temperature=0).content)
    ...     print("".join(c.content for c in client.generate_stream("hi")))
    echo: Why is the sky blue?
    echo: hi
    """

    def __init__(self, host: str | None = None, *, model: str = "llama3.2",
                 timeout: float | httpx.Timeout = 30.0, retries: int = 2, backoff: float = 0.1,
                 transport: httpx.BaseTransport | None = None,
                 headers: Mapping[str, str] | None = None, max_connections: int = 16) -> None:
        super().__init__(host, model=model, timeout=timeout, retries=retries, backoff=backoff,
                         max_connections=max_connections)
        self._connect(transport, headers)

    def _stream(self, call: Call) -> Iterator[StreamChunk]:
        with self._streaming(call.path, call.body, call.model) as response:
            decoder = StreamDecoder(call)
            for line in response.iter_lines():
                chunk = decoder.feed(line)
                if chunk is not None:
                    yield chunk
                    if chunk.done:
                        return
            decoder.finish()

    # -- the API ----------------------------------------------------------------------------

    def generate(self, prompt: str, *, model: str | None = None, system: str | None = None,
                 format: Format = None, options: Mapping[str, Any] | None = None,
                 images: Sequence[str | bytes] | None = None, temperature: float | None = None,
                 max_tokens: int | None = None, **extra: Any) -> AIResponse:
        """Complete `prompt` (``POST /api/generate``, not streamed).

        ``format`` is ``"json"`` or a JSON schema; ``temperature`` and ``max_tokens`` are
        shortcuts for ``options["temperature"]`` and ``options["num_predict"]``; ``extra``
        fields (``think``, ``keep_alive``, ``suffix`` ...) are sent as they are.
        """
        call = self._generate_call(prompt, model=self._model(model), stream=False,
                                   system=system, format=format, options=options,
                                   images=images, temperature=temperature,
                                   max_tokens=max_tokens, **extra)
        return to_response(call, *self._json("POST", call.path, call.body, call.model))

    def generate_stream(self, prompt: str, *, model: str | None = None,
                        system: str | None = None, format: Format = None,
                        options: Mapping[str, Any] | None = None,
                        images: Sequence[str | bytes] | None = None,
                        temperature: float | None = None, max_tokens: int | None = None,
                        **extra: Any) -> Iterator[StreamChunk]:
        """Like `generate`, yielding chunks as they arrive; the last has ``done=True``.

        Exhaust or ``close()`` the iterator: an open stream holds a connection.
        """
        return self._stream(self._generate_call(
            prompt, model=self._model(model), stream=True, system=system, format=format,
            options=options, images=images, temperature=temperature, max_tokens=max_tokens,
            **extra))

    def chat(self, messages: Sequence[Message], *, model: str | None = None,
             tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
             options: Mapping[str, Any] | None = None, temperature: float | None = None,
             max_tokens: int | None = None, **extra: Any) -> AIResponse:
        """Answer the next turn (``POST /api/chat``); tool calls land in ``tool_calls``."""
        call = self._chat_call(messages, model=self._model(model), stream=False, tools=tools,
                               format=format, options=options, temperature=temperature,
                               max_tokens=max_tokens, **extra)
        return to_response(call, *self._json("POST", call.path, call.body, call.model))

    def chat_stream(self, messages: Sequence[Message], *, model: str | None = None,
                    tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
                    options: Mapping[str, Any] | None = None, temperature: float | None = None,
                    max_tokens: int | None = None, **extra: Any) -> Iterator[StreamChunk]:
        """Like `chat`, yielding chunks as they arrive."""
        return self._stream(self._chat_call(
            messages, model=self._model(model), stream=True, tools=tools, format=format,
            options=options, temperature=temperature, max_tokens=max_tokens, **extra))

    def embed(self, texts: Sequence[str], *, model: str | None = None,
              **extra: Any) -> EmbedResponse:
        """Embed all `texts` in one ``POST /api/embed``; vectors come back in input order."""
        call = embed_call(texts, model=self._model(model), **extra)
        return to_embed(call, *self._json("POST", call.path, call.body, call.model))

    def list_models(self) -> list[dict[str, Any]]:
        """The server's models (``GET /api/tags``), each a dict with ``name``, ``details`` ..."""
        return models_of(self._json("GET", "/api/tags", None, self.model)[0])

    def version(self) -> str:
        """The server's version string (``GET /api/version``)."""
        return version_of(self._json("GET", "/api/version", None, self.model)[0])
