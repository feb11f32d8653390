"""The model APIs the caching transport and proxy understand: routes, keys, credential scope.

A request is read from what goes over the wire (method, URL, headers, JSON body bytes) and
becomes either an `HttpCall` (an understood route with its key and its policy inputs) or a
`Passthrough` (the door forwards it untouched and stores nothing). No I/O, no HTTP library.

Routes (``POST``; the path may carry a prefix such as ``/openai``, the key holds it whole):

=====================  ==========================  ========================================
route                  path ends with              left out of the key (why)
=====================  ==========================  ========================================
``openai.chat``        ``/v1/chat/completions``    ``user``, ``safety_identifier``,
                                                   ``metadata``, ``store``, ``service_tier``,
                                                   ``prompt_cache_key``,
                                                   ``prompt_cache_retention``,
                                                   ``prompt_cache_options``
``openai.responses``   ``/v1/responses``           as chat, but ``store`` stays in
``openai.embeddings``  ``/v1/embeddings``          ``user``
``openai.completions`` ``/v1/completions``         ``user``
``anthropic.messages`` ``/v1/messages``            ``metadata``
``ollama.generate``    ``/api/generate``           ``keep_alive``
``ollama.chat``        ``/api/chat``               ``keep_alive``
``ollama.embed``       ``/api/embed``              ``keep_alive``
=====================  ==========================  ========================================

Why those: ``user``, ``safety_identifier`` and ``metadata`` label a call for abuse
monitoring or the caller's own bookkeeping; ``store`` (chat) keeps a copy for OpenAI's evals;
``service_tier`` picks the capacity pool; the ``prompt_cache_*`` fields tune the provider's
prefix cache (they change billed tokens, not the text); ``keep_alive`` says how long Ollama
keeps the model loaded. None of them changes what the model says. Every other field,
including any field this module has never heard of, goes into the key: an unknown field
left out could serve a wrong answer, one put in only costs a miss. The Responses API keeps
``store``: a replayed response's id is usable later (``previous_response_id``) only if the
first call stored it.

``stream`` is in the key, normalised to the API's default when absent (OpenAI and
Anthropic: off; Ollama: on). The cache replays the recorded bytes, and a stream cannot be
replayed as a JSON body or the other way round. ``stream_options`` stays in the key for the
same reason: ``include_usage`` adds a chunk, ``include_obfuscation`` changes every chunk.

The key also holds the method, the upstream origin (scheme, host, port) and the full path
with its query (Azure's ``api-version``), the headers that change an answer
(``anthropic-version``, ``anthropic-beta``, ``openai-beta``), the namespace, the credential
scope and `HTTP_KEY_VERSION`, which is bumped whenever what goes into the key changes (the
canonical encoding carries its own version in the ``v3:`` prefix of `llmcache.keys`).

Policy inputs: ``temperature`` is the request's, or, when the request sets none, the
server's documented default (OpenAI 1.0, Anthropic 1.0, Ollama 0.8), for information.
`temperature_set` tells the two apart, and a door decides on what was sent: a request that
sets no temperature is cacheable, as at every other door (the caller chose the server's
default; the key records that it named none), so a door passes ``None`` to the policy when
`temperature_set` is false (the anthropic SDK sends no temperature unless asked).
Embeddings have none (deterministic). ``seed`` is OpenAI's ``seed`` or Ollama's
``options.seed``. ``n`` / ``best_of`` add no rule of their own: they are in the key, and
the replay gives back the same choices the server gave, so the temperature rule (and the
seed exemption) decides as for one choice. Requests that lean on state held by the server
are `uncacheable` whatever the policy: the Responses API's ``previous_response_id``,
``conversation``, ``background`` and a ``prompt`` template without a pinned ``version``;
Anthropic's ``container``; an Ollama call with no prompt or no messages (it loads or
unloads the model).

Credentials (`CREDENTIAL_HEADERS`) never enter a key: they are folded into a keyed BLAKE2b
hash (`credential_scope`) so two API keys never share entries, unless the door opts into
sharing. BLAKE2b rather than xxh3: the scope lands in entries of shared tiers, and a fast
non-cryptographic hash is not built to keep its input secret.

>>> call = parse_request("POST", "https://api.openai.com/v1/chat/completions",
...                      {"authorization": "Bearer sk-secret"},
...                      b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],'
...                      b' "temperature": 0, "user": "alice"}')
>>> call.route.name, call.stream, call.temperature
('openai.chat', False, 0)
>>> "sk-secret" in repr(call)
False
>>> parse_request("GET", "https://api.openai.com/v1/models", {}, b"").reason
'route'
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

import orjson

from llmcache._numbers import is_number
from llmcache.keys import _as_is, canonical_bytes, key_and_fingerprint

__all__ = [
    "CREDENTIAL_HEADERS",
    "HTTP_KEY_VERSION",
    "KEY_HEADERS",
    "ROUTES",
    "CredentialScopes",
    "HeaderInput",
    "HttpCall",
    "Passthrough",
    "Route",
    "credential_scope",
    "find_route",
    "header_items",
    "parse_read_request",
    "parse_request",
    "read_call",
    "url_target",
]

#: Bumped whenever what goes into an HTTP call's key changes (fields, headers, layout).
HTTP_KEY_VERSION = 1

#: Headers whose values identify who is calling: hashed into the scope, never stored.
CREDENTIAL_HEADERS = (
    "api-key",
    "authorization",
    "cookie",
    "openai-organization",
    "openai-project",
    "proxy-authorization",
    "x-api-key",
)

#: Request headers that change the answer (its shape or the features on): in the key.
KEY_HEADERS = ("anthropic-beta", "anthropic-version", "openai-beta")

# Comma-separated lists whose order carries no meaning: sorted and deduplicated.
_LIST_HEADERS = frozenset({"anthropic-beta", "openai-beta"})

# A constant, so that every process (and host) sharing a tier computes the same scope.
_SCOPE_SALT = b"llmcache.http.credential-scope.v1"

HeaderInput = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]
"""Request headers: a mapping (``httpx.Headers``) or pairs (ASGI's raw byte pairs)."""

_OPENAI_LABELS = frozenset(
    {
        "user",
        "safety_identifier",
        "metadata",
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
    }
)


@dataclass(frozen=True, slots=True)
class Route:
    """One understood API route and what the cache needs to know about it.

    ``default_temperature`` is what the server samples at when a request names none
    (``None``: the route does not sample). ``stream_format`` is ``"sse"``, ``"ndjson"`` or
    ``None`` (never streams).
    """

    name: str
    api: Literal["openai", "anthropic", "ollama"]
    suffix: str
    excluded: frozenset[str]
    default_temperature: float | None
    streams_by_default: bool
    stream_format: Literal["sse", "ndjson"] | None


ROUTES: tuple[Route, ...] = (
    Route(
        "openai.chat",
        "openai",
        "/v1/chat/completions",
        _OPENAI_LABELS | {"store"},
        1.0,
        False,
        "sse",
    ),
    Route("openai.responses", "openai", "/v1/responses", _OPENAI_LABELS, 1.0, False, "sse"),
    Route("openai.embeddings", "openai", "/v1/embeddings", frozenset({"user"}), None, False, None),
    Route(
        "openai.completions", "openai", "/v1/completions", frozenset({"user"}), 1.0, False, "sse"
    ),
    Route(
        "anthropic.messages",
        "anthropic",
        "/v1/messages",
        frozenset({"metadata"}),
        1.0,
        False,
        "sse",
    ),
    Route(
        "ollama.generate", "ollama", "/api/generate", frozenset({"keep_alive"}), 0.8, True, "ndjson"
    ),
    Route("ollama.chat", "ollama", "/api/chat", frozenset({"keep_alive"}), 0.8, True, "ndjson"),
    Route("ollama.embed", "ollama", "/api/embed", frozenset({"keep_alive"}), None, False, None),
)
"""Every understood route. No suffix is a suffix of another's, so the order is free."""


@dataclass(frozen=True, slots=True)
class Passthrough:
    """A request the cache does not handle: forward it untouched, store nothing.

    ``reason`` is ``"route"`` (not an understood method and path: the cache was not
    consulted) or ``"body"`` (an understood route whose body is not understood, such as
    bytes that are not JSON or a field of the wrong type: the upstream answers with its own
    error). ``detail`` says what, naming fields, never their values.
    """

    reason: Literal["route", "body"]
    detail: str


class HttpCall(NamedTuple):
    """An understood request: its key, fingerprint and the inputs of the cache policy.

    ``key`` and ``fingerprint`` come from the same canonical bytes (see `llmcache.keys`).
    ``uncacheable`` is empty, or why this call can never be served from the cache (state
    held by the server). Nothing here holds a credential: ``scope`` is its keyed hash.
    ``body`` is the parsed JSON body (left out of the repr: it is the caller's prompt);
    ``key_headers`` the request headers in the key (`KEY_HEADERS`), normalised, as
    (name, value) pairs. A named tuple, as the pipeline's `Plan`: one is built on every
    request through a door, and a tuple is built several times faster than a frozen
    dataclass of 18 fields.
    """

    route: Route
    method: str
    origin: str
    path: str
    model: str
    stream: bool
    key: str
    fingerprint: str
    scope: str
    namespace: str
    temperature: float | None
    temperature_set: bool
    seed: int | None
    samples: int
    has_tools: bool
    uncacheable: str
    body: dict[str, Any]
    key_headers: tuple[tuple[str, str], ...]

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={value!r}"
            for name, value in zip(self._fields, self, strict=True)
            if name != "body"
        )
        return f"HttpCall({shown})"


