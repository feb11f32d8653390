"""The cache path, written once: steps that do no I/O, and a runner per face that drives
them (private; the doors are the public face).

========================  ==================================================================
module                    holds
========================  ==================================================================
``steps``                 `Plan`, the one policy decision (`decide`), what a fresh answer
                          stores (`entry_to_store`); the one verified read is the runners'
                          ``read``
``counters``              `Counters`: hits, misses, coalesced, bypasses, uncacheable, errors
``codec``                 `ValueCodec` / `StreamCodec`: a door's values to entries and back
``function_values``       the decorator's codec (str, JSON-like data, model answers)
``model_answers``         the clients' codec (`AIResponse` and stream chunks)
``function_key``          a decorated function's arguments to a `Plan`
``semantic``              `SemanticTier`, and the request a decorated call stands for
``read_ahead``            `AsyncReadAhead` / `ReadAhead`: an upstream stream read by a task
                          (thread) of its own, for doors whose callers open streams before
                          they read them (the HTTP transport)
``_async_runner``         `AsyncRunner`, written by hand
``_sync_runner``          `Runner`, generated from it by ``scripts/unasync.py``
========================  ==================================================================

Doors: ``@cached_generate`` (`llmcache.decorators`), `CachedClient` / `AsyncCachedClient`
(`llmcache.client`), the LangChain adapter (`llmcache.integrations.langchain`), the httpx
and httpx2 cache transports (`llmcache.integrations.httpx`, `llmcache.integrations.httpx2`),
and the plugins' cached clients built on `CachedClient`.
"""

from __future__ import annotations

from llmcache._pipeline._async_runner import AsyncRunner
from llmcache._pipeline._sync_runner import Runner
from llmcache._pipeline.counters import CacheInfo, Counters
from llmcache._pipeline.semantic import SemanticTier
from llmcache._pipeline.steps import MISS, Plan, decide, keyed, unkeyable

__all__ = [
    "MISS",
    "AsyncRunner",
    "CacheInfo",
    "Counters",
    "Plan",
    "Runner",
    "SemanticTier",
    "decide",
    "keyed",
    "unkeyable",
]
