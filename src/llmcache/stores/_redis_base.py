"""What the sync and async halves of `RedisStore` share: the lazy import of redis-py, URL
redaction, the circuit breaker, the lock and generation scripts, and `RedisCore` (settings,
clients and their connections, counters, the generation last seen, encoding and decoding).
Everything that does I/O is in `_async_redis` (by hand) and `_sync_redis` (generated).

Nothing here imports redis-py at module level: ``import llmcache`` must work without the
``redis`` extra.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

from llmcache.entry import CachedResponse, Codec, JSONCodec
from llmcache.errors import StoreError
from llmcache.stores._server_args import matching, positive, require_extra
from llmcache.stores._server_tier import ServerTier
from llmcache.stores.base import check_ttl

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = [
    "AsyncConn",
    "Conn",
    "GenView",
    "RedisCore",
    "check_namespace",
    "import_redis",
    "lease_ms",
    "redact_url",
]

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

# The generation of a namespace: an integer under ``{namespace}:gen`` (absent: 0), part of
# every entry's name (``{namespace}:{gen}:{key}``). `clear` raises it, which makes every
# earlier entry unreachable at once, whatever the sweep of the old names manages to delete
# and whatever comes back later (a replica, an old snapshot). Every script raises the stored
# value to the caller's `floor` (the highest it has seen) first: a server restored from a
# snapshot taken before a clear is moved forward again by the first client that saw it, and
# a client never reads under a generation it knows to be over. Garbage in the key (not a
# canonical integer) is treated as the floor. The scripts name entry keys they build
# themselves, which a single Redis server allows (Redis Cluster would not; RedisStore
# connects to one server).
_GENERATION_LUA = """
local function generation(key, floor)
    local raw = redis.call('get', key)
    local gen = tonumber(raw or '0')
    if gen == nil or gen ~= math.floor(gen) or gen < 0 then
        gen = -1
    end
    if gen < floor or (raw and (gen <= 0 or raw ~= string.format('%d', gen))) then
        if floor > 0 then
            redis.call('set', key, string.format('%d', floor))
        else
            redis.call('del', key)
        end
        return floor
    end
    return gen
end
"""


def _under_generation(floor: int, body: str) -> str:
    """A script that first brings the generation (``KEYS[1]``) up to the caller's floor,
    ``ARGV[floor]``, into the local ``gen``, then runs `body`."""
    return f"{_GENERATION_LUA}\nlocal gen = generation(KEYS[1], tonumber(ARGV[{floor}])){body}"


# KEYS[1] the generation; ARGV: prefix, floor, then entry keys -> {gen, value, ...}
READ_LUA = _under_generation(
    2,
    """
