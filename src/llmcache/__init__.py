"""llmcache: exact caching for applications that call language models.

>>> from llmcache import cached_generate
>>> @cached_generate
... def generate(prompt: str, model: str = "llama3.2") -> str:
...     return prompt[::-1]
>>> generate("abc"), generate(prompt="abc"), generate.cache_info().hits
('cba', 'cba', 1)
"""

from __future__ import annotations

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
from llmcache.client import AsyncCachedClient, CachedClient
from llmcache.decorators import CacheInfo, cached_generate
from llmcache.embeddings import EmbeddingCache
from llmcache.entry import CachedResponse, Codec, CodecError, JSONCodec
from llmcache.keys import Request, make_key
from llmcache.metrics import MetricsCollector, metrics
from llmcache.parallel import parallel_first, parallel_map
from llmcache.policy import CacheControl, CachePolicy, cache_control
from llmcache.response_cache import ResponseCache
from llmcache.singleflight import AsyncSingleFlight, SingleFlight
from llmcache.stores import DiskStore, MemoryStore, RedisStore, Store, TieredStore
from llmcache.vector import (
    HashingEmbedder,
    SemanticCache,
    SemanticHit,
    VectorIndex,
    Verifier,
    WordLlamaEmbedder,
)

__all__ = [
    "AIResponse",
    "AsyncBackend",
    "AsyncCachedClient",
    "AsyncMockBackend",
    "AsyncSingleFlight",
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
    "CachedResponse",
    "Codec",
    "CodecError",
    "DiskStore",
    "EmbedResponse",
    "EmbeddingBatcher",
    "EmbeddingCache",
    "HashingEmbedder",
    "JSONCodec",
    "MemoryStore",
    "MetricsCollector",
    "MockBackend",
    "MockCall",
    "ModelNotFound",
    "RedisStore",
    "Request",
    "ResponseCache",
    "SemanticCache",
    "SemanticHit",
    "SingleFlight",
    "Store",
    "StreamChunk",
    "StreamError",
    "TieredStore",
    "VectorIndex",
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
