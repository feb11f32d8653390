"""What the sync and async cached clients share: keys, policy, lookups, stream recording,
embedding plans. Nothing here does I/O with the backend, so it is written once."""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import orjson

from llmcache._semantic_glue import SemanticTier
from llmcache._values import restore_value, to_entry
from llmcache.backends.base import (
    AIResponse,
    EmbedResponse,
    StreamChunk,
    check_messages,
    check_prompt,
    check_sampling,
)
from llmcache.distributed import flight_for
from llmcache.embeddings import EmbeddingCache
from llmcache.entry import CachedResponse
from llmcache.keys import Request, canonical_bytes, fingerprint, hash_bytes
from llmcache.policy import CachePolicy, current_control
from llmcache.stores.base import Store
from llmcache.stores.memory import MemoryStore

__all__ = ["ClientCore", "EmbedPlan", "Prepared", "StreamRecorder"]

logger = logging.getLogger("llmcache.client")

# Request fields that change how a server behaves but never what it answers.
_NOT_IN_KEY = frozenset({"keep_alive", "stream"})
_CHUNK_FIELDS = frozenset(StreamChunk.__dataclass_fields__) - {"raw"}


@dataclass(slots=True)
class Prepared:
    """One call, ready to go: its key, what the cache may do, and the backend's kwargs."""

    key: str
    fingerprint: str
    read: bool
    write: bool
    ttl: float | None
    call_kwargs: dict[str, Any]
    request: Request | None = None  # kept for the semantic tier, which matches requests


@dataclass(slots=True)
class EmbedPlan:
    texts: list[str]
    model: str
    found: dict[str, Any]
    missing: list[str] = field(default_factory=list)


def _checked(chunk: StreamChunk) -> StreamChunk:
    """`chunk` if its fields have the types a consumer relies on (it may come from a shared
    tier), else ValueError."""
    calls = chunk.tool_calls
    if (not isinstance(chunk.content, str) or not isinstance(chunk.model, str)
            or not (chunk.thinking is None or isinstance(chunk.thinking, str))
            or not (calls is None or (isinstance(calls, list)
                                      and all(isinstance(c, dict) for c in calls)))
            or type(chunk.done) is not bool
            or type(chunk.prompt_tokens) is not int
            or type(chunk.completion_tokens) is not int
            or not (chunk.done_reason is None or isinstance(chunk.done_reason, str))):
        raise ValueError("entry.chunks: a chunk field has an unexpected type")
    return chunk


def _chunks_of(response: AIResponse) -> list[StreamChunk]:
    """A plain answer as a stream: its thinking, its text, then the final chunk with the tool
    calls (where the OpenAI plugin's streams put them too), token counts and reason."""
    model = response.model
    chunks = []
    if response.thinking:
        chunks.append(StreamChunk(content="", model=model, thinking=response.thinking))
    if response.content:
        chunks.append(StreamChunk(content=response.content, model=model))
    chunks.append(StreamChunk(content="", model=model, done=True,
                              done_reason=response.done_reason,
                              prompt_tokens=response.prompt_tokens,
                              completion_tokens=response.completion_tokens,
                              tool_calls=response.tool_calls))
    return [_checked(c) for c in chunks]


