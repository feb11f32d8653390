"""The backend interface: what llmcache needs from a model server's client.

Sync and async twins follow httpx's naming rule: `Backend` / `AsyncBackend`, the same method
names (coroutines on the async twin), ``close`` / ``aclose``, and context managers on both.
A backend knows its default ``model``; every call may override it. Failures raise the tree in
`llmcache.backends.errors`. The interface lives in ``_async_backend`` (``Backend`` is generated
from it), the types of what it takes and returns in ``_payloads``; this module is their face
and holds the checks of the arguments.

>>> from llmcache.backends import AIResponse
>>> AIResponse(content="4", model="m").cached
False
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from llmcache._numbers import is_number
from llmcache.backends._async_backend import AsyncBackend
from llmcache.backends._payloads import AIResponse, EmbedResponse, StreamChunk
from llmcache.backends._payloads import Format as Format
from llmcache.backends._payloads import Message as Message
from llmcache.backends._sync_backend import Backend

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
    if not is_number(value):
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
