"""Adapters that plug llmcache into other frameworks. Each lives in its own module, imports
its framework only when that module is imported, and needs the extra of the same name:

- `llmcache.integrations.langchain`: `LLMCache`, LangChain's LLM cache on llmcache stores
  (``pip install 'llmcache[langchain]'``);
- `llmcache.integrations.httpx`: `CacheTransport` / `AsyncCacheTransport`, a caching
  transport for httpx clients (the ``ollama`` SDK; ``openai`` takes one too);
- `llmcache.integrations.httpx2`: the same two classes for httpx2 clients (the ``openai``
  and ``anthropic`` SDKs; ``pip install 'llmcache[httpx2]'``).

``import llmcache`` imports none of them.
"""

from __future__ import annotations

__all__: list[str] = []
