"""The OpenAI plugin of llmcache: httpx clients for OpenAI-compatible HTTP APIs.

`OpenAIClient` (blocking) and `AsyncOpenAIClient` implement `llmcache.backends.Backend` and
`AsyncBackend` over ``/chat/completions`` (plain and streamed as server-sent events),
``/embeddings`` and ``/models``, on the HTTP layer the plugins share (`llmcache_http`): the
OpenAI API itself, or vLLM, llama.cpp's server, LM Studio, Ollama's ``/v1`` ... The
project's test server (`llmcache_testserver.OllamaServer`, installed with the test setup)
serves the same routes under ``/v1``.

>>> from llmcache_openai import OpenAIClient
>>> with OpenAIClient("http://localhost:8000/v1", model="m", api_key="sk-secret") as client:
...     client
OpenAIClient(base_url='http://localhost:8000/v1', model='m')

On the test server, both faces:

>>> import asyncio
>>> from llmcache_testserver import OllamaServer
>>> async def ask(url: str) -> list[str]:
...     async with AsyncOpenAIClient(url, model="llama3.2") as client:
...         reply = await client.chat([{"role": "user", "content": "hello"}])
...         pieces = [c.content async for c in client.generate_stream("a b")]
...         return [reply.content, "".join(pieces)]
>>> with OllamaServer() as server, OpenAIClient(server.openai_url,
...                                             model="llama3.2") as client:
...     print(client.generate("Why is the sky blue?", temperature=0).content)
...     print("".join(c.content for c in client.generate_stream("hi")))
...     asyncio.run(ask(server.openai_url))
echo: Why is the sky blue?
echo: hi
['echo: hello', 'echo: a b']
"""

from __future__ import annotations

from llmcache_openai._async_client import AsyncOpenAIClient
from llmcache_openai._sync_client import OpenAIClient

__all__ = ["AsyncOpenAIClient", "OpenAIClient"]
