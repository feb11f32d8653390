"""Canonical request keys.

A cache key must change whenever anything that changes a model's output changes, and must
not change when nothing does. This module turns a request into *canonical bytes* (orjson with
sorted keys, numbers normalised) and hashes them with xxh3_128. A `Request` is serialised as
a fixed-order JSON array of its fields rather than an object: each field has its own slot,
so nothing in one field can be read as another, and there are no field names to sort.
`make_key` hashes values that are already canonical without copying them first (most are);
`Request.to_canonical` builds the same data as fresh dicts and lists.

A request follows a model server's JSON rules (one number type: ``0`` and ``0.0`` are one
key). A decorated function's call follows Python's: `canonical_call` is *typed*, so two
argument values that differ in type or value (``1`` and ``1.0``, ``b"x"`` and ``"x"``, a
tuple and a list) never share a key. `function_identity` is what the decorator keys a
function by: its name, its code and what it captured.

Tags: a value JSON has no form for is written as a one-key object whose key starts with
NUL (``{"\u0000bytes": ...}``). A caller's own one-key dict whose key starts with NUL is
written in the tagged pair form, so no data can pass for a tag.

Pure functions only; this module imports nothing else from llmcache.

>>> from llmcache.keys import Request, make_key
>>> a = Request(model="llama3", prompt="hi", options={"temperature": 0, "seed": 1})
>>> b = Request(model="llama3", prompt="hi", options={"seed": 1.0, "temperature": -0.0})
>>> make_key(a) == make_key(b)
True
>>> make_key(a)[:3]
'v4:'
"""

from __future__ import annotations

import enum
import functools
import hashlib
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import xxhash

from llmcache.errors import LLMCacheError

__all__ = [
    "FIELDS",
    "IDENTITY_ATTR",
    "KEY_VERSION",
    "NotKeyable",
    "Request",
    "callable_name",
    "canonical_bytes",
    "canonical_call",
    "fingerprint",
    "function_identity",
    "hash_bytes",
    "key_and_fingerprint",
    "make_key",
    "normalize",
]

#: Bumped whenever the canonical form changes, so old entries are never served.
#: 2: a request is a positional array (was an 11-key object); plain ints reach 2**64 - 1.
#: 3: a decorated call is typed (`canonical_call`) and its function keyed by code and
#: captured values (`function_identity`); bytes are tagged, not "sha256:" strings.
#: 4: the fingerprint is the low half of the key's xxh3_128 digest (`key_and_fingerprint`:
#: one hash on the hit path), so entries of version 3 would fail their check anyway.
KEY_VERSION = 4
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
        raise _BadValue(
            ValueError,
            f"{value!r} is not a finite number; NaN and infinities cannot be part of a cache key",
        )
    if value.is_integer() and _F_MIN <= value < _F_END:
        # 1.0 == 1 and -0.0 == 0.0 must give one key; ints serialise without sign or dot.
        return int(value)
    return value


def _big_int(value: int) -> Any:
    # orjson refuses integers outside 64 bits; a tagged object keeps them exact and apart
    # from any string (a NUL-prefixed key cannot come from ordinary data).
    return {"\u0000int": str(value)}


def _each(convert: Callable[[Any], Any], items: Any) -> list[Any]:
    """`convert` applied to each of `items`; a failure's path gains the item's index."""
    out = []
    for i, v in enumerate(items):
        try:
            out.append(convert(v))
        except _BadValue as exc:
            exc.parts.append(f"[{i}]")
            raise
    return out


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
                raise _BadValue(
                    TypeError, f"mapping keys must be str, got {type(k).__name__} ({k!r})"
                )
            tv = type(v)
            if tv is str or tv is bool or v is None or (tv is int and _INT_MIN <= v < _INT_END):
                out[k] = v
                continue
            try:
                out[k] = _number(v) if tv is float else _norm(v)
            except _BadValue as exc:
                exc.parts.append(f".{k}")
                raise
        return _pair_form(out) if len(out) == 1 and _nul_key(out) else out
    if t is list or t is tuple or isinstance(value, (list, tuple)):
        return _each(_norm, value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"\u0000bytes": hashlib.sha256(value).hexdigest()}  # tagged: never a str
    if isinstance(value, int):  # int subclasses (IntEnum ...): their plain value
        return _norm(int(value))
    if isinstance(value, float):
        return _number(float(value))
    raise _BadValue(
        TypeError,
        f"values of type {type(value).__name__} cannot be part of a "
        "cache key; pass str, int, float, bool, None, or lists and dicts of them",
    )


