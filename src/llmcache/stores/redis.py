"""Shared tier on Redis (redis-py, the ``redis`` extra): one cache for many processes and hosts.

`RedisStore` is a `Store` (sync methods, usable alone or as a tier of `TieredStore`) with
coroutine twins (``aget``, ``aset``, ``adelete``, ``aclear``, ``aget_many``, ``aset_many``,
``ageneration``, ``aclose``) on ``redis.asyncio``, so async code never blocks its event loop
on a round trip. One class rather than two: a tier, a decorator and a client can all take
the same object, and the sync and async paths share counters, circuit breaker and locks.

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
import secrets
import time
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
        """The live entry under `key`; ``None`` when missing, undecodable or Redis failed.

        One round trip: ``MGET`` of the generation and of the entry's name under the
        generation this client holds. Only when the generation moved (a clear, here or in
        another process, or a server restored from an old snapshot) is the entry read again,
        under the generation Redis holds now."""
        view = self._view
        name = self._name(key, view)
        if not self._up():
            self._count("misses")
            return None
        try:
            # execute_command: redis-py's `mget` wrapper cost ~5 us more per hit here (1.37x
            # raw GET instead of 1.25x); it is untyped, hence the ignore.
            gen_raw, data = self._client.execute_command(  # type: ignore[no-untyped-call]
                "MGET", self._gen_key, name)
            if gen_raw == view.raw:
                self._seen_at = time.monotonic()
            else:
                gen, data = self._read(keys=[self._gen_key], args=self._read_args([key]))
                self._saw(gen)
        except self._errors as exc:
            self._failed("get", exc)
            self._count("misses")
            return None
        if self._breaker.down_until:
            self._breaker.success()
        return self._decode(data, "get")

    def set(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        """Store `entry` for `ttl` seconds (default: `default_ttl`) under the current
        generation; dropped if Redis fails."""
        encoded = self._encode(key, entry, ttl)
        if not self._up():
            return
        try:
            gen = self._write(keys=[self._gen_key], args=self._write_args([encoded]))
        except self._errors as exc:
            self._failed("set", exc)
            return
        self._ok()
        self._saw(gen)
        self._count("sets")

    def delete(self, key: str) -> bool:
        """Remove `key`: True if it was there, False if it was not.

        Raises `StoreError` when Redis failed, timed out or is known to be down (it did not
        happen, or cannot tell): an explicit operation is tried even while the circuit
        breaker skips Redis for `get` and `set`."""
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        try:
            removed, gen = self._delete(keys=[self._gen_key],
                                        args=[self._prefix, self._view.gen, key])
        except self._errors as exc:
            raise self._not_done("delete", exc) from exc
        self._ok()
        self._saw(gen)
        if removed:
            self._count("deletes")
        return bool(removed)

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """The live entries among `keys` in one round trip (one MGET per 500 keys,
        pipelined, each with the generation, as in `get`)."""
        keys = list(dict.fromkeys(keys))
        view = self._view
        names = [self._name(key, view) for key in keys]
        if not names:
            return {}
        if not self._up():
            self._count("misses", len(names))
            return {}
        try:
            if len(names) <= _BATCH:
                chunks = [self._client.mget([self._gen_key, *names])]
            else:
                pipe = self._client.pipeline(transaction=False)
                for i in range(0, len(names), _BATCH):
                    pipe.mget([self._gen_key, *names[i:i + _BATCH]])
                chunks = pipe.execute()
            if all(chunk[0] == view.raw for chunk in chunks):
                self._seen_at = time.monotonic()
                values = [v for chunk in chunks for v in chunk[1:]]
            else:
                values = self._read_again(keys)
        except self._errors as exc:
            self._failed("get_many", exc)
            self._count("misses", len(names))
            return {}
        self._ok()
        return self._decode_many(keys, values)

    def _read_again(self, keys: list[str]) -> list[Any]:
        """`keys`' values under the generation Redis holds now (after it moved)."""
        values: list[Any] = []
        for i in range(0, len(keys), _BATCH):
            gen, *chunk = self._read(keys=[self._gen_key],
                                     args=self._read_args(keys[i:i + _BATCH]))
            self._saw(gen)
            values += chunk
        return values

    def set_many(self, entries: Mapping[str, CachedResponse], ttl: float | None = None) -> None:
        """Store several entries with one TTL: one round trip per 500 entries."""
        encoded = [self._encode(key, entry, ttl) for key, entry in entries.items()]
        if not encoded or not self._up():
            return
        for i in range(0, len(encoded), _BATCH):
            chunk = encoded[i:i + _BATCH]
            try:
                gen = self._write(keys=[self._gen_key], args=self._write_args(chunk))
            except self._errors as exc:
                self._failed("set_many", exc)
                return
            self._ok()
            self._saw(gen)
            self._count("sets", len(chunk))

    def clear(self) -> None:
        """Make every entry of this namespace unreachable, then delete them.

        The generation is raised first (one round trip): from then on no client reads an
        earlier entry, including one that comes back later. Then the earlier generations'
        entries are deleted (SCAN + UNLINK in batches of 500); if that sweep fails half-way
        the clear still happened (the rest is unreachable; the error is counted and logged,
        and the next clear sweeps again). Locks stay: they expire by themselves, and
        dropping one could start a second model call.

        Raises `StoreError` when the generation could not be raised (Redis down, paused,
        or refusing writes): the clear did not happen, or it cannot tell. It is tried even
        while the circuit breaker skips Redis for `get` and `set`."""
        try:
            gen = self._bump_generation()
        except self._errors as exc:
            raise self._not_done("clear", exc) from exc
        self._ok()
        self._saw(gen)
        try:
            self._sweep(gen)
        except self._errors as exc:
            self._failed("clear (sweep)", exc)

    def _bump_generation(self) -> int:
        try:
            return int(self._bump(keys=[self._gen_key], args=self._bump_args()))
        except self._oom_error:
            # Redis is full and refuses writes, the bump included; deletes are allowed, so
            # free this namespace's entries first and try once more.
            self._sweep(None)
            return int(self._bump(keys=[self._gen_key], args=self._bump_args()))

    def _sweep(self, gen: int | None) -> None:
        batch: list[bytes] = []
        for name in self._client.scan_iter(match=self._pattern(), count=_BATCH):
            if self._stale(name, gen):
                batch.append(name)
            if len(batch) >= _BATCH:
                self._client.unlink(*batch)
                batch = []
        if batch:
            self._client.unlink(*batch)

    def generation(self) -> int | None:
        """The namespace's generation, read from Redis (moved forward first if Redis went
        back to an older one). When Redis fails: the last one seen, ``None`` if it never
        answered. `TieredStore` keys its local tiers by it."""
        if not self._up():
            return self._known_generation()
        try:
            (gen,) = self._read(keys=[self._gen_key], args=self._read_args([]))
        except self._errors as exc:
            self._failed("generation", exc)
            return self._known_generation()
        self._ok()
        self._saw(gen)
        return int(gen)

    def _size(self) -> int | None:
        if not self._up():
            return None
        try:
            (gen,) = self._read(keys=[self._gen_key], args=self._read_args([]))
            self._saw(gen)
            size = sum(1 for _ in self._client.scan_iter(match=self._pattern(gen),
                                                         count=_BATCH))
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
        breaker = self._breaker
        with self._count_lock:
            counters = self._stats.as_dict()
            skipped = self._skipped
        return {"entries": size or 0, **counters, "skipped": skipped,
                "generation": self._known_generation(),
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
