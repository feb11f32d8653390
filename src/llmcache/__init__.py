"""llmcache: exact caching for applications that call language models.

>>> from llmcache import cached_generate
>>> @cached_generate
... def generate(prompt: str, model: str = "llama3.2") -> str:
...     return prompt[::-1]
>>> generate("abc"), generate(prompt="abc"), generate.cache_info().hits
('cba', 'cba', 1)

`__all__` is the face: what users use, and every type a public signature names. Most names
are imported with the package; those whose modules load numpy (the semantic tier, the
embedding cache) or a database driver's glue (Postgres) are imported on first use (PEP 562),
so ``import llmcache`` loads none of numpy, httpx, rich, typer, redis or psycopg.
"""

from __future__ import annotations

import importlib
import typing
import warnings

from llmcache.backends import (
    AIResponse,
    AsyncBackend,
    AsyncMockBackend,
    AuthenticationError,
    Backend,
    BackendConflict,
    BackendError,
    BackendInfo,
    BackendLoadError,
    BackendNotFound,
    BackendTimeout,
    BackendUnavailable,
    BadRequest,
    BadResponse,
    EmbedResponse,
    MockBackend,
    MockCall,
    ModelNotFound,
    StreamChunk,
    StreamError,
    get_backend,
    list_backends,
    register_backend,
)
from llmcache.batching import BatchConfig, BatchProcessor, EmbeddingBatcher
from llmcache.client import AsyncCachedClient, CachedClient, HasStore, SemanticTier
from llmcache.decorators import CachedFunction, CacheInfo, cached_generate
from llmcache.entry import CachedResponse, Codec, CodecError, JSONCodec
from llmcache.errors import LLMCacheError, StoreError
from llmcache.keys import Request, make_key
from llmcache.metrics import Measurement, MetricsCollector, metrics
from llmcache.parallel import parallel_first, parallel_map
from llmcache.policy import CacheControl, CachePolicy, cache_control
from llmcache.response_cache import ResponseCache
from llmcache.stores import AsyncStore, DiskStore, MemoryStore, RedisStore, Store, TieredStore
from llmcache.stores.disk import Damage

if typing.TYPE_CHECKING:
    from llmcache.embeddings import EmbeddingCache
    from llmcache.singleflight import AsyncSingleFlight as AsyncSingleFlight  # deprecated here
    from llmcache.singleflight import SingleFlight as SingleFlight  # deprecated here
    from llmcache.stores.postgres import PostgresStore, SchemaError
    from llmcache.vector import (
        Embedder,
        Guard,
        HashingEmbedder,
        SearchHit,
        SemanticCache,
        SemanticHit,
        VectorIndex,
        VectorSearch,
        Verifier,
        WordLlamaEmbedder,
    )
    from llmcache.vector.pgvector import PostgresSemanticCache
    from llmcache.vector.semantic import Candidate

# Imported on first use: name -> the public module that holds it. The vector modules and
# the embedding cache load numpy (about 100 ms). The Postgres tiers load psycopg only when
# one is built; loading their modules on first use too keeps psycopg, and what those
# modules may come to import, out of `import llmcache` for good.
_LAZY: dict[str, str] = {
    "Candidate": "llmcache.vector.semantic",
    "Embedder": "llmcache.vector",
    "EmbeddingCache": "llmcache.embeddings",
    "Guard": "llmcache.vector",
    "HashingEmbedder": "llmcache.vector",
    "PostgresSemanticCache": "llmcache.vector.pgvector",
    "PostgresStore": "llmcache.stores.postgres",
    "SchemaError": "llmcache.stores.postgres",
    "SearchHit": "llmcache.vector",
    "SemanticCache": "llmcache.vector",
    "SemanticHit": "llmcache.vector",
    "VectorIndex": "llmcache.vector",
    "VectorSearch": "llmcache.vector",
    "Verifier": "llmcache.vector",
    "WordLlamaEmbedder": "llmcache.vector",
}

# Names that left the face, still served with a DeprecationWarning naming their home.
# Single-flight is the pipeline's mechanism (every door coalesces identical misses, and
# its flights share one wait-for graph with `llmcache.distributed`'s locks): a primitive
# for those who want it, in its own public module, not part of the cache's face.
_MOVED: dict[str, str] = {
    "AsyncSingleFlight": "llmcache.singleflight",
    "SingleFlight": "llmcache.singleflight",
}


def __getattr__(name: str) -> object:
    home = _LAZY.get(name)
    if home is not None:
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value  # later lookups find it without calling this function
        return value
    home = _MOVED.get(name)
    if home is not None:
        warnings.warn(
            f"llmcache.{name} is deprecated and leaves the package face; import it from {home}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(home), name)
    raise AttributeError(f"module 'llmcache' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AIResponse",
    "AsyncBackend",
    "AsyncCachedClient",
    "AsyncMockBackend",
    "AsyncStore",
    "AuthenticationError",
    "Backend",
    "BackendConflict",
    "BackendError",
    "BackendInfo",
    "BackendLoadError",
    "BackendNotFound",
    "BackendTimeout",
    "BackendUnavailable",
    "BadRequest",
    "BadResponse",
    "BatchConfig",
    "BatchProcessor",
    "CacheControl",
    "CacheInfo",
    "CachePolicy",
    "CachedClient",
    "CachedFunction",
    "CachedResponse",
    "Candidate",
    "Codec",
    "CodecError",
    "Damage",
    "DiskStore",
    "EmbedResponse",
    "Embedder",
    "EmbeddingBatcher",
    "EmbeddingCache",
    "Guard",
    "HasStore",
    "HashingEmbedder",
    "JSONCodec",
    "LLMCacheError",
    "Measurement",
    "MemoryStore",
    "MetricsCollector",
    "MockBackend",
    "MockCall",
    "ModelNotFound",
    "PostgresSemanticCache",
    "PostgresStore",
    "RedisStore",
    "Request",
    "ResponseCache",
    "SchemaError",
    "SearchHit",
    "SemanticCache",
    "SemanticHit",
    "SemanticTier",
    "Store",
    "StoreError",
    "StreamChunk",
    "StreamError",
    "TieredStore",
    "VectorIndex",
    "VectorSearch",
    "Verifier",
    "WordLlamaEmbedder",
    "cache_control",
    "cached_generate",
    "get_backend",
    "list_backends",
    "make_key",
    "metrics",
    "parallel_first",
    "parallel_map",
    "register_backend",
]
__version__ = "0.1.0"
