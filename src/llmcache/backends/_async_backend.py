"""The backend interface: `AsyncBackend`, the contract every backend meets, stated once;
`llmcache.backends.base` is its public face.

A backend implements ``embed`` and the four calls (``generate``, ``generate_stream``,
``chat``, ``chat_stream``) in one of two ways: it overrides each call, as a third-party plugin
usually does, or it implements the three hooks the calls go through: ``_call`` turns the
arguments into a call object, ``_answer`` sends it and returns the answer, ``_stream`` sends
it streamed (the bundled backends, the mock and the HTTP plugins' clients, do this, so their
calls take the same arguments). A call that is neither overridden nor served by its hooks is
abstract: the class cannot be instantiated (TypeError naming the call).

Both faces come from one source: the asyncio interface is written by hand and the blocking
one generated from it by ``scripts/unasync.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from llmcache._closing import AsyncClosing
from llmcache.backends._hooks import settle
from llmcache.backends._payloads import AIResponse, EmbedResponse, Format, Message, StreamChunk

__all__ = ["AsyncBackend"]


class AsyncBackend(AsyncClosing, ABC):
    # unasync: sync """A blocking client of a model server."""
    # unasync: begin async-only
    """The asyncio twin of `Backend`: same methods, as coroutines; ``aclose`` to release."""

    # unasync: end

    model: str

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
        return await self._answer(self._call("generate", *self._arguments(locals())))

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
        """Complete `prompt`, yielding chunks as they arrive; the last has ``done=True``.

        Exhaust or ``aclose()`` the iterator: an open stream holds a connection.
        """
        return self._stream(self._call("generate_stream", *self._arguments(locals())))

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
        return await self._answer(self._call("chat", *self._arguments(locals())))

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
        # unasync: sync """Answer the next turn, yielding chunks as they arrive."""
        # unasync: begin async-only
        """Answer the next turn, yielding chunks as they arrive (an async generator)."""
        # unasync: end
        return self._stream(self._call("chat_stream", *self._arguments(locals())))

    @abstractmethod
    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        """Embed a batch of texts in one request."""

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
        return None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        settle(cls, AsyncBackend)  # a call neither overridden nor hooked is abstract

    def _arguments(self, named: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The arguments of a call as its hooks take them, from its `locals()` on entry (its
        parameters, so the signature is their one statement): every argument the call
        names, with the default model filled in, and the ``extra`` keywords apart."""
        fields = {name: value for name, value in named.items() if name != "self"}
        extra: dict[str, Any] = fields.pop("extra")
        fields["model"] = fields["model"] or self.model
        return fields, extra

    # -- the hooks: a backend implements these or overrides the calls above ------------------
    # (a class with neither cannot be instantiated, so the bodies here are never reached)

    def _call(self, method: str, fields: dict[str, Any], extra: dict[str, Any]) -> Any:
        """The call object for `method` (``"generate"``, ``"chat_stream"`` ...): `fields`
        holds every argument the method names (the prompt or messages, and the model with
        the backend's default filled in), `extra` the other keywords the caller passed.
        Raises, before anything is sent, on arguments the backend refuses."""
        raise NotImplementedError(f"{type(self).__name__}._call")

    async def _answer(self, call: Any) -> AIResponse:
        """Send `call` (what `_call` returned) and return the whole answer."""
        raise NotImplementedError(f"{type(self).__name__}._answer")

    def _stream(self, call: Any) -> AsyncIterator[StreamChunk]:
        """Send `call` streamed and yield its chunks; the last has ``done=True``."""
        raise NotImplementedError(f"{type(self).__name__}._stream")