local out = {gen}
if #ARGV > 2 then
    local names = {}
    for i = 3, #ARGV do
        names[#names + 1] = ARGV[1] .. string.format('%d', gen) .. ':' .. ARGV[i]
    end
    local values = redis.call('mget', unpack(names))
    for i = 1, #values do
        out[i + 1] = values[i]
    end
end
return out
""",
)
# ARGV: prefix, floor, PX milliseconds ('0': none), then key, value pairs -> gen
WRITE_LUA = _under_generation(
    2,
    """
local head = ARGV[1] .. string.format('%d', gen) .. ':'
local px = tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
    if px > 0 then
        redis.call('set', head .. ARGV[i], ARGV[i + 1], 'PX', px)
    else
        redis.call('set', head .. ARGV[i], ARGV[i + 1])
    end
end
return gen
""",
)
# ARGV: prefix, floor, key -> {removed, gen}
DELETE_LUA = _under_generation(
    2, "\nreturn {redis.call('del', ARGV[1] .. string.format('%d', gen) .. ':' .. ARGV[3]), gen}\n"
)
# ARGV: floor, the wanted new generation (now in ms) -> the new generation, above the old.
# A time-based value keeps generations unique even when a restored snapshot took the
# counter back and nobody repaired it before the next clear.
BUMP_LUA = _under_generation(
    1,
    """
local new = tonumber(ARGV[2])
if new <= gen then
    new = gen + 1
end
redis.call('set', KEYS[1], string.format('%d', new))
return new
""",
)
# In the order of the script fields of `Conn` and `AsyncConn`.
_SCRIPTS = (UNLOCK_LUA, RENEW_LUA, READ_LUA, WRITE_LUA, DELETE_LUA, BUMP_LUA)

# Namespaces become the literal prefix of every key and of the SCAN pattern used by
# `len()` and `clear()`. A ':' inside one would let namespace "a" match the keys of "a:b"
# (and clear them), so only a plain word is allowed.
_NAMESPACE = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")


def import_redis() -> ModuleType:
    """redis-py, or an ImportError that names the extra to install."""
    return require_extra(MISSING_EXTRA, "redis", "redis.asyncio")


def check_namespace(namespace: str) -> str:
    expected = "1-64 characters among letters, digits, '_', '.' and '-'"
    return matching("namespace", namespace, _NAMESPACE, expected)


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


class Conn(NamedTuple):
    """The sync client and its scripts."""

    client: redis.Redis
    unlock: Any  # redis.commands.core.Script
    renew: Any
    read: Any
    write: Any
    delete: Any
    bump: Any


class AsyncConn(NamedTuple):
    """One event loop's async client and its scripts."""

    client: redis.asyncio.Redis
    unlock: Any  # redis.commands.core.AsyncScript
    renew: Any
    read: Any
    write: Any
    delete: Any
    bump: Any


class GenView(NamedTuple):
    """The generation a client last saw, read and replaced as one value so that a reader
    never pairs one generation's entry name with another's expected bytes."""

    gen: int
    raw: bytes | None  # what GET of the generation key returns at this generation
    prefix: str  # ``{namespace}:{gen}:``

    @classmethod
    def of(cls, namespace: str, gen: int) -> GenView:
        return cls(gen, None if gen == 0 else b"%d" % gen, f"{namespace}:{gen}:")


class RedisCore(ServerTier):
    """Settings, clients, counters and the codec of a `RedisStore` (see its docstring for
    the constructor's arguments)."""

    name = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        namespace: str = "llmcache",
        default_ttl: float | None = None,
        codec: Codec | None = None,
        socket_timeout: float = 0.25,
        connect_timeout: float = 0.25,
        client: redis.Redis | None = None,
        retry_after: float = 1.0,
        lock_lease: float = 10.0,
        lock_wait: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        redis_mod = import_redis()
        if not isinstance(url, str):
            raise TypeError(f"url: expected str, got {type(url).__name__}")
        self._url = url  # kept for the async clients; shown only through `redact_url`
        self._safe_url = redact_url(url)
        self._namespace = check_namespace(namespace)
        self._prefix = f"{namespace}:"
        self._prefix_b = self._prefix.encode()
        self._lock_prefix = f"{namespace}:lock:"
        self._gen_key = f"{namespace}:gen"
        # Until Redis confirms otherwise a namespace is at generation 0 (never cleared): the
        # first read checks it in the same round trip (see `RedisStore.get`).
        self._view = GenView.of(namespace, 0)
        self._seen_at = -math.inf  # time.monotonic() when Redis last confirmed `_view`
        self._view_lock = threading.Lock()
        self._default_ttl = check_ttl(default_ttl)
        self._codec: Codec = JSONCodec() if codec is None else codec
        self._decode_bytes = self._codec.decode
        self._clock = clock
        self._socket_timeout = positive("socket_timeout", socket_timeout)
        self._connect_timeout = positive("connect_timeout", connect_timeout)
        #: Seconds a single-flight lock lives unless renewed; 0 turns the lock off.
        self.lock_lease = 0.0 if lock_lease == 0 else positive("lock_lease", lock_lease)
        #: Seconds a caller waits for another process's answer before calling itself.
        self.lock_wait = positive("lock_wait", lock_wait)
        exceptions = redis_mod.exceptions
        # Connection failures and timeouts open the circuit; other Redis errors (WRONGTYPE
        # on a foreign key, OOM on a write) are counted but say nothing about the server.
        self._down_errors: tuple[type[BaseException], ...] = (
            exceptions.ConnectionError,
            exceptions.TimeoutError,
            OSError,
            asyncio.TimeoutError,
        )
        self._errors: tuple[type[BaseException], ...] = (exceptions.RedisError, *self._down_errors)
        self._oom_error: type[BaseException] = exceptions.OutOfMemoryError
        self._owns_client = client is None
        self._client: redis.Redis = client if client is not None else self._new_client()
        self._sync_conn = Conn(
            self._client, *(self._client.register_script(lua) for lua in _SCRIPTS)
        )
        self._aconns: dict[asyncio.AbstractEventLoop, AsyncConn] = {}
        label = f"RedisStore({self._safe_url}, namespace={namespace!r})"
        self._guard(label, positive("retry_after", retry_after), server="Redis", log=logger)

    def _new_client(self) -> redis.Redis:
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No retries inside redis-py: one attempt per command keeps every call within its
        # timeout; the circuit breaker and the next call do the retrying.
        return Redis.from_url(
            self._url,
            retry=Retry(NoBackoff(), 0),
            socket_timeout=self._socket_timeout,
            socket_connect_timeout=self._connect_timeout,
        )

    def _conn(self) -> Conn:
        """The sync client and its scripts."""
        return self._sync_conn

    def _aconn(self) -> AsyncConn | None:
        """This event loop's async client (created on first use), or ``None`` when the
        store wraps a caller's sync client (the coroutines then run the sync methods in a
        worker thread)."""
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
            client = Redis.from_url(
                self._url,
                retry=Retry(NoBackoff(), 0),
                socket_timeout=self._socket_timeout,
                socket_connect_timeout=self._connect_timeout,
            )
            conn = AsyncConn(client, *(client.register_script(lua) for lua in _SCRIPTS))
            self._aconns[loop] = conn
        return conn

    # -- counting -------------------------------------------------------------------------

    def _failed(self, operation: str, exc: BaseException) -> None:
        if isinstance(exc, self._down_errors):
            self._breaker.failure(exc)
        super()._failed(operation, exc)

    def _unavailable(self) -> ConnectionError:
        return ConnectionError(
            f"Redis skipped for {self._breaker.retry_after}s after a "
            f"failure ({self._breaker.last_error})"
        )

    def _not_done(self, operation: str, exc: BaseException) -> StoreError:
        """Count `exc` and say that `operation` did not happen (or that it cannot tell)."""
        self._failed(operation, exc)
        return StoreError(
            f"{self!r}: {operation} failed ({type(exc).__name__}: {exc}); "
            f"it did not happen or it cannot tell",
            store=self.name,
            operation=operation,
        )

    # -- the generation -------------------------------------------------------------------

    def _saw(self, gen: Any) -> None:
        """Redis confirmed generation `gen` (never lower than the floor this client sent):
        adopt it if it is newer than the one held."""
        gen = int(gen)
        if gen != self._view.gen:
            with self._view_lock:  # two readers must not take the view back
                if gen > self._view.gen:
                    self._view = GenView.of(self._namespace, gen)
        self._seen_at = time.monotonic()

    def seen_generation(self) -> tuple[int | None, float]:
        """(the namespace's generation as Redis last confirmed it, the `time.monotonic` of
        that confirmation); ``(None, -inf)`` before Redis ever answered. No I/O."""
        return self._known_generation(), self._seen_at

    def _known_generation(self) -> int | None:
        return None if self._seen_at == -math.inf else self._view.gen

    def _bump_args(self) -> list[int]:
        floor = self._view.gen
        return [floor, max(floor + 1, int(time.time() * 1000))]

    def _read_args(self, keys: list[str]) -> list[Any]:
        return [self._prefix, self._view.gen, *keys]

    def _write_args(self, encoded: list[tuple[str, bytes, int]]) -> list[Any]:
        """One WRITE_LUA call's arguments: entries that share one TTL (all of a `set_many`)."""
        args: list[Any] = [self._prefix, self._view.gen, encoded[0][2]]
        for key, data, _ in encoded:
            args += (key, data)
        return args

    def _stale(self, name: bytes, gen: int | None) -> bool:
        """Whether the sweep of a clear that reached `gen` deletes `name` (a key of this
        namespace): entries of older generations and of the layout before generations;
        never the generation key or a lock. ``gen=None``: every entry."""
        rest = name[len(self._prefix_b) :]
        head, colon, _ = rest.partition(b":")
        if not colon:
            return rest != b"gen"
        if head == b"lock":
            return False
        return gen is None or not head.isdigit() or int(head) < gen

    # -- encoding -------------------------------------------------------------------------

    def _name(self, key: str, view: GenView) -> str:
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        return view.prefix + key

    def _encode(self, key: str, entry: CachedResponse, ttl: float | None) -> tuple[str, bytes, int]:
        """(key, value bytes, PX milliseconds or 0 for none) for a write."""
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        if key.startswith("lock:"):
            raise ValueError(f"key: {key!r} starts with 'lock:', which is reserved for locks")
        ttl = check_ttl(ttl)
        if ttl is None:
            ttl = self._default_ttl
        data = self._codec.encode(entry.with_ttl(ttl, self._clock()))
        return key, data, 0 if ttl is None else lease_ms(ttl)

    def _entry(self, data: Any, operation: str) -> CachedResponse | None:
        """The live entry in `data` (bytes read from Redis: untrusted), or ``None``.
        Counts decode errors and expirations, not hits and misses (the callers do, once)."""
        entry = self._decoded(data, operation)
        if entry is None:
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

    def _pattern(self, gen: int | None = None) -> str:
        """SCAN pattern of the namespace (`gen` ``None``) or of one generation's entries."""
        # The namespace is a plain word (see `check_namespace`): no glob characters to escape.
        return f"{self._prefix}*" if gen is None else f"{self._prefix}{gen}:*"
