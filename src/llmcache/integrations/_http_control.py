"""Per-request cache control through ``x-llmcache-*`` headers, and the status headers.

A client that cannot reach `llmcache.policy.cache_control` (another language, through the
proxy; or one call among many through the transport) sets headers instead:

========================  ==================  ============================================
request header            values              effect
========================  ==================  ============================================
``x-llmcache-bypass``     ``true`` / ``false``  no read, no write
``x-llmcache-refresh``    ``true`` / ``false``  no read; the fresh answer is written
``x-llmcache-no-store``   ``true`` / ``false``  read, but do not write
``x-llmcache-ttl``        seconds (> 0)       lifetime of what is written
``x-llmcache-namespace``  text (1-200 chars)  entries apart from other namespaces
========================  ==================  ============================================

Booleans also take ``1``/``0``, ``yes``/``no``, ``on``/``off``, in any case. A bad value,
``bypass`` with ``refresh``, or an ``x-llmcache-*`` name not in the table (a typo such as
``x-llmcache-bypas`` would otherwise cache what the caller asked not to) raises
`ControlHeaderError` naming the header and the fix; the door answers it with a 400 and
sends nothing upstream. Every ``x-llmcache-*`` header is stripped before the request goes
upstream (`upstream_headers`).

Every answer carries ``x-llmcache``: ``hit``, ``miss`` (the upstream answered; what could
be stored was), ``bypass`` (the cache was not consulted: a route it does not handle, or
``x-llmcache-bypass``) or ``uncacheable`` (an understood route the policy or the body keeps
out: a sampled temperature, server-held state, a body that is not understood); a semantic
hit also carries ``x-llmcache-similarity`` (`status_headers`).

>>> control = parse_control_headers({"X-LLMCache-TTL": "60", "x-llmcache-no-store": "1"})
>>> control.ttl, control.apply(CacheControl()).write
(60.0, False)
>>> parse_control_headers({"x-llmcache-ttl": "abc"})
Traceback (most recent call last):
...
llmcache.integrations._http_control.ControlHeaderError: x-llmcache-ttl: 'abc' is not a \
number of seconds; send a positive number such as 3600
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass

from llmcache.errors import LLMCacheError
from llmcache.integrations._http_routes import HeaderInput, header_items
from llmcache.policy import CacheControl

__all__ = [
    "CONTROL_HEADERS",
    "CONTROL_PREFIX",
    "STATUS_HEADER",
    "CacheStatus",
    "ControlHeaderError",
    "HeaderControl",
    "parse_control_headers",
    "status_headers",
    "upstream_headers",
]

CONTROL_PREFIX = "x-llmcache-"
CONTROL_HEADERS = (
    "x-llmcache-bypass",
    "x-llmcache-namespace",
    "x-llmcache-no-store",
    "x-llmcache-refresh",
    "x-llmcache-ttl",
)
STATUS_HEADER = "x-llmcache"
SIMILARITY_HEADER = "x-llmcache-similarity"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_NAMESPACE_MAX = 200


class ControlHeaderError(LLMCacheError, ValueError):
    """An ``x-llmcache-*`` request header with a name or value the cache cannot follow.

    ``header`` is its (lowercase) name; the message says what to send instead.
    """

    def __init__(self, header: str, message: str) -> None:
        super().__init__(f"{header}: {message}")
        self.header = header


class CacheStatus(str, enum.Enum):
    """The value of the ``x-llmcache`` response header."""

    HIT = "hit"
    MISS = "miss"
    BYPASS = "bypass"
    UNCACHEABLE = "uncacheable"


@dataclass(frozen=True, slots=True)
class HeaderControl:
    """What a request's control headers ask for (all off / ``None`` when absent)."""

    bypass: bool = False
    refresh: bool = False
    no_store: bool = False
    ttl: float | None = None
    namespace: str | None = None

    def apply(self, base: CacheControl) -> CacheControl:
        """`base` (the door's, or `llmcache.policy.current_control`) narrowed by these
        headers: a header can turn reading or writing off, never back on; its TTL wins."""
        return CacheControl(
            read=base.read and not (self.bypass or self.refresh),
            write=base.write and not (self.bypass or self.no_store),
            ttl=self.ttl if self.ttl is not None else base.ttl,
        )


