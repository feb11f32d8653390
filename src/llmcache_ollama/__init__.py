"""The Ollama plugin of llmcache: httpx clients for Ollama's HTTP API.

`OllamaClient` (blocking) and `AsyncOllamaClient` implement `llmcache.backends.Backend` and
`AsyncBackend`; an Ollama-compatible server for tests and benchmarks lives in
`llmcache_ollama.server`.

>>> from llmcache_ollama import OllamaClient
>>> with OllamaClient("localhost:11434", model="llama3.2") as client:
...     client.host, client.model
('http://localhost:11434', 'llama3.2')
"""

from __future__ import annotations

from llmcache_ollama._async import AsyncOllamaClient
from llmcache_ollama._sync import OllamaClient
from llmcache_ollama.cached import AsyncCachedOllamaClient, CachedOllamaClient

__all__ = ["AsyncCachedOllamaClient", "AsyncOllamaClient", "CachedOllamaClient", "OllamaClient"]
