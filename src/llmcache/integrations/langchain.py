"""LangChain's LLM cache on llmcache's stores: `LLMCache`.

``set_llm_cache(LLMCache(store))`` makes every LangChain LLM and chat model answer repeated
calls from an llmcache store (memory, disk, Redis or tiers of them), optionally with a
semantic tier behind the exact one. Needs the ``langchain`` extra
(``pip install 'llmcache[langchain]'``: a langchain-core whose ``load`` takes an allowlist,
0.3.81+ or 1.2.5+).

- The key covers LangChain's ``prompt`` *and* ``llm_string`` (the model and every
  parameter): canonical bytes of both, hashed as llmcache hashes any request, with the
  entry's fingerprint checked on every read, so a collision or a planted entry is a miss.
- Values are LangChain's own JSON serialization (``dumpd``) of the `Generation` list, read
  back with ``load`` restricted to generation and message classes: text, generation_info,
  chat messages with their tool calls and usage all round-trip; nothing is pickled, and an
  entry naming any other class is a miss.
- The async methods are native: they await a store's ``aget``/``aset`` when it has them
  (`RedisStore`) and otherwise call the store directly, never through a thread executor.

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

import importlib
import inspect
import json
import logging
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from llmcache.entry import CachedResponse
from llmcache.keys import Request, canonical_bytes, fingerprint, hash_bytes
from llmcache.stores.base import ErrorLog, Store, check_ttl
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
    raise ImportError("llmcache.integrations.langchain needs langchain-core: "
                      "pip install 'llmcache[langchain]'") from exc

__all__ = ["LLMCache"]

logger = logging.getLogger(__name__)

_KIND = "langchain.generations"
_MODEL = "langchain"  # the real model is named inside llm_string, which is in the key
_ALLOWED: list[Any] = [Generation, GenerationChunk, ChatGeneration, ChatGenerationChunk] + [
    getattr(_messages, name) for name in (
        "AIMessage", "AIMessageChunk", "HumanMessage", "HumanMessageChunk", "SystemMessage",
        "SystemMessageChunk", "ToolMessage", "ToolMessageChunk", "ChatMessage",
        "ChatMessageChunk", "FunctionMessage", "FunctionMessageChunk")]
_ROLES = {"HumanMessage": "user", "AIMessage": "assistant", "SystemMessage": "system",
          "ToolMessage": "tool", "FunctionMessage": "function"}

if "allowed_objects" not in inspect.signature(load).parameters:  # pragma: no cover
    raise ImportError("llmcache.integrations.langchain needs a langchain-core whose load() "
                      "takes allowed_objects (0.3.81+ or 1.2.5+): pip install -U "
                      "'llmcache[langchain]'")

# Newer langchain-core can silence load()'s beta warning per call, through a context
# variable rather than the global warnings filters (so it is safe in threads and tasks);
# older versions warn once, harmlessly.
_suppress: Any = getattr(importlib.import_module("langchain_core._api"),
                         "suppress_langchain_beta_warning", None)


def _quiet() -> AbstractContextManager[None]:
    return _suppress() if _suppress is not None else nullcontext()


def _unserializable(value: Any) -> bool:
    """Whether ``dumpd`` output holds a value LangChain could not serialize (it would never
    load back, so storing it would only make a miss that costs a write)."""
    if isinstance(value, dict):
        return (value.get("type") == "not_implemented" and value.get("lc") == 1) or any(
            _unserializable(v) for v in value.values())
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
        if (type(item) is not dict or item.get("lc") != 1 or item.get("type") != "constructor"
                or item.get("id") != _GENERATION_ID):
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


class LLMCache(BaseCache):
    """A LangChain cache (`langchain_core.caches.BaseCache`) over any llmcache `Store`.

    ``store`` is the exact tier (a new `MemoryStore` when omitted); ``ttl`` is how long its
    entries live (``None``: until evicted; the semantic tier keeps its own TTL);
    ``namespace`` keeps these entries apart from other users of a shared store.
    ``semantic`` (optional) is asked after an exact miss and told every update: an object
    with ``get(request)`` (returning a `CachedResponse`, or a hit with an ``entry``, or
    ``None``) and ``set(request, entry)``, and optionally ``aget``/``aset``/``clear`` --
    `llmcache.vector.SemanticCache` fits. A chat model's prompt reaches it as chat messages,
    so it matches the last user message within the same earlier turns, model and
    parameters, never the serialized JSON as one text.

    `clear` empties the store (and the semantic tier): give LangChain a store of its own.
    Store failures never fail the model call: they count in ``errors`` and read as misses.
    """

    def __init__(self, store: Store | None = None, *, semantic: Any | None = None,
                 ttl: float | None = None, namespace: str = "langchain") -> None:
        if store is not None and not isinstance(store, Store):
            raise TypeError(f"store: expected an llmcache Store, got {type(store).__name__}")
        self.store: Store = store if store is not None else MemoryStore()
        self.semantic = semantic
        self.ttl = check_ttl(ttl)
        self.namespace = namespace
        self.hits = self.semantic_hits = self.misses = self.errors = 0
        self._errors = ErrorLog(logger, "LLMCache")
        self._aget = self._coroutine(self.store, "aget")
        self._aset = self._coroutine(self.store, "aset")

    @staticmethod
    def _coroutine(owner: Any, name: str) -> Any:
        method = getattr(owner, name, None)
        return method if inspect.iscoroutinefunction(method) else None

    # -- keys and values ---------------------------------------------------------------------

    def _request(self, prompt: str, llm_string: str) -> Request:
        return Request(model=_MODEL, prompt=prompt, namespace=self.namespace,
                       extra={"llm_string": llm_string})

    def _semantic_request(self, prompt: str, llm_string: str) -> Request:
        messages = _chat_messages(prompt)
        if messages is None:
            return self._request(prompt, llm_string)
        return Request(model=_MODEL, messages=messages, namespace=self.namespace,
                       extra={"llm_string": llm_string})

    def _keyed(self, prompt: str, llm_string: str) -> tuple[str, str]:
        data = canonical_bytes(self._request(prompt, llm_string))
        return hash_bytes(data), fingerprint(data)

    def _encode(self, return_val: RETURN_VAL_TYPE, fp: str) -> CachedResponse | None:
        try:
            # A JSON round trip: dumpd leaves str subclasses (langchain-core's TextAccessor)
            # in place, and NaN must be refused rather than stored as null.
            payload = json.loads(json.dumps([dumpd(g) for g in return_val], allow_nan=False))
        except (TypeError, ValueError) as exc:
            self._failed("encode", exc)
            return None
        if _unserializable(payload):
            self._failed("encode", TypeError("a generation holds a value LangChain cannot "
                                             "serialize; not cached"))
            return None
        return CachedResponse(content=payload, fingerprint=fp, metadata={"kind": _KIND})

    def _decode(self, entry: CachedResponse) -> list[Generation] | None:
        if entry.metadata.get("kind") != _KIND or not isinstance(entry.content, list):
            return None
        plain = _plain_generations(entry.content)
        if plain is not None:
            return plain
        try:
            with _quiet():
                generations = load(entry.content, allowed_objects=_ALLOWED)
        except Exception as exc:  # a corrupt or planted entry: any failure is a miss
            self._failed("decode", exc)
            return None
        if not isinstance(generations, list) or not all(
                isinstance(g, Generation) for g in generations):
            return None
        return generations

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.errors += 1
        self._errors.report(operation, exc)

    def _found(self, entry: CachedResponse | None, fp: str) -> list[Generation] | None:
        if entry is None or entry.fingerprint != fp:
            return None
        generations = self._decode(entry)
        if generations is not None:
            self.hits += 1
        return generations

    def _found_semantic(self, hit: Any) -> list[Generation] | None:
        entry = getattr(hit, "entry", hit)
        generations = self._decode(entry) if isinstance(entry, CachedResponse) else None
        if generations is not None:
            self.semantic_hits += 1
        else:
            self.misses += 1
        return generations

    # -- BaseCache ---------------------------------------------------------------------------

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """The cached generations for this prompt and model configuration, or ``None``."""
        key, fp = self._keyed(prompt, llm_string)
        try:
            found = self._found(self.store.get(key), fp)
        except Exception as exc:
            self._failed("get", exc)
            found = None
        if found is not None:
            return found
        if self.semantic is None:
            self.misses += 1
            return None
        try:
            hit = self.semantic.get(self._semantic_request(prompt, llm_string))
        except Exception as exc:
            self._failed("semantic.get", exc)
            hit = None
        return self._found_semantic(hit)

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """`lookup` for async code: awaits the store's ``aget`` (and the semantic tier's)
        when there is one."""
        key, fp = self._keyed(prompt, llm_string)
        try:
            entry = await self._aget(key) if self._aget else self.store.get(key)
            found = self._found(entry, fp)
        except Exception as exc:
            self._failed("get", exc)
            found = None
        if found is not None:
            return found
        if self.semantic is None:
            self.misses += 1
            return None
        aget = self._coroutine(self.semantic, "aget")
        try:
            request = self._semantic_request(prompt, llm_string)
            hit = await aget(request) if aget else self.semantic.get(request)
        except Exception as exc:
            self._failed("semantic.get", exc)
            hit = None
        return self._found_semantic(hit)

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Cache `return_val` for this prompt and model configuration."""
        key, fp = self._keyed(prompt, llm_string)
        entry = self._encode(return_val, fp)
        if entry is None:
            return
        try:
            self.store.set(key, entry, self.ttl)
        except Exception as exc:
            self._failed("set", exc)
        if self.semantic is not None:
            try:
                self.semantic.set(self._semantic_request(prompt, llm_string), entry)
            except Exception as exc:
                self._failed("semantic.set", exc)

    async def aupdate(self, prompt: str, llm_string: str,
                      return_val: RETURN_VAL_TYPE) -> None:
        """`update` for async code (the store's ``aset`` when there is one)."""
        key, fp = self._keyed(prompt, llm_string)
        entry = self._encode(return_val, fp)
        if entry is None:
            return
        try:
            if self._aset:
                await self._aset(key, entry, self.ttl)
            else:
                self.store.set(key, entry, self.ttl)
        except Exception as exc:
            self._failed("set", exc)
        if self.semantic is not None:
            aset = self._coroutine(self.semantic, "aset")
            try:
                request = self._semantic_request(prompt, llm_string)
                await aset(request, entry) if aset else self.semantic.set(request, entry)
            except Exception as exc:
                self._failed("semantic.set", exc)

    def clear(self, **kwargs: Any) -> None:
        """Remove every entry from the store and the semantic tier."""
        self.store.clear()
        if self.semantic is not None and hasattr(self.semantic, "clear"):
            self.semantic.clear()

    async def aclear(self, **kwargs: Any) -> None:
        """`clear` for async code (the store's ``aclear`` when there is one)."""
        aclear = self._coroutine(self.store, "aclear")
        if aclear:
            await aclear()
        else:
            self.store.clear()
        if self.semantic is not None and hasattr(self.semantic, "clear"):
            self.semantic.clear()

    # -- llmcache's extras -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Hits (exact and semantic), misses, errors, and the store's own stats."""
        return {"hits": self.hits, "semantic_hits": self.semantic_hits, "misses": self.misses,
                "errors": self.errors, "store": self.store.stats()}

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

