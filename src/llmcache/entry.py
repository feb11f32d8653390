"""Cached entries and their codec.

A `CachedResponse` is what every tier stores. Tiers that keep bytes (disk, Redis) use a
`Codec`; the default `JSONCodec` writes orjson with a magic prefix and a format version, and
reads only that. Nothing is ever pickled: a shared tier must not be a code-execution path,
and bytes read from it are treated as untrusted input (`CodecError` on anything malformed).

>>> entry = CachedResponse(content="4", model="m", fingerprint="ab")
>>> JSONCodec().decode(JSONCodec().encode(entry)) == entry
True
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol, runtime_checkable

import orjson

from llmcache.errors import LLMCacheError

__all__ = ["CachedResponse", "Codec", "CodecError", "JSONCodec", "JSONValue", "non_json"]

JSONValue = Any
"""Plain JSON data: str, int, float, bool, None, and lists and str-keyed dicts of them."""


def non_json(
    value: Any, path: str, item_path: Callable[[str, str], str]
) -> tuple[str, str, Any] | None:
    """The first place where `value` is not plain JSON data (what every tier stores and
    gives back equal), as ``(path, why, offender)``, or ``None`` when all of it is.

    `why` is "number" (NaN or an infinity: JSON cannot hold them, and orjson would silently
    write ``null``), "key" (a dict key that is not str) or "type". A list item's path is
    ``path[i]``; `item_path(path, key)` names a dict item's, so each caller's messages keep
    its own notation.

    >>> non_json({"a": [1, float("nan")]}, "x", lambda p, k: f"{p}.{k}")
    ('x.a[1]', 'number', nan)
    """
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return None
    if t is float:
        return None if value - value == 0.0 else (path, "number", value)
    if t is dict:
        for k, v in value.items():
            if type(k) is not str:
                return path, "key", k
            found = non_json(v, item_path(path, k), item_path)
            if found is not None:
                return found
        return None
    if t is list or t is tuple:
        for i, v in enumerate(value):
            found = non_json(v, f"{path}[{i}]", item_path)
            if found is not None:
                return found
        return None
    return path, "type", value


class CodecError(LLMCacheError, ValueError):
    """Bytes that are not a valid encoded entry (corrupt, foreign or planted)."""


@dataclass(slots=True)
class CachedResponse:
    """One cached answer.

    ``content`` is the answer: usually text, or JSON data for a decorated function that
    returns dicts and lists. ``chunks`` holds a completed stream's pieces, in order, for
    replay. ``fingerprint`` identifies the request that produced it (see `llmcache.keys`).
    ``expires_at`` is wall-clock seconds, ``None`` for never.
    """

    content: JSONValue
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_used: int = 0
    created_at: float = field(default_factory=time.time)
    expires_at: float | None = None
    hits: int = 0
    fingerprint: str = ""
    chunks: list[JSONValue] | None = None
    metadata: dict[str, JSONValue] = field(default_factory=dict)

    def is_expired(self, now: float) -> bool:
        """True when the entry's expiry time has passed at wall-clock `now`."""
        return self.expires_at is not None and now >= self.expires_at

    def with_ttl(self, ttl: float | None, now: float) -> CachedResponse:
        """A copy whose expiry is `ttl` seconds after `now` (never, for ``None``)."""
        return replace(self, expires_at=None if ttl is None else now + ttl)

    def to_dict(self) -> dict[str, JSONValue]:
        """The entry as plain JSON data."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, JSONValue]) -> CachedResponse:
        """Build an entry from `to_dict` output, validating every field's type."""
        if not isinstance(data, dict):
            raise CodecError(f"entry: expected an object, got {type(data).__name__}")
        kwargs: dict[str, Any] = {}
        for name, check in _FIELD_CHECKS.items():
            if name in data:
                value = data[name]
                if not check(value):
                    raise CodecError(
                        f"entry.{name}: unexpected value of type {type(value).__name__}"
                    )
                kwargs[name] = value
        if "content" not in kwargs:
            raise CodecError("entry.content: missing")
        return cls(**kwargs)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_FIELD_CHECKS: dict[str, Any] = {
    "content": lambda v: True,
    "model": lambda v: isinstance(v, str),
    "prompt_tokens": _is_int,
    "completion_tokens": _is_int,
    "tokens_used": _is_int,
    "created_at": _is_num,
    "expires_at": lambda v: v is None or _is_num(v),
    "hits": _is_int,
    "fingerprint": lambda v: isinstance(v, str),
    "chunks": lambda v: v is None or isinstance(v, list),
    "metadata": lambda v: isinstance(v, dict),
}


@runtime_checkable
class Codec(Protocol):
    """Turns entries into bytes and back. `decode` raises `CodecError` on bad input."""

    def encode(self, entry: CachedResponse) -> bytes: ...

    def decode(self, data: bytes) -> CachedResponse: ...


class JSONCodec:
    """orjson with a magic prefix (``LMC1``) so foreign bytes are refused before parsing.

    >>> JSONCodec().decode(b"\\x80\\x04pickle")
    Traceback (most recent call last):
    ...
    llmcache.entry.CodecError: not an llmcache entry (bad magic prefix)
    """

    MAGIC = b"LMC1"

    def encode(self, entry: CachedResponse) -> bytes:
        try:
            return self.MAGIC + orjson.dumps(entry.to_dict())
        except TypeError as exc:
            raise TypeError(f"entry cannot be encoded as JSON: {exc}") from None

    def decode(self, data: bytes) -> CachedResponse:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CodecError(f"expected bytes, got {type(data).__name__}")
        raw = bytes(data)
        if not raw.startswith(self.MAGIC):
            raise CodecError("not an llmcache entry (bad magic prefix)")
        try:
            obj = orjson.loads(raw[_SKIP:])
        except orjson.JSONDecodeError as exc:
            raise CodecError(f"corrupt entry: {exc}") from None
        # Bytes from `encode` hold every field in declaration order, so one tuple compare of
        # the keys and one set lookup of the value types validate the whole entry (about
        # half the cost of checking field by field); anything else is checked field by field.
        if (
            type(obj) is dict
            and tuple(obj) == _FIELD_NAMES
            and tuple(map(type, obj.values())) in _SIGNATURES
        ):
            return CachedResponse(*obj.values())
        return CachedResponse.from_dict(obj)


_NONE = type(None)
_ALLOWED: dict[str, tuple[type, ...]] = {
    "content": (str, int, float, bool, _NONE, list, dict),
    "model": (str,),
    "prompt_tokens": (int,),
    "completion_tokens": (int,),
    "tokens_used": (int,),
    "created_at": (int, float),
    "expires_at": (_NONE, int, float),
    "hits": (int,),
    "fingerprint": (str,),
    "chunks": (_NONE, list),
    "metadata": (dict,),
}
_FIELD_NAMES = tuple(f.name for f in fields(CachedResponse))
# Every combination of allowed value types, in field order (a few hundred tuples).
_SIGNATURES = frozenset(itertools.product(*(_ALLOWED[name] for name in _FIELD_NAMES)))
_SKIP = len(JSONCodec.MAGIC)
assert set(_FIELD_NAMES) == set(_ALLOWED), "update _ALLOWED when CachedResponse changes"
