"""`RedisStore`'s methods that talk to Redis, and how each turns a fault into a miss.

Both faces come from one source: the coroutine methods are written by hand, on one
``redis.asyncio`` client per event loop, and the sync methods (on the store's sync client)
are generated from them by ``scripts/unasync.py``. The two share counters, circuit breaker,
codec and generation (`RedisCore`); reads and writes turn faults into misses, deletes and
clears raise `StoreError` when they did not happen.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from llmcache.entry import CachedResponse
from llmcache.stores._redis_base import _BATCH, AsyncConn, RedisCore, lease_ms

__all__ = ["AsyncRedisMethods"]

# unasync: begin async-only


def _sync(store: RedisCore) -> Any:
    # A store wrapping a caller's sync client has no async client: its coroutines run the
    # sync methods (defined on `RedisStore`) in a worker thread.
    return store


# unasync: end


class AsyncRedisMethods(RedisCore):
    """``aget``, ``aset``, ``adelete``, ``aget_many``, ``aset_many``, ``aclear``,
    ``ageneration`` and the lock-provider methods ``atry_lock``, ``arenew``, ``aunlock``."""

    async def aget(self, key: str) -> CachedResponse | None:
        """The live entry under `key`; ``None`` when missing, undecodable or Redis failed.

        One round trip: ``MGET`` of the generation and of the entry's name under the
        generation this client holds. Only when the generation moved (a clear, here or in
        another process, or a server restored from an old snapshot) is the entry read again,
        under the generation Redis holds now."""
        view = self._view
        name = self._name(key, view)
        conn = self._aconn()
        # unasync: begin async-only
        if conn is None:
            return await asyncio.to_thread(_sync(self).get, key)
        # unasync: end
        if not self._up():
            self._count("misses")
            return None
        try:
            # execute_command: redis-py's `mget` wrapper cost ~5 us more per hit here (1.37x
            # raw GET instead of 1.25x); it is untyped, hence the ignore.
            gen_raw, data = await conn.client.execute_command(  # type: ignore[no-untyped-call]
                "MGET", self._gen_key, name
            )
            if gen_raw == view.raw:
                self._seen_at = time.monotonic()
            else:
                gen, data = await conn.read(keys=[self._gen_key], args=self._read_args([key]))
                self._saw(gen)
        except self._errors as exc:
            self._failed("get", exc)
            self._count("misses")
            return None
        if self._breaker.down_until:
            self._breaker.success()
        return self._decode(data, "get")

    async def aset(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        """Store `entry` for `ttl` seconds (default: `default_ttl`) under the current
        generation; dropped if Redis fails."""
        conn = self._aconn()
        # unasync: begin async-only
        if conn is None:
            await asyncio.to_thread(_sync(self).set, key, entry, ttl)
            return
        # unasync: end
        encoded = self._encode(key, entry, ttl)
        if not self._up():
            return
        try:
            gen = await conn.write(keys=[self._gen_key], args=self._write_args([encoded]))
        except self._errors as exc:
            self._failed("set", exc)
            return
        self._ok()
        self._saw(gen)
        self._count("sets")

    async def adelete(self, key: str) -> bool:
        """Remove `key`: True if it was there, False if it was not.

        Raises `StoreError` when Redis failed, timed out or is known to be down (it did not
        happen, or cannot tell): an explicit operation is tried even while the circuit
        breaker skips Redis for reads and writes."""
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        conn = self._aconn()
        # unasync: begin async-only
        if conn is None:
            return bool(await asyncio.to_thread(_sync(self).delete, key))
        # unasync: end
        try:
            removed, gen = await conn.delete(
                keys=[self._gen_key], args=[self._prefix, self._view.gen, key]
            )
        except self._errors as exc:
            raise self._not_done("delete", exc) from exc
        self._ok()
        self._saw(gen)
        if removed:
            self._count("deletes")
        return bool(removed)

    async def aget_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """The live entries among `keys` in one round trip (one MGET per 500 keys,
        pipelined, each with the generation, as in `aget`)."""
        keys = list(dict.fromkeys(keys))
        view = self._view
        names = [self._name(key, view) for key in keys]
        conn = self._aconn()
        # unasync: begin async-only
        if conn is None:
            return await asyncio.to_thread(_sync(self).get_many, keys)
        # unasync: end
        if not names:
            return {}
        if not self._up():
            self._count("misses", len(names))
            return {}
        try:
            if len(names) <= _BATCH:
                chunks = [await conn.client.mget([self._gen_key, *names])]
            else:
                pipe = conn.client.pipeline(transaction=False)
                for i in range(0, len(names), _BATCH):
                    pipe.mget([self._gen_key, *names[i : i + _BATCH]])
                chunks = await pipe.execute()
            if all(chunk[0] == view.raw for chunk in chunks):
                self._seen_at = time.monotonic()
                values = [v for chunk in chunks for v in chunk[1:]]
            else:
                values = await self._aread_again(conn, keys)
        except self._errors as exc:
            self._failed("get_many", exc)
            self._count("misses", len(names))
            return {}
        self._ok()
        return self._decode_many(keys, values)

    async def _aread_again(self, conn: AsyncConn, keys: list[str]) -> list[Any]:
        """`keys`' values under the generation Redis holds now (after it moved)."""
        values: list[Any] = []
        for i in range(0, len(keys), _BATCH):
            gen, *chunk = await conn.read(
                keys=[self._gen_key], args=self._read_args(keys[i : i + _BATCH])
            )
            self._saw(gen)
            values += chunk
        return values

    async def aset_many(
        self, entries: Mapping[str, CachedResponse], ttl: float | None = None
    ) -> None:
        """Store several entries with one TTL: one round trip per 500 entries."""
        conn = self._aconn()
        # unasync: begin async-only
        if conn is None:
            await asyncio.to_thread(_sync(self).set_many, entries, ttl)
            return
        # unasync: end
        encoded = [self._encode(key, entry, ttl) for key, entry in entries.items()]
        if not encoded or not self._up():
            return
        for i in range(0, len(encoded), _BATCH):
            chunk = encoded[i : i + _BATCH]
            try:
                gen = await conn.write(keys=[self._gen_key], args=self._write_args(chunk))
            except self._errors as exc:
                self._failed("set_many", exc)
                return
            self._ok()
            self._saw(gen)
            self._count("sets", len(chunk))

    async def aclear(self) -> None:
        """Make every entry of this namespace unreachable, then delete them.

        The generation is raised first (one round trip): from then on no client reads an
        earlier entry, including one that comes back later. Then the earlier generations'
        entries are deleted (SCAN + UNLINK in batches of 500); if that sweep fails half-way
        the clear still happened (the rest is unreachable; the error is counted and logged,
        and the next clear sweeps again). Locks stay: they expire by themselves, and
        dropping one could start a second model call.

        Raises `StoreError` when the generation could not be raised (Redis down, paused,
        or refusing writes): the clear did not happen, or it cannot tell. It is tried even
        while the circuit breaker skips Redis for reads and writes."""
        conn = self._aconn()
        # unasync: begin async-only
        if conn is None:
            await asyncio.to_thread(_sync(self).clear)
            return
        # unasync: end
        try:
            gen = await self._abump_generation(conn)
        except self._errors as exc:
            raise self._not_done("clear", exc) from exc
        self._ok()
        self._saw(gen)
        try:
            await self._asweep(conn, gen)
        except self._errors as exc:
            self._failed("clear (sweep)", exc)

    async def _abump_generation(self, conn: AsyncConn) -> int:
        try:
            return int(await conn.bump(keys=[self._gen_key], args=self._bump_args()))
        except self._oom_error:
            # Redis is full and refuses writes, the bump included; deletes are allowed, so
            # free this namespace's entries first and try once more.
            await self._asweep(conn, None)
            return int(await conn.bump(keys=[self._gen_key], args=self._bump_args()))

    async def _asweep(self, conn: AsyncConn, gen: int | None) -> None:
        batch: list[bytes] = []
        async for name in conn.client.scan_iter(match=self._pattern(), count=_BATCH):
            if self._stale(name, gen):
                batch.append(name)
            if len(batch) >= _BATCH:
                await conn.client.unlink(*batch)
                batch = []
        if batch:
            await conn.client.unlink(*batch)

    async def ageneration(self) -> int | None:
        """The namespace's generation, read from Redis (moved forward first if Redis went
        back to an older one). When Redis fails: the last one seen, ``None`` if it never
        answered. `TieredStore` keys its local tiers by it."""
        conn = self._aconn()
        # unasync: begin async-only
        if conn is None:
            result: int | None = await asyncio.to_thread(_sync(self).generation)
            return result
        # unasync: end
        if not self._up():
            return self._known_generation()
        try:
            (gen,) = await conn.read(keys=[self._gen_key], args=self._read_args([]))
        except self._errors as exc:
            self._failed("generation", exc)
            return self._known_generation()
        self._ok()
        self._saw(gen)
        return int(gen)

    # -- cross-process single-flight (llmcache.distributed.AsyncLockProvider) --------------

    async def atry_lock(self, key: str, lease: float) -> str | None:
        """Take the lock of `key` for `lease` seconds: a token, or ``None`` when another
        caller holds it. Raises when Redis cannot tell (down, timeout, circuit open)."""
        conn = self._aconn()
        # unasync: begin async-only
        if conn is None:
            return await asyncio.to_thread(_sync(self).try_lock, key, lease)
        # unasync: end
        if not self._up():
            raise self._unavailable()
        token = secrets.token_hex(16)
        try:
            taken = await conn.client.set(
                self._lock_prefix + key, token, nx=True, px=lease_ms(lease)
            )
        except self._errors as exc:
            self._failed("lock", exc)
            raise
        self._ok()
        return token if taken else None

    async def arenew(self, key: str, token: str, lease: float) -> bool:
        """Extend the lock to `lease` seconds from now if `token` still holds it."""
        conn = self._aconn()
        # unasync: begin async-only
        if conn is None:
            return bool(await asyncio.to_thread(_sync(self).renew, key, token, lease))
        # unasync: end
        return await self._ascript(conn.renew, "renew", key, token, lease_ms(lease))

    async def aunlock(self, key: str, token: str) -> bool:
        """Release the lock if `token` still holds it (never another caller's)."""
        conn = self._aconn()
        # unasync: begin async-only
        if conn is None:
            return bool(await asyncio.to_thread(_sync(self).unlock, key, token))
        # unasync: end
        return await self._ascript(conn.unlock, "unlock", key, token)

    async def _ascript(self, script: Any, operation: str, key: str, *args: Any) -> bool:
        try:
            result = await script(keys=[self._lock_prefix + key], args=list(args))
        except self._errors as exc:
            self._failed(operation, exc)
            raise
        self._ok()
        return bool(result)
