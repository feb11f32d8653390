"""The backend interface: what llmcache needs from a model server's client.

Sync and async twins follow httpx's naming rule: `Backend` / `AsyncBackend`, the same method
names (coroutines on the async twin), ``close`` / ``aclose``, and context managers on both.
A backend knows its default ``model``; every call may override it. Failures raise the tree in
`llmcache.backends.errors`.

>>> from llmcache.backends import AIResponse
>>> AIResponse(content="4", model="m").cached
False
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any, TypeVar

__all__ = [
    "AIResponse",
    "AsyncBackend",
    "Backend",
    "EmbedResponse",
    "StreamChunk",
]

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
    """One piece of a streamed answer; the last has ``done=True`` and the token counts."""

    content: str
    model: str = ""
    done: bool = False
    done_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: list[dict[str, Any]] | None = None
    thinking: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class EmbedResponse:
    """Vectors for a batch of texts, in input order."""

    embeddings: list[list[float]]
    model: str
    prompt_tokens: int = 0
    duration_ms: float = 0.0


_B = TypeVar("_B", bound="Backend")
_AB = TypeVar("_AB", bound="AsyncBackend")


class Backend(ABC):
    """A blocking client of a model server."""

    model: str

    @abstractmethod
    def generate(self, prompt: str, *, model: str | None = None, system: str | None = None,
                 format: Format = None, options: Mapping[str, Any] | None = None,
                 images: Sequence[str | bytes] | None = None, **extra: Any) -> AIResponse:
        """Complete `prompt`."""

    @abstractmethod
    def generate_stream(self, prompt: str, *, model: str | None = None,
                        system: str | None = None, format: Format = None,
                        options: Mapping[str, Any] | None = None,
                        images: Sequence[str | bytes] | None = None,
                        **extra: Any) -> Iterator[StreamChunk]:
        """Complete `prompt`, yielding chunks as they arrive."""

    @abstractmethod
    def chat(self, messages: Sequence[Message], *, model: str | None = None,
             tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
             options: Mapping[str, Any] | None = None, **extra: Any) -> AIResponse:
        """Answer the next turn of a conversation."""

    @abstractmethod
    def chat_stream(self, messages: Sequence[Message], *, model: str | None = None,
                    tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
                    options: Mapping[str, Any] | None = None,
                    **extra: Any) -> Iterator[StreamChunk]:
        """Answer the next turn, yielding chunks as they arrive."""

    @abstractmethod
    def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        """Embed a batch of texts in one request."""

    def close(self) -> None:
        """Release connections. Idempotent."""
        return None

    def __enter__(self: _B) -> _B:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsyncBackend(ABC):
    """The asyncio twin of `Backend`: same methods, as coroutines; ``aclose`` to release."""

    model: str

    @abstractmethod
    async def generate(self, prompt: str, *, model: str | None = None,
                       system: str | None = None, format: Format = None,
                       options: Mapping[str, Any] | None = None,
                       images: Sequence[str | bytes] | None = None,
                       **extra: Any) -> AIResponse:
        """Complete `prompt`."""

    @abstractmethod
    def generate_stream(self, prompt: str, *, model: str | None = None,
                        system: str | None = None, format: Format = None,
                        options: Mapping[str, Any] | None = None,
                        images: Sequence[str | bytes] | None = None,
                        **extra: Any) -> AsyncIterator[StreamChunk]:
        """Complete `prompt`, yielding chunks as they arrive (an async generator)."""

    @abstractmethod
    async def chat(self, messages: Sequence[Message], *, model: str | None = None,
                   tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
                   options: Mapping[str, Any] | None = None, **extra: Any) -> AIResponse:
        """Answer the next turn of a conversation."""

    @abstractmethod
    def chat_stream(self, messages: Sequence[Message], *, model: str | None = None,
                    tools: Sequence[Mapping[str, Any]] | None = None, format: Format = None,
                    options: Mapping[str, Any] | None = None,
                    **extra: Any) -> AsyncIterator[StreamChunk]:
        """Answer the next turn, yielding chunks as they arrive (an async generator)."""

    @abstractmethod
    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        """Embed a batch of texts in one request."""

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
        return None

    async def __aenter__(self: _AB) -> _AB:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
