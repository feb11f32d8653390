"""Canonical request keys.

A cache key must change whenever anything that changes a model's output changes, and must
not change when nothing does. This module turns a request into *canonical bytes* (orjson with
sorted keys, numbers normalised) and hashes them with xxh3_128.

Pure functions only; this module imports nothing else from llmcache.

>>> from llmcache.keys import Request, make_key
>>> a = Request(model="llama3", prompt="hi", options={"temperature": 0, "seed": 1})
>>> b = Request(model="llama3", prompt="hi", options={"seed": 1.0, "temperature": -0.0})
>>> make_key(a) == make_key(b)
True
>>> make_key(a).startswith("v1:")
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import xxhash

__all__ = [
    "KEY_VERSION",
    "Request",
    "canonical_bytes",
    "canonical_call",
    "fingerprint",
    "hash_bytes",
    "make_key",
    "normalize",
]

#: Bumped whenever the canonical form changes, so old entries are never served.
KEY_VERSION = 1
_PREFIX = f"v{KEY_VERSION}:"

# Option spellings that mean the same thing to a model server.
_OPTION_ALIASES = {"max_tokens": "num_predict"}

_SCALARS = (str, bool, type(None))
_I64 = 2**63
_F64 = float(_I64)  # float-to-float compares are much cheaper than float-to-big-int


class _BadValue(Exception):
    """Internal: carries the failing field's path outwards while the recursion unwinds."""

    def __init__(self, kind: type[Exception], message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.parts: list[str] = []


def _number(value: float) -> int | float:
    if value - value != 0.0:  # true only for NaN and the infinities
        raise _BadValue(ValueError, f"{value!r} is not a finite number; NaN and infinities "
                        "cannot be part of a cache key")
    if value.is_integer() and -_F64 <= value < _F64:
        # 1.0 == 1 and -0.0 == 0.0 must give one key; ints serialise without sign or dot.
        return int(value)
    return value


def _big_int(value: int) -> Any:
    # orjson refuses integers outside 64 bits; a tagged object keeps them exact and apart
    # from any string (a NUL-prefixed key cannot come from ordinary data).
    return {"\u0000int": str(value)}


def _norm(value: Any) -> Any:
    # Hot path: exact type checks first (cheap), the general cases after. Paths are built
    # only when something fails, so a valid request pays nothing for them.
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        return value if -_I64 <= value < _I64 else _big_int(value)
    if t is float:
        return _number(value)
    if t is dict or isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if type(k) is not str:
                raise _BadValue(TypeError, f"mapping keys must be str, got "
                                f"{type(k).__name__} ({k!r})")
            tv = type(v)
            if tv is str or tv is bool or v is None or (tv is int and -_I64 <= v < _I64):
                out[k] = v
                continue
            try:
                out[k] = _number(v) if tv is float else _norm(v)
            except _BadValue as exc:
                exc.parts.append(f".{k}")
                raise
        return out
    if t is list or t is tuple or isinstance(value, (list, tuple)):
        items = []
        for i, v in enumerate(value):
            try:
                items.append(_norm(v))
            except _BadValue as exc:
                exc.parts.append(f"[{i}]")
                raise
        return items
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    if isinstance(value, int):  # int subclasses (IntEnum ...): their plain value
        return _norm(int(value))
    if isinstance(value, float):
        return _number(float(value))
    raise _BadValue(TypeError, f"values of type {type(value).__name__} cannot be part of a "
                    "cache key; pass str, int, float, bool, None, or lists and dicts of them")


def normalize(value: Any, path: str = "request") -> Any:
    """Return `value` as plain JSON data in a canonical shape.

    Floats that are whole numbers become ints (so ``1.0`` and ``1`` make one key, and so do
    ``0.0`` and ``-0.0``); tuples become lists; ``bytes`` become their sha256 (images are
    keyed by content hash). NaN and infinities raise ``ValueError``; any other type raises
    ``TypeError`` naming the field path.

    >>> normalize({"t": 1.0, "stop": ("a",)})
    {'t': 1, 'stop': ['a']}
    >>> normalize({"opts": {"x": object()}}, "request")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: request.opts.x: values of type object cannot be part of a cache key; ...
    """
    try:
        return _norm(value)
    except _BadValue as exc:
        where = path + "".join(reversed(exc.parts))
        raise exc.kind(f"{where}: {exc.message}") from None


def _normalize_options(options: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not options:
        return None
    out: dict[str, Any] = normalize(options, "request.options")
    if "max_tokens" not in out:
        return out
    for alias, name in _OPTION_ALIASES.items():
        if alias in out:
            value = out.pop(alias)
            if name in out and out[name] != value:
                raise ValueError(f"request.options: {alias}={value!r} and {name}={out[name]!r} "
                                 "disagree; pass only one of them")
            out[name] = value
    return out


def _image_ref(image: str | bytes, path: str) -> str:
    if isinstance(image, (bytes, bytearray)):
        return "sha256:" + hashlib.sha256(image).hexdigest()
    if isinstance(image, str):
        # base64 text: hash it too, so keys stay small and never hold the image itself.
        return "sha256:" + hashlib.sha256(image.encode()).hexdigest()
    raise TypeError(f"{path}: an image must be bytes or base64 str, got {type(image).__name__}")


@dataclass(frozen=True, slots=True)
class Request:
    """Everything about a model call that can change its answer.

    ``prompt`` is for completion-style calls, ``messages`` for chats; ``namespace`` scopes
    entries per tenant or application; ``extra`` carries any other server field that changes
    the output (``suffix``, ``think``, ``raw`` ...). Credentials never belong here.

    >>> Request(model="m", prompt="2+2?", format="json").model
    'm'
    """

    model: str
    prompt: str | None = None
    messages: Sequence[Mapping[str, Any]] | None = None
    system: str | None = None
    format: str | Mapping[str, Any] | None = None
    options: Mapping[str, Any] | None = None
    tools: Sequence[Mapping[str, Any]] | None = None
    images: Sequence[str | bytes] | None = None
    namespace: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_canonical(self) -> dict[str, Any]:
        """The request as normalised JSON data (what the key is computed from).

        Absent fields are kept as ``null`` so the shape is fixed: one dict literal is the
        cheapest way to build it, and the key stays unambiguous.
        """
        model, prompt = self.model, self.prompt
        if type(model) is not str or not model:
            raise ValueError("request.model: a model name is required (for example 'llama3')")
        if prompt is not None and type(prompt) is not str:
            raise TypeError(f"request.prompt: expected str, got {type(prompt).__name__}")
        system, fmt = self.system, self.format
        if system is not None and type(system) is not str:
            raise TypeError(f"request.system: expected str, got {type(system).__name__}")
        return {
            "v": KEY_VERSION,
            "model": model,
            "ns": self.namespace,
            "prompt": prompt,
            "system": system,
            "messages": None if self.messages is None
            else normalize(self.messages, "request.messages"),
            "format": fmt if fmt is None or type(fmt) is str
            else normalize(fmt, "request.format"),
            "options": _normalize_options(self.options),
            "tools": normalize(self.tools, "request.tools") if self.tools else None,
            "images": [_image_ref(im, f"request.images[{i}]")
                       for i, im in enumerate(self.images)] if self.images else None,
            "extra": normalize(self.extra, "request.extra") if self.extra else None,
        }


def canonical_bytes(value: Request | Any) -> bytes:
    """Canonical JSON bytes of a `Request` or of any JSON-like value.

    >>> canonical_bytes({"b": 1.0, "a": [True, None]})
    b'{"a":[true,null],"b":1}'
    """
    data = value.to_canonical() if isinstance(value, Request) else normalize(value, "value")
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def hash_bytes(data: bytes) -> str:
    """The versioned key for already-canonical bytes (``v1:`` + xxh3_128 hex)."""
    return _PREFIX + xxhash.xxh3_128_hexdigest(data)


def fingerprint(data: bytes) -> str:
    """An independent 64-bit hash of canonical bytes, stored inside each entry.

    A read whose stored fingerprint differs from the request's is a miss: it catches a key
    collision and an entry planted under the wrong key in a shared tier.
    """
    return xxhash.xxh3_64_hexdigest(data, seed=0x6C6D6361)


def canonical_call(ident: str, namespace: str, args: Any) -> bytes:
    """Canonical bytes of a function call: its identity, namespace and arguments.

    Used by ``@cached_generate``; a flat tuple avoids normalising a wrapper dict on every
    call (the hit path is a few microseconds in all).

    >>> canonical_call("mod.f", "", {"t": 0.0, "p": "x"})
    b'[1,"mod.f","",{"p":"x","t":0}]'
    """
    try:
        data = _norm(args)
    except _BadValue as exc:
        where = "args" + "".join(reversed(exc.parts))
        raise exc.kind(f"{where}: {exc.message}") from None
    return orjson.dumps((KEY_VERSION, ident, namespace, data), option=orjson.OPT_SORT_KEYS)


def make_key(request: Request | Any) -> str:
    """The cache key of a request: ``v1:`` followed by the xxh3_128 hex of its canonical bytes.

    >>> make_key(Request(model="m", prompt="a")) != make_key(Request(model="m", prompt="b"))
    True
    """
    return hash_bytes(canonical_bytes(request))