def header_items(headers: HeaderInput) -> list[tuple[str, str]]:
    """Headers as ``(lowercase name, value)`` pairs; bytes are read as Latin-1 (HTTP's rule)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    # One comprehension: this runs on every request through a door.
    return [
        (
            (n if isinstance(n, str) else n.decode("latin-1")).lower(),
            v if isinstance(v, str) else v.decode("latin-1"),
        )
        for n, v in pairs
    ]


def credential_scope(
    headers: HeaderInput, *, share: bool = False, secret: bytes | None = None
) -> str:
    """The scope of a caller's entries: ``"shared"``, ``"anonymous"`` or ``"cred:<hex>"``.

    A keyed BLAKE2b (128 bits) of every `CREDENTIAL_HEADERS` value, so two API keys (or two
    organisations under one key) never read each other's answers and the hash reveals
    nothing of the key. ``secret`` replaces the built-in constant key, so that someone who
    reads a shared tier cannot test guessed credentials against it; every process sharing
    the tier must pass the same one. ``share`` puts every caller in one scope.

    >>> a = credential_scope({"Authorization": "Bearer sk-a"})
    >>> a == credential_scope([(b"authorization", b"Bearer sk-a")]), a.startswith("cred:")
    (True, True)
    >>> a == credential_scope({"authorization": "Bearer sk-b"})
    False
    >>> credential_scope({}), credential_scope({"x-api-key": "k"}, share=True)
    ('anonymous', 'shared')
    """
    return _scope(header_items(headers), share, secret)


def _scope(items: list[tuple[str, str]], share: bool, secret: bytes | None) -> str:
    """`credential_scope` of headers already read by `header_items`."""
    if share:
        return "shared"
    found = _credentials(items)
    return _digest(found, secret) if found else "anonymous"


def _credentials(items: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple([(n, v) for n, v in items if n in _CREDENTIALS])


def _digest(found: tuple[tuple[str, str], ...], secret: bytes | None) -> str:
    """The scope of the credential headers `found` (at least one)."""
    digest = hashlib.blake2b(digest_size=16, key=secret or _SCOPE_SALT)
    for name, value in sorted((n, v.strip()) for n, v in found):
        # Lengths first: no two lists of pairs can feed the hash the same bytes.
        for part in (name.encode("utf-8", "surrogatepass"), value.encode("utf-8", "surrogatepass")):
            digest.update(len(part).to_bytes(4, "big"))
            digest.update(part)
    return "cred:" + digest.hexdigest()


# Distinct credentials whose scope a door remembers: a client holds one key, a proxy serves
# a few tenants; past that the least recently seen are forgotten (hashed again if they return).
_SCOPES_KEPT = 256


class CredentialScopes:
    """`credential_scope` with one door's ``share`` and ``secret``, for headers read by
    `header_items`, remembering the scopes of the last credentials it saw (a client sends
    the same key on every request, and hashing it again was a tenth of a door's own work
    on a cache hit).

    The memory is keyed by the credential header values themselves, so it lives in this
    process only, as the caller's client holding them does: it is never logged, shown
    (no repr of it shows the values) or stored.

    >>> scopes = CredentialScopes()
    >>> scopes([("authorization", "Bearer sk-a")]) == credential_scope(
    ...     {"authorization": "Bearer sk-a"})
    True
    """

    __slots__ = ("_digest", "_share")

    def __init__(self, *, share: bool = False, secret: bytes | None = None) -> None:
        self._share = share
        self._digest = functools.lru_cache(maxsize=_SCOPES_KEPT)(
            functools.partial(_digest, secret=secret)
        )

    def __call__(self, items: list[tuple[str, str]]) -> str:
        if self._share:
            return "shared"
        found = _credentials(items)
        return self._digest(found) if found else "anonymous"


_CREDENTIALS = frozenset(CREDENTIAL_HEADERS)
_SORT = orjson.OPT_SORT_KEYS
_dumps = orjson.dumps


def find_route(method: str, path: str) -> Route | None:
    """The understood route of a method and a path (query excluded), or ``None``.

    >>> find_route("POST", "/openai/v1/chat/completions").name
    'openai.chat'
    >>> find_route("POST", "/api/embeddings") is None  # Ollama's legacy route: passed through
    True
    """
    if method.upper() != "POST":
        return None
    for route in ROUTES:
        if path.endswith(route.suffix):
            return route
    return None


def _origin(scheme: str, host: str, port: int | None) -> str:
    scheme = scheme.lower()
    if port == {"http": 80, "https": 443}.get(scheme):
        port = None
    host = host.lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


def parse_request(
    method: str,
    url: str,
    headers: HeaderInput,
    body: bytes,
    *,
    namespace: str = "",
    share_credentials: bool = False,
    scope_secret: bytes | None = None,
) -> HttpCall | Passthrough:
    """Read a request bound for `url`: an `HttpCall` to cache, or a `Passthrough`.

    `url` is the upstream URL the request goes to (scheme, host, port, path, query).
    `namespace` separates entries of tenants or applications that share a tier;
    `share_credentials` and `scope_secret` are `credential_scope`'s ``share`` and
    ``secret``.
    """
    return parse_read_request(
        method,
        url,
        header_items(headers),
        body,
        namespace=namespace,
        share_credentials=share_credentials,
        scope_secret=scope_secret,
    )


def parse_read_request(
    method: str,
    url: str,
    items: list[tuple[str, str]],
    body: bytes,
    *,
    namespace: str = "",
    share_credentials: bool = False,
    scope_secret: bytes | None = None,
) -> HttpCall | Passthrough:
    """`parse_request` of headers already read as `header_items` gives them (lowercase
    names, text values): a door that reads its headers once for its own use passes them."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return Passthrough("route", "the URL cannot be parsed")
    route = find_route(method, parts.path)
    if route is None or not parts.hostname:
        return Passthrough("route", f"{method.upper()} {parts.path} is not an understood route")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return read_call(
        route,
        _origin(parts.scheme, parts.hostname, port),
        path,
        items,
        body,
        namespace=namespace,
        scopes=functools.partial(_scope, share=share_credentials, secret=scope_secret),
    )


