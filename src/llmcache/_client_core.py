"""What `CachedClient` and `AsyncCachedClient` share: turning a call's arguments into a
`Plan` and the backend's keyword arguments, counting, and planning embeddings. Nothing here
does I/O, so it is written once; the cache path itself is the pipeline's runner.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import orjson

from llmcache._pipeline import Counters, Plan, decide, keyed, unkeyable
from llmcache._pipeline.counters import CountedDoor
from llmcache._pipeline.function_key import HasStore, resolve_store
from llmcache._pipeline.model_answers import MODEL_ANSWERS
from llmcache._pipeline.semantic import SemanticTier
from llmcache.backends.base import (
    AsyncBackend,
    Backend,
    EmbedResponse,
    check_messages,
    check_prompt,
    check_sampling,
    sampling_options,
)
from llmcache.keys import Request, canonical_bytes, key_and_fingerprint
from llmcache.policy import CacheControl, CachePolicy
from llmcache.stores.base import Store
from llmcache.stores.memory import MemoryStore

if TYPE_CHECKING:
    from llmcache.embeddings import EmbeddingCache

__all__ = ["ClientCore", "EmbedPlan"]

logger = logging.getLogger("llmcache.client")

B = TypeVar("B", Backend, AsyncBackend)

# Request fields that change how a server behaves but never what it answers.
_NOT_IN_KEY = frozenset({"keep_alive", "stream"})


@dataclass(slots=True)
class EmbedPlan:
    texts: list[str]
    model: str
    found: dict[str, Any]
    missing: list[str] = field(default_factory=list)


class ClientCore(CountedDoor, Generic[B]):
    """State and planning shared by `CachedClient` and `AsyncCachedClient`."""

    backend: B

    def __init__(
        self,
        backend: B,
        cache: Store | HasStore | None,
        policy: CachePolicy | None,
        *,
        namespace: str,
        embedding_cache: EmbeddingCache | None,
        semantic: SemanticTier | None,
        runner: type[Any],
    ) -> None:
        from llmcache.embeddings import EmbeddingCache  # numpy: loaded with the first client
        from llmcache.metrics import metrics

        self.backend = backend
        self.semantic = semantic
        self.store: Store = resolve_store(cache) if cache is not None else MemoryStore()
        self.policy = policy or CachePolicy()
        self.namespace = namespace
        self.embeddings = embedding_cache if embedding_cache is not None else EmbeddingCache()
        self._counters = Counters(f"{type(self).__name__}({type(backend).__name__})")
        self._runner = runner(
            self.store, MODEL_ANSWERS, self._counters, policy=self.policy, semantic=semantic
        )
        metrics.register_source(f"client:{type(backend).__name__}:{id(self):x}", self.counters)

    @property
    def model(self) -> str:
        """The wrapped backend's default model."""
        return str(self.backend.model)

    # -- preparing calls ---------------------------------------------------------------------

    def _plan(self, request: Request, options: dict[str, Any], bypass: bool) -> Plan:
        # The temperature the caller sent (an argument or options["temperature"]); none
        # sent is cacheable, whatever the server samples at (see llmcache._pipeline.steps).
        control = decide(
            self.policy, options.get("temperature"), options.get("seed"), bypass=bypass
        )
        if type(control) is Plan:
            return control
        try:
            data = canonical_bytes(request)
        except orjson.JSONEncodeError as exc:
            # Text UTF-8 cannot encode (a lone surrogate): no key can hold it, so the call
            # goes to the backend without the cache (a counted bypass, not a failed call).
            return unkeyable(str(exc))
        key, fp = key_and_fingerprint(data)
        return keyed(
            key,
            fp,
            cast(CacheControl, control),  # not a Plan: returned above (`type is` is cheaper)
            self.policy.ttl,
            request if self.semantic is not None else None,
        )

    def prepare_generate(
        self,
        prompt: str,
        model: str | None,
        system: str | None,
        format: Any,
        options: Mapping[str, Any] | None,
        images: Sequence[str | bytes] | None,
        temperature: float | None,
        max_tokens: int | None,
        extra: dict[str, Any],
        bypass: bool,
        method: str = "generate",
    ) -> tuple[Plan, dict[str, Any]]:
        """The plan of a ``generate`` call and the backend's keyword arguments."""
        where = f"{type(self).__name__}.{method}"
        check_prompt(prompt, where)
        check_sampling(where, temperature=temperature, max_tokens=max_tokens, options=options)
        opts = sampling_options(options, temperature, max_tokens)
        model = model or self.model
        request = Request(
            model=model,
            prompt=prompt,
            system=system,
            format=format,
            options=opts,
            images=images,
            namespace=self.namespace,
            extra={k: v for k, v in extra.items() if k not in _NOT_IN_KEY},
        )
        kwargs = dict(
            extra, model=model, system=system, format=format, options=opts or None, images=images
        )
        return self._plan(request, opts, bypass), kwargs

    def prepare_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        model: str | None,
        tools: Sequence[Mapping[str, Any]] | None,
        format: Any,
        options: Mapping[str, Any] | None,
        temperature: float | None,
        max_tokens: int | None,
        extra: dict[str, Any],
        bypass: bool,
        method: str = "chat",
    ) -> tuple[Plan, dict[str, Any]]:
        """The plan of a ``chat`` call and the backend's keyword arguments."""
        where = f"{type(self).__name__}.{method}"
        check_messages(messages, where)
        check_sampling(
            where, temperature=temperature, max_tokens=max_tokens, options=options, tools=tools
        )
        opts = sampling_options(options, temperature, max_tokens)
        model = model or self.model
        request = Request(
            model=model,
            messages=messages,
            format=format,
            options=opts,
            tools=tools,
            namespace=self.namespace,
            extra={k: v for k, v in extra.items() if k not in _NOT_IN_KEY},
        )
        kwargs = dict(extra, model=model, tools=tools, format=format, options=opts or None)
        return self._plan(request, opts, bypass), kwargs

    # -- embeddings --------------------------------------------------------------------------

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
        import numpy as np  # loaded where first used: `import llmcache` stays without numpy

        found = dict(plan.found)
        if fetched is not None:
            if len(fetched.embeddings) != len(plan.missing):
                raise ValueError(
                    f"backend returned {len(fetched.embeddings)} embeddings for "
                    f"{len(plan.missing)} texts"
                )
            fresh = dict(zip(plan.missing, fetched.embeddings, strict=True))
            self.embeddings.set_batch(fresh, plan.model)
            found.update({t: np.asarray(v, dtype=np.float32) for t, v in fresh.items()})
        self._counters.hits += len(plan.texts) - len(plan.missing)
        self._counters.misses += len(plan.missing)
        vectors = [np.asarray(found[t], dtype=np.float32).tolist() for t in plan.texts]
        return EmbedResponse(
            embeddings=vectors,
            model=plan.model,
            prompt_tokens=fetched.prompt_tokens if fetched else 0,
            duration_ms=fetched.duration_ms if fetched else 0.0,
        )
