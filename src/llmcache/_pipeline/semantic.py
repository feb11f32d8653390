"""The semantic tier as the pipeline sees it: `SemanticTier`, and the `Request` a decorated
call stands for.

The semantic tier (`llmcache.vector.SemanticCache`) works on `Request` objects: it embeds
the prompt (or the last user message) and scopes matches by everything else. A decorated
function has arguments, not a request, so `request_from_args` maps them: ``prompt`` or
``messages`` are the text; ``model`` (when it is a plain string) names the model; every
other argument, and ``model`` itself, goes into ``extra`` by its typed canonical value (as
the exact key holds it), with the function's identity. So two calls that differ in
anything but the text (a model given as a dict or an enum, ``temperature=0.25`` beside
``options={"temperature": 0}``) never share a partition, and never answer each other.

Only the miss path comes here; the exact hit path never does. A semantic tier's hit is a
`SemanticHit`-like object with an ``entry``, or the entry itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from llmcache.entry import CachedResponse
from llmcache.keys import Request, canonical_call

__all__ = ["SAMPLING", "SemanticTier", "request_from_args"]

#: Arguments that often repeat a key of an ``options`` argument; the decorator refuses a
#: call where the two disagree.
SAMPLING = ("temperature", "seed", "top_p", "top_k", "max_tokens", "num_predict", "stop")
_TEXT = ("prompt", "messages")


class SemanticTier(Protocol):
    """What the pipeline needs from a semantic cache (`llmcache.vector.SemanticCache` is
    one): a hit (an object with an ``entry``, or a `CachedResponse`) or None for a request,
    and somewhere to put a fresh answer; the coroutine twins for async doors."""

    def get(self, request: Request, *, threshold: float | None = None) -> Any: ...

    def set(self, request: Request, value: CachedResponse, *, ttl: float | None = None) -> None: ...

    async def aget(self, request: Request, *, threshold: float | None = None) -> Any: ...

    async def aset(
        self, request: Request, value: CachedResponse, *, ttl: float | None = None
    ) -> None: ...


def request_from_args(bound: Mapping[str, Any], *, ident: str, namespace: str) -> Request | None:
    """The `Request` a decorated call stands for, or None when it has no text to match
    (no ``prompt`` str and no ``messages`` argument) or has arguments no key can hold
    (possible with ``key=``: the exact tier still works, the semantic one is skipped)."""
    prompt, messages = bound.get("prompt"), bound.get("messages")
    if type(prompt) is not str:
        prompt = None
    if prompt is None and not messages:
        return None
    rest = {k: v for k, v in bound.items() if k not in _TEXT}
    try:
        args = canonical_call(ident, namespace, rest).decode()
    except (TypeError, ValueError):
        return None
    model = bound.get("model")
    return Request(
        model=model if type(model) is str and model else ident,
        prompt=prompt,
        messages=messages,
        namespace=namespace,
        extra={"fn": ident, "args": args},
    )
