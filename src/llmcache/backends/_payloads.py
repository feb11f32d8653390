"""What a backend's calls take and give back: the `Message` and `Format` of a request, and
`AIResponse`, `StreamChunk` and `EmbedResponse` (re-exported by `llmcache.backends.base`).

>>> AIResponse(content="4", model="m").cached
False
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["AIResponse", "EmbedResponse", "Format", "Message", "StreamChunk"]

Message = Mapping[str, Any]
Format = str | Mapping[str, Any] | None


@dataclass(slots=True)
class AIResponse:
    """A model's answer. ``cached`` is True (and ``duration_ms`` 0) when served from a cache."""

    content: str
    model: str
    tokens_used: int = 0
    duration_ms: float = 0.0
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    done_reason: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    thinking: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class StreamChunk:
    """One piece of a streamed answer; the last has ``done=True``, the token counts and the
    reason. ``content`` and ``thinking`` are deltas (a stream's text is their join);
    ``tool_calls`` are complete calls (a stream's calls are those of all its chunks, in
    order), so a backend whose server streams fragments assembles them first. ``cached`` is
    True on a chunk replayed from a cache, as it is on a cached `AIResponse`."""

    content: str
    model: str = ""
    done: bool = False
    done_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: list[dict[str, Any]] | None = None
    thinking: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class EmbedResponse:
    """Vectors for a batch of texts, in input order."""

    embeddings: list[list[float]]
    model: str
    prompt_tokens: int = 0
    duration_ms: float = 0.0