def _nul_key(mapping: Mapping[Any, Any]) -> bool:
    # Called for one-key mappings: whether that key would read as a tag.
    for k in mapping:
        return type(k) is str and k[:1] == "\u0000"
    return False


def _pair_form(mapping: dict[Any, Any]) -> dict[str, Any]:
    # A caller's one-key dict whose key starts with NUL: written as a tagged list of pairs,
    # so that it can never be read as (or forge) a tag.
    return {"\u0000dict": [[k, v] for k, v in mapping.items()]}


def _as_is(value: Any) -> bool:
    # Whether orjson writes `value` exactly as it would write _norm(value), so the copy can be
    # skipped: exact dicts, lists and tuples of str/int/bool/None and finite non-whole floats
    # (`0.0 < v % 1.0` holds for no other float). Key types and int sizes are left to orjson,
    # which raises on exactly those _norm would change or reject.
    t = type(value)
    if t is not list and t is not tuple:
        if t is not dict or (len(value) == 1 and _nul_key(value)):
            return False
        value = value.values()
    for v in value:  # (type(v) again is faster than a local here)
        if type(v) in _PLAIN:
            continue
        if type(v) is dict:  # one level inlined: chat messages are lists of flat dicts
            if len(v) == 1 and _nul_key(v):
                return False
            for w in v.values():
                if (
                    type(w) not in _PLAIN
                    and not (type(w) is float and 0.0 < w % 1.0)
                    and not _as_is(w)
                ):
                    return False
        elif not (type(v) is float and 0.0 < v % 1.0) and not _as_is(v):
            return False
    return True


def normalize(value: Any, path: str = "request") -> Any:
    """Return `value` as plain JSON data in a canonical shape.

    Floats that are whole numbers become ints (so ``1.0`` and ``1`` make one key, and so do
    ``0.0`` and ``-0.0``): a model server reads JSON, which has one number type. Tuples
    become lists; ``bytes`` become a tagged sha256 (``{"\\x00bytes": hex}``, never equal to
    a string). NaN and infinities raise ``ValueError``; any other type raises ``TypeError``
    naming the field path.

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
                raise ValueError(
                    f"request.options: {alias}={value!r} and {name}={out[name]!r} "
                    "disagree; pass only one of them"
                )
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
        # base64 text: hash it too, so keys stay small and never hold the image itself. Its
        # own prefix: bytes whose value is this text are another image on the wire.
        return "base64-sha256:" + hashlib.sha256(image.encode()).hexdigest()
    raise TypeError(
        f"request.images[{index}]: an image must be bytes or base64 str, got {type(image).__name__}"
    )


#: Field names of `Request.to_canonical`, in the order of the array that is hashed.
FIELDS = (
    "v",
    "model",
    "ns",
    "prompt",
    "system",
    "messages",
    "format",
    "options",
    "tools",
    "images",
    "extra",
)


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
    elif (
        scan
        and type(options) is dict
        and "max_tokens" not in options
        and (len(options) != 1 or not _nul_key(options))
    ):
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
    return (
        KEY_VERSION,
        model,
        r.namespace,
        prompt,
        system,
        messages,
        fmt,
        options,
        tools,
        [_image_ref(im, i) for i, im in enumerate(images)] if images else None,
        extra,
    )


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
    b'[4,"m","","p",null,null,null,{"top_p":0.5},null,null,null]'
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
    """The versioned key for already-canonical bytes (``v4:`` + xxh3_128 hex)."""
    return _PREFIX + _xxh128(data)


def key_and_fingerprint(data: bytes) -> tuple[str, str]:
    """The key of canonical bytes and the fingerprint stored in its entry, from ONE
    xxh3_128 digest: the key is the whole digest (as `hash_bytes`), the fingerprint its
    low 64 bits.

    A read whose entry carries another fingerprint is a miss: that entry was written for
    another request (moved or planted under this key in a shared tier). A wrong answer
    needs two requests with the same 128-bit digest, as it would with a key of 64 bits and
    an independent 64-bit fingerprint, and a store never holds two requests under one key.

    >>> key, fp = key_and_fingerprint(b"[4, 1]")
    >>> key.startswith("v4:") and key.endswith(fp), len(key), len(fp)
    (True, 35, 16)
    """
    digest = _xxh128(data)
    return _PREFIX + digest, digest[16:]


def fingerprint(data: bytes) -> str:
    """The fingerprint of canonical bytes stored inside each entry (see
    `key_and_fingerprint`, which gives it with the key from one hash)."""
    return _xxh128(data)[16:]


def make_key(request: Request | Any) -> str:
    """The cache key of a request: ``v4:`` followed by the xxh3_128 hex of its canonical bytes.

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


