"""The coroutine twins of `RedisStore`'s methods, on ``redis.asyncio``.

Each twin behaves like its sync method (same counters, circuit breaker, codec, generation,
faults turned into misses on reads and writes, `StoreError` from ``adelete`` and ``aclear``)
but awaits the round trip, so an event loop is never blocked on Redis.
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


def _sync(store: RedisCore) -> Any:
    # A store wrapping a caller's sync client has no async client: its twins run the sync
    # methods (defined on `RedisStore`) in a worker thread.
    return store


class AsyncRedisMethods(RedisCore):
    """``aget``, ``aset``, ``adelete``, ``aget_many``, ``aset_many``, ``aclear``,
    ``ageneration``, ``aclose`` and the lock twins ``atry_lock``, ``arenew``, ``aunlock``."""

    async def aget(self, key: str) -> CachedResponse | None:
        """`get` without blocking the event loop."""
        view = self._view
        name = self._name(key, view)
        conn = self._aconn()
        if conn is None:
            return await asyncio.to_thread(_sync(self).get, key)
        if not self._up():
            self._count("misses")
            return None
        try:
            gen_raw, data = await conn.client.execute_command(  # type: ignore[no-untyped-call]
                "MGET", self._gen_key, name)  # as in `get`: cheaper than the `mget` wrapper
            if gen_raw == view.raw:
                self._seen_at = time.monotonic()
            else:
                gen, data = await conn.read(keys=[self._gen_key],
                                            args=self._read_args([key]))
                self._saw(gen)
        except self._errors as exc:
            self._failed("get", exc)
            self._count("misses")
            return None
        self._ok()
        return self._decode(data, "get")

    async def aset(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        """`set` without blocking the event loop."""
        conn = self._aconn()
        if conn is None:
            await asyncio.to_thread(_sync(self).set, key, entry, ttl)
            return
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
        """`delete` without blocking the event loop (raises `StoreError` as it does)."""
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        conn = self._aconn()
        if conn is None:
            return bool(await asyncio.to_thread(_sync(self).delete, key))
        try:
            removed, gen = await conn.delete(keys=[self._gen_key],
                                             args=[self._prefix, self._view.gen, key])
        except self._errors as exc:
            raise self._not_done("delete", exc) from exc
        self._ok()
        self._saw(gen)
        if removed:
            self._count("deletes")
        return bool(removed)

    async def aget_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """`get_many` without blocking the event loop."""
        keys = list(dict.fromkeys(keys))
        view = self._view
        names = [self._name(key, view) for key in keys]
        conn = self._aconn()
        if conn is None:
            return await asyncio.to_thread(_sync(self).get_many, keys)
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
                    pipe.mget([self._gen_key, *names[i:i + _BATCH]])
                chunks = await pipe.execute()
            if all(chunk[0] == view.raw for chunk in chunks):
                self._seen_at = time.monotonic()
                values = [v for chunk in chunks for v in chunk[1:]]
            else:
                values = []
                for i in range(0, len(keys), _BATCH):
                    gen, *chunk = await conn.read(keys=[self._gen_key],
                                                  args=self._read_args(keys[i:i + _BATCH]))
                    self._saw(gen)
                    values += chunk
        except self._errors as exc:
            self._failed("get_many", exc)
            self._count("misses", len(names))
            return {}
        self._ok()
        return self._decode_many(keys, values)

    async def aset_many(self, entries: Mapping[str, CachedResponse],
                        ttl: float | None = None) -> None:
        """`set_many` without blocking the event loop."""
        conn = self._aconn()
        if conn is None:
            await asyncio.to_thread(_sync(self).set_many, entries, ttl)
            return
        encoded = [self._encode(key, entry, ttl) for key, entry in entries.items()]
        if not encoded or not self._up():
            return
        for i in range(0, len(encoded), _BATCH):
            chunk = encoded[i:i + _BATCH]
            try:
                gen = await conn.write(keys=[self._gen_key], args=self._write_args(chunk))
            except self._errors as exc:
                self._failed("set_many", exc)
                return
            self._ok()
            self._saw(gen)
            self._count("sets", len(chunk))

    async def aclear(self) -> None:
        """`clear` without blocking the event loop (raises `StoreError` as it does)."""
        conn = self._aconn()
        if conn is None:
            await asyncio.to_thread(_sync(self).clear)
            return
        try:
            try:
                gen = int(await conn.bump(keys=[self._gen_key], args=self._bump_args()))
            except self._oom_error:  # full: free the namespace first (see `clear`)
                await self._asweep(conn, None)
                gen = int(await conn.bump(keys=[self._gen_key], args=self._bump_args()))
        except self._errors as exc:
            raise self._not_done("clear", exc) from exc
        self._ok()
        self._saw(gen)
        try:
            await self._asweep(conn, gen)
        except self._errors as exc:
            self._failed("clear (sweep)", exc)

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
        """`generation` without blocking the event loop."""
        conn = self._aconn()
        if conn is None:
            result: int | None = await asyncio.to_thread(_sync(self).generation)
            return result
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

    async def aclose(self) -> None:
        """Close this event loop's connections, then the rest of the store (see `close`)."""
        conn = self._aconns.pop(asyncio.get_running_loop(), None)
        if conn is not None:
            await conn.client.aclose()
        _sync(self).close()

    # -- lock twins (llmcache.distributed.AsyncLockProvider) --------------------------------

    async def atry_lock(self, key: str, lease: float) -> str | None:
        """`try_lock` without blocking the event loop."""
        conn = self._aconn()
        if conn is None:
            return await asyncio.to_thread(_sync(self).try_lock, key, lease)
        if not self._up():
            raise self._unavailable()
        token = secrets.token_hex(16)
        try:
            taken = await conn.client.set(self._lock_prefix + key, token, nx=True,
                                          px=lease_ms(lease))
        except self._errors as exc:
            self._failed("lock", exc)
            raise
        self._ok()
        return token if taken else None

    async def arenew(self, key: str, token: str, lease: float) -> bool:
        """`renew` without blocking the event loop."""
        conn = self._aconn()
        if conn is None:
            return bool(await asyncio.to_thread(_sync(self).renew, key, token, lease))
        return await self._ascript(conn.renew, "renew", key, token, lease_ms(lease))

    async def aunlock(self, key: str, token: str) -> bool:
        """`unlock` without blocking the event loop."""
        conn = self._aconn()
        if conn is None:
            return bool(await asyncio.to_thread(_sync(self).unlock, key, token))
        return await self._ascript(conn.unlock, "unlock", key, token)

    async def _ascript(self, script: Any, operation: str, key: str, *args: Any) -> bool:
        try:
            result = await script(keys=[self._lock_prefix + key], args=list(args))
        except self._errors as exc:
            self._failed(operation, exc)
            raise
        self._ok()
        return bool(result)
