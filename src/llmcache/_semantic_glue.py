"""How the decorator and the cached clients talk to a semantic tier.

The semantic tier (`llmcache.vector.SemanticCache`) works on `Request` objects: it embeds
the prompt (or the last user message) and scopes matches by everything else. A decorated
function has arguments, not a request, so `request_from_args` maps them: ``prompt`` or
``messages``, ``model``, ``system``, ``format``, ``options``, ``tools``, ``images`` become
request fields; sampling arguments (``temperature``, ``seed`` ...) join the options; every
other argument, and the function's identity, goes into ``extra`` — so two calls that
differ in anything but the text never share a partition, and never answer each other.

Only the miss path comes here; the exact hit path never does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from llmcache.entry import CachedResponse
from llmcache.keys import Request

__all__ = ["SemanticTier", "request_from_args"]

_FIELDS = frozenset({"model", "prompt", "messages", "system", "format", "options", "tools",
                     "images"})
_SAMPLING = ("temperature", "seed", "top_p", "top_k", "max_tokens", "num_predict", "stop")


class _Hit(Protocol):
    entry: CachedResponse
    similarity: float
    exact: bool


class SemanticTier(Protocol):
    """What the decorator and clients need from a semantic cache."""

    def get(self, request: Request, *, threshold: float | None = None) -> Any: ...

    def set(self, request: Request, value: CachedResponse, *,
            ttl: float | None = None) -> None: ...

    async def aget(self, request: Request, *, threshold: float | None = None) -> Any: ...

    async def aset(self, request: Request, value: CachedResponse, *,
                   ttl: float | None = None) -> None: ...


def request_from_args(bound: Mapping[str, Any], *, ident: str,
                      namespace: str) -> Request | None:
    """The `Request` a decorated call stands for, or None when it has no text to match
    (no ``prompt`` str and no ``messages`` argument)."""
    prompt, messages = bound.get("prompt"), bound.get("messages")
    if not isinstance(prompt, str):
        prompt = None
    if prompt is None and not messages:
        return None
    raw_options = bound.get("options")
    options = dict(raw_options) if isinstance(raw_options, Mapping) else {}
    for name in _SAMPLING:
        if bound.get(name) is not None:
            options.setdefault(name, bound[name])
    extra = {k: v for k, v in bound.items() if k not in _FIELDS and k not in _SAMPLING}
    extra["fn"] = ident
    model = bound.get("model")
    return Request(
        model=model if isinstance(model, str) and model else ident,
        prompt=prompt, messages=messages, system=bound.get("system"),
        format=bound.get("format"), options=options or None, tools=bound.get("tools"),
        images=bound.get("images"), namespace=namespace, extra=extra,
    )
