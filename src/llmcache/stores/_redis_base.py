"""What the sync and async halves of `RedisStore` share: the lazy import of redis-py, URL
redaction, the circuit breaker, the lock scripts, and `RedisCore` (settings, clients,
counters, encoding and decoding).

Nothing here imports redis-py at module level: ``import llmcache`` must work without the
``redis`` extra.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

from llmcache.entry import CachedResponse, Codec, JSONCodec
from llmcache.stores.base import ErrorLog, StoreStats, check_ttl

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["AsyncConn", "Breaker", "RedisCore", "check_namespace", "import_redis", "lease_ms",
           "redact_url"]

logger = logging.getLogger("llmcache.stores.redis")

_BATCH = 500  # keys per MGET / UNLINK / SCAN page: bounds the time Redis spends on one command

MISSING_EXTRA = "RedisStore needs the redis extra: pip install 'llmcache[redis]'"

# Compare-and-delete and compare-and-extend: only the holder of a lock (the caller that
# knows its random token) may release or renew it. A plain DEL/PEXPIRE could act on a lock
# that expired and was since taken by another caller.
UNLOCK_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""
RENEW_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

# Namespaces become the literal prefix of every key and of the SCAN pattern used by
# `len()` and `clear()`. A ':' inside one would let namespace "a" match the keys of "a:b"
# (and clear them), so only a plain word is allowed.
_NAMESPACE = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")


def import_redis() -> ModuleType:
    """redis-py, or an ImportError that names the extra to install."""
    try:
        import redis
        import redis.asyncio
    except ImportError:
        raise ImportError(MISSING_EXTRA) from None
    return redis


def check_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        raise ValueError(f"namespace: expected 1-64 characters among letters, digits, '_', "
                         f"'.' and '-', got {namespace!r}")
    return namespace


def lease_ms(seconds: float) -> int:
    """Seconds as the whole milliseconds PX/PEXPIRE take (at least 1)."""
    return max(1, int(seconds * 1000))


def redact_url(url: str) -> str:
    """`url` with its password replaced by ``***``, safe to log and to show in a repr."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:  # an IPv6 literal lost its brackets in `hostname`
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
    except ValueError:  # unparsable: show nothing of it rather than risk the secret
        return "<redis url>"


class Breaker:
    """A circuit breaker for one Redis server.

    After a connection failure or a timeout, Redis is skipped for `retry_after` seconds: a
    dead server then costs a clock read, not its timeout on every call. When the window has
    passed, exactly one caller probes (the others keep skipping); its success closes the
    circuit, its failure opens it for another window. The closed-circuit check is one
    attribute read (``down_until == 0``), so a healthy server pays nothing.
    """

    def __init__(self, retry_after: float, name: str) -> None:
        self.retry_after = retry_after
        self.down_until = 0.0  # time.monotonic() before which Redis is skipped; 0: up
        self.last_error: str | None = None
        self.opened = 0  # how many times the circuit opened
        self._name = name
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """True when a call may go to Redis now (closed circuit, or this caller probes)."""
        until = self.down_until
        if not until:
            return True
        now = time.monotonic()
        if now < until:
            return False
        with self._lock:
            if self.down_until != until:  # another caller probes, or it already recovered
                return not self.down_until
            # This caller probes; the others skip until its outcome (or one more window).
            self.down_until = now + self.retry_after
        return True

    def success(self) -> None:
        if self.down_until:
            with self._lock:
                was_down, self.down_until = self.down_until, 0.0
            if was_down:
                logger.info("%s: Redis is reachable again", self._name)

    def failure(self, exc: BaseException) -> None:
        with self._lock:
            if not self.down_until:
                self.opened += 1
            self.down_until = time.monotonic() + self.retry_after
            self.last_error = f"{type(exc).__name__}: {exc}"

    @property
    def is_open(self) -> bool:
        return bool(self.down_until)


class AsyncConn(NamedTuple):
    """One event loop's async client and its lock scripts."""

    client: redis.asyncio.Redis
    unlock: Any  # redis.commands.core.AsyncScript
    renew: Any


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name}: expected seconds > 0, got {value!r}")
    return float(value)


