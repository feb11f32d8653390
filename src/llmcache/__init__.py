"""llmcache: exact and semantic caching for applications that call language models."""

from __future__ import annotations

from llmcache.entry import CachedResponse
from llmcache.keys import Request, make_key

__all__ = ["CachedResponse", "Request", "make_key"]
__version__ = "0.1.0"
