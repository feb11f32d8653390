"""`OpenAIClient`: the blocking client of OpenAI-compatible servers, on httpx. Its asyncio
twin is in `_async.py`; both build requests and parse replies with `_protocol`, map errors
with `_boundary`, and send through the transport the HTTP plugins share
(`llmcache_ollama._transport`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from llmcache.backends.base import AIResponse, Backend, EmbedResponse, Format, Message, StreamChunk
from llmcache_ollama._transport import SyncTransport
from llmcache_openai._base import ClientBase
from llmcache_openai._protocol import (
    Call,
    StreamDecoder,
    embed_call,
    models_of,
    to_embed,
    to_response,
)

__all__ = ["OpenAIClient"]


class OpenAIClient(ClientBase, SyncTransport, Backend):
    """A blocking client of the OpenAI API or any server speaking it (vLLM, llama.cpp's
    server, LM Studio, Ollama's ``/v1`` ...).

    ``base_url`` defaults to ``$OPENAI_BASE_URL``, then ``https://api.openai.com/v1``;
    ``api_key`` to ``$OPENAI_API_KEY`` (none: no ``Authorization`` header, as local servers
    expect). ``timeout`` (seconds or an ``httpx.Timeout``, never infinite) bounds each call
    including its retries; refused connections, 429 and 5xx replies are retried ``retries``
    times with exponential ``backoff``. ``embed_model`` is what `embed` uses when the call
    names no model (default: ``model``). Failures raise `llmcache.backends.errors`.

    >>> from llmcache_ollama.server import OllamaServer
    >>> with OllamaServer() as server, OpenAIClient(server.openai_url,
    ...                                             model="llama3.2") as client:
    ...     print(client.generate("Why is the sky blue?", temperature=0).content)
    ...     print("".join(c.content for c in client.generate_stream("hi")))
    echo: Why is the sky blue?
    echo: hi
    """

    def __init__(self, base_url: str | None = None, *, model: str = "gpt-4o-mini",
                 api_key: str | None = None, embed_model: str | None = None,
                 timeout: float | httpx.Timeout = 120.0, retries: int = 2,
                 backoff: float = 0.5, transport: httpx.BaseTransport | None = None,
                 headers: Mapping[str, str] | None = None, max_connections: int = 16) -> None:
        super().__init__(base_url, model=model, api_key=api_key, embed_model=embed_model,
                         timeout=timeout, retries=retries, backoff=backoff,
                         max_connections=max_connections)
        self._connect(transport, headers)

    def _stream(self, call: Call) -> Iterator[StreamChunk]:
        with self._streaming(call.path, call.body, call.model) as response:
            decoder = StreamDecoder(call)
            for text in response.iter_text():
                for chunk in decoder.feed(text):
                    yield chunk
                    if chunk.done:
                        return
            yield from decoder.finish()

    # -- the API ----------------------------------------------------------------------------

    def generate(self, prompt: str, *, model: str | None = None, system: str | None = None,
                 format: Format = None, options: Mapping[str, Any] | None = None,
                 images: Sequence[str | bytes] | None = None, temperature: float | None = None,
                 max_tokens: int | None = None, **extra: Any) -> AIResponse:
        """Complete `prompt`: a chat completion with `system` and one user message.

        ``format`` is ``"json"`` or a JSON schema; ``options`` use llmcache's names
        (``temperature``, ``top_p``, ``seed``, ``stop``, ``num_predict`` for the token limit;
        others are sent as they are), ``temperature`` and ``max_tokens`` are shortcuts;
        ``extra`` fields (``user``, ``logprobs``, ``reasoning_effort`` ...) go in the body.
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
        """Like `generate`, yielding chunks as the events arrive; the last has ``done=True``.

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
        """Answer the next turn (``POST /chat/completions``); tool calls land in
        ``tool_calls`` with their arguments parsed."""
        call = self._chat_call(messages, model=self._model(model), stream=False, tools=tools,
                               format=format, options=options, temperature=temperature,
                               max_tokens=max_tokens, **extra)
        return to_response(call, *self._json("POST", call.path, call.body, call.model))

    def chat_stream(self, messages: Sequence[Message], *, model: str | None = None,
                    tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
                    options: Mapping[str, Any] | None = None, temperature: float | None = None,
                    max_tokens: int | None = None, **extra: Any) -> Iterator[StreamChunk]:
        """Like `chat`, yielding chunks as the events arrive."""
        return self._stream(self._chat_call(
            messages, model=self._model(model), stream=True, tools=tools, format=format,
            options=options, temperature=temperature, max_tokens=max_tokens, **extra))

    def embed(self, texts: Sequence[str], *, model: str | None = None,
              **extra: Any) -> EmbedResponse:
        """Embed all `texts` in one ``POST /embeddings`` (`embed_model` unless `model` is
        given); vectors come back in input order. No texts: no request."""
        call = embed_call(texts, model=model or self.embed_model, **extra)
        if not call.body["input"]:
            return EmbedResponse(embeddings=[], model=call.model)
        return to_embed(call, *self._json("POST", call.path, call.body, call.model))

    def list_models(self) -> list[dict[str, Any]]:
        """The server's models (``GET /models``), each a dict with an ``id``."""
        return models_of(self._json("GET", "/models", None, self.model)[0])
