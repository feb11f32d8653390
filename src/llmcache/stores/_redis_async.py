"""The coroutine twins of `RedisStore`'s methods, on ``redis.asyncio``.

Each twin behaves like its sync method (same counters, circuit breaker, codec and faults
turned into misses) but awaits the round trip, so an event loop is never blocked on Redis.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from llmcache.entry import CachedResponse
from llmcache.stores._redis_base import _BATCH, RedisCore, lease_ms

__all__ = ["AsyncRedisMethods"]


def _sync(store: RedisCore) -> Any:
    # A store wrapping a caller's sync client has no async client: its twins run the sync
    # methods (defined on `RedisStore`) in a worker thread.
    return store


class AsyncRedisMethods(RedisCore):
    """``aget``, ``aset``, ``adelete``, ``aget_many``, ``aset_many``, ``aclear``, ``aclose``
    and the lock twins ``atry_lock``, ``arenew``, ``aunlock``."""

    async def aget(self, key: str) -> CachedResponse | None:
        """`get` without blocking the event loop."""
        name = self._name(key)
        conn = self._aconn()
        if conn is None:
            return await asyncio.to_thread(_sync(self).get, key)
        if not self._up():
            self._count("misses")
            return None
        try:
            data = await conn.client.get(name)
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
        name, data, px = self._encode(key, entry, ttl)
        if not self._up():
            return
        try:
            await conn.client.set(name, data, px=px)
        except self._errors as exc:
            self._failed("set", exc)
            return
        self._ok()
        self._count("sets")

    async def adelete(self, key: str) -> bool:
        """`delete` without blocking the event loop."""
        name = self._name(key)
        conn = self._aconn()
        if conn is None:
            return bool(await asyncio.to_thread(_sync(self).delete, key))
        if not self._up():
            return False
        try:
            removed = bool(await conn.client.delete(name))
        except self._errors as exc:
            self._failed("delete", exc)
            return False
        self._ok()
        if removed:
            self._count("deletes")
        return removed

    async def aget_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """`get_many` without blocking the event loop."""
        keys = list(dict.fromkeys(keys))
        names = [self._name(key) for key in keys]
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
                values = await conn.client.mget(names)
            else:
                pipe = conn.client.pipeline(transaction=False)
                for i in range(0, len(names), _BATCH):
                    pipe.mget(names[i:i + _BATCH])
                values = [v for chunk in await pipe.execute() for v in chunk]
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
        try:
            pipe = conn.client.pipeline(transaction=False)
            for name, data, px in encoded:
                pipe.set(name, data, px=px)
            results = await pipe.execute(raise_on_error=False)
        except self._errors as exc:
            self._failed("set_many", exc)
            return
        self._ok()
        self._count_writes("set_many", results)

    async def aclear(self) -> None:
        """`clear` without blocking the event loop."""
        conn = self._aconn()
        if conn is None:
            await asyncio.to_thread(_sync(self).clear)
            return
        if not self._up():
            return
        try:
            batch: list[bytes] = []
            async for name in conn.client.scan_iter(match=self._pattern(), count=_BATCH):
                if self._is_entry(name):
                    batch.append(name)
                if len(batch) >= _BATCH:
                    await conn.client.unlink(*batch)
                    batch = []
            if batch:
                await conn.client.unlink(*batch)
        except self._errors as exc:
            self._failed("clear", exc)
            return
        self._ok()

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