class RedisCore:
    """Settings, clients, counters and the codec of a `RedisStore` (see its docstring for
    the constructor's arguments)."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, namespace: str = "llmcache",
                 default_ttl: float | None = None, codec: Codec | None = None,
                 socket_timeout: float = 0.25, connect_timeout: float = 0.25,
                 client: redis.Redis | None = None, retry_after: float = 1.0,
                 lock_lease: float = 10.0, lock_wait: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        redis_mod = import_redis()
        if not isinstance(url, str):
            raise TypeError(f"url: expected str, got {type(url).__name__}")
        self._url = url  # kept for the async clients; shown only through `redact_url`
        self._safe_url = redact_url(url)
        self._namespace = check_namespace(namespace)
        self._prefix = f"{namespace}:"
        self._lock_prefix = f"{namespace}:lock:"
        self._lock_prefix_b = self._lock_prefix.encode()
        self._default_ttl = check_ttl(default_ttl)
        self._codec: Codec = JSONCodec() if codec is None else codec
        self._decode_bytes = self._codec.decode
        self._clock = clock
        self._socket_timeout = _positive("socket_timeout", socket_timeout)
        self._connect_timeout = _positive("connect_timeout", connect_timeout)
        #: Seconds a single-flight lock lives unless renewed; 0 turns the lock off.
        self.lock_lease = 0.0 if lock_lease == 0 else _positive("lock_lease", lock_lease)
        #: Seconds a caller waits for another process's answer before calling itself.
        self.lock_wait = _positive("lock_wait", lock_wait)
        exceptions = redis_mod.exceptions
        # Connection failures and timeouts open the circuit; other Redis errors (WRONGTYPE
        # on a foreign key, OOM on a write) are counted but say nothing about the server.
        self._down_errors: tuple[type[BaseException], ...] = (
            exceptions.ConnectionError, exceptions.TimeoutError, OSError, asyncio.TimeoutError)
        self._errors: tuple[type[BaseException], ...] = (exceptions.RedisError,
                                                         *self._down_errors)
        self._owns_client = client is None
        self._client: redis.Redis = client if client is not None else self._new_client()
        self._unlock = self._client.register_script(UNLOCK_LUA)
        self._renew = self._client.register_script(RENEW_LUA)
        self._aconns: dict[asyncio.AbstractEventLoop, AsyncConn] = {}
        self._stats = StoreStats()
        self._skipped = 0
        self._count_lock = threading.Lock()
        label = f"RedisStore({self._safe_url}, namespace={namespace!r})"
        self._errlog = ErrorLog(logger, label)
        self._breaker = Breaker(_positive("retry_after", retry_after), label)

    def _new_client(self) -> redis.Redis:
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No retries inside redis-py: one attempt per command keeps every call within its
        # timeout; the circuit breaker and the next call do the retrying.
        return Redis.from_url(self._url, retry=Retry(NoBackoff(), 0),
                              socket_timeout=self._socket_timeout,
                              socket_connect_timeout=self._connect_timeout)

    def _aconn(self) -> AsyncConn | None:
        """This event loop's async client (created on first use), or ``None`` when the
        store wraps a caller's sync client."""
        if not self._owns_client:
            return None
        loop = asyncio.get_running_loop()
        conn = self._aconns.get(loop)
        if conn is None:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            for old in [lp for lp in self._aconns if lp.is_closed()]:
                del self._aconns[old]  # their loops are gone; nothing left to close with
            client = Redis.from_url(self._url, retry=Retry(NoBackoff(), 0),
                                    socket_timeout=self._socket_timeout,
                                    socket_connect_timeout=self._connect_timeout)
            conn = AsyncConn(client, client.register_script(UNLOCK_LUA),
                             client.register_script(RENEW_LUA))
            self._aconns[loop] = conn
        return conn

    # -- counting -------------------------------------------------------------------------

    def _count(self, name: str, n: int = 1) -> None:
        with self._count_lock:
            setattr(self._stats, name, getattr(self._stats, name) + n)

    def _up(self) -> bool:
        """May this call go to Redis? False while the circuit is open (counted as skipped)."""
        breaker = self._breaker
        if breaker.down_until and not breaker.allow():
            with self._count_lock:
                self._skipped += 1
            return False
        return True

    def _ok(self) -> None:
        if self._breaker.down_until:
            self._breaker.success()

    def _failed(self, operation: str, exc: BaseException) -> None:
        if isinstance(exc, self._down_errors):
            self._breaker.failure(exc)
        self._errlog.report(operation, exc)
        self._count("errors")

    def _unavailable(self) -> ConnectionError:
        return ConnectionError(f"Redis skipped for {self._breaker.retry_after}s after a "
                               f"failure ({self._breaker.last_error})")

    # -- encoding -------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        return self._prefix + key

    def _encode(self, key: str, entry: CachedResponse,
                ttl: float | None) -> tuple[str, bytes, int | None]:
        """(Redis key, value bytes, PX milliseconds or None) for a write."""
        name = self._name(key)
        if key.startswith("lock:"):
            raise ValueError(f"key: {key!r} starts with 'lock:', which is reserved for locks")
        ttl = check_ttl(ttl)
        if ttl is None:
            ttl = self._default_ttl
        data = self._codec.encode(entry.with_ttl(ttl, self._clock()))
        return name, data, None if ttl is None else lease_ms(ttl)

    def _entry(self, data: Any, operation: str) -> CachedResponse | None:
        """The live entry in `data` (bytes read from Redis: untrusted), or ``None``.
        Counts decode errors and expirations, not hits and misses (the callers do, once)."""
        try:
            entry = self._decode_bytes(data)
        except (ValueError, TypeError) as exc:  # CodecError is a ValueError
            self._failed(f"{operation} (decode)", exc)
            return None
        expires_at = entry.expires_at
        if expires_at is not None and self._clock() >= expires_at:
            self._count("expirations")  # Redis had not expired it yet: this clock leads
            return None
        return entry

    def _decode(self, data: Any, operation: str) -> CachedResponse | None:
        entry = None if data is None else self._entry(data, operation)
        with self._count_lock:
            if entry is None:
                self._stats.misses += 1
            else:
                self._stats.hits += 1
        return entry

    def _decode_many(self, keys: list[str], values: list[Any]) -> dict[str, CachedResponse]:
        found: dict[str, CachedResponse] = {}
        for key, data in zip(keys, values, strict=True):
            if data is not None:
                entry = self._entry(data, "get_many")
                if entry is not None:
                    found[key] = entry
        with self._count_lock:
            self._stats.hits += len(found)
            self._stats.misses += len(keys) - len(found)
        return found

    def _count_writes(self, operation: str, results: list[Any]) -> None:
        for result in results:
            if isinstance(result, BaseException):  # e.g. OOM on one write of a pipeline
                self._failed(operation, result)
            else:
                self._count("sets")

    def _is_entry(self, name: bytes) -> bool:
        return not name.startswith(self._lock_prefix_b)

    def _pattern(self) -> str:
        # The namespace is a plain word (see `check_namespace`): no glob characters to escape.
        return f"{self._prefix}*"
