"""The OpenAI plugin of llmcache: httpx clients for OpenAI-compatible HTTP APIs.

`OpenAIClient` (blocking) and `AsyncOpenAIClient` implement `llmcache.backends.Backend` and
`AsyncBackend` over ``/chat/completions`` (plain and streamed as server-sent events),
``/embeddings`` and ``/models``: the OpenAI API itself, or vLLM, llama.cpp's server, LM Studio,
Ollama's ``/v1`` ... The project's test server (`llmcache_ollama.server.OllamaServer`)
serves the same routes under ``/v1``.

>>> from llmcache_openai import OpenAIClient
>>> with OpenAIClient("http://localhost:8000/v1", model="m", api_key="sk-secret") as client:
...     client
OpenAIClient(base_url='http://localhost:8000/v1', model='m')
"""

from __future__ import annotations

from llmcache_openai._async import AsyncOpenAIClient
from llmcache_openai._sync import OpenAIClient

__all__ = ["AsyncOpenAIClient", "OpenAIClient"]
