"""A scripted, recording backend for tests: `MockBackend` and its twin `AsyncMockBackend`.

Each call is recorded as a `MockCall` and handed to ``handler``, whose return value becomes
the answer. The default handler echoes the prompt (or the last user message), so answers
are deterministic without any setup.

A handler may return:

- a ``str``: the answer's content (token counts are word counts);
- an `AIResponse`: returned as is (a copy, so callers may mutate it);
- an iterable of ``str`` / `StreamChunk` pieces (for the async mock, also an async
  iterable): streamed piece by piece, or joined for non-streaming calls (text and thinking
  joined, the tool calls of every chunk, a final ``done`` chunk's counts and reason). An
  exception raised while iterating surfaces mid-stream, after the earlier pieces were
  delivered; this is how to simulate a stream that breaks half-way.

Raising from the handler makes the call fail (e.g. with a `BackendError`), which is how
failures, flaky servers and "fail after N calls" are expressed. ``embed`` also consults the
handler (so it can raise); it may return an `EmbedResponse` or a list of vectors, and any
other value (such as the ``str`` a text handler returns) keeps the deterministic vectors.
Those vectors are hashed bags of words: the same text always gives the same unit vector,
and texts sharing words point in similar directions, which is enough for semantic tests.
``latency`` seconds are slept before each answer; calls after ``close`` (``aclose``) raise
`BackendUnavailable`. `AsyncMockBackend` also takes ``async def`` handlers.

>>> backend = MockBackend()
>>> backend.generate("2 + 2?").content
'echo: 2 + 2?'
>>> [c.content for c in backend.generate_stream("a b")]
['echo: ', 'a ', 'b', '']
>>> backend.call_count, backend.calls[0].method
(2, 'generate')
>>> from llmcache.backends.errors import BackendUnavailable
>>> def flaky(call):
...     if call.index == 0:
...         raise BackendUnavailable("down")
...     return "up"
>>> flaky_backend = MockBackend(flaky)
>>> flaky_backend.generate("x")
Traceback (most recent call last):
...
llmcache.backends.errors.BackendUnavailable: down
>>> flaky_backend.generate("x").content
'up'
>>> with MockBackend(lambda call: "Paris", model="geo") as backend:
...     answer = backend.chat([{"role": "user", "content": "Capital of France?"}])
>>> answer.content, answer.model, backend.calls[0].text
('Paris', 'geo', 'Capital of France?')

The asyncio twin, the same calls as coroutines:

>>> import asyncio
>>> async def main():
...     async with AsyncMockBackend() as backend:
...         chunks = [c.content async for c in backend.generate_stream("hi there")]
...         return chunks, (await backend.generate("hi")).content
>>> asyncio.run(main())
(['echo: ', 'hi ', 'there', ''], 'echo: hi')
"""

from __future__ import annotations

from llmcache.backends._async_mock import AsyncMockBackend
from llmcache.backends._mock_core import MockCall, MockHandler, echo, hashed_embedding
from llmcache.backends._sync_mock import MockBackend

__all__ = [
    "AsyncMockBackend",
    "MockBackend",
    "MockCall",
    "MockHandler",
    "echo",
    "hashed_embedding",
]

# The face is the classes' home, as in httpx: reprs, pickles and the backend registry name
# `llmcache.backends.mock`, not the private module each is written in.
for _public in (AsyncMockBackend, MockBackend, MockCall, echo, hashed_embedding):
    _public.__module__ = __name__
