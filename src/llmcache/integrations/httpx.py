"""A caching transport for `httpx`: the official SDKs answer repeated calls from llmcache.

``CacheTransport`` / ``AsyncCacheTransport`` are ``httpx.BaseTransport`` /
``httpx.AsyncBaseTransport``: they wrap a real transport (``httpx.HTTPTransport()`` /
``httpx.AsyncHTTPTransport()`` unless given one) and answer the model APIs' calls from an
llmcache store. Any SDK that takes an httpx client takes them in one line (`ollama` is on
httpx; `openai` 3.x and `anthropic` 2.x are on httpx2: use `llmcache.integrations.httpx2`,
which has the same two classes over that package)::

    client = ollama.Client(host, transport=CacheTransport(cache=store))
    client = openai.OpenAI(http_client=httpx.Client(transport=CacheTransport(cache=store)))

``AsyncCacheTransport(*, transport=None, cache=None, policy=None, semantic=None, ttl=None,
namespace="", share_credentials=False, scope_secret=None)``, and ``CacheTransport`` with
the same keywords:

- ``transport``: the transport that reaches the upstream (its package's own by default);
  closed with this one;
- ``cache``: any llmcache store or tier (`MemoryStore`, `DiskStore`, `RedisStore`,
  `TieredStore`, `PostgresStore`; a new `MemoryStore` by default); never closed here;
- ``policy``: a `CachePolicy` (the temperature rule, ``ttl``, ``store_length_limited``);
- ``semantic``: a semantic tier (`llmcache.vector.SemanticCache`) asked after an exact miss
  of a plain (not streamed) call whose text is a prompt or text messages; streams use the
  exact tier only;
- ``ttl``: seconds an entry lives (default: the policy's);
- ``namespace``: keeps these entries apart from other users of a shared tier;
- ``share_credentials``: by default entries are scoped by a keyed hash of the request's
  credential headers, so two API keys never share answers; True shares across keys;
- ``scope_secret``: the key of that hash (every process sharing a tier passes the same).

What it does with each request:

- Understood routes (``POST``): OpenAI ``/v1/chat/completions``, ``/v1/responses``,
  ``/v1/embeddings``, ``/v1/completions``; Anthropic ``/v1/messages``; Ollama
  ``/api/generate``, ``/api/chat``, ``/api/embed``, plain and streamed. Any other request,
  or a body the cache does not understand, goes upstream untouched.
- The key: every field of the JSON body that changes the answer, the method, the upstream
  origin and path, the headers that change the answer (``anthropic-version``...), the
  namespace and the credential scope. A credential is never in a key, a log line or an
  entry. The policy is every door's: a request that sets no temperature is cacheable, one
  that sets a temperature above the threshold without a seed is not (``uncacheable``).
- Only complete ``2xx`` answers are stored; errors (429, 500...), cut streams, streams
  with an error event and streams the client stopped reading never are.
- Streams (SSE, NDJSON) reach the client as they arrive and are recorded; a hit replays
  the same events in the same order, with the original ``content-type``. The upstream is
  asked for an unencoded answer (an encoded one is decoded before it is recorded), and a
  replay never carries a ``content-encoding`` or ``content-length`` of another body.
- Concurrent identical requests make one upstream call: across threads and tasks, and
  across processes through a shared tier that holds locks (`RedisStore`). For a stream,
  the first caller streams (the upstream is read ahead of it, so a caller that opens many
  streams before reading any never deadlocks) and the others wait until its upstream
  ended, then replay its recording; if it did not complete, they stream themselves. In
  another process they wait on the tier's lock, held until the first stream is stored.
  A stream is stored when its upstream ended cleanly and its caller read it to its last
  event (the SDKs stop reading at ``[DONE]``: that counts).
- Every response carries ``x-llmcache``: ``hit``, ``miss``, ``bypass`` or
  ``uncacheable`` (``x-llmcache-similarity`` too on a semantic hit). Per request:
  ``x-llmcache-bypass``, ``-refresh``, ``-no-store``, ``-ttl``, ``-namespace`` headers
  (removed before the request goes upstream; a bad one is answered 400) and
  `llmcache.cache_control()` around the call.

>>> import httpx
>>> from llmcache import MemoryStore
>>> def api(request):  # a stand-in for the model server
...     return httpx.Response(200, json={
...         "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "m",
...         "choices": [{"index": 0, "finish_reason": "stop",
...                      "message": {"role": "assistant", "content": "4"}}]})
>>> transport = CacheTransport(cache=MemoryStore(), transport=httpx.MockTransport(api))
>>> with httpx.Client(transport=transport, base_url="http://models.local") as http:
...     for _ in range(2):
...         r = http.post("/v1/chat/completions", json={
...             "model": "m", "messages": [{"role": "user", "content": "2+2?"}]})
...         print(r.headers["x-llmcache"], r.json()["choices"][0]["message"]["content"])
miss 4
hit 4

With the official SDKs (``openai`` 3.x also accepts an ``httpx.Client``):

>>> import openai
>>> client = openai.OpenAI(base_url="http://models.local/v1", api_key="sk-test",
...     http_client=httpx.Client(transport=CacheTransport(cache=MemoryStore(),
...                                                       transport=httpx.MockTransport(api))))
>>> for _ in range(2):
...     raw = client.chat.completions.with_raw_response.create(
...         model="m", messages=[{"role": "user", "content": "2+2?"}])
...     print(raw.headers["x-llmcache"], raw.parse().choices[0].message.content)
miss 4
hit 4

>>> import ollama
>>> def ollama_api(request):  # a stand-in for an Ollama server
...     return httpx.Response(200, json={
...         "model": "llama3.2", "created_at": "2025-01-01T00:00:00Z", "done": True,
...         "done_reason": "stop", "message": {"role": "assistant", "content": "4"}})
>>> transport = CacheTransport(cache=MemoryStore(), transport=httpx.MockTransport(ollama_api))
>>> client = ollama.Client(host="http://models.local", transport=transport)
>>> [client.chat(model="llama3.2", messages=[{"role": "user", "content": "2+2?"}],
...              stream=False).message.content for _ in range(2)]
['4', '4']
>>> transport.counters()["hits"], transport.counters()["misses"]
(1, 1)
"""

from __future__ import annotations

from types import ModuleType
from typing import ClassVar

try:
    import httpx
except ImportError as exc:  # pragma: no cover - httpx is a dependency of llmcache
    raise ImportError("llmcache.integrations.httpx needs httpx: pip install httpx") from exc

from llmcache.integrations._async_cache_transport import AsyncBody, AsyncCacheDoor
from llmcache.integrations._sync_cache_transport import Body, CacheDoor

__all__ = ["AsyncCacheTransport", "CacheTransport"]


class _Body(Body, httpx.SyncByteStream):
    pass


class _AsyncBody(AsyncBody, httpx.AsyncByteStream):
    pass


class CacheTransport(CacheDoor, httpx.BaseTransport):
    """An ``httpx.BaseTransport`` that answers the model APIs from an llmcache store (see
    the module docstring for the keywords and the behaviour). ``counters()``: hits,
    coalesced, misses, bypasses, uncacheable, errors, tokens and time saved."""

    _package: ClassVar[ModuleType] = httpx
    _stream_class = _Body


class AsyncCacheTransport(AsyncCacheDoor, httpx.AsyncBaseTransport):
    """The ``httpx.AsyncBaseTransport`` twin of `CacheTransport` (same keywords; awaits
    the store's coroutine face)."""

    _package: ClassVar[ModuleType] = httpx
    _stream_class = _AsyncBody