class StreamRecorder:
    """Collects a live stream's chunks; stores them only when the stream completed."""

    def __init__(self, core: ClientCore, prep: Prepared) -> None:
        self._core = core
        self._prep = prep
        self._chunks: list[StreamChunk] = []

    def add(self, chunk: StreamChunk) -> None:
        self._chunks.append(chunk)

    def finish(self) -> None:
        complete = self._complete()
        if complete is not None:
            self._core.store_response(self._prep, complete[0], chunks=complete[1])

    async def afinish(self) -> None:
        """`finish` through the store's ``aset`` when it has one."""
        complete = self._complete()
        if complete is not None:
            await self._core.astore_response(self._prep, complete[0], chunks=complete[1])

    def _complete(self) -> tuple[AIResponse, list[dict[str, Any]]] | None:
        """Counts the miss; the answer and the chunks to store, or None for a stream that
        ended without its final chunk (incomplete: never stored) or may not be stored.

        The answer is what a plain call would have returned: the text and the thinking
        deltas joined, the tool calls of every chunk in order (a chunk's ``tool_calls`` are
        complete calls: backends assemble fragments, as the OpenAI plugin does), the token
        counts and the reason of the final chunk.
        """
        core, chunks = self._core, self._chunks
        core.misses += 1
        if not self._prep.write or not chunks or not chunks[-1].done:
            return None
        last = chunks[-1]
        response = AIResponse(
            content="".join(c.content for c in chunks), model=last.model,
            tokens_used=last.prompt_tokens + last.completion_tokens,
            prompt_tokens=last.prompt_tokens, completion_tokens=last.completion_tokens,
            done_reason=last.done_reason,
            tool_calls=[tc for c in chunks for tc in (c.tool_calls or [])] or None,
            thinking="".join(c.thinking for c in chunks if c.thinking) or None,
        )
        try:
            # A private copy: the consumer holds (and may mutate) the live chunks, and a
            # memory tier keeps what it is given.
            stored = orjson.loads(orjson.dumps(
                [{k: v for k, v in c.to_dict().items() if k in _CHUNK_FIELDS}
                 for c in chunks]))
        except TypeError as exc:
            core.errors += 1
            logger.warning("not caching a stream whose chunks cannot be encoded: %s", exc)
            return None
        return response, stored


