"""The decorator's codec: a function's results to entries and back (`FunctionValues`).

Storable results: ``str``; JSON-like data (dicts with str keys, lists, tuples, finite
numbers, bools, None); ``AIResponse``; ``CachedResponse``. The entry's ``metadata["kind"]``
says which, so a hit gives back the same type. Text is immutable and returned as is; JSON
data is copied on every hit (an orjson round trip), so a caller mutating its dict cannot
change what the next caller gets. A tuple comes back as a tuple: JSON has only lists, so
the entry lists where the tuples were (``metadata["tuples"]``, paths from the root).

`for_followers` is what the callers that waited on another caller's call get: the same
value, their own copy of it when it is mutable data.
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from typing import Any

import orjson

from llmcache.backends.base import AIResponse
from llmcache.entry import CachedResponse, non_json

__all__ = [
    "FUNCTION_VALUES",
    "FunctionValues",
    "check_json",
    "for_followers",
    "restore_value",
    "to_entry",
]

_KIND = "kind"
_TUPLES = "tuples"
_IMMUTABLE = (str, int, float, bool, type(None))


def check_json(value: Any, path: str = "result") -> None:
    """Raise TypeError (naming the path and type) unless `value` is plain JSON data.

    NaN and infinities raise ValueError: JSON cannot hold them, and orjson would silently
    turn them into ``null``.
    """
    found = non_json(value, path, _dotted)
    if found is None:
        return
    where, why, bad = found
    if why == "number":
        raise ValueError(f"{where}: {bad!r} cannot be cached (not a finite number)")
    if why == "key":
        raise TypeError(f"{where}: dict keys must be str to be cached, got {type(bad).__name__}")
    raise TypeError(
        f"{where}: a value of type {type(bad).__name__} cannot be cached; return "
        "str, JSON-like dicts and lists, AIResponse or CachedResponse"
    )


def _dotted(path: str, key: str) -> str:
    return f"{path}.{key}"


def to_entry(value: Any, *, fingerprint: str, ttl: float | None) -> CachedResponse:
    """An entry holding `value`, stamped with the request's fingerprint and expiry."""
    now = time.time()
    expires = None if ttl is None else now + ttl
    if type(value) is str:
        return CachedResponse(
            content=value, fingerprint=fingerprint, created_at=now, expires_at=expires
        )
    if isinstance(value, AIResponse):
        meta: dict[str, Any] = {
            _KIND: "AIResponse",
            "done_reason": value.done_reason,
            "duration_ms": value.duration_ms,
        }
        if value.tool_calls is not None:
            check_json(value.tool_calls, "result.tool_calls")
            meta["tool_calls"] = orjson.loads(orjson.dumps(value.tool_calls))
        if value.thinking is not None:
            meta["thinking"] = value.thinking
        return CachedResponse(
            content=value.content,
            model=value.model,
            prompt_tokens=value.prompt_tokens,
            completion_tokens=value.completion_tokens,
            tokens_used=value.tokens_used,
            fingerprint=fingerprint,
            created_at=now,
            expires_at=expires,
            metadata=meta,
        )
    if isinstance(value, CachedResponse):
        check_json(value.content, "result.content")
        check_json(value.metadata, "result.metadata")
        copied = orjson.loads(
            orjson.dumps(
                {"content": value.content, "chunks": value.chunks, "metadata": value.metadata}
            )
        )
        return replace(
            value,
            fingerprint=fingerprint,
            created_at=now,
            expires_at=expires,
            content=copied["content"],
            chunks=copied["chunks"],
            metadata={**copied["metadata"], _KIND: "CachedResponse"},
        )
    check_json(value)
    json_meta: dict[str, Any] = {_KIND: "json"}
    if type(value) is dict or type(value) is list or type(value) is tuple:
        tuples: list[list[str | int]] = []
        _find_tuples(value, [], tuples)
        if tuples:
            json_meta[_TUPLES] = tuples
        # Store a private copy: the caller keeps (and may mutate) the object it returned.
        value = orjson.loads(orjson.dumps(value))
    return CachedResponse(
        content=value,
        fingerprint=fingerprint,
        created_at=now,
        expires_at=expires,
        metadata=json_meta,
    )


