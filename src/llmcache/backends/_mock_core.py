"""What `MockBackend` and `AsyncMockBackend` share, without I/O: the recorded calls, the
default handler, and turning what a handler returned into an `AIResponse`, `StreamChunk`
pieces or an `EmbedResponse` (with `hashed_embedding`'s deterministic vectors).

The two backends are thin shells over `MockCore` that only run the handler (sleeping,
awaiting); the public names are re-exported by `llmcache.backends.mock`.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import re
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from llmcache.backends.base import AIResponse, EmbedResponse, Format, Message, StreamChunk
from llmcache.backends.errors import BackendUnavailable

__all__ = ["MockCall", "MockCore", "MockHandler", "echo", "hashed_embedding"]

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


def hashed_embedding(text: str, *, model: str, dim: int) -> list[float]:
    """A deterministic unit vector for `text`: the normalised sum of one hashed vector per
    lower-cased word (the whole text when it has no words)."""
    words = re.findall(r"\w+", text.lower()) or [text]
    total = [0.0] * dim
    for word in words:
        for i, x in enumerate(_unit_vector(f"{model}\0{word}".encode(), dim)):
            total[i] += x
    norm = math.sqrt(sum(x * x for x in total))
    if norm == 0.0:
        return [1.0] + [0.0] * (dim - 1)
    return [x / norm for x in total]


def _unit_vector(seed: bytes, dim: int) -> list[float]:
    raw = hashlib.shake_256(seed).digest(4 * dim)
    return [int.from_bytes(raw[i : i + 4], "little") / 2**31 - 1.0 for i in range(0, 4 * dim, 4)]


def _word_pieces(content: str) -> list[str]:
    # Each piece keeps its trailing whitespace, so "".join(pieces) == content.
    pieces = re.findall(r"\s*\S+\s*", content)
    return pieces if pieces else ([content] if content else [])


def _count_words(text: str) -> int:
    return len(text.split())


def _plain(value: Any) -> Any:
    """A deep copy made of dicts and lists (mapping proxies and tuples cannot be deep-copied
    or compared with the literals a test writes)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