def url_target(scheme: str, host: str, port: int | None, target: str) -> tuple[str, str]:
    """The origin and the path (with its query) that `parse_request` keys, from a URL
    already parsed: its scheme, host (IDNA-encoded, without an IPv6 literal's brackets),
    port and request target (``/path?query``, percent-encoded as sent), as
    ``httpx.URL``'s ``scheme``, ``raw_host``, ``port`` and ``raw_path`` give them.

    >>> url_target("HTTPS", "API.example.com", 443, "/v1/chat/completions?")
    ('https://api.example.com', '/v1/chat/completions')
    """
    path, _, query = target.partition("?")
    if query:  # an empty query ("/path?") is no query, as urlsplit reads it
        path = f"{path}?{query}"
    return _origin(scheme, host, port), path


def read_call(
    route: Route,
    origin: str,
    path: str,
    items: list[tuple[str, str]],
    body: bytes,
    *,
    namespace: str,
    scopes: Callable[[list[tuple[str, str]]], str],
) -> HttpCall | Passthrough:
    """The call of a request whose route, origin and path a door found already
    (`find_route`, `url_target`): `parse_read_request` without reading the URL again.
    ``scopes`` gives the credential scope of the headers (a door's `CredentialScopes`)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return Passthrough("body", f"the body is not JSON ({exc.msg})")
    problem = _check_body(route, data)
    if problem:
        return Passthrough("body", problem)
    scope = scopes(items)
    stream = data.get("stream")
    stream = route.streams_by_default if stream is None else stream
    key_headers = _key_headers(items)
    key_data = {
        "v": HTTP_KEY_VERSION,
        "route": route.name,
        "method": "POST",
        "origin": origin,
        "path": path,
        "scope": scope,
        "ns": namespace,
        "stream": stream,
        "headers": key_headers,
        "body": {k: v for k, v in data.items() if k != "stream" and k not in route.excluded},
    }
    try:
        # The parsed body is usually canonical already (`_as_is`): written with no copy;
        # anything orjson refuses there takes the normalising path, which decides.
        try:
            canonical = _dumps(key_data, option=_SORT) if _as_is(key_data) else None
        except orjson.JSONEncodeError:
            canonical = None
        if canonical is None:
            canonical = canonical_bytes(key_data)
    except (TypeError, ValueError, RecursionError) as exc:
        # orjson's JSONEncodeError is a TypeError: nesting deeper than it writes, or text
        # UTF-8 cannot encode. No key can hold such a body; the upstream judges it.
        return Passthrough("body", f"the body cannot be keyed ({type(exc).__name__})")
    temperature, seed = _sampling(route, data)
    key, fp = key_and_fingerprint(canonical)
    return _new_call(
        HttpCall,
        (
            route,
            "POST",
            origin,
            path,
            data["model"],
            stream,
            key,
            fp,
            scope,
            namespace,
            route.default_temperature if temperature is None else temperature,
            temperature is not None,
            seed,
            _samples(data),
            bool(data.get("tools") or data.get("functions")),
            _server_state(route, data),
            data,
            tuple(sorted(key_headers.items())),
        ),
    )


_new_call = tuple.__new__  # builds an HttpCall without the Python-level __new__ (hit path)


def _key_headers(items: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in items:
        if name not in KEY_HEADERS:
            continue
        value = value.strip()
        if name in out:  # a repeated header is one comma-separated list (RFC 9110 5.3)
            value = f"{out[name]},{value}"
        out[name] = value
    for name in _LIST_HEADERS & out.keys():
        out[name] = ",".join(sorted({p.strip() for p in out[name].split(",") if p.strip()}))
    return out


def _sampling(route: Route, data: dict[str, Any]) -> tuple[Any, Any]:
    # The types were checked by _check_body.
    if route.default_temperature is None:
        return None, None
    if route.api == "ollama":
        options = data.get("options") or {}
        return options.get("temperature"), options.get("seed")
    return data.get("temperature"), data.get("seed")


def _samples(data: dict[str, Any]) -> int:
    n = data.get("n")
    best_of = data.get("best_of")
    return max(n if type(n) is int else 1, best_of if type(best_of) is int else 1)


def _server_state(route: Route, data: dict[str, Any]) -> str:
    """Why the answer depends on state the server holds ("" when it does not)."""
    if route.name == "openai.responses":
        for name in ("previous_response_id", "conversation"):
            if data.get(name):
                return f"{name} refers to state held by the server"
        if data.get("background"):
            return "background responses are fetched later, by id"
        prompt = data.get("prompt")
        if isinstance(prompt, dict) and not prompt.get("version"):
            return "a prompt template without a pinned version can change on the server"
    elif route.name == "anthropic.messages" and data.get("container"):
        return "container refers to state held by the server"
    elif route.name == "ollama.generate" and not data.get("prompt") and not data.get("images"):
        return "a generate call without a prompt loads or unloads the model"
    elif route.name == "ollama.chat" and not data.get("messages"):
        return "a chat call without messages loads or unloads the model"
    return ""


# -- body checks: only what the cache itself reads; the upstream judges the rest -----------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_TYPES: dict[str, tuple[Any, str]] = {
    "stream": (lambda v: isinstance(v, bool), "true or false"),
    "temperature": (is_number, "a number"),
    "seed": (_is_int, "an integer"),
    "n": (_is_int, "an integer"),
    "best_of": (_is_int, "an integer"),
    "messages": (lambda v: isinstance(v, list), "a list"),
    "tools": (lambda v: isinstance(v, list), "a list"),
}

# The field the answer is made from, per route (beyond the model).
_REQUIRED = {
    "openai.chat": "messages",
    "openai.embeddings": "input",
    "openai.completions": "prompt",
    "anthropic.messages": "messages",
    "ollama.embed": "input",
}


def _check_body(route: Route, data: Any) -> str:
    """What makes this body not understood ("" when it is understood)."""
    if not isinstance(data, dict):
        return f"the body is a JSON {type(data).__name__}, not an object"
    model = data.get("model")
    if not isinstance(model, str) or not model:
        return "model is missing or not a non-empty string"
    required = _REQUIRED.get(route.name)
    if required and data.get(required) is None:
        return f"{required} is missing"
    for name, (check, expected) in _TYPES.items():
        value = data.get(name)
        if value is not None and not check(value):
            return f"{name} is {_json_type(value)}, expected {expected}"
    if route.api != "ollama":
        return ""
    options = data.get("options")
    if options is not None and not isinstance(options, dict):
        return f"options is {_json_type(options)}, expected an object"
    if options:
        for name in ("temperature", "seed"):
            value = options.get(name)
            check, expected = _TYPES[name]
            if value is not None and not check(value):
                return f"options.{name} is {_json_type(value)}, expected {expected}"
    return ""


def _json_type(value: Any) -> str:
    return {
        bool: "a boolean",
        str: "a string",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)