def _flag(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ControlHeaderError(name, f"{value!r} is not a switch; send true or false")


def _ttl(name: str, value: str) -> float:
    try:
        ttl = float(value.strip())
    except ValueError:
        raise ControlHeaderError(
            name, f"{value!r} is not a number of seconds; send a positive number such as 3600"
        ) from None
    if not math.isfinite(ttl) or ttl <= 0:
        raise ControlHeaderError(
            name,
            f"{value!r} is not a positive, finite number of "
            "seconds; send one such as 3600 (leave the header out for "
            "the cache's own TTL)",
        )
    return ttl


def _namespace(name: str, value: str) -> str:
    ns = value.strip()
    if not ns or len(ns) > _NAMESPACE_MAX or not ns.isprintable():
        raise ControlHeaderError(
            name,
            f"send 1 to {_NAMESPACE_MAX} printable characters "
            "(for example a tenant or application name)",
        )
    return ns


def parse_control_headers(headers: HeaderInput) -> HeaderControl:
    """Read the ``x-llmcache-*`` headers of a request (names in any case).

    Raises `ControlHeaderError` for an unknown ``x-llmcache-*`` name, a bad value, one
    header sent twice with different values, or bypass together with refresh.
    """
    seen: dict[str, str] = {}
    for name, value in header_items(headers):
        if not name.startswith(CONTROL_PREFIX):
            continue
        if name not in CONTROL_HEADERS:
            raise ControlHeaderError(
                name, "unknown llmcache header; the known ones are " + ", ".join(CONTROL_HEADERS)
            )
        if name in seen and seen[name] != value:
            raise ControlHeaderError(name, "sent twice with different values; send it once")
        seen[name] = value
    flags = {
        n: _flag(n, seen[n])
        for n in CONTROL_HEADERS
        if n in seen and n not in ("x-llmcache-ttl", "x-llmcache-namespace")
    }
    control = HeaderControl(
        bypass=flags.get("x-llmcache-bypass", False),
        refresh=flags.get("x-llmcache-refresh", False),
        no_store=flags.get("x-llmcache-no-store", False),
        ttl=_ttl("x-llmcache-ttl", seen["x-llmcache-ttl"]) if "x-llmcache-ttl" in seen else None,
        namespace=_namespace("x-llmcache-namespace", seen["x-llmcache-namespace"])
        if "x-llmcache-namespace" in seen
        else None,
    )
    if control.bypass and control.refresh:
        raise ControlHeaderError(
            "x-llmcache-refresh",
            "contradicts x-llmcache-bypass "
            "(bypass skips the write that refresh asks for); send one",
        )
    return control


def upstream_headers(headers: HeaderInput) -> list[tuple[str, str]]:
    """The request's headers, names as given, without any ``x-llmcache-*`` one: what goes
    upstream (bytes are read as Latin-1)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for name, value in pairs:
        n = name.decode("latin-1") if isinstance(name, bytes) else name
        if not n.lower().startswith(CONTROL_PREFIX):
            out.append((n, value.decode("latin-1") if isinstance(value, bytes) else value))
    return out


def status_headers(status: CacheStatus, similarity: float | None = None) -> list[tuple[str, str]]:
    """The headers that tell a client what the cache did.

    >>> status_headers(CacheStatus.HIT, similarity=0.97312)
    [('x-llmcache', 'hit'), ('x-llmcache-similarity', '0.9731')]
    """
    out = [(STATUS_HEADER, CacheStatus(status).value)]
    if similarity is not None:
        if status is not CacheStatus.HIT or not math.isfinite(similarity):
            raise ValueError("a similarity goes with a semantic hit, as a finite number")
        out.append((SIMILARITY_HEADER, f"{similarity:.4f}"))
    return out
