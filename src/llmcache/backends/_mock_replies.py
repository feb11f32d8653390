"""How a mock handler's result becomes an answer, for `llmcache.backends.mock`.

`_MockReplies` turns what a handler returned into an `AIResponse`, `StreamChunk` pieces or an
`EmbedResponse`; `hashed_embedding` gives the deterministic vectors. Kept apart from the
mock backends so each module stays small; the public names are re-exported there.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from llmcache.backends.base import AIResponse, EmbedResponse, StreamChunk

if TYPE_CHECKING:
    from llmcache.backends.mock import MockCall


def _word_pieces(content: str) -> list[str]:
    # Each piece keeps its trailing whitespace, so "".join(pieces) == content.
    pieces = re.findall(r"\s*\S+\s*", content)
    return pieces if pieces else ([content] if content else [])


def _count_words(text: str) -> int:
    return len(text.split())


def _unit_vector(seed: bytes, dim: int) -> list[float]:
    raw = hashlib.shake_256(seed).digest(4 * dim)
    return [int.from_bytes(raw[i:i + 4], "little") / 2**31 - 1.0 for i in range(0, 4 * dim, 4)]


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


class _MockReplies:
    """Shaping handler results into responses, chunks and embeddings (a mixin of
    `_MockCore`, which sets ``embed_dim``)."""

    embed_dim: int

    @staticmethod
    def _is_pieces(result: Any) -> bool:
        return (isinstance(result, (Iterable, AsyncIterable))
                and not isinstance(result, (str, bytes, Mapping)))

    @staticmethod
    def _piece_text(piece: Any) -> str:
        if isinstance(piece, StreamChunk):
            return piece.content
        if isinstance(piece, str):
            return piece
        raise TypeError(f"mock handler yielded a {type(piece).__name__}; expected str or "
                        "StreamChunk")

    def _response(self, call: MockCall, result: Any, started: float) -> AIResponse:
        duration = (time.perf_counter() - started) * 1000
        if isinstance(result, AIResponse):
            return replace(result, raw=dict(result.raw))
        if not isinstance(result, str):
            raise TypeError(f"mock handler returned a {type(result).__name__} for "
                            f"{call.method}; expected str, AIResponse or an iterable of str")
        prompt_tokens = _count_words(call.text)
        completion_tokens = _count_words(result)
        return AIResponse(content=result, model=call.model, duration_ms=duration,
                          prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                          tokens_used=prompt_tokens + completion_tokens, done_reason="stop")

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
                content=text, model=last.model or call.model,
                duration_ms=(time.perf_counter() - started) * 1000,
                prompt_tokens=last.prompt_tokens, completion_tokens=last.completion_tokens,
                tokens_used=last.prompt_tokens + last.completion_tokens,
                done_reason=last.done_reason)
        response.thinking = "".join(c.thinking or "" for c in chunks) or None
        response.tool_calls = [tc for c in chunks for tc in c.tool_calls or []] or None
        return response

    def _chunks_of(self, call: MockCall, response: AIResponse) -> list[StreamChunk]:
        chunks = [StreamChunk(content=p, model=response.model)
                  for p in _word_pieces(response.content)]
        return [*chunks, self._done_chunk(call, response)]

    @staticmethod
    def _done_chunk(call: MockCall, response: AIResponse | None = None,
                    text: str = "") -> StreamChunk:
        if response is None:
            completion = _count_words(text)
            return StreamChunk(content="", model=call.model, done=True, done_reason="stop",
                               prompt_tokens=_count_words(call.text),
                               completion_tokens=completion)
        return StreamChunk(content="", model=response.model, done=True,
                           done_reason=response.done_reason or "stop",
                           prompt_tokens=response.prompt_tokens,
                           completion_tokens=response.completion_tokens,
                           tool_calls=response.tool_calls, thinking=response.thinking)

    def _as_chunk(self, call: MockCall, piece: Any) -> StreamChunk:
        if isinstance(piece, StreamChunk):
            return piece
        return StreamChunk(content=self._piece_text(piece), model=call.model)

    def _embedding(self, call: MockCall, result: Any, started: float) -> EmbedResponse:
        duration = (time.perf_counter() - started) * 1000
        if isinstance(result, EmbedResponse):
            return result
        if isinstance(result, list) and result and all(isinstance(v, list) for v in result):
            return EmbedResponse(embeddings=result, model=call.model, duration_ms=duration)
        texts = call.texts or []
        vectors = [hashed_embedding(t, model=call.model, dim=self.embed_dim) for t in texts]
        return EmbedResponse(embeddings=vectors, model=call.model, duration_ms=duration,
                             prompt_tokens=sum(_count_words(t) for t in texts))


async def _aiter(pieces: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(pieces, AsyncIterable):
        async for piece in pieces:
            yield piece
    else:
        for piece in pieces:
            yield piece
