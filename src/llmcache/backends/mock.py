"""A scripted, recording backend for tests: `MockBackend` and its twin `AsyncMockBackend`.

Each call is recorded as a `MockCall` and handed to ``handler``, whose return value becomes
the answer. The default handler echoes the prompt (or the last user message), so answers
are deterministic without any setup.

A handler may return:

- a ``str``: the answer's content (token counts are word counts);
- an `AIResponse`: returned as is (a copy, so callers may mutate it);
- an iterable of ``str`` / `StreamChunk` pieces (for the async mock, also an async
  iterable): streamed piece by piece, or joined for non-streaming calls (text and thinking
  joined, the tool calls of every chunk, a final ``done`` chunk's counts and reason). An
  exception raised while iterating surfaces mid-stream, after the earlier pieces were
  delivered; this is how to simulate a stream that breaks half-way.

Raising from the handler makes the call fail (e.g. with a `BackendError`), which is how
failures, flaky servers and "fail after N calls" are expressed. ``embed`` also consults the
handler (so it can raise); it may return an `EmbedResponse` or a list of vectors, and any
other value (such as the ``str`` a text handler returns) keeps the deterministic vectors.
Those vectors are hashed bags of words: the same text always gives the same unit vector,
and texts sharing words point in similar directions, which is enough for semantic tests.

>>> backend = MockBackend()
>>> backend.generate("2 + 2?").content
'echo: 2 + 2?'
>>> [c.content for c in backend.generate_stream("a b")]
['echo: ', 'a ', 'b', '']
>>> backend.call_count, backend.calls[0].method
(2, 'generate')
>>> def flaky(call):
...     if call.index == 0:
...         raise BackendUnavailable("down")
...     return "up"
>>> flaky_backend = MockBackend(flaky)
>>> flaky_backend.generate("x")
Traceback (most recent call last):
...
llmcache.backends.errors.BackendUnavailable: down
>>> flaky_backend.generate("x").content
'up'
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any

from llmcache.backends._mock_replies import _aiter, _MockReplies, hashed_embedding
from llmcache.backends.base import (
    AIResponse,
    AsyncBackend,
    Backend,
    EmbedResponse,
    Format,
    Message,
    StreamChunk,
)
from llmcache.backends.errors import BackendUnavailable

__all__ = [
    "AsyncMockBackend",
    "MockBackend",
    "MockCall",
    "MockHandler",
    "echo",
    "hashed_embedding",
]

MockHandler = Callable[["MockCall"], Any]
"""``handler(call) -> str | AIResponse | iterable of pieces`` (or, async, an awaitable of one)."""


@dataclass(frozen=True)
class MockCall:
    """One recorded call. ``index`` counts calls on the backend from 0.

    ``prompt`` is set for generate calls, ``messages`` for chat, ``texts`` for embed;
    ``kwargs`` holds any extra keyword arguments the caller passed.
    """

    method: str
    model: str
    index: int = 0
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    texts: list[str] | None = None
    system: str | None = None
    format: Format = None
    options: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] | None = None
    images: list[str | bytes] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The input as one string: the prompt, the last user message, or the texts."""
        if self.prompt is not None:
            return self.prompt
        if self.messages:
            users = [m for m in self.messages if m.get("role") == "user"] or self.messages
            content = users[-1].get("content", "")
            return content if isinstance(content, str) else str(content)
        return "\n".join(self.texts or ())

    @property
    def streaming(self) -> bool:
        return self.method.endswith("_stream")


def echo(call: MockCall) -> str:
    """The default handler: ``"echo: " + call.text``."""
    return f"echo: {call.text}"


