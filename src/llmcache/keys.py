"""Canonical request keys.

A cache key must change whenever anything that changes a model's output changes, and must
not change when nothing does. This module turns a request into *canonical bytes* (orjson with
sorted keys, numbers normalised) and hashes them with xxh3_128. A `Request` is serialised as
a fixed-order JSON array of its fields rather than an object: each field has its own slot,
so nothing in one field can be read as another, and there are no field names to sort.
`make_key` hashes values that are already canonical without copying them first (most are);
`Request.to_canonical` builds the same data as fresh dicts and lists.

Pure functions only; this module imports nothing else from llmcache.

>>> from llmcache.keys import Request, make_key
>>> a = Request(model="llama3", prompt="hi", options={"temperature": 0, "seed": 1})
>>> b = Request(model="llama3", prompt="hi", options={"seed": 1.0, "temperature": -0.0})
>>> make_key(a) == make_key(b)
True
>>> make_key(a)[:3]
'v2:'
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import xxhash

__all__ = [
    "FIELDS",
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
#: 2: a request is a positional array (was an 11-key object); plain ints reach 2**64 - 1.
KEY_VERSION = 2
_PREFIX = f"v{KEY_VERSION}:"

# Option spellings that mean the same thing to a model server.
_OPTION_ALIASES = {"max_tokens": "num_predict"}

# Ints orjson writes as plain numbers (int64 min .. uint64 max); others are tagged. The
# bounds match orjson's so the request fast path can leave int sizes to it: it raises outside.
_INT_MIN = -(2**63)
_INT_END = 2**64
_F_MIN = float(_INT_MIN)  # float-to-float compares are much cheaper than float-to-big-int
_F_END = float(_INT_END)
# Exact types orjson writes as `_norm` would (ints: within its range, which orjson checks;
# floats are not here as they need a value check as well).
_PLAIN = frozenset({str, int, bool, type(None)})
_SORT = orjson.OPT_SORT_KEYS
_dumps = orjson.dumps
_xxh128 = xxhash.xxh3_128_hexdigest


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
    if value.is_integer() and _F_MIN <= value < _F_END:
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
        return value if _INT_MIN <= value < _INT_END else _big_int(value)
    if t is float:
        return _number(value)
    if t is dict or isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if type(k) is not str:
                raise _BadValue(TypeError, f"mapping keys must be str, got "
                                f"{type(k).__name__} ({k!r})")
            tv = type(v)
            if tv is str or tv is bool or v is None or (tv is int and _INT_MIN <= v < _INT_END):
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


def _as_is(value: Any) -> bool:
    # Whether orjson writes `value` exactly as it would write _norm(value), so the copy can be
    # skipped: exact dicts, lists and tuples of str/int/bool/None and finite non-whole floats
    # (`0.0 < v % 1.0` holds for no other float). Key types and int sizes are left to orjson,
    # which raises on exactly those _norm would change or reject.
    t = type(value)
    if t is not list and t is not tuple:
        if t is not dict:
            return False
        value = value.values()
    for v in value:  # (type(v) again is faster than a local here)
        if type(v) in _PLAIN:
            continue
        if type(v) is dict:  # one level inlined: chat messages are lists of flat dicts
            for w in v.values():
                if type(w) not in _PLAIN and not (type(w) is float and 0.0 < w % 1.0) \
                        and not _as_is(w):
                    return False
        elif not (type(v) is float and 0.0 < v % 1.0) and not _as_is(v):
            return False
    return True


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


def _fix_flat_options(options: dict[str, Any]) -> dict[str, Any] | None:
    # The scan in _fields met a value to change (and saw no max_tokens). Whole floats
    # (temperature=0.0, the usual case) are mended in a copy; anything else takes the full
    # path. Key types and int sizes are still left to orjson, as in _fields.
    out = options.copy()
    for k, v in options.items():
        if type(v) is float:
            if v % 1.0 == 0.0:  # whole and finite: NaN and infinities give NaN here
                out[k] = int(v) if _F_MIN <= v < _F_END else v  # as _number does
            elif not 0.0 < v % 1.0:
                return _normalize_options(options)
        elif type(v) not in _PLAIN:
            return _normalize_options(options)
    return out


def _image_ref(image: str | bytes, index: int) -> str:
    if isinstance(image, (bytes, bytearray)):
        return "sha256:" + hashlib.sha256(image).hexdigest()
    if isinstance(image, str):
        # base64 text: hash it too, so keys stay small and never hold the image itself.
        return "sha256:" + hashlib.sha256(image.encode()).hexdigest()
    raise TypeError(f"request.images[{index}]: an image must be bytes or base64 str, got "
                    f"{type(image).__name__}")


#: Field names of `Request.to_canonical`, in the order of the array that is hashed.
FIELDS = ("v", "model", "ns", "prompt", "system", "messages", "format", "options", "tools",
          "images", "extra")


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
        """The request as normalised JSON data, keyed by `FIELDS` (absent fields are ``null``).

        Its values, in order, are exactly what `canonical_bytes` serialises:

        >>> r = Request(model="m", prompt="p", options={"seed": 1.0})
        >>> c = r.to_canonical()
        >>> c["options"], c["messages"]
        ({'seed': 1}, None)
        >>> orjson.dumps(tuple(c.values()), option=orjson.OPT_SORT_KEYS) == canonical_bytes(r)
        True

        A subclass that overrides this method decides what its keys hold: they then hash
        the dict it returns (with its field names).
        """
        return dict(zip(FIELDS, _fields(self, False), strict=True))


_to_canonical = Request.to_canonical  # to tell when a subclass or a test redefines it


def _fields(r: Request, scan: bool) -> tuple[Any, ...]:
    # The one place a request is normalised: `to_canonical` and the hashed bytes share it.
    # With `scan`, values that are already canonical (`_as_is`) are used as they are, with no
    # copy, as the caller serialises them at once (a dict changed meanwhile by another thread
    # is the caller's race, as it was when the copy could see it half-changed). That leaves
    # key types and int sizes to orjson, which raises TypeError on both; the caller then
    # retries without `scan`, and `normalize` gives the usual error or the tagged big int.
    model, prompt, system, fmt, options = r.model, r.prompt, r.system, r.format, r.options
    if type(model) is not str or not model:
        raise ValueError("request.model: a model name is required (for example 'llama3')")
    if type(prompt) is not str and prompt is not None:  # str first: the common case
        raise TypeError(f"request.prompt: expected str, got {type(prompt).__name__}")
    if type(system) is not str and system is not None:
        raise TypeError(f"request.system: expected str, got {type(system).__name__}")
    if fmt is not None and type(fmt) is not str and not (scan and _as_is(fmt)):
        fmt = normalize(fmt, "request.format")
    if not options:
        options = None
    elif scan and type(options) is dict and "max_tokens" not in options:
        for v in options.values():  # _as_is inlined: options are on every request
            if type(v) is float:
                if 0.0 < v % 1.0:
                    continue
            elif type(v) in _PLAIN:
                continue
            options = _fix_flat_options(options)
            break
    else:
        options = _normalize_options(options)
    messages, tools, images = r.messages, r.tools, r.images
    extra: Mapping[str, Any] | None = r.extra
    if messages is not None and not (scan and _as_is(messages)):
        messages = normalize(messages, "request.messages")
    if not tools:
        tools = None
    elif not (scan and _as_is(tools)):
        tools = normalize(tools, "request.tools")
    if not extra:
        extra = None
    elif not (scan and _as_is(extra)):
        extra = normalize(extra, "request.extra")
    return (KEY_VERSION, model, r.namespace, prompt, system, messages, fmt, options, tools,
            [_image_ref(im, i) for i, im in enumerate(images)] if images else None, extra)


def _request_bytes(request: Request) -> bytes:
    data = _fields(request, True)
    try:
        return _dumps(data, option=_SORT)
    except orjson.JSONEncodeError:
        pass  # a non-str key or an int beyond 64 bits, left to orjson by _fields(scan=True)
    return _dumps(_fields(request, False), option=_SORT)


def canonical_bytes(value: Request | Any) -> bytes:
    """Canonical JSON bytes of a `Request` or of any JSON-like value.

    A request becomes the array of its `FIELDS` values, in that order:

    >>> canonical_bytes(Request(model="m", prompt="p", options={"top_p": 0.5}))
    b'[2,"m","","p",null,null,null,{"top_p":0.5},null,null,null]'
    >>> canonical_bytes({"b": 1.0, "a": [True, None]})
    b'{"a":[true,null],"b":1}'
    """
    if type(value) is Request or isinstance(value, Request):
        if type(value).to_canonical is _to_canonical:
            return _request_bytes(value)
        # A subclass (or a test double) that redefines to_canonical decides what its key
        # holds; its dict is hashed with the field names, as all requests were before v2.
        return _dumps(value.to_canonical(), option=_SORT)
    return _dumps(normalize(value, "value"), option=_SORT)


def hash_bytes(data: bytes) -> str:
    """The versioned key for already-canonical bytes (``v2:`` + xxh3_128 hex)."""
    return _PREFIX + _xxh128(data)


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
    b'[2,"mod.f","",{"p":"x","t":0}]'
    """
    try:
        data = _norm(args)
    except _BadValue as exc:
        where = "args" + "".join(reversed(exc.parts))
        raise exc.kind(f"{where}: {exc.message}") from None
    return _dumps((KEY_VERSION, ident, namespace, data), option=_SORT)


def make_key(request: Request | Any) -> str:
    """The cache key of a request: ``v2:`` followed by the xxh3_128 hex of its canonical bytes.

    >>> make_key(Request(model="m", prompt="a")) != make_key(Request(model="m", prompt="b"))
    True
    """
    if type(request) is not Request or Request.to_canonical is not _to_canonical:
        return _PREFIX + _xxh128(canonical_bytes(request))
    data = _fields(request, True)  # _request_bytes inlined: a call is ~5% of the total here
    try:
        return _PREFIX + _xxh128(_dumps(data, option=_SORT))
    except orjson.JSONEncodeError:
        pass  # as in _request_bytes
    return _PREFIX + _xxh128(_dumps(_fields(request, False), option=_SORT))
