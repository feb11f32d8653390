"""Vector search for semantic caching: an exact numpy index and an approximate (HNSW) one.

`VectorIndex` keeps float32 unit rows in one matrix and answers top-k cosine queries with a
single matrix-vector product. `ApproximateIndex` (extra ``ann``: ``pip install
'llmcache[ann]'``) has the same interface on usearch, and `make_index` gives an index that
switches from the first to the second above a size you set.
"""

from __future__ import annotations

from llmcache.vector.ann import ApproximateIndex, ann_available
from llmcache.vector.autoindex import AutoIndex, make_index
from llmcache.vector.embedders import (
    BackendEmbedder,
    Embedder,
    HashingEmbedder,
    WordLlamaEmbedder,
)
from llmcache.vector.guards import (
    AntonymGuard,
    DirectionGuard,
    EntityGuard,
    Guard,
    HistoryGuard,
    NegationGuard,
    NumberGuard,
    OrderGuard,
    QuantifierGuard,
    ScopeGuard,
    SymbolGuard,
    default_guards,
)
from llmcache.vector.index import IndexFileError, SearchHit, VectorIndex, VectorSearch
from llmcache.vector.semantic import SemanticCache, SemanticHit
from llmcache.vector.verifier import Verifier

__all__ = [
    "AntonymGuard",
    "ApproximateIndex",
    "AutoIndex",
    "BackendEmbedder",
    "DirectionGuard",
    "Embedder",
    "EntityGuard",
    "Guard",
    "HashingEmbedder",
    "HistoryGuard",
    "IndexFileError",
    "NegationGuard",
    "NumberGuard",
    "OrderGuard",
    "QuantifierGuard",
    "ScopeGuard",
    "SearchHit",
    "SemanticCache",
    "SemanticHit",
    "SymbolGuard",
    "VectorIndex",
    "VectorSearch",
    "Verifier",
    "WordLlamaEmbedder",
    "ann_available",
    "default_guards",
    "make_index",
]