# -- a decorated function's call: typed canonical bytes -------------------------------------


class NotKeyable(LLMCacheError, ValueError):
    """A value Python accepts but canonical bytes cannot hold: a str with a lone surrogate
    (``"\\ud800"``), which UTF-8 cannot encode. ``@cached_generate`` calls the function
    without the cache for it (a counted bypass)."""


def _type_name(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def _typed(value: Any) -> Any:
    # The typed twin of _norm: JSON's own forms for str, int, float, bool, None, lists and
    # dicts with str keys; tags for everything else. A float keeps its exact value and sign
    # (orjson always writes "." or "e" in one, so 1.0 is never read as 1).
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        return value if _INT_MIN <= value < _INT_END else {"\u0000int": str(value)}
    if t is float:
        return value if value - value == 0.0 else {"\u0000float": repr(value)}
    if t is dict:
        return _typed_dict(value)
    if t is list:
        return _typed_items(value)
    if t is tuple:
        return {"\u0000tuple": _typed_items(value)}
    if t is bytes or t is bytearray:
        return {"\u0000" + t.__name__: hashlib.sha256(value).hexdigest()}
    if t is set or t is frozenset:
        return {"\u0000" + t.__name__: [v for _, v in _sorted_typed(value)]}
    return _typed_other(value)


def _typed_items(items: Any) -> list[Any]:
    return _each(_typed, items)


def _typed_dict(mapping: Mapping[Any, Any]) -> Any:
    out: dict[str, Any] = {}
    for k, v in mapping.items():
        if type(k) is not str:
            return _typed_pairs(mapping)
        try:
            out[k] = _typed(v)
        except _BadValue as exc:
            exc.parts.append(f".{k}")
            raise
    if len(out) == 1 and _nul_key(out):
        return _pair_form(out)
    return out


def _typed_pairs(mapping: Mapping[Any, Any]) -> dict[str, Any]:
    # Keys that are not str (ints, tuples ...): sorted pairs, so that order never matters.
    pairs = []
    for k, v in mapping.items():
        try:
            pairs.append((_dumps(_typed(k), option=_SORT), [_typed(k), _typed(v)]))
        except _BadValue as exc:
            exc.parts.append(f"[{k!r}]")
            raise
    pairs.sort(key=lambda pair: pair[0])
    return {"\u0000dict": [pair for _, pair in pairs]}


def _sorted_typed(items: Any) -> list[tuple[bytes, Any]]:
    typed = [_typed(v) for v in items]
    return sorted(((_dumps(v, option=_SORT), v) for v in typed), key=lambda p: p[0])


def _typed_other(value: Any) -> Any:
    t = type(value)
    if isinstance(value, enum.Enum):
        try:
            plain = _typed(value.value)
        except _BadValue:
            plain = None  # a member is still told apart from others by its name
        return {"\u0000enum": [_type_name(t), value.name, plain]}
    # Subclasses of the types above: their plain value and the subclass's name. The plain
    # value is read through the base type, never an override (a str subclass's __str__).
    base: Any
    if isinstance(value, str):
        base = str.__str__(value)
    elif isinstance(value, int):
        base = int.__int__(value)
    elif isinstance(value, float):
        base = float.__float__(value)
    elif isinstance(value, (list, tuple, set, frozenset, bytes, bytearray)):
        base = next(
            b for b in (list, tuple, set, frozenset, bytes, bytearray) if isinstance(value, b)
        )(value)
    elif isinstance(value, Mapping):
        base = dict(value)
    else:
        raise _BadValue(
            TypeError,
            f"values of type {t.__name__} cannot be part of a cache "
            "key; pass str, bytes, numbers, bools, None, enums, or lists, tuples, "
            "sets and dicts of them",
        )
    return {"\u0000sub": [_type_name(t), _typed(base)]}


def canonical_call(ident: str, namespace: str, args: Any) -> bytes:
    """Typed canonical bytes of a function call: its identity, namespace and arguments.

    Used by ``@cached_generate``. Unlike a `Request`, the arguments are Python values, and
    two that differ in type or value never share a key: ``1``, ``1.0`` and ``True``;
    ``0.0`` and ``-0.0``; ``b"x"``, ``bytearray(b"x")`` and ``"x"``; a tuple and a list; a
    set and a frozenset; ``{1: "a"}`` and ``{"1": "a"}``; an enum member and its value.
    Equal values give one key (dicts and sets in any order). NaN and the infinities are
    keys like any float. A str with a lone surrogate raises `NotKeyable`; a value of any
    other type raises ``TypeError`` naming its path (``args.client``).

    >>> canonical_call("mod.f", "", {"t": 0.0, "p": "x"})
    b'[4,"mod.f","",{"p":"x","t":0.0}]'
    >>> canonical_call("mod.f", "", {"t": 0}) != canonical_call("mod.f", "", {"t": 0.0})
    True
    >>> canonical_call("mod.f", "", {"p": (1, 2)})
    b'[4,"mod.f","",{"p":{"\\\\u0000tuple":[1,2]}}]'
    """
    if type(args) is dict:
        # The hit path: flat arguments of JSON's own types are written as they are (no
        # copy). Key types, int sizes and lone surrogates are left to orjson, which raises
        # on exactly those; the typed copy below then decides.
        for v in args.values():
            tv = type(v)
            if tv is str or (tv is float and v - v == 0.0) or tv is int or tv is bool or v is None:
                continue
            break
        else:
            if len(args) != 1 or not _nul_key(args):  # _one_plain_key, inlined
                try:
                    return _dumps((KEY_VERSION, ident, namespace, args), option=_SORT)
                except orjson.JSONEncodeError:
                    pass
    try:
        data = _typed(args)
    except _BadValue as exc:
        where = "args" + "".join(reversed(exc.parts))
        raise exc.kind(f"{where}: {exc.message}") from None
    try:
        return _dumps((KEY_VERSION, ident, namespace, data), option=_SORT)
    except orjson.JSONEncodeError as exc:  # what is left: text UTF-8 cannot encode
        raise NotKeyable(
            f"args: {exc} (a lone surrogate such as '\\ud800' in a str); the call cannot be cached"
        ) from None


# -- a decorated function's identity ----------------------------------------------------

#: The attribute ``@cached_generate`` sets on its wrapper: ``(identity, id(wrapper))``. A
#: function that captures a decorated one is identified by that identity; the id tells the
#: wrapper itself from another wrapper that copied its ``__dict__`` (``functools.wraps``).
IDENTITY_ATTR = "_llmcache_identity"

_BUILTINS = (
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
)
_MUTABLE = (list, dict, set, bytearray)


class _Unidentifiable(Exception):
    """Internal: what has no identity a key can hold, and where it was found."""


def callable_name(func: Any) -> str:
    """``module.qualname`` of a function, method or partial, for messages and metrics."""
    if isinstance(func, functools.partial):
        return f"functools.partial({callable_name(func.func)})"
    target = getattr(func, "__func__", func)
    qualname = getattr(target, "__qualname__", None)
    if qualname is None:
        return _type_name(type(func))
    # Builtin methods (str.upper, dict.fromkeys) have no module of their own.
    module = getattr(target, "__module__", None) or "builtins"
    return f"{module}.{qualname}"


class _Identifier:
    """Builds the JSON data a callable's identity is hashed from (see `function_identity`).

    ``strict``: a captured value with no identity (a client object, a list that can change)
    raises `_Unidentifiable`; otherwise it counts by its type alone.
    """

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.seen: dict[int, str] = {}

    def opaque(self, value: Any, where: str, why: str) -> list[Any]:
        if self.strict:
            raise _Unidentifiable(f"{where} ({type(value).__name__}), {why}")
        return ["opaque", _type_name(type(value))]

    def callable(self, func: Any, where: str, *, top: bool = False) -> list[Any]:
        if isinstance(func, functools.partial):
            return [
                "partial",
                self.callable(func.func, where, top=top),
                self.value(func.args, f"{where}'s bound arguments"),
                self.value(tuple(sorted(func.keywords.items())), f"{where}'s bound keywords"),
            ]
        if isinstance(func, types.MethodType):
            owner = func.__self__
            if isinstance(owner, (type, types.ModuleType)):
                return [
                    "method",
                    self.value(owner, where),
                    self.callable(func.__func__, where, top=top),
                ]
            return [
                "method",
                self.opaque(
                    owner, f"{where} is bound to an object", "which has no identity a key can hold"
                ),
                self.callable(func.__func__, where, top=top),
            ]
        if isinstance(func, types.FunctionType):
            return self.function(func, where, top=top)
        if isinstance(func, _BUILTINS):
            owner = getattr(func, "__self__", None)
            if owner is not None and not isinstance(owner, (type, types.ModuleType)):
                owned = self.value(owner, f"{where}'s object")
            else:
                owned = None
            return ["builtin", getattr(func, "__module__", None), func.__qualname__, owned]
        if isinstance(func, type):
            return ["class", func.__module__, func.__qualname__]
        if isinstance(func, (staticmethod, classmethod)):
            return self.callable(func.__func__, where, top=top)
        call = type(func).__call__ if callable(func) else None
        return [
            "object",
            self.opaque(
                func, f"{where} is an object", "whose state has no identity a key can hold"
            ),
            self.callable(call, where) if isinstance(call, types.FunctionType) else None,
        ]

    def function(self, func: types.FunctionType, where: str, *, top: bool) -> list[Any]:
        mark = getattr(func, IDENTITY_ATTR, None)
        if type(mark) is tuple and len(mark) == 2 and mark[1] == id(func):
            return ["cached", mark[0]]
        if id(func) in self.seen:  # recursion between captured functions
            return ["ref", self.seen[id(func)]]
        self.seen[id(func)] = func.__qualname__
        code = func.__code__
        captured = []
        for name, cell in zip(code.co_freevars, func.__closure__ or (), strict=True):
            try:
                value = cell.cell_contents
            except ValueError:  # not assigned yet (a nested function that calls itself)
                captured.append([name, ["unset"]])
                continue
            captured.append([name, self.value(value, f"{where} captures {name!r}")])
        # The decorated function's own defaults are in every call's bound arguments.
        defaults = (
            None
            if top
            else self.value(
                (func.__defaults__, tuple(sorted((func.__kwdefaults__ or {}).items()))),
                f"{where}'s defaults",
            )
        )
        return [
            "function",
            func.__module__,
            func.__qualname__,
            _code_identity(code),
            captured,
            defaults,
        ]

    def value(self, value: Any, where: str) -> Any:
        t = type(value)
        if t is str or t is int or t is float or t is bool or value is None or t is bytes:
            return _typed(value)
        if t is tuple:
            return ["tuple", [self.value(v, f"{where}[{i}]") for i, v in enumerate(value)]]
        if t is frozenset:
            return [
                "frozenset",
                sorted(
                    (self.value(v, where) for v in value), key=lambda v: _dumps(v, option=_SORT)
                ),
            ]
        if isinstance(value, enum.Enum):
            return _typed(value)
        if isinstance(value, type):
            return ["class", value.__module__, value.__qualname__]
        if isinstance(value, types.ModuleType):
            return ["module", value.__name__]
        if callable(value) and not isinstance(value, _MUTABLE):
            return self.callable(value, where)
        if isinstance(value, _MUTABLE):
            return self.opaque(value, where, "which can change after decorating")
        if value is Ellipsis or value is NotImplemented:
            return ["singleton", repr(value)]
        return self.opaque(value, where, "which has no identity a key can hold")


def _code_identity(code: types.CodeType) -> list[Any]:
    # What the code does: bytecode (``co_code`` is the unspecialised form, stable while the
    # interpreter warms up), constants (nested functions' code recursively), the names it
    # reads and its signature's shape. Not line numbers, local names or the file's path, so
    # moving a function in its file keeps its entries; editing its body does not.
    return [
        "code",
        code.co_code.hex(),
        [_const(c) for c in code.co_consts],
        list(code.co_names),
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_flags,
        list(code.co_freevars),
    ]


def _const(value: Any) -> Any:
    if isinstance(value, types.CodeType):
        return _code_identity(value)
    t = type(value)
    if t is tuple:
        return ["tuple", [_const(v) for v in value]]
    if t is frozenset:  # iteration order follows the hash seed: sorted
        return [
            "frozenset",
            sorted((_const(v) for v in value), key=lambda v: _dumps(v, option=_SORT)),
        ]
    if t in (str, int, float, bool, bytes) or value is None:
        return _typed(value)
    return ["const", _type_name(t), repr(value)]  # complex, Ellipsis


def function_identity(func: Callable[..., Any], *, strict: bool = True) -> str:
    """What ``@cached_generate`` keys `func` by: ``module.qualname#<xxh3_128 hex>``.

    The hash covers what the function computes, so two functions that can answer the same
    arguments differently never share an entry, and the same function has the same
    identity in every process (a disk or Redis tier keeps hitting after a restart):

    - its module, qualified name and code: bytecode, constants (with nested functions'
      code), the global and attribute names it reads, its signature's shape. Editing the
      body gives a new identity (old entries are never served for new code); moving the
      function in its file or renaming a local does not. The code of the globals it calls
      is not included: edit a helper and the caller's entries stay.
    - the values it captured (closure cells), read *once, now*: str, bytes, numbers, bools,
      None, enum members, tuples and frozensets of them; captured functions by their own
      identity (with their captured values and defaults); decorated functions by theirs;
      classes and modules by name; ``functools.partial`` by its function and bound
      arguments; a classmethod by its class.
    - its defaults are not: they are in every call's bound arguments.

    With ``strict`` (the decorator's default on a store that can be shared), a captured
    value with no identity a key can hold raises ``TypeError`` naming the function and the
    fix: an object (a client), a mutable list, dict or set (it can change after this
    hash), a method bound to an object, a callable object. Otherwise such a value counts
    by its type alone: the caller took responsibility with ``key=`` or ``namespace=``.

    >>> def make(style):
    ...     def say(prompt):
    ...         return f"[{style}] {prompt}"
    ...     return say
    >>> function_identity(make("pirate")) != function_identity(make("formal"))
    True
    >>> function_identity(make("pirate")) == function_identity(make("pirate"))
    True
    >>> function_identity(make([]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: ...say captures 'style' (list), which can change after decorating; ...
    """
    name = callable_name(func)
    try:
        data = _Identifier(strict).callable(func, name, top=True)
    except _Unidentifiable as exc:
        raise TypeError(
            f"@cached_generate cannot tell {name} apart from other functions: "
            f"{exc}; pass key= (what identifies a call) or namespace= (a name "
            "for this function alone), or make it an argument"
        ) from None
    except _BadValue as exc:
        raise TypeError(
            f"@cached_generate cannot identify {name}: {exc.message}; pass key= or namespace="
        ) from None
    return f"{name}#{_xxh128(_dumps(data, option=_SORT))}"
