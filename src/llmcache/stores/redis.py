"""Shared tier on Redis (redis-py, the ``redis`` extra): one cache for many processes and hosts.

`RedisStore` is a `Store` (sync methods, usable alone or as a tier of `TieredStore`) and
an `AsyncStore` with real coroutines (``aget``, ``aset``, ``adelete``, ``aclear``,
``aget_many``, ``aset_many``, ``ageneration``, ``aclose``; ``awaitable_io`` is True) on
``redis.asyncio``, so async code never blocks its event loop on a round trip. One class
rather than two: a tier, a decorator and a client can all take the same object, and the
sync and async paths share counters, circuit breaker and locks. The coroutines are written
by hand (`llmcache.stores._async_redis`); the sync methods are generated from them.

- Values are the package codec's bytes (`JSONCodec` by default), never pickles; bytes read
  back are untrusted, and anything that does not decode is a miss (counted in ``errors``).
- Keys are ``{namespace}:{generation}:{key}``. The generation (an integer under
  ``{namespace}:gen``, absent: 0) is what `clear` raises: every earlier entry becomes
  unreachable at once, in every process, whatever comes back later. A read is one ``MGET``
  of the generation and the entry (exact, no extra round trip); writes and deletes are
  scripts that name the entry under the generation Redis holds. Keys starting with ``lock:``
  are reserved for the single-flight locks (``{namespace}:lock:{key}``); `clear` and `len`
  touch only this namespace.
- Each entry has its own TTL (``SET ... PX``); `get_many` is one round trip (``MGET``),
  `set_many` one script call per 500 entries.
- ``get``/``set`` (and the batches) never raise on a fault: Redis down, slower than
  `socket_timeout`, or restarted turns a read into a miss and drops a write; the error is
  counted in `stats` and logged once per kind. After a connection failure or timeout the
  store skips Redis for `retry_after` seconds (a circuit breaker, so a dead server does not
  add its timeout to every call), then one call probes it; redis-py reconnects by itself,
  and the pool replaces dead connections when it hands them out. redis-py's own retries are
  off, so a call waits at most for one connection attempt (two when a pooled connection
  turns out dead) and one command, each bounded by `connect_timeout` / `socket_timeout`.
- ``delete`` and ``clear`` say what happened: ``delete`` returns True (removed) or False
  (absent), ``clear`` returns None, and both raise `llmcache.errors.StoreError` when they
  did not happen or cannot tell. Being explicit, they are tried even while the circuit is
  open (a clear is never skipped silently).
- The store implements `llmcache.distributed.LockProvider`: `cached_generate` and
  `CachedClient` use it so that N processes missing one key make one model call.

**Faults and outcomes** (each row is checked by ``tests/faults/test_redis_faults.py``):

=============================================  ==========================================
fault                                          outcome
=============================================  ==========================================
Redis down, refusing connections               reads miss, writes are dropped (counted,
                                               logged once); ``delete``/``clear`` raise
                                               `StoreError`; ``len`` is 0
Redis paused / slower than `socket_timeout`    the same, after one timeout; then skipped
                                               for `retry_after` seconds
Redis killed mid-run, restarted empty          as above while down; then misses until
                                               written again (a dead pooled connection
                                               costs at most one miss)
Redis restarted from a snapshot taken before   a client that saw the clear moves the
a clear (the old entries and generation back)  generation forward on its next call and
                                               never serves an entry from before; a
                                               process started after the restore and
                                               before any such call can read them (run
                                               Redis with AOF if a clear must survive a
                                               crash)
a clear while Redis is unreachable             `StoreError`; nothing is undone later: a
                                               clear that returned is final
the sweep after a clear fails half-way         the clear happened (the rest is
                                               unreachable); counted, swept by the next
Redis full (``maxmemory``, ``noeviction``)     writes dropped and counted; ``clear``
                                               deletes this namespace's entries first,
                                               then raises the generation
a pickle, garbage, malformed JSON, wrong       a miss counted in ``errors``; never
fields at an entry's name                      unpickled
a value of another type at an entry's name     a miss
another request's entry, a changed             served by the store as it is; callers
fingerprint                                    (`cached_generate`, `CachedClient`) compare
                                               the fingerprint: a miss, the model answers
garbage in the generation key                  replaced by the highest generation seen
=============================================  ==========================================

The async twins use one ``redis.asyncio`` client per event loop (asyncio connections belong
to the loop that opened them); release it with ``await store.aclose()`` (or
``async with store``) before that loop ends. When you pass your own sync `client`, the async
twins run the sync calls in a worker thread instead. A closed store may be used again: it
reconnects (like redis-py's own clients).

>>> store = RedisStore("redis://127.0.0.1:6379/0", namespace="docs")  # doctest: +SKIP
>>> store.set("k", CachedResponse(content="v"), ttl=60)               # doctest: +SKIP
>>> store.get("k").content                                            # doctest: +SKIP
'v'
"""

