"""The Ollama plugin of llmcache: httpx clients for Ollama's HTTP API.

`OllamaClient` (blocking) and `AsyncOllamaClient` implement `llmcache.backends.Backend` and
`AsyncBackend` over the HTTP layer the plugins share (`llmcache_http`); the
Ollama-compatible server the examples below run is the project's test tool
(`llmcache_testserver`, installed with the test setup).

>>> from llmcache_ollama import OllamaClient
>>> with OllamaClient("localhost:11434", model="llama3.2") as client:
...     client.host, client.model
('http://localhost:11434', 'llama3.2')

On the test server, both faces:

>>> import asyncio
>>> from llmcache_testserver import OllamaServer
>>> async def ask(url: str) -> list[str]:
...     async with AsyncOllamaClient(url, timeout=5) as client:
...         reply = await client.chat([{"role": "user", "content": "hello"}])
...         pieces = [c.content async for c in client.generate_stream("a b")]
...         return [reply.content, "".join(pieces)]
>>> with OllamaServer() as server, OllamaClient(server.url, timeout=5) as client:
...     print(client.generate("Why is the sky blue?", temperature=0).content)
...     print("".join(c.content for c in client.generate_stream("hi")))
...     asyncio.run(ask(server.url))
echo: Why is the sky blue?
echo: hi
['echo: hello', 'echo: a b']
"""

from __future__ import annotations

from llmcache_ollama._async_client import AsyncOllamaClient
from llmcache_ollama._sync_client import OllamaClient
from llmcache_ollama.cached import AsyncCachedOllamaClient, CachedOllamaClient

__all__ = ["AsyncCachedOllamaClient", "AsyncOllamaClient", "CachedOllamaClient", "OllamaClient"]
