"""A caching transport for `httpx2` (the next major of httpx, the HTTP package of
``openai`` 3.x and ``anthropic`` 2.x).

The same two classes as `llmcache.integrations.httpx`, over httpx2 (same keywords, same
behaviour, one implementation): ``CacheTransport`` / ``AsyncCacheTransport`` are
``httpx2.BaseTransport`` / ``httpx2.AsyncBaseTransport`` wrapping ``httpx2.HTTPTransport()``
/ ``httpx2.AsyncHTTPTransport()`` unless given another transport. Needs the ``httpx2``
extra (``pip install 'llmcache[httpx2]'``). The one-line change (``anthropic`` accepts only
an ``httpx2`` client)::

    client = anthropic.Anthropic(http_client=httpx2.Client(transport=CacheTransport(cache=store)))
    client = openai.OpenAI(http_client=httpx2.Client(transport=CacheTransport(cache=store)))
    client = openai.AsyncOpenAI(http_client=httpx2.AsyncClient(
        transport=AsyncCacheTransport(cache=store)))

>>> import anthropic, httpx2
>>> from llmcache import MemoryStore
>>> def api(request):  # a stand-in for the model server
...     return httpx2.Response(200, json={
...         "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
...         "content": [{"type": "text", "text": "4"}], "stop_reason": "end_turn",
...         "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}})
>>> client = anthropic.Anthropic(base_url="http://models.local", api_key="sk-test",
...     http_client=httpx2.Client(transport=CacheTransport(cache=MemoryStore(),
...                                                        transport=httpx2.MockTransport(api))))
>>> for _ in range(2):
...     raw = client.messages.with_raw_response.create(
...         model="claude", max_tokens=16, messages=[{"role": "user", "content": "2+2?"}])
...     print(raw.headers["x-llmcache"], raw.parse().content[0].text)
miss 4
hit 4
"""

from __future__ import annotations

from types import ModuleType
from typing import ClassVar

try:
    import httpx2
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "llmcache.integrations.httpx2 needs httpx2: pip install 'llmcache[httpx2]'"
    ) from exc

from llmcache.integrations._async_cache_transport import AsyncBody, AsyncCacheDoor
from llmcache.integrations._sync_cache_transport import Body, CacheDoor

__all__ = ["AsyncCacheTransport", "CacheTransport"]


class _Body(Body, httpx2.SyncByteStream):
    pass


class _AsyncBody(AsyncBody, httpx2.AsyncByteStream):
    pass


class CacheTransport(CacheDoor, httpx2.BaseTransport):
    """An ``httpx2.BaseTransport`` that answers the model APIs from an llmcache store (the
    keywords and the behaviour: `llmcache.integrations.httpx`). ``counters()``: hits,
    coalesced, misses, bypasses, uncacheable, errors, tokens and time saved."""

    _package: ClassVar[ModuleType] = httpx2
    _stream_class = _Body


class AsyncCacheTransport(AsyncCacheDoor, httpx2.AsyncBaseTransport):
    """The ``httpx2.AsyncBaseTransport`` twin of `CacheTransport` (same keywords; awaits
    the store's coroutine face)."""

    _package: ClassVar[ModuleType] = httpx2
    _stream_class = _AsyncBody
