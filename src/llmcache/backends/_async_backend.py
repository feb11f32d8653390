"""The backend interface (`AsyncBackend`) and the shell the bundled backends share
(`AsyncCallBackend`); `llmcache.backends.base` is their public face.

Both faces come from one source: the asyncio interface is written by hand and the blocking
one generated from it by ``scripts/unasync.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from llmcache._closing import AsyncClosing
from llmcache.backends._payloads import AIResponse, EmbedResponse, Format, Message, StreamChunk

__all__ = ["AsyncBackend", "AsyncCallBackend"]

CallT = TypeVar("CallT")


class AsyncBackend(AsyncClosing, ABC):
    # unasync: sync """A blocking client of a model server."""
    # unasync: begin async-only
    """The asyncio twin of `Backend`: same methods, as coroutines; ``aclose`` to release."""

    # unasync: end

    model: str

    @abstractmethod
    async def generate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        system: str | None = None,
        format: Format = None,
        options: Mapping[str, Any] | None = None,
        images: Sequence[str | bytes] | None = None,
        **extra: Any,
    ) -> AIResponse:
        """Complete `prompt`."""

    @abstractmethod
    def generate_stream(
        self,
        prompt: str,
        *,
        model: str | None = None,
        system: str | None = None,
        format: Format = None,
        options: Mapping[str, Any] | None = None,
        images: Sequence[str | bytes] | None = None,
        **extra: Any,
    ) -> AsyncIterator[StreamChunk]:
        # unasync: sync """Complete `prompt`, yielding chunks as they arrive."""
        # unasync: begin async-only
        """Complete `prompt`, yielding chunks as they arrive (an async generator)."""
        # unasync: end

    @abstractmethod
    async def chat(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        format: Format = None,
        options: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> AIResponse:
        """Answer the next turn of a conversation."""

    @abstractmethod
    def chat_stream(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        format: Format = None,
        options: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> AsyncIterator[StreamChunk]:
        # unasync: sync """Answer the next turn, yielding chunks as they arrive."""
        # unasync: begin async-only
        """Answer the next turn, yielding chunks as they arrive (an async generator)."""
        # unasync: end

    @abstractmethod
    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        """Embed a batch of texts in one request."""

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
        return None


class AsyncCallBackend(AsyncBackend, Generic[CallT]):
    """A backend (`AsyncBackend`) whose four calls do one thing: turn the caller's arguments
    into a call object (``_call``) and hand it to ``_answer``, or to ``_stream`` for a stream.

    A subclass implements those three and ``embed``; the bundled backends (the mock, the
    HTTP plugins' clients) are built this way, so their calls take the same arguments.
    """

    @abstractmethod
    def _call(self, method: str, fields: dict[str, Any], extra: dict[str, Any]) -> CallT:
        """The call object for `method` (``"generate"``, ``"chat_stream"`` ...): `fields`
        holds every argument the method names (the prompt or messages, and the model with
        the backend's default filled in), `extra` the other keywords the caller passed.
        Raises, before anything is sent, on arguments the backend refuses."""

    @abstractmethod
    async def _answer(self, call: CallT) -> AIResponse:
        """Send `call` and return the whole answer."""

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
        name for the token limit); ``extra`` fields are sent in the request as they are (the
        mock records both in ``MockCall.kwargs``).
        """
        fields: dict[str, Any] = {
            "prompt": prompt,
            "model": model or self.model,
            "system": system,
            "format": format,
            "options": options,
            "images": images,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        return await self._answer(self._call("generate", fields, extra))

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
        fields: dict[str, Any] = {
            "prompt": prompt,
            "model": model or self.model,
            "system": system,
            "format": format,
            "options": options,
            "images": images,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        return self._stream(self._call("generate_stream", fields, extra))

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
        fields: dict[str, Any] = {
            "messages": messages,
            "model": model or self.model,
            "tools": tools,
            "format": format,
            "options": options,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        return await self._answer(self._call("chat", fields, extra))

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
        fields: dict[str, Any] = {
            "messages": messages,
            "model": model or self.model,
            "tools": tools,
            "format": format,
            "options": options,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        return self._stream(self._call("chat_stream", fields, extra))
