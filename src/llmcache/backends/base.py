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

import math
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from llmcache._closing import AsyncClosing, Closing

__all__ = [
    "AIResponse",
    "AsyncBackend",
    "Backend",
    "EmbedResponse",
    "StreamChunk",
    "check_messages",
    "check_prompt",
    "check_sampling",
    "sampling_options",
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


# -- the arguments every backend and cache takes, checked where the user passes them --------

_EXAMPLE = "[{'role': 'user', 'content': 'hello'}]"
_MISSING = object()


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_prompt(prompt: object, where: str) -> None:
    """TypeError (naming `where`, the argument and the fix) unless `prompt` is a str.

    >>> check_prompt(5, "OllamaClient.generate")
    Traceback (most recent call last):
    ...
    TypeError: OllamaClient.generate: prompt must be a str, got int 5; pass the text, e.g. \
generate('hello')
    """
    if not isinstance(prompt, str):
        raise TypeError(
            f"{where}: prompt must be a str, got {type(prompt).__name__} "
            f"{_short(prompt)}; pass the text, e.g. generate('hello')"
        )


def check_messages(messages: object, where: str) -> None:
    """Raise unless `messages` is a list (or tuple) of mappings, each with a str ``role`` and
    a ``content`` (an assistant turn may carry ``tool_calls`` instead): TypeError for a
    wrong type, ValueError for a missing key, naming `where`, the argument and the fix.

    >>> check_messages("hello", "CachedClient.chat")
    Traceback (most recent call last):
    ...
    TypeError: CachedClient.chat: messages must be a list of messages, got str 'hello'; \
pass [{'role': 'user', 'content': 'hello'}]
    """
    # Exact-type tests first: this runs on every cached call, and ABC checks cost more.
    if (
        type(messages) is not list
        and type(messages) is not tuple
        and (isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Sequence))
    ):
        fix = (
            f"[{{'role': 'user', 'content': {messages!r}}}]"
            if isinstance(messages, str) and len(messages) <= 40
            else _EXAMPLE
        )
        if isinstance(messages, Mapping):
            fix = "a list holding it, [message]"
        raise TypeError(
            f"{where}: messages must be a list of messages, got "
            f"{type(messages).__name__} {_short(messages)}; pass {fix}"
        )
    for i, message in enumerate(messages):
        if type(message) is not dict and not isinstance(message, Mapping):
            raise TypeError(
                f"{where}: messages[{i}] must be a dict with 'role' and "
                f"'content', got {type(message).__name__} {_short(message)}; "
                f"pass messages like {_EXAMPLE}"
            )
        role = message.get("role", _MISSING)
        if type(role) is not str:
            if role is _MISSING:
                raise ValueError(
                    f"{where}: messages[{i}] has no 'role'; each message needs "
                    f"one ('system', 'user', 'assistant' or 'tool'), e.g. "
                    f"{_EXAMPLE}"
                )
            if not isinstance(role, str):
                raise TypeError(
                    f"{where}: messages[{i}]['role'] must be a str, got {type(role).__name__}"
                )
        if "content" not in message and not message.get("tool_calls"):
            raise ValueError(
                f"{where}: messages[{i}] has no 'content'; each message needs "
                f"one (or 'tool_calls'), e.g. {_EXAMPLE}"
            )


def _check_number(value: object, name: str, where: str) -> None:
    if (
        type(value) is not float
        and type(value) is not int
        and (isinstance(value, bool) or not isinstance(value, (int, float)))
    ):
        raise TypeError(
            f"{where}: {name} must be a number such as 0.2, got "
            f"{type(value).__name__} {_short(value)}"
        )
    if not math.isfinite(value):
        raise ValueError(f"{where}: {name} must be a finite number, got {value!r}")


def check_sampling(
    where: str,
    *,
    temperature: object = None,
    max_tokens: object = None,
    options: object = None,
    tools: object = None,
) -> None:
    """Raise (naming `where` and the argument) unless ``temperature`` (and
    ``options['temperature']``) is a finite number, ``max_tokens`` an int, ``options`` a
    mapping and ``tools`` a list of mappings; None passes for each.

    >>> check_sampling("CachedClient.generate", temperature="0.0")
    Traceback (most recent call last):
    ...
    TypeError: CachedClient.generate: temperature must be a number such as 0.2, got str '0.0'
    """
    if temperature is not None:
        _check_number(temperature, "temperature", where)
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise TypeError(
            f"{where}: max_tokens must be an int, got "
            f"{type(max_tokens).__name__} {_short(max_tokens)}"
        )
    if options is not None:
        if not isinstance(options, Mapping):
            raise TypeError(
                f"{where}: options must be a dict such as {{'top_p': 0.9}}, got "
                f"{type(options).__name__} {_short(options)}"
            )
        if options.get("temperature") is not None:
            _check_number(options["temperature"], "options['temperature']", where)
    if tools is not None and (
        isinstance(tools, (str, bytes, Mapping))
        or not isinstance(tools, Sequence)
        or not all(isinstance(t, Mapping) for t in tools)
    ):
        raise TypeError(
            f"{where}: tools must be a list of tool dicts such as "
            "[{'type': 'function', 'function': {...}}], got "
            f"{type(tools).__name__} {_short(tools)}"
        )


class Backend(Closing, ABC):
    """A blocking client of a model server."""

    model: str

    @abstractmethod
    def generate(
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
    ) -> Iterator[StreamChunk]:
        """Complete `prompt`, yielding chunks as they arrive."""

    @abstractmethod
    def chat(
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
    ) -> Iterator[StreamChunk]:
        """Answer the next turn, yielding chunks as they arrive."""

    @abstractmethod
    def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        """Embed a batch of texts in one request."""

    def close(self) -> None:
        """Release connections. Idempotent."""
        return None


class AsyncBackend(AsyncClosing, ABC):
    """The asyncio twin of `Backend`: same methods, as coroutines; ``aclose`` to release."""

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
        """Complete `prompt`, yielding chunks as they arrive (an async generator)."""

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
        """Answer the next turn, yielding chunks as they arrive (an async generator)."""

    @abstractmethod
    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        """Embed a batch of texts in one request."""

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
        return None


def sampling_options(
    options: Mapping[str, Any] | None, temperature: float | None, max_tokens: int | None
) -> dict[str, Any]:
    """A copy of `options` with the explicit `temperature` and `max_tokens` laid over it,
    in Ollama's option names (``num_predict`` for the token limit; the cache's keys and
    the Ollama API both use them).

    >>> sampling_options({"seed": 1}, 0.0, 64)
    {'seed': 1, 'temperature': 0.0, 'num_predict': 64}
    """
    merged = dict(options or {})
    if temperature is not None:
        merged["temperature"] = temperature
    if max_tokens is not None:
        merged["num_predict"] = max_tokens
    return merged
