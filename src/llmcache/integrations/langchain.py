"""LangChain's LLM cache on llmcache's stores: `LLMCache`.

``set_llm_cache(LLMCache(store))`` makes every LangChain LLM and chat model answer repeated
calls from an llmcache store (memory, disk, Redis or tiers of them), optionally with a
semantic tier behind the exact one. Needs the ``langchain`` extra
(``pip install 'llmcache[langchain]'``: a langchain-core whose ``load`` takes an allowlist,
0.3.81+ or 1.2.5+).

- The key covers LangChain's ``prompt`` *and* ``llm_string`` (the model and every
  parameter): typed canonical bytes of both with the namespace (`llmcache.keys.
  canonical_call`), hashed as llmcache hashes any call, with the entry's fingerprint
  checked on every read, so a collision or a planted entry is a miss.
- Values are LangChain's own JSON serialization (``dumpd``) of the `Generation` list, read
  back with ``load`` restricted to generation and message classes: text, generation_info,
  chat messages with their tool calls and usage all round-trip; nothing is pickled, and an
  entry naming any other class is a miss.
- The async methods are native: they await the store's coroutine face (a network tier
  such as `RedisStore` frees the event loop; memory and disk answer inline), never through
  a thread executor.
- The same decisions as every other door (the cache pipeline, `llmcache._pipeline`):
  `cache_control` (bypass, no_store, refresh, a TTL) applies, and so does the temperature
  rule: a model configured with a temperature above the policy's threshold and no seed
  (as its ``llm_string`` says) is not cached, counted in ``uncacheable`` and logged once; one
  that names no temperature is. ``counters()`` counts every lookup once, as the other doors
  do (LangChain calls the model itself between `lookup` and `update`, so concurrent
  identical misses cannot be made to wait for one call here).

>>> from langchain_core.outputs import Generation
>>> from llmcache import MemoryStore
>>> cache = LLMCache(MemoryStore())
>>> cache.update("2+2?", "model=m temperature=0", [Generation(text="4")])
>>> cache.lookup("2+2?", "model=m temperature=0")
[Generation(text='4')]
>>> cache.lookup("2+2?", "model=m temperature=1") is None
True
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import re
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

from llmcache._pipeline import (
    MISS,
    AsyncRunner,
    Counters,
    Plan,
    Runner,
    decide,
    keyed,
    unkeyable,
)
from llmcache._pipeline.counters import CountedDoor
from llmcache.entry import CachedResponse
from llmcache.keys import NotKeyable, Request, canonical_call, key_and_fingerprint
from llmcache.policy import CachePolicy
from llmcache.stores.base import Store, check_ttl
from llmcache.stores.memory import MemoryStore

try:
    from langchain_core import messages as _messages
    from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
    from langchain_core.load import dumpd, load
    from langchain_core.outputs import (
        ChatGeneration,
        ChatGenerationChunk,
        Generation,
        GenerationChunk,
    )
except ImportError as exc:  # pragma: no cover - exercised in a venv without the extra
    raise ImportError(
        "llmcache.integrations.langchain needs langchain-core: pip install 'llmcache[langchain]'"
    ) from exc

__all__ = ["LLMCache", "LangChainSemantic"]


_KIND = "langchain.generations"
_MODEL = "langchain"  # the real model is named inside llm_string, which is in the key
_ALLOWED: list[Any] = [Generation, GenerationChunk, ChatGeneration, ChatGenerationChunk] + [
    getattr(_messages, name)
    for name in (
        "AIMessage",
        "AIMessageChunk",
        "HumanMessage",
        "HumanMessageChunk",
        "SystemMessage",
        "SystemMessageChunk",
        "ToolMessage",
        "ToolMessageChunk",
        "ChatMessage",
        "ChatMessageChunk",
        "FunctionMessage",
        "FunctionMessageChunk",
    )
]
_ROLES = {
    "HumanMessage": "user",
    "AIMessage": "assistant",
    "SystemMessage": "system",
    "ToolMessage": "tool",
    "FunctionMessage": "function",
}

if "allowed_objects" not in inspect.signature(load).parameters:  # pragma: no cover
    raise ImportError(
        "llmcache.integrations.langchain needs a langchain-core whose load() "
        "takes allowed_objects (0.3.81+ or 1.2.5+): pip install -U "
        "'llmcache[langchain]'"
    )

# Newer langchain-core can silence load()'s beta warning per call, through a context
# variable rather than the global warnings filters (so it is safe in threads and tasks);
# older versions warn once, harmlessly.
_suppress: Any = getattr(
    importlib.import_module("langchain_core._api"), "suppress_langchain_beta_warning", None
)


def _quiet() -> AbstractContextManager[None]:
    return _suppress() if _suppress is not None else nullcontext()


def _unserializable(value: Any) -> bool:
    """Whether ``dumpd`` output holds a value LangChain could not serialize (it would never
    load back, so storing it would only make a miss that costs a write)."""
    if isinstance(value, dict):
        return (value.get("type") == "not_implemented" and value.get("lc") == 1) or any(
            _unserializable(v) for v in value.values()
        )
    if isinstance(value, list):
        return any(_unserializable(v) for v in value)
    return False


_GENERATION_ID = ["langchain", "schema", "output", "Generation"]
_GENERATION_KWARGS = frozenset({"text", "generation_info", "type"})


def _plain_generations(content: list[Any]) -> list[Generation] | None:
    """Rebuild a list of plain `Generation`s without `load()`, or None to use `load()`.

    Most LLM caches hold plain text generations, and `load()` re-derives its allow-list
    of class paths on every call (about 80% of a hit, measured). This builds only
    `Generation` itself, from exactly the fields ``dumpd`` writes, type-checked; anything
    else (chat generations, messages, unknown fields) takes the general, allow-listed path.
    """
    out: list[Generation] = []
    for item in content:
        if (
            type(item) is not dict
            or item.get("lc") != 1
            or item.get("type") != "constructor"
            or item.get("id") != _GENERATION_ID
        ):
            return None
        kwargs = item.get("kwargs")
        if type(kwargs) is not dict or not kwargs.keys() <= _GENERATION_KWARGS:
            return None
        text, info = kwargs.get("text", ""), kwargs.get("generation_info")
        if type(text) is not str or not (info is None or type(info) is dict):
            return None
        if kwargs.get("type", "Generation") != "Generation":
            return None
        out.append(Generation(text=text, generation_info=info))
    return out


def _chat_messages(prompt: str) -> list[dict[str, Any]] | None:
    """The messages of a chat model's prompt (LangChain's ``dumps`` of the message list),
    as role/content dicts; ``None`` for a plain LLM prompt."""
    if not prompt.startswith("["):
        return None
    try:
        items = json.loads(prompt)
    except ValueError:
        return None
    out = []
    for item in items if isinstance(items, list) else ():
        kwargs = item.get("kwargs") if isinstance(item, dict) and item.get("lc") == 1 else None
        if not isinstance(kwargs, dict) or not isinstance(item.get("id"), list):
            return None
        kind = str(item["id"][-1]).removesuffix("Chunk")
        role = kwargs.get("role") if kind == "ChatMessage" else _ROLES.get(kind)
        if not isinstance(role, str):
            return None
        rest = {k: v for k, v in kwargs.items() if k not in ("content", "type", "role")}
        out.append({"role": role, "content": kwargs.get("content"), **rest})
    return out or None


# The sampling an llm_string names: LangChain writes the model's parameters as JSON
# ('"temperature": 0.7') and the call's as a Python repr ("('temperature', 0.7)"); the
# call's come last and win.
_TEMPERATURE = re.compile(r"""["']temperature["']\s*[:,]\s*(-?[0-9][0-9.]*(?:[eE][-+]?[0-9]+)?)""")
_SEED = re.compile(r"""["']seed["']\s*[:,]\s*(-?[0-9]+)\b""")


@functools.lru_cache(maxsize=1024)
def _sampling(llm_string: str) -> tuple[float | None, int | None]:
    """(temperature, seed) as `llm_string` names them, or None where it names none. Cached:
    a model passes the same string on every call."""
    temperatures = _TEMPERATURE.findall(llm_string)
    seeds = _SEED.findall(llm_string)
    try:
        temperature = float(temperatures[-1]) if temperatures else None
    except ValueError:
        temperature = None
    return temperature, int(seeds[-1]) if seeds else None


class _Generations:
    """The adapter's codec (see `llmcache._pipeline.codec`): LangChain generations, to
    entries and back. Lenient: generations LangChain cannot serialize are a counted error,
    never stored."""

    strict = False

    def encode(self, value: RETURN_VAL_TYPE, fingerprint: str, ttl: float | None) -> CachedResponse:
        # A JSON round trip: dumpd leaves str subclasses (langchain-core's TextAccessor) in
        # place, and NaN must be refused rather than stored as null.
        payload = json.loads(json.dumps([dumpd(g) for g in value], allow_nan=False))
        if _unserializable(payload):
            raise TypeError("a generation holds a value LangChain cannot serialize; not cached")
        entry = CachedResponse(content=payload, fingerprint=fingerprint, metadata={"kind": _KIND})
        return entry.with_ttl(ttl, entry.created_at) if ttl is not None else entry

    def decode(self, entry: CachedResponse) -> RETURN_VAL_TYPE:
        if entry.metadata.get("kind") != _KIND or not isinstance(entry.content, list):
            raise ValueError("entry: not LangChain generations")
        plain = _plain_generations(entry.content)
        if plain is not None:
            return plain
        with _quiet():
            generations = load(entry.content, allowed_objects=_ALLOWED)
        if not isinstance(generations, list) or not all(
            isinstance(g, Generation) for g in generations
        ):
            raise ValueError("entry: not a list of generations")
        return generations

    def share(self, value: RETURN_VAL_TYPE) -> RETURN_VAL_TYPE:
        return value  # never coalesced: LangChain calls the model itself

    def semantic(self, entry: CachedResponse) -> RETURN_VAL_TYPE:
        return self.decode(entry)


_GENERATIONS = _Generations()


class LangChainSemantic(Protocol):
    """What `LLMCache` needs of a semantic tier (`llmcache.vector.SemanticCache` is one):
    ``get(request)`` giving a hit (a `CachedResponse`, or an object with an ``entry``) or
    None, and ``set(request, entry)``; ``aget``/``aset`` coroutines and ``clear``/``close``
    are used when it has them."""

    def get(self, request: Request) -> Any: ...

    def set(self, request: Request, value: CachedResponse) -> None: ...


class _Semantic:
    """The semantic tier LLMCache was given, with the face the pipeline calls: its own
    coroutines when it has them, its sync methods otherwise (decided here, once). It keeps
    its own TTL."""

    def __init__(self, tier: LangChainSemantic) -> None:
        self.tier = tier
        self._aget = LLMCache._coroutine(tier, "aget")
        self._aset = LLMCache._coroutine(tier, "aset")

    def get(self, request: Request, *, threshold: float | None = None) -> Any:
        return self.tier.get(request)

    def set(self, request: Request, value: CachedResponse, *, ttl: float | None = None) -> None:
        self.tier.set(request, value)

    async def aget(self, request: Request, *, threshold: float | None = None) -> Any:
        return await self._aget(request) if self._aget else self.tier.get(request)

    async def aset(
        self, request: Request, value: CachedResponse, *, ttl: float | None = None
    ) -> None:
        if self._aset:
            await self._aset(request, value)
        else:
            self.tier.set(request, value)


class LLMCache(BaseCache, CountedDoor):
    """A LangChain cache (`langchain_core.caches.BaseCache`) over any llmcache `Store`.

    ``store`` is the exact tier (a new `MemoryStore` when omitted); ``ttl`` is how long its
    entries live (``None``: until evicted; the semantic tier keeps its own TTL);
    ``namespace`` keeps these entries apart from other users of a shared store.
    ``semantic`` (optional) is asked after an exact miss and told every update: an object
    with ``get(request)`` (returning a `CachedResponse`, or a hit with an ``entry``, or
    ``None``) and ``set(request, entry)``, and optionally ``aget``/``aset``/``clear`` --
    `llmcache.vector.SemanticCache` fits. A chat model's prompt reaches it as chat messages,
    so it matches the last user message within the same earlier turns, model and
    parameters, never the serialized JSON as one text. ``policy``: what may be cached (the
    default `CachePolicy`, as at every door).

    `clear` empties the store (and the semantic tier): give LangChain a store of its own.
    Store failures never fail the model call: they count in ``errors`` and read as misses.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        semantic: LangChainSemantic | None = None,
        ttl: float | None = None,
        namespace: str = "langchain",
        policy: CachePolicy | None = None,
    ) -> None:
        if store is not None and not isinstance(store, Store):
            raise TypeError(f"store: expected an llmcache Store, got {type(store).__name__}")
        self.store: Store = store if store is not None else MemoryStore()
        self.semantic = semantic
        self.ttl = check_ttl(ttl)
        self.namespace = namespace
        self.policy = policy or CachePolicy()
        self._counters = Counters("LLMCache")
        tier = _Semantic(semantic) if semantic is not None else None
        options: dict[str, Any] = {
            "policy": self.policy,
            "semantic": tier,
            "request_of": self._semantic_request,
        }
        self._runner = Runner(self.store, _GENERATIONS, self._counters, **options)
        self._arunner = AsyncRunner(self.store, _GENERATIONS, self._counters, **options)

    @staticmethod
    def _coroutine(owner: Any, name: str) -> Any:
        method = getattr(owner, name, None)
        return method if inspect.iscoroutinefunction(method) else None

    # -- counts (and `CountedDoor`'s) ---------------------------------------------------------

    @property
    def semantic_hits(self) -> int:
        """Lookups answered by the semantic tier (counted in `hits` too)."""
        return self._counters.semantic_hits

    # -- keys --------------------------------------------------------------------------------

    def _request(self, prompt: str, llm_string: str) -> Request:
        return Request(
            model=_MODEL, prompt=prompt, namespace=self.namespace, extra={"llm_string": llm_string}
        )

    def _semantic_request(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
        prompt, llm_string = args
        messages = _chat_messages(prompt)
        if messages is None:
            return self._request(prompt, llm_string)
        return Request(
            model=_MODEL,
            messages=messages,
            namespace=self.namespace,
            extra={"llm_string": llm_string},
        )

    def _plan(self, prompt: str, llm_string: str) -> Plan:
        temperature, seed = _sampling(llm_string)
        control = decide(self.policy, temperature, seed)
        if type(control) is Plan:
            return control
        try:
            data = canonical_call(
                _MODEL, self.namespace, {"prompt": prompt, "llm_string": llm_string}
            )
        except NotKeyable as exc:
            return unkeyable(str(exc))
        key, fp = key_and_fingerprint(data)
        return keyed(key, fp, control, self.ttl)  # type: ignore[arg-type]

    # -- BaseCache ---------------------------------------------------------------------------

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """The cached generations for this prompt and model configuration, or ``None``."""
        found = self._runner.lookup(self._plan(prompt, llm_string), (prompt, llm_string))
        return None if found is MISS else found

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """`lookup` for async code: awaits the store's (and the semantic tier's) coroutine
        face."""
        found = await self._arunner.lookup(self._plan(prompt, llm_string), (prompt, llm_string))
        return None if found is MISS else found

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Cache `return_val` for this prompt and model configuration (unless the policy or
        `cache_control` says otherwise)."""
        self._runner.save(self._plan(prompt, llm_string), return_val, (prompt, llm_string))

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """`update` for async code (the store's coroutine face)."""
        await self._arunner.save(self._plan(prompt, llm_string), return_val, (prompt, llm_string))

    def clear(self, **kwargs: Any) -> None:
        """Remove every entry from the store and the semantic tier."""
        self.store.clear()
        if self.semantic is not None and hasattr(self.semantic, "clear"):
            self.semantic.clear()

    async def aclear(self, **kwargs: Any) -> None:
        """`clear` for async code (the store's coroutine face)."""
        await self.store.aclear()
        if self.semantic is not None and hasattr(self.semantic, "clear"):
            self.semantic.clear()

    # -- llmcache's extras -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Hits (exact and semantic), misses, errors, and the store's own stats."""
        return {**self.counters(), "store": self.store.stats()}

    def close(self) -> None:
        """Close the store and the semantic tier."""
        self.store.close()
        if self.semantic is not None and hasattr(self.semantic, "close"):
            self.semantic.close()

    def __enter__(self) -> LLMCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        tiers = f"{self.store!r}" + (f", semantic={self.semantic!r}" if self.semantic else "")
        return f"LLMCache({tiers})"