async def aiter_pieces(pieces: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    """The pieces a handler returned, sync or async, as one async iterator."""
    if isinstance(pieces, AsyncIterable):
        async for piece in pieces:
            yield piece
    else:
        for piece in pieces:
            yield piece


def refuse_async(result: Any, backend: str) -> None:
    """Refuse what only an asyncio backend can run (a coroutine, an async iterable)."""
    if inspect.isawaitable(result) or isinstance(result, AsyncIterable):
        # Close a coroutine, or Python warns that it was never awaited.
        getattr(result, "close", lambda: None)()
        raise TypeError(f"{backend} got an async handler; use AsyncMockBackend")


class MockCore:
    """Configuration, the call log, and turning handler results into responses, chunks and
    embeddings: everything of a mock backend but running the handler."""

    def __init__(
        self, handler: MockHandler | None, *, model: str, latency: float, embed_dim: int
    ) -> None:
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

    # -- the call log ------------------------------------------------------------------------

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
            call = MockCall(
                method=method, model=model or self.model, index=len(self._calls), **fields
            )
            self._calls.append(call)
        return call

    def _record_text(
        self,
        method: str,
        model: str | None,
        options: Mapping[str, Any] | None,
        extra: dict[str, Any],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        images: Sequence[str | bytes] | None = None,
        messages: Sequence[Message] | None = None,
        **fields: Any,
    ) -> MockCall:
        # Plain copies, so a caller mutating its messages or options afterwards cannot
        # rewrite what the test later asserts on.
        return self._record(
            method,
            model,
            options=_plain(options or {}),
            kwargs=dict(extra),
            tools=_plain(tools) if tools is not None else None,
            images=list(images) if images is not None else None,
            messages=_plain(messages) if messages is not None else None,
            **fields,
        )

    # -- replies -----------------------------------------------------------------------------

    @staticmethod
    def _is_pieces(result: Any) -> bool:
        return isinstance(result, (Iterable, AsyncIterable)) and not isinstance(
            result, (str, bytes, Mapping)
        )

    def _response(self, call: MockCall, result: Any, started: float) -> AIResponse:
        duration = (time.perf_counter() - started) * 1000
        if isinstance(result, AIResponse):
            return replace(result, raw=dict(result.raw))
        if not isinstance(result, str):
            raise TypeError(
                f"mock handler returned a {type(result).__name__} for "
                f"{call.method}; expected str, AIResponse or an iterable of str"
            )
        prompt_tokens = _count_words(call.text)
        completion_tokens = _count_words(result)
        return AIResponse(
            content=result,
            model=call.model,
            duration_ms=duration,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            tokens_used=prompt_tokens + completion_tokens,
            done_reason="stop",
        )

    def _joined(self, call: MockCall, pieces: list[Any], started: float) -> AIResponse:
        """Pieces answering a plain call: all that a stream of them carries (text and
        thinking joined, every chunk's tool calls, the final chunk's counts and reason)."""
        chunks = [self._as_chunk(call, p) for p in pieces]
        text = "".join(c.content for c in chunks)
        last = chunks[-1] if chunks and chunks[-1].done else None
        if last is None:
            response = self._response(call, text, started)
        else:
            response = AIResponse(
                content=text,
                model=last.model or call.model,
                duration_ms=(time.perf_counter() - started) * 1000,
                prompt_tokens=last.prompt_tokens,
                completion_tokens=last.completion_tokens,
                tokens_used=last.prompt_tokens + last.completion_tokens,
                done_reason=last.done_reason,
            )
        response.thinking = "".join(c.thinking or "" for c in chunks) or None
        response.tool_calls = [tc for c in chunks for tc in c.tool_calls or []] or None
        return response

    def _chunks_of(self, call: MockCall, response: AIResponse) -> list[StreamChunk]:
        chunks = [
            StreamChunk(content=p, model=response.model) for p in _word_pieces(response.content)
        ]
        return [*chunks, self._done_chunk(call, response)]

    @staticmethod
    def _done_chunk(
        call: MockCall, response: AIResponse | None = None, text: str = ""
    ) -> StreamChunk:
        if response is None:
            completion = _count_words(text)
            return StreamChunk(
                content="",
                model=call.model,
                done=True,
                done_reason="stop",
                prompt_tokens=_count_words(call.text),
                completion_tokens=completion,
            )
        return StreamChunk(
            content="",
            model=response.model,
            done=True,
            done_reason=response.done_reason or "stop",
            prompt_tokens=response.prompt_tokens,
            completion_tokens=response.completion_tokens,
            tool_calls=response.tool_calls,
            thinking=response.thinking,
        )

    @staticmethod
    def _as_chunk(call: MockCall, piece: Any) -> StreamChunk:
        if isinstance(piece, StreamChunk):
            return piece
        if isinstance(piece, str):
            return StreamChunk(content=piece, model=call.model)
        raise TypeError(
            f"mock handler yielded a {type(piece).__name__}; expected str or StreamChunk"
        )

    def _embedding(self, call: MockCall, result: Any, started: float) -> EmbedResponse:
        duration = (time.perf_counter() - started) * 1000
        if isinstance(result, EmbedResponse):
            return result
        if isinstance(result, list) and result and all(isinstance(v, list) for v in result):
            return EmbedResponse(embeddings=result, model=call.model, duration_ms=duration)
        texts = call.texts or []
        vectors = [hashed_embedding(t, model=call.model, dim=self.embed_dim) for t in texts]
        return EmbedResponse(
            embeddings=vectors,
            model=call.model,
            duration_ms=duration,
            prompt_tokens=sum(_count_words(t) for t in texts),
        )