class ClientCore:
    """State and logic shared by `CachedClient` and `AsyncCachedClient`."""

    def __init__(self, backend: Any, cache: Any, policy: CachePolicy | None, *,
                 namespace: str, embedding_cache: EmbeddingCache | None,
                 semantic: SemanticTier | None = None) -> None:
        from llmcache._decorator_state import resolve_store
        from llmcache.metrics import metrics

        self.backend = backend
        self.semantic = semantic
        self.semantic_hits = 0
        self.store: Store = resolve_store(cache) if cache is not None else MemoryStore()
        self.policy = policy or CachePolicy()
        self.namespace = namespace
        self.embeddings = embedding_cache if embedding_cache is not None else EmbeddingCache()
        self.hits = self.misses = self.coalesced = self.errors = self.tokens_saved = 0
        self.bypasses = 0
        # Decided once, here: a lock shared between processes (None: in-process
        # single-flight only), and the store's coroutine methods for the async client.
        self.flight = flight_for(self.store)
        aget, aset = getattr(self.store, "aget", None), getattr(self.store, "aset", None)
        self.aget: Any = aget if inspect.iscoroutinefunction(aget) else None
        self.aset: Any = aset if inspect.iscoroutinefunction(aset) else None
        metrics.register_source(f"client:{type(backend).__name__}:{id(self):x}",
                                self.counters)

    @property
    def model(self) -> str:
        """The wrapped backend's default model."""
        return str(self.backend.model)

    # -- preparing calls -------------------------------------------------------------------

    def _options(self, options: Mapping[str, Any] | None, temperature: float | None,
                 max_tokens: int | None) -> dict[str, Any]:
        merged = dict(options or {})
        if temperature is not None:
            merged["temperature"] = temperature
        if max_tokens is not None:
            merged["num_predict"] = max_tokens
        return merged

    def _prepare(self, request: Request, options: dict[str, Any], bypass: bool,
                 call_kwargs: dict[str, Any]) -> Prepared:
        control = current_control()
        temperature = options.get("temperature",
                                  getattr(self.backend, "default_temperature", None))
        cacheable = not bypass and self.policy.cacheable(temperature=temperature,
                                                         seed=options.get("seed"))
        try:
            data = canonical_bytes(request)
        except orjson.JSONEncodeError as exc:
            # Text UTF-8 cannot encode (a lone surrogate): no key can hold it, so the call
            # goes to the backend without the cache (a counted bypass, not a failed call).
            self.bypasses += 1
            if self.bypasses == 1:
                logger.warning("calling without the cache: the request cannot be keyed (%s)",
                               exc)
            return Prepared(key="", fingerprint="", read=False, write=False, ttl=None,
                            call_kwargs=call_kwargs)
        return Prepared(key=hash_bytes(data), fingerprint=fingerprint(data),
                        read=cacheable and control.read, write=cacheable and control.write,
                        ttl=control.ttl if control.ttl is not None else self.policy.ttl,
                        call_kwargs=call_kwargs,
                        request=request if self.semantic is not None else None)

    def prepare_generate(self, prompt: str, model: str | None, system: str | None,
                         format: Any, options: Mapping[str, Any] | None,
                         images: Sequence[str | bytes] | None, temperature: float | None,
                         max_tokens: int | None, extra: dict[str, Any],
                         bypass: bool, method: str = "generate") -> Prepared:
        where = f"{type(self).__name__}.{method}"
        check_prompt(prompt, where)
        check_sampling(where, temperature=temperature, max_tokens=max_tokens, options=options)
        opts = self._options(options, temperature, max_tokens)
        model = model or self.model
        request = Request(model=model, prompt=prompt, system=system, format=format,
                          options=opts, images=images, namespace=self.namespace,
                          extra={k: v for k, v in extra.items() if k not in _NOT_IN_KEY})
        kwargs = dict(extra, model=model, system=system, format=format, options=opts or None,
                      images=images)
        return self._prepare(request, opts, bypass, kwargs)

    def prepare_chat(self, messages: Sequence[Mapping[str, Any]], model: str | None,
                     tools: Sequence[Mapping[str, Any]] | None, format: Any,
                     options: Mapping[str, Any] | None, temperature: float | None,
                     max_tokens: int | None, extra: dict[str, Any], bypass: bool,
                     method: str = "chat") -> Prepared:
        where = f"{type(self).__name__}.{method}"
        check_messages(messages, where)
        check_sampling(where, temperature=temperature, max_tokens=max_tokens, options=options,
                       tools=tools)
        opts = self._options(options, temperature, max_tokens)
        model = model or self.model
        request = Request(model=model, messages=messages, format=format, options=opts,
                          tools=tools, namespace=self.namespace,
                          extra={k: v for k, v in extra.items() if k not in _NOT_IN_KEY})
        kwargs = dict(extra, model=model, tools=tools, format=format, options=opts or None)
        return self._prepare(request, opts, bypass, kwargs)

    # -- reading and writing ---------------------------------------------------------------

    def _entry(self, prep: Prepared) -> CachedResponse | None:
        try:
            entry = self.store.get(prep.key)
        except Exception:
            self.errors += 1
            return None
        if entry is None or entry.fingerprint != prep.fingerprint:
            return None
        return entry

    async def _aentry(self, prep: Prepared) -> CachedResponse | None:
        """`_entry` through the store's ``aget``: the same checks, without blocking."""
        try:
            entry: CachedResponse | None = await self.aget(prep.key)
        except Exception:
            self.errors += 1
            return None
        if entry is None or entry.fingerprint != prep.fingerprint:
            return None
        return entry

    def lookup(self, prep: Prepared) -> AIResponse | None:
        return self._response_hit(self._entry(prep))

    async def alookup(self, prep: Prepared) -> AIResponse | None:
        """`lookup` through the store's ``aget``."""
        return self._response_hit(await self._aentry(prep))

    def lookup_stream(self, prep: Prepared) -> list[StreamChunk] | None:
        return self._stream_hit(self._entry(prep))

    async def alookup_stream(self, prep: Prepared) -> list[StreamChunk] | None:
        """`lookup_stream` through the store's ``aget``."""
        return self._stream_hit(await self._aentry(prep))

    def _response_hit(self, entry: CachedResponse | None) -> AIResponse | None:
        if entry is None:
            return None
        try:
            value = restore_value(entry)
        except (ValueError, TypeError, KeyError):
            self.errors += 1
            return None
        if not isinstance(value, AIResponse):
            self.errors += 1
            return None
        self.hits += 1
        self.tokens_saved += entry.tokens_used
        return value

    def _stream_hit(self, entry: CachedResponse | None) -> list[StreamChunk] | None:
        if entry is None:
            return None
        try:
            chunks = self._replay(entry)
        except (ValueError, TypeError):
            self.errors += 1  # a malformed entry from a shared tier is a miss
            return None
        self.hits += 1
        self.tokens_saved += entry.tokens_used
        return chunks

    @staticmethod
    def _replay(entry: CachedResponse) -> list[StreamChunk]:
        """The chunks a streamed hit gives back: the stored stream's own, or, for an answer
        stored by a plain call, chunks carrying all it had (thinking, text, and a final
        chunk with the tool calls, token counts and reason). Fresh objects on every call;
        ValueError/TypeError for a malformed entry."""
        if not isinstance(entry.content, str):
            raise TypeError("entry.content: a stream replays text")
        if not entry.chunks:
            value = restore_value(entry)
            if isinstance(value, str):  # an entry with no AIResponse fields: text only
                value = AIResponse(content=value, model=entry.model)
            if not isinstance(value, AIResponse):
                raise TypeError("entry: a stream replays a model's answer")
            return _chunks_of(value)
        out = []
        for item in orjson.loads(orjson.dumps(entry.chunks)):
            if not isinstance(item, dict) or not set(item) <= _CHUNK_FIELDS:
                raise ValueError("entry.chunks: unexpected chunk shape")
            out.append(_checked(StreamChunk(**item)))
        return out

    def store_response(self, prep: Prepared, response: AIResponse, *,
                       chunks: list[dict[str, Any]] | None = None) -> None:
        if not prep.write or not self.policy.storable_reason(response.done_reason):
            return
        try:
            entry = to_entry(response, fingerprint=prep.fingerprint, ttl=prep.ttl)
            entry.chunks = chunks
            self.store.set(prep.key, entry, prep.ttl)
        except (TypeError, ValueError) as exc:
            self.errors += 1
            logger.warning("not caching a response that cannot be encoded: %s", exc)
        except Exception:
            self.errors += 1

    async def astore_response(self, prep: Prepared, response: AIResponse, *,
                              chunks: list[dict[str, Any]] | None = None) -> None:
        """`store_response` through the store's ``aset`` when it has one."""
        if self.aset is None:
            self.store_response(prep, response, chunks=chunks)
            return
        if not prep.write or not self.policy.storable_reason(response.done_reason):
            return
        try:
            entry = to_entry(response, fingerprint=prep.fingerprint, ttl=prep.ttl)
            entry.chunks = chunks
            await self.aset(prep.key, entry, prep.ttl)
        except (TypeError, ValueError) as exc:
            self.errors += 1
            logger.warning("not caching a response that cannot be encoded: %s", exc)
        except Exception:
            self.errors += 1

    # -- the semantic tier (plain calls only; streams use the exact tier) --------------------

    def semantic_lookup(self, prep: Prepared) -> AIResponse | None:
        """A similar earlier request's answer, or None. Failures are misses."""
        if self.semantic is None or prep.request is None or not prep.read:
            return None
        try:
            return self._semantic_response(self.semantic.get(prep.request))
        except Exception:
            self.errors += 1
            return None

    async def asemantic_lookup(self, prep: Prepared) -> AIResponse | None:
        if self.semantic is None or prep.request is None or not prep.read:
            return None
        try:
            return self._semantic_response(await self.semantic.aget(prep.request))
        except Exception:
            self.errors += 1
            return None

    def _semantic_response(self, hit: Any) -> AIResponse | None:
        if hit is None:
            return None
        value = restore_value(hit.entry)
        if not isinstance(value, AIResponse):
            return None
        # The match is the caller's to judge: similarity and the matched prompt ride along.
        value.raw = {"semantic": dict(hit.entry.metadata.get("semantic", {}))}
        self.hits += 1
        self.semantic_hits += 1
        self.tokens_saved += hit.entry.tokens_used
        return value

    def _semantic_entry(self, prep: Prepared, response: AIResponse) -> CachedResponse | None:
        if (self.semantic is None or prep.request is None or not prep.write
                or not self.policy.storable_reason(response.done_reason)):
            return None
        return to_entry(response, fingerprint=prep.fingerprint, ttl=prep.ttl)

    def semantic_store(self, prep: Prepared, response: AIResponse) -> None:
        try:
            entry = self._semantic_entry(prep, response)
            if entry is not None and self.semantic is not None and prep.request is not None:
                self.semantic.set(prep.request, entry, ttl=prep.ttl)
        except Exception:
            self.errors += 1

    async def asemantic_store(self, prep: Prepared, response: AIResponse) -> None:
        try:
            entry = self._semantic_entry(prep, response)
            if entry is not None and self.semantic is not None and prep.request is not None:
                await self.semantic.aset(prep.request, entry, ttl=prep.ttl)
        except Exception:
            self.errors += 1

    def recorder(self, prep: Prepared) -> StreamRecorder:
        return StreamRecorder(self, prep)

    def count_miss(self, response: AIResponse) -> AIResponse:
        self.misses += 1
        return response

    def copy_shared(self, response: AIResponse) -> AIResponse:
        """A follower's own copy of the leader's answer."""
        self.coalesced += 1
        # Deep: a follower changing its tool call's arguments must not change the leader's.
        return replace(response, raw=dict(response.raw),
                       tool_calls=copy.deepcopy(response.tool_calls))

    def counters(self) -> dict[str, int | float]:
        return {"hits": self.hits, "semantic_hits": self.semantic_hits,
                "misses": self.misses, "coalesced": self.coalesced,
                "bypasses": self.bypasses,
                "errors": self.errors, "tokens_saved": self.tokens_saved}

    # -- embeddings ------------------------------------------------------------------------

    def plan_embed(self, texts: Sequence[str], model: str | None) -> EmbedPlan:
        if isinstance(texts, str):
            raise TypeError("texts: expected a list of strings; wrap a single text in a list")
        texts = list(texts)
        # A backend may embed with another model than it generates with (OpenAI's
        # embed_model); the cache key must name the model that made the vectors.
        model = model or getattr(self.backend, "embed_model", None) or self.model
        found = self.embeddings.get_batch(texts, model) if texts else {}
        missing = list(dict.fromkeys(t for t in texts if found.get(t) is None))
        return EmbedPlan(texts=texts, model=model, found=found, missing=missing)

    def finish_embed(self, plan: EmbedPlan, fetched: EmbedResponse | None) -> EmbedResponse:
        found = dict(plan.found)
        if fetched is not None:
            if len(fetched.embeddings) != len(plan.missing):
                raise ValueError(f"backend returned {len(fetched.embeddings)} embeddings for "
                                 f"{len(plan.missing)} texts")
            fresh = dict(zip(plan.missing, fetched.embeddings, strict=True))
            self.embeddings.set_batch(fresh, plan.model)
            found.update({t: np.asarray(v, dtype=np.float32) for t, v in fresh.items()})
        self.hits += len(plan.texts) - len(plan.missing)
        self.misses += len(plan.missing)
        vectors = [np.asarray(found[t], dtype=np.float32).tolist() for t in plan.texts]
        return EmbedResponse(embeddings=vectors, model=plan.model,
                             prompt_tokens=fetched.prompt_tokens if fetched else 0,
                             duration_ms=fetched.duration_ms if fetched else 0.0)
