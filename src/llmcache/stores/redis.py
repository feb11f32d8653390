"""Shared tier on Redis (redis-py, the ``redis`` extra): one cache for many processes and hosts.

`RedisStore` is a `Store` (sync methods, usable alone or as a tier of `TieredStore`) with
coroutine twins (``aget``, ``aset``, ``adelete``, ``aclear``, ``aget_many``, ``aset_many``,
``aclose``) on ``redis.asyncio``, so async code never blocks its event loop on a round trip.
One class rather than two: a tier, a decorator and a client can all take the same object,
and the sync and async paths share counters, circuit breaker and locks.

- Values are the package codec's bytes (`JSONCodec` by default), never pickles; bytes read
  back are untrusted, and anything that does not decode is a miss (counted in ``errors``).
- Keys are ``{namespace}:{key}``; `clear` and `len` touch only that prefix. Keys starting
  with ``lock:`` are reserved for the single-flight locks (``{namespace}:lock:{key}``).
- Each entry has its own TTL (``SET ... PX``); `get_many` is one round trip (``MGET``),
  `set_many` one pipeline.
- Faults never reach the caller: Redis down, slower than `socket_timeout`, or restarted turns a
  ``get`` into a miss and drops a ``set``; the error is counted in `stats` and logged once
  per kind. After a connection failure or timeout the store skips Redis for `retry_after`
  seconds (a circuit breaker, so a dead server does not add its timeout to every call), then
  one call probes it; redis-py reconnects by itself, and the pool replaces dead connections
  when it hands them out. redis-py's own retries are off, so a call waits at most for one
  connection attempt (two when a pooled connection turns out dead) and one command, each
  bounded by `connect_timeout` / `socket_timeout`.
- The store implements `llmcache.distributed.LockProvider`: `cached_generate` and
  `CachedClient` use it so that N processes missing one key make one model call.

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
import secrets
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from llmcache.entry import CachedResponse
from llmcache.stores._redis_async import AsyncRedisMethods
from llmcache.stores._redis_base import _BATCH, MISSING_EXTRA, lease_ms
from llmcache.stores.base import Store

__all__ = ["MISSING_EXTRA", "RedisStore"]


class RedisStore(AsyncRedisMethods, Store):
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

    # -- the Store interface ----------------------------------------------------------------

    def get(self, key: str) -> CachedResponse | None:
        """The live entry under `key`; ``None`` when missing, undecodable or Redis failed."""
        name = self._name(key)
        if not self._up():
            self._count("misses")
            return None
        try:
            data = self._client.get(name)
        except self._errors as exc:
            self._failed("get", exc)
            self._count("misses")
            return None
        if self._breaker.down_until:
            self._breaker.success()
        return self._decode(data, "get")

    def set(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        """Store `entry` for `ttl` seconds (default: `default_ttl`); dropped if Redis fails."""
        name, data, px = self._encode(key, entry, ttl)
        if not self._up():
            return
        try:
            self._client.set(name, data, px=px)
        except self._errors as exc:
            self._failed("set", exc)
            return
        self._ok()
        self._count("sets")

    def delete(self, key: str) -> bool:
        """Remove `key`; True if it was there (False as well when Redis failed)."""
        name = self._name(key)
        if not self._up():
            return False
        try:
            removed = bool(self._client.delete(name))
        except self._errors as exc:
            self._failed("delete", exc)
            return False
        self._ok()
        if removed:
            self._count("deletes")
        return removed

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """The live entries among `keys` in one round trip (one MGET per 500 keys,
        pipelined)."""
        keys = list(dict.fromkeys(keys))
        names = [self._name(key) for key in keys]
        if not names:
            return {}
        if not self._up():
            self._count("misses", len(names))
            return {}
        try:
            if len(names) <= _BATCH:
                values = self._client.mget(names)
            else:
                pipe = self._client.pipeline(transaction=False)
                for i in range(0, len(names), _BATCH):
                    pipe.mget(names[i:i + _BATCH])
                values = [v for chunk in pipe.execute() for v in chunk]
        except self._errors as exc:
            self._failed("get_many", exc)
            self._count("misses", len(names))
            return {}
        self._ok()
        return self._decode_many(keys, values)

    def set_many(self, entries: Mapping[str, CachedResponse], ttl: float | None = None) -> None:
        """Store several entries with one TTL, in one pipeline (one round trip)."""
        encoded = [self._encode(key, entry, ttl) for key, entry in entries.items()]
        if not encoded or not self._up():
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for name, data, px in encoded:
                pipe.set(name, data, px=px)
            results = pipe.execute(raise_on_error=False)
        except self._errors as exc:
            self._failed("set_many", exc)
            return
        self._ok()
        self._count_writes("set_many", results)

    def clear(self) -> None:
        """Delete this namespace's entries (SCAN + UNLINK in batches of 500). Locks stay:
        they expire by themselves, and dropping one could start a second model call."""
        if not self._up():
            return
        try:
            batch: list[bytes] = []
            for name in self._client.scan_iter(match=self._pattern(), count=_BATCH):
                if self._is_entry(name):
                    batch.append(name)
                if len(batch) >= _BATCH:
                    self._client.unlink(*batch)
                    batch = []
            if batch:
                self._client.unlink(*batch)
        except self._errors as exc:
            self._failed("clear", exc)
            return
        self._ok()

    def _size(self) -> int | None:
        if not self._up():
            return None
        try:
            size = sum(1 for name in self._client.scan_iter(match=self._pattern(),
                                                            count=_BATCH)
                       if self._is_entry(name))
        except self._errors as exc:
            self._failed("len", exc)
            return None
        self._ok()
        return size

    def __len__(self) -> int:
        """Entries in this namespace. A full SCAN: O(keys in the whole database), one round
        trip per 500 keys scanned; 0 when Redis is unreachable. Not for hot paths."""
        return self._size() or 0

    def stats(self) -> dict[str, Any]:
        """Counters (``hits``, ``misses``, ``sets``, ``deletes``, ``expirations``, ``errors``;
        ``skipped``: calls not sent while the circuit was open), connectivity
        (``connected``, ``circuit_open``, ``circuit_opened``: times it opened,
        ``last_error``), ``entries`` (a SCAN, see `__len__`), ``namespace`` and ``url``
        (password hidden)."""
        size = self._size()
        breaker = self._breaker
        with self._count_lock:
            counters = self._stats.as_dict()
            skipped = self._skipped
        return {"entries": size or 0, **counters, "skipped": skipped,
                "connected": size is not None and not breaker.is_open,
                "circuit_open": breaker.is_open, "circuit_opened": breaker.opened,
                "last_error": breaker.last_error, "namespace": self._namespace,
                "url": self._safe_url}

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

    async def __aenter__(self) -> RedisStore:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"RedisStore({self._safe_url!r}, namespace={self._namespace!r})"

    # -- cross-process single-flight (llmcache.distributed.LockProvider) --------------------

    def try_lock(self, key: str, lease: float) -> str | None:
        """Take the lock of `key` for `lease` seconds: a token, or ``None`` when another
        caller holds it. Raises when Redis cannot tell (down, timeout, circuit open)."""
        if not self._up():
            raise self._unavailable()
        token = secrets.token_hex(16)
        try:
            taken = self._client.set(self._lock_prefix + key, token, nx=True,
                                     px=lease_ms(lease))
        except self._errors as exc:
            self._failed("lock", exc)
            raise
        self._ok()
        return token if taken else None

    def renew(self, key: str, token: str, lease: float) -> bool:
        """Extend the lock to `lease` seconds from now if `token` still holds it."""
        return self._script(self._renew, "renew", key, token, lease_ms(lease))

    def unlock(self, key: str, token: str) -> bool:
        """Release the lock if `token` still holds it (never another caller's)."""
        return self._script(self._unlock, "unlock", key, token)

    def _script(self, script: Any, operation: str, key: str, *args: Any) -> bool:
        try:
            result = script(keys=[self._lock_prefix + key], args=list(args))
        except self._errors as exc:
            self._failed(operation, exc)
            raise
        self._ok()
        return bool(result)
