"""The cached clients' codec: model answers (`AIResponse`) and their streams, to entries and
back (`ModelAnswers`).

Streamed and plain calls share entries, and each face gives back all the other stored: a
plain answer replays as a thinking chunk, a text chunk and a final chunk holding the tool
calls, token counts and reason; a stream's answer joins its text and thinking deltas and
gathers every chunk's tool calls. Every replayed chunk says ``cached=True``, as a hit's
`AIResponse` does.

Lenient: an answer no tier can hold (tool calls that are not JSON) is returned to the
caller and counted as an error, never stored.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import orjson

from llmcache._pipeline.function_values import restore_value, to_entry
from llmcache.backends.base import AIResponse, StreamChunk
from llmcache.entry import CachedResponse, JSONValue

__all__ = ["MODEL_ANSWERS", "ModelAnswers"]

# What a stored chunk holds: ``raw`` is the server's payload (not ours to keep) and
# ``cached`` is what the replay sets.
_CHUNK_FIELDS = frozenset(StreamChunk.__dataclass_fields__) - {"raw", "cached"}


def _checked(chunk: StreamChunk) -> StreamChunk:
    """`chunk` if its fields have the types a consumer relies on (it may come from a shared
    tier), else ValueError."""
    calls = chunk.tool_calls
    if (
        not isinstance(chunk.content, str)
        or not isinstance(chunk.model, str)
        or not (chunk.thinking is None or isinstance(chunk.thinking, str))
        or not (
            calls is None or (isinstance(calls, list) and all(isinstance(c, dict) for c in calls))
        )
        or type(chunk.done) is not bool
        or type(chunk.prompt_tokens) is not int
        or type(chunk.completion_tokens) is not int
        or not (chunk.done_reason is None or isinstance(chunk.done_reason, str))
    ):
        raise ValueError("entry.chunks: a chunk field has an unexpected type")
    return chunk


def _chunks_of(response: AIResponse) -> list[StreamChunk]:
    """A plain answer as a stream: its thinking, its text, then the final chunk with the tool
    calls (where the OpenAI plugin's streams put them too), token counts and reason."""
    model = response.model
    chunks = []
    if response.thinking:
        chunks.append(StreamChunk(content="", model=model, thinking=response.thinking, cached=True))
    if response.content:
        chunks.append(StreamChunk(content=response.content, model=model, cached=True))
    chunks.append(
        StreamChunk(
            content="",
            model=model,
            done=True,
            done_reason=response.done_reason,
            prompt_tokens=response.prompt_tokens,
            completion_tokens=response.completion_tokens,
            tool_calls=response.tool_calls,
            cached=True,
        )
    )
    return [_checked(c) for c in chunks]


class ModelAnswers:
    """The codec of `CachedClient` and `AsyncCachedClient` (see the module docstring)."""

    strict = False

    def encode(self, value: AIResponse, fingerprint: str, ttl: float | None) -> CachedResponse:
        return to_entry(value, fingerprint=fingerprint, ttl=ttl)

    def decode(self, entry: CachedResponse) -> AIResponse:
        value = restore_value(entry)
        if not isinstance(value, AIResponse):
            raise TypeError("entry: a client's hit is a model's answer")
        return value  # marked cached=True by restore_value

    def share(self, value: AIResponse) -> AIResponse:
        # Deep: a follower changing its tool call's arguments must not change the leader's.
        return replace(value, raw=dict(value.raw), tool_calls=copy.deepcopy(value.tool_calls))

    def semantic(self, entry: CachedResponse) -> AIResponse:
        value = self.decode(entry)
        # The match is the caller's to judge: similarity and the matched prompt ride along.
        value.raw = {"semantic": dict(entry.metadata.get("semantic", {}))}
        return value

    def replay(self, entry: CachedResponse) -> list[StreamChunk]:
        """The stored stream's own chunks, or, for an answer stored by a plain call, chunks
        carrying all it had; fresh objects, marked cached."""
        if not isinstance(entry.content, str):
            raise TypeError("entry.content: a stream replays text")
        if not entry.chunks:
            value = restore_value(entry)
            if isinstance(value, str):  # an entry with no AIResponse fields: text only
                value = AIResponse(content=value, model=entry.model)
            if not isinstance(value, AIResponse):
                raise TypeError("entry: a stream replays a model's answer")
            return _chunks_of(value)
        out = []
        for item in orjson.loads(orjson.dumps(entry.chunks)):
            if not isinstance(item, dict) or not set(item) <= _CHUNK_FIELDS:
                raise ValueError("entry.chunks: unexpected chunk shape")
            out.append(_checked(StreamChunk(**item, cached=True)))
        return out

    def record(self, chunks: list[StreamChunk]) -> tuple[AIResponse, list[JSONValue]] | None:
        """The answer a plain call would have returned (the text and thinking deltas joined,
        the tool calls of every chunk in order -- a chunk's ``tool_calls`` are complete
        calls: backends assemble fragments -- the counts and reason of the final chunk),
        and a private copy of the chunks (the consumer holds, and may mutate, the live ones;
        a memory tier keeps what it is given). None for a stream without its final chunk.
        TypeError for chunks that cannot be encoded."""
        if not chunks or not chunks[-1].done:
            return None
        last = chunks[-1]
        response = AIResponse(
            content="".join(c.content for c in chunks),
            model=last.model,
            tokens_used=last.prompt_tokens + last.completion_tokens,
            prompt_tokens=last.prompt_tokens,
            completion_tokens=last.completion_tokens,
            done_reason=last.done_reason,
            tool_calls=[tc for c in chunks for tc in (c.tool_calls or [])] or None,
            thinking="".join(c.thinking for c in chunks if c.thinking) or None,
        )
        stored = orjson.loads(
            orjson.dumps(
                [{k: v for k, v in c.to_dict().items() if k in _CHUNK_FIELDS} for c in chunks]
            )
        )
        return response, stored


MODEL_ANSWERS = ModelAnswers()
