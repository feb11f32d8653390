"""Adapters that plug llmcache into other frameworks. Each lives in its own module, imports
its framework only when that module is imported, and needs the extra of the same name:

- `llmcache.integrations.langchain`: `LLMCache`, LangChain's LLM cache on llmcache stores
  (``pip install 'llmcache[langchain]'``).

``import llmcache`` imports none of them.
"""

from __future__ import annotations

__all__: list[str] = []