def _plain(value: Any) -> Any:
    """A deep copy made of dicts and lists (mapping proxies and tuples cannot be deep-copied
    or compared with the literals a test writes)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class _MockCore(_MockReplies):
    """What both twins share: configuration, the call log, and (from `_MockReplies`) turning
    handler results into responses and chunks."""

    def __init__(self, handler: MockHandler | None, *, model: str,
                 latency: float, embed_dim: int) -> None:
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency!r}")
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1, got {embed_dim!r}")
        self.handler: MockHandler = handler if handler is not None else echo
        self.model = model
        self.latency = latency
        self.embed_dim = embed_dim
        self.closed = False
        self._calls: list[MockCall] = []
        self._lock = threading.Lock()

    @property
    def calls(self) -> list[MockCall]:
        """A snapshot of the calls made so far, oldest first."""
        with self._lock:
            return list(self._calls)

    @property
    def call_count(self) -> int:
        with self._lock:
            return len(self._calls)

    def reset(self) -> None:
        """Forget recorded calls (``index`` starts again from 0)."""
        with self._lock:
            self._calls.clear()

    def _record(self, method: str, model: str | None, **fields: Any) -> MockCall:
        if self.closed:
            raise BackendUnavailable(f"{type(self).__name__} is closed")
        with self._lock:
            call = MockCall(method=method, model=model or self.model, index=len(self._calls),
                            **fields)
            self._calls.append(call)
        return call

    def _record_text(self, method: str, model: str | None, options: Mapping[str, Any] | None,
                     extra: dict[str, Any], *, tools: Sequence[Mapping[str, Any]] | None = None,
                     images: Sequence[str | bytes] | None = None,
                     messages: Sequence[Message] | None = None, **fields: Any) -> MockCall:
        # Plain copies, so a caller mutating its messages or options afterwards cannot
        # rewrite what the test later asserts on.
        return self._record(
            method, model, options=_plain(options or {}), kwargs=dict(extra),
            tools=_plain(tools) if tools is not None else None,
            images=list(images) if images is not None else None,
            messages=_plain(messages) if messages is not None else None, **fields)


class MockBackend(_MockCore, Backend):
    """A blocking `Backend` answering from ``handler`` and recording every call.

    ``latency`` seconds are slept before each answer (before the first chunk of a stream).
    Calls after `close` raise `BackendUnavailable`, like a real client would.

    >>> with MockBackend(lambda call: "Paris", model="geo") as backend:
    ...     answer = backend.chat([{"role": "user", "content": "Capital of France?"}])
    >>> answer.content, answer.model, backend.calls[0].text
    ('Paris', 'geo', 'Capital of France?')
    """

    def __init__(self, handler: MockHandler | None = None, *,
                 model: str = "mock", latency: float = 0.0, embed_dim: int = 8) -> None:
        super().__init__(handler, model=model, latency=latency, embed_dim=embed_dim)

    def _run(self, call: MockCall) -> Any:
        if self.latency:
            time.sleep(self.latency)
        result = self.handler(call)
        if inspect.isawaitable(result) or isinstance(result, AsyncIterable):
            # Close a coroutine, or Python warns that it was never awaited.
            getattr(result, "close", lambda: None)()
            raise TypeError("MockBackend got an async handler; use AsyncMockBackend")
        return result

    def _answer(self, call: MockCall) -> AIResponse:
        started = time.perf_counter()
        result = self._run(call)
        if self._is_pieces(result):
            return self._joined(call, list(result), started)
        return self._response(call, result, started)

    def _stream(self, call: MockCall) -> Iterator[StreamChunk]:
        started = time.perf_counter()
        result = self._run(call)
        if not self._is_pieces(result):
            yield from self._chunks_of(call, self._response(call, result, started))
            return
        text: list[str] = []
        last: StreamChunk | None = None
        for piece in result:
            last = self._as_chunk(call, piece)
            text.append(last.content)
            yield last
        if last is None or not last.done:
            yield self._done_chunk(call, text="".join(text))

    def generate(self, prompt: str, *, model: str | None = None, system: str | None = None,
                 format: Format = None, options: Mapping[str, Any] | None = None,
                 images: Sequence[str | bytes] | None = None, **extra: Any) -> AIResponse:
        return self._answer(self._record_text("generate", model, options, extra, prompt=prompt,
                                              system=system, format=format, images=images))

    def generate_stream(self, prompt: str, *, model: str | None = None,
                        system: str | None = None, format: Format = None,
                        options: Mapping[str, Any] | None = None,
                        images: Sequence[str | bytes] | None = None,
                        **extra: Any) -> Iterator[StreamChunk]:
        return self._stream(self._record_text("generate_stream", model, options, extra,
                                              prompt=prompt, system=system, format=format,
                                              images=images))

    def chat(self, messages: Sequence[Message], *, model: str | None = None,
             tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
             options: Mapping[str, Any] | None = None, **extra: Any) -> AIResponse:
        return self._answer(self._record_text("chat", model, options, extra, messages=messages,
                                              tools=tools, format=format))

    def chat_stream(self, messages: Sequence[Message], *, model: str | None = None,
                    tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
                    options: Mapping[str, Any] | None = None,
                    **extra: Any) -> Iterator[StreamChunk]:
        return self._stream(self._record_text("chat_stream", model, options, extra,
                                              messages=messages, tools=tools, format=format))

    def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        call = self._record("embed", model, texts=list(texts))
        started = time.perf_counter()
        return self._embedding(call, self._run(call), started)

    def close(self) -> None:
        self.closed = True


class AsyncMockBackend(_MockCore, AsyncBackend):
    """The asyncio twin of `MockBackend`; ``handler`` may be sync or ``async def``.

    >>> import asyncio
    >>> async def main():
    ...     async with AsyncMockBackend() as backend:
    ...         chunks = [c.content async for c in backend.generate_stream("hi there")]
    ...         return chunks, (await backend.generate("hi")).content
    >>> asyncio.run(main())
    (['echo: ', 'hi ', 'there', ''], 'echo: hi')
    """

    def __init__(self, handler: MockHandler | None = None, *,
                 model: str = "mock", latency: float = 0.0, embed_dim: int = 8) -> None:
        super().__init__(handler, model=model, latency=latency, embed_dim=embed_dim)

    async def _run(self, call: MockCall) -> Any:
        if self.latency:
            await asyncio.sleep(self.latency)
        result = self.handler(call)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _answer(self, call: MockCall) -> AIResponse:
        started = time.perf_counter()
        result = await self._run(call)
        if isinstance(result, AsyncIterable):
            return self._joined(call, [p async for p in result], started)
        if self._is_pieces(result):
            return self._joined(call, list(result), started)
        return self._response(call, result, started)

    async def _stream(self, call: MockCall) -> AsyncIterator[StreamChunk]:
        started = time.perf_counter()
        result = await self._run(call)
        if not self._is_pieces(result):
            for chunk in self._chunks_of(call, self._response(call, result, started)):
                yield chunk
            return
        text: list[str] = []
        last: StreamChunk | None = None
        async for piece in _aiter(result):
            last = self._as_chunk(call, piece)
            text.append(last.content)
            yield last
        if last is None or not last.done:
            yield self._done_chunk(call, text="".join(text))

    async def generate(self, prompt: str, *, model: str | None = None,
                       system: str | None = None, format: Format = None,
                       options: Mapping[str, Any] | None = None,
                       images: Sequence[str | bytes] | None = None,
                       **extra: Any) -> AIResponse:
        return await self._answer(self._record_text("generate", model, options, extra,
                                                    prompt=prompt, system=system,
                                                    format=format, images=images))

    def generate_stream(self, prompt: str, *, model: str | None = None,
                        system: str | None = None, format: Format = None,
                        options: Mapping[str, Any] | None = None,
                        images: Sequence[str | bytes] | None = None,
                        **extra: Any) -> AsyncIterator[StreamChunk]:
        return self._stream(self._record_text("generate_stream", model, options, extra,
                                              prompt=prompt, system=system, format=format,
                                              images=images))

    async def chat(self, messages: Sequence[Message], *, model: str | None = None,
                   tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
                   options: Mapping[str, Any] | None = None, **extra: Any) -> AIResponse:
        return await self._answer(self._record_text("chat", model, options, extra,
                                                    messages=messages, tools=tools,
                                                    format=format))

    def chat_stream(self, messages: Sequence[Message], *, model: str | None = None,
                    tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
                    options: Mapping[str, Any] | None = None,
                    **extra: Any) -> AsyncIterator[StreamChunk]:
        return self._stream(self._record_text("chat_stream", model, options, extra,
                                              messages=messages, tools=tools, format=format))

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        call = self._record("embed", model, texts=list(texts))
        started = time.perf_counter()
        return self._embedding(call, await self._run(call), started)

    async def aclose(self) -> None:
        self.closed = True
