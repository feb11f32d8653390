"""`AsyncModelClient`: the calls every model-server plugin answers the same way.

``generate``, ``chat`` and their streams check what the caller passed, build the plugin's
request (`HTTPClientBase`), send it (`AsyncTransport`) and hand the reply to the plugin's
parser (its `Wire`'s ``to_response``); a plugin supplies ``_stream`` (a streamed reply to
chunks), and adds what its API has besides (``embed``, model lists).

Both faces come from one source: the asyncio client is written by hand and its blocking
twin generated from it by ``scripts/unasync.py``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from llmcache.backends.base import AIResponse, Format, Message, StreamChunk
from llmcache_http._async_transport import AsyncTransport
from llmcache_http._client_base import CallT, HTTPClientBase

__all__ = ["AsyncModelClient"]


class AsyncModelClient(HTTPClientBase[CallT], AsyncTransport):
    """``generate``, ``generate_stream``, ``chat`` and ``chat_stream`` over the plugin's
    protocol (see the module docstring); the plugin's class says what its API does with
    each argument."""

    def _response(self, call: CallT, reply: dict[str, Any], wall_ms: float) -> AIResponse:
        """The answer in `reply`, the JSON object the server sent for `call`."""
        return self._wire.to_response(call, reply, wall_ms)

    @abstractmethod
    def _stream(self, call: CallT) -> AsyncIterator[StreamChunk]:
        """Send `call` streamed and yield its chunks; the last has ``done=True``."""

    async def generate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        system: str | None = None,
        format: Format = None,
        options: Mapping[str, Any] | None = None,
        images: Sequence[str | bytes] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        **extra: Any,
    ) -> AIResponse:
        """Complete `prompt` (not streamed).

        ``format`` is ``"json"`` or a JSON schema; ``temperature`` and ``max_tokens`` are
        shortcuts for ``options["temperature"]`` and ``options["num_predict"]`` (llmcache's
        name for the token limit); ``extra`` fields are sent in the request as they are.
        """
        call = self._generate_call(
            prompt,
            model=self._model(model),
            stream=False,
            system=system,
            format=format,
            options=options,
            images=images,
            temperature=temperature,
            max_tokens=max_tokens,
            **extra,
        )
        reply, wall_ms = await self._json("POST", call.path, call.body, call.model)
        return self._response(call, reply, wall_ms)

    def generate_stream(
        self,
        prompt: str,
        *,
        model: str | None = None,
        system: str | None = None,
        format: Format = None,
        options: Mapping[str, Any] | None = None,
        images: Sequence[str | bytes] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        **extra: Any,
    ) -> AsyncIterator[StreamChunk]:
        """Like `generate`, yielding chunks as they arrive; the last has ``done=True``.

        Exhaust or ``aclose()`` the iterator: an open stream holds a connection.
        """
        return self._stream(
            self._generate_call(
                prompt,
                model=self._model(model),
                stream=True,
                system=system,
                format=format,
                options=options,
                images=images,
                temperature=temperature,
                max_tokens=max_tokens,
                **extra,
            )
        )

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        format: Format = None,
        options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        **extra: Any,
    ) -> AIResponse:
        """Answer the next turn of `messages`; tool calls land in ``tool_calls``."""
        call = self._chat_call(
            messages,
            model=self._model(model),
            stream=False,
            tools=tools,
            format=format,
            options=options,
            temperature=temperature,
            max_tokens=max_tokens,
            **extra,
        )
        reply, wall_ms = await self._json("POST", call.path, call.body, call.model)
        return self._response(call, reply, wall_ms)

    def chat_stream(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        format: Format = None,
        options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        **extra: Any,
    ) -> AsyncIterator[StreamChunk]:
        """Like `chat`, yielding chunks as they arrive."""
        return self._stream(
            self._chat_call(
                messages,
                model=self._model(model),
                stream=True,
                tools=tools,
                format=format,
                options=options,
                temperature=temperature,
                max_tokens=max_tokens,
                **extra,
            )
        )