def _find_tuples(value: Any, path: list[str | int], out: list[list[str | int]]) -> None:
    t = type(value)
    if t is dict:
        for k, v in value.items():
            if type(v) in (dict, list, tuple):
                _find_tuples(v, [*path, k], out)
    elif t is list or t is tuple:
        if t is tuple:
            out.append(path)
        for i, v in enumerate(value):
            if type(v) in (dict, list, tuple):
                _find_tuples(v, [*path, i], out)


def _retuple(value: Any, paths: Any) -> Any:
    # Deepest first, so every parent on a path is still a list (assignable) when reached.
    if type(paths) is not list:
        raise ValueError("entry.metadata.tuples: expected a list of paths")
    for path in sorted(paths, key=len, reverse=True):
        if type(path) is not list:
            raise ValueError("entry.metadata.tuples: expected a list of paths")
        if not path:
            value = _as_tuple(value)
            continue
        parent = value
        try:
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = _as_tuple(parent[path[-1]])
        except (LookupError, TypeError) as exc:
            raise ValueError(f"entry.metadata.tuples: {path!r} is not in the value") from exc
    return value


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if type(value) is not list:
        raise ValueError("entry.metadata.tuples: a path names something that is not a list")
    return tuple(value)


def for_followers(value: Any) -> Any:
    """What a caller that waited on another's call gets: that call's value, as its own copy
    when the value is data a caller could mutate (JSON-like, ``AIResponse``,
    ``CachedResponse``); any other value (a set the policy did not store, an object) is the
    same object the first caller got."""
    t = type(value)
    if t in _IMMUTABLE:
        return value
    if t is dict or t is list or t is tuple:
        try:
            check_json(value)
        except (TypeError, ValueError):
            return value
        return copy.deepcopy(value)
    if isinstance(value, (AIResponse, CachedResponse)):
        try:
            return copy.deepcopy(value)
        except Exception:  # a raw payload that cannot be copied: shared, as other objects
            return value
    return value


def restore_value(entry: CachedResponse) -> Any:
    """The value a hit returns for `entry` (a fresh object for every mutable kind)."""
    kind = entry.metadata.get(_KIND) if entry.metadata else None
    if kind is None:
        return entry.content
    if kind == "json":
        content = entry.content
        if type(content) is str or content is None or type(content) in (int, float, bool):
            return content
        fresh = orjson.loads(orjson.dumps(content))
        paths = entry.metadata.get(_TUPLES)
        return fresh if paths is None else _retuple(fresh, paths)
    if kind == "AIResponse":
        meta = entry.metadata
        return AIResponse(
            content=entry.content,
            model=entry.model,
            tokens_used=entry.tokens_used,
            duration_ms=0.0,
            cached=True,
            prompt_tokens=entry.prompt_tokens,
            completion_tokens=entry.completion_tokens,
            done_reason=meta.get("done_reason"),
            tool_calls=orjson.loads(orjson.dumps(meta["tool_calls"]))
            if meta.get("tool_calls") is not None
            else None,
            thinking=meta.get("thinking"),
        )
    if kind == "CachedResponse":
        meta = {k: v for k, v in entry.metadata.items() if k != _KIND}
        return replace(
            entry,
            metadata=orjson.loads(orjson.dumps(meta)),
            chunks=None if entry.chunks is None else orjson.loads(orjson.dumps(entry.chunks)),
        )
    raise ValueError(f"entry.metadata.kind: unknown kind {kind!r}")


class FunctionValues:
    """The codec of ``@cached_generate`` (see the module docstring). Strict: a function that
    returns what no tier can hold gets a TypeError naming what, and nothing is stored."""

    strict = True

    def encode(self, value: Any, fingerprint: str, ttl: float | None) -> CachedResponse:
        return to_entry(value, fingerprint=fingerprint, ttl=ttl)

    # The function itself, not a method calling it: one call less on every hit.
    decode = staticmethod(restore_value)

    def share(self, value: Any) -> Any:
        return for_followers(value)

    def semantic(self, entry: CachedResponse) -> Any:
        return restore_value(entry)


FUNCTION_VALUES = FunctionValues()
