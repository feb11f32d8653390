"""`OpenAIClient`: the blocking client of OpenAI-compatible servers, on httpx. Its asyncio
twin is in `_async.py`; both build requests and parse replies with `_protocol`, and map
errors with `_boundary`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import orjson

from llmcache.backends.base import AIResponse, Backend, EmbedResponse, Format, Message, StreamChunk
from llmcache.backends.errors import BackendUnavailable
from llmcache_openai._base import ClientBase
from llmcache_openai._boundary import is_retryable, map_errors
from llmcache_openai._protocol import (
    Call,
    StreamDecoder,
    chat_call,
    decode_object,
    embed_call,
    generate_call,
    models_of,
    to_embed,
    to_response,
)

__all__ = ["OpenAIClient"]

_JSON = {"Content-Type": "application/json"}


class OpenAIClient(ClientBase, Backend):
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
        self._http = httpx.Client(transport=transport, **self._http_options(headers))
        self._slots = threading.BoundedSemaphore(max_connections)

    # -- transport ---------------------------------------------------------------------------

    @contextmanager
    def _slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self.timeout.pool):
            raise self._no_slot()
        try:
            yield
        finally:
            self._slots.release()

    def _attempt(self, request: httpx.Request, model: str, stream: bool) -> httpx.Response:
        if self._http.is_closed:
            raise BackendUnavailable(f"{type(self).__name__} is closed")
        with map_errors(self.base_url):
            response = self._http.send(request, stream=stream)
            if response.is_success:
                return response
            try:
                response.read()
            finally:
                response.close()
        raise self._status_error(response.status_code, response.content, model)

    def _send(self, method: str, path: str, body: dict[str, Any] | None, model: str, *,
              stream: bool = False) -> httpx.Response:
        clock = self._clock()
        content = orjson.dumps(body) if body is not None else None
        while True:
            request = self._http.build_request(method, path, content=content,
                                               headers=_JSON if body is not None else None,
                                               timeout=clock.timeout())
            try:
                return self._attempt(request, model, stream)
            except BackendUnavailable as error:
                delay = clock.next_delay() if is_retryable(error) else None
                if delay is None:
                    raise
                self._log_retry(path, error, delay)
                time.sleep(delay)

    def _json(self, method: str, path: str, body: dict[str, Any] | None,
              model: str) -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        with self._slot():
            response = self._send(method, path, body, model)
        return decode_object(response.content), (time.perf_counter() - started) * 1000

    def _stream(self, call: Call) -> Iterator[StreamChunk]:
        with self._slot():
            response = self._send("POST", call.path, call.body, call.model, stream=True)
            try:
                decoder = StreamDecoder(call)
                with map_errors(self.base_url, streaming=True):
                    for text in response.iter_text():
                        for chunk in decoder.feed(text):
                            yield chunk
                            if chunk.done:
                                return
                yield from decoder.finish()
            finally:
                response.close()

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
        call = generate_call(prompt, model=self._model(model), stream=False, system=system,
                             format=format, options=options, images=images,
                             temperature=temperature, max_tokens=max_tokens, **extra)
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
        return self._stream(generate_call(
            prompt, model=self._model(model), stream=True, system=system, format=format,
            options=options, images=images, temperature=temperature, max_tokens=max_tokens,
            **extra))

    def chat(self, messages: Sequence[Message], *, model: str | None = None,
             tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
             options: Mapping[str, Any] | None = None, temperature: float | None = None,
             max_tokens: int | None = None, **extra: Any) -> AIResponse:
        """Answer the next turn (``POST /chat/completions``); tool calls land in
        ``tool_calls`` with their arguments parsed."""
        call = chat_call(messages, model=self._model(model), stream=False, tools=tools,
                         format=format, options=options, temperature=temperature,
                         max_tokens=max_tokens, **extra)
        return to_response(call, *self._json("POST", call.path, call.body, call.model))

    def chat_stream(self, messages: Sequence[Message], *, model: str | None = None,
                    tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
                    options: Mapping[str, Any] | None = None, temperature: float | None = None,
                    max_tokens: int | None = None, **extra: Any) -> Iterator[StreamChunk]:
        """Like `chat`, yielding chunks as the events arrive."""
        return self._stream(chat_call(
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

    def close(self) -> None:
        """Close the connection pool. Idempotent."""
        self._http.close()