from __future__ import annotations

import asyncio
from typing import Any

from llmcache.stores._async_redis import AsyncRedisMethods
from llmcache.stores._redis_base import _BATCH, MISSING_EXTRA
from llmcache.stores._sync_redis import RedisMethods
from llmcache.stores.base import Store

__all__ = ["MISSING_EXTRA", "RedisStore"]


class RedisStore(RedisMethods, AsyncRedisMethods, Store):
    """A Redis tier shared by processes and hosts (see the module docstring).

    `url`: ``redis://``, ``rediss://`` (TLS) or ``unix://``, with an optional password
    (never logged; `repr` and `stats` show it as ``***``). `namespace`: the key prefix, a
    plain word. `default_ttl`: seconds for `set` without a TTL (``None``: no expiry).
    `codec`: the bytes format (default `JSONCodec`). `socket_timeout` / `connect_timeout`:
    the most one command / one connection attempt may take. `client`: a ready
    ``redis.Redis`` to use instead of opening one (not closed by `close`; it must not decode
    responses). `retry_after`: seconds Redis is skipped after a connection failure or
    timeout. `lock_lease`: seconds a single-flight lock lives unless renewed (0 turns the
    cross-process single-flight off); `lock_wait`: how long a caller waits for another
    process's answer before calling the model itself. `clock`: wall-clock seconds for the
    ``expires_at`` written into entries.

    Raises ImportError naming the ``redis`` extra when redis-py is not installed.
    """

    name = "redis"

    @property
    def namespace(self) -> str:
        """The key prefix of this store's entries (``{namespace}:{key}``)."""
        return self._namespace

    def _size(self) -> int | None:
        if not self._up():
            return None
        conn = self._conn()
        try:
            (gen,) = conn.read(keys=[self._gen_key], args=self._read_args([]))
            self._saw(gen)
            size = sum(1 for _ in conn.client.scan_iter(match=self._pattern(gen), count=_BATCH))
        except self._errors as exc:
            self._failed("len", exc)
            return None
        self._ok()
        return size

    def __len__(self) -> int:
        """Entries of the current generation. A full SCAN: O(keys in the whole database),
        one round trip per 500 keys scanned; 0 when Redis is unreachable. Not for hot
        paths."""
        return self._size() or 0

    def stats(self) -> dict[str, Any]:
        """Counters (``hits``, ``misses``, ``sets``, ``deletes``, ``expirations``, ``errors``;
        ``skipped``: calls not sent while the circuit was open), connectivity
        (``connected``, ``circuit_open``, ``circuit_opened``: times it opened,
        ``last_error``), ``entries`` (a SCAN, see `__len__`), ``generation`` (the last one
        seen, ``None`` before Redis answered), ``namespace`` and ``url`` (password
        hidden)."""
        size = self._size()
        with self._count_lock:
            counters = self._stats.as_dict()
        circuit = self._circuit()
        return {
            "entries": size or 0,
            **counters,
            "skipped": circuit.pop("skipped"),
            "generation": self._known_generation(),
            "connected": size is not None and not circuit["circuit_open"],
            **circuit,
            "namespace": self._namespace,
            "url": self._safe_url,
        }

    def close(self) -> None:
        """Close the connections this store opened (never a `client` passed in). Async
        clients of other loops that still run are closed on their loop; prefer `aclose`
        inside a loop. The store stays usable: a later call reconnects."""
        conns, self._aconns = self._aconns, {}
        for loop, conn in conns.items():
            if loop.is_running() and not loop.is_closed():
                # A coroutine cannot be awaited here; hand it to the loop that owns it.
                asyncio.run_coroutine_threadsafe(conn.client.aclose(), loop)
        if self._owns_client:
            self._client.close()

    async def aclose(self) -> None:
        """Close this event loop's connections, then the rest of the store (see `close`)."""
        conn = self._aconns.pop(asyncio.get_running_loop(), None)
        if conn is not None:
            await conn.client.aclose()
        self.close()

    def __repr__(self) -> str:
        return f"RedisStore({self._safe_url!r}, namespace={self._namespace!r})"
