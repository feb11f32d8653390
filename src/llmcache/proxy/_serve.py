"""The proxy as a process: its settings, its cache, uvicorn on one socket, the lines it
prints, and a graceful stop on SIGTERM or SIGINT.

`serve` binds the socket itself (so ``port=0`` works and the line it prints names the
port really bound), prints ``llmcache proxy: listening on URL ...`` on standard output once
uvicorn accepts connections, serves until SIGTERM or SIGINT, lets the answers in flight
finish (up to `ProxyConfig.grace` seconds), closes the upstream client and the cache,
prints ``llmcache proxy: stopped`` and returns 0. Log lines (warnings: an upstream that
cannot be reached, a broken stream) go to standard error; there is no access log, and no
line ever holds a header.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import httpx
import uvicorn

from llmcache.proxy._app import (
    DEFAULT_MAX_BODY,
    DEFAULT_TIMEOUT,
    ProxyApp,
    UpstreamClient,
    build_app,
)
from llmcache.proxy._metrics import ProxyMetrics
from llmcache.stores.base import AsyncStore

if TYPE_CHECKING:
    from llmcache.vector import SemanticCache

__all__ = ["DEFAULT_PORT", "ProxyConfig", "create_app", "serve"]

#: The port `serve` listens on unless told otherwise.
DEFAULT_PORT = 8787

logger = logging.getLogger("llmcache.proxy")


@dataclass(frozen=True)
class ProxyConfig:
    """What ``llmcache proxy`` is told. ``path`` (a `DiskStore` directory) and ``redis`` (a
    `RedisStore` URL) choose the cache; neither: an in-memory cache of
    ``memory_entries`` answers. ``semantic`` adds the bundled semantic tier; ``ttl`` is
    the lifetime of what is stored (None: no expiry); ``max_body`` the largest request
    body forwarded; ``grace`` how long a stop waits for the answers in flight."""

    upstream: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    path: Path | None = None
    redis: str | None = None
    semantic: bool = False
    ttl: float | None = None
    max_body: int = DEFAULT_MAX_BODY
    memory_entries: int = 10_000
    grace: int = 30

    def __post_init__(self) -> None:
        url = httpx.URL(self.upstream)  # raises httpx.InvalidURL, a ValueError
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(
                f"--upstream: expected an http:// or https:// URL with a host, "
                f"got {shown(self.upstream)!r}"
            )
        if url.userinfo:
            # httpx would turn them into an Authorization header over the client's own.
            raise ValueError(
                "--upstream: leave credentials out of the URL; clients send "
                "theirs, and the proxy passes them on"
            )
        if self.path is not None and self.redis is not None:
            raise ValueError("--path and --redis: choose one cache")
        if self.ttl is not None and not self.ttl > 0:
            raise ValueError(f"--ttl: expected a positive number of seconds, got {self.ttl}")
        if self.max_body < 1:
            raise ValueError(
                f"--max-body: expected a positive number of bytes, got {self.max_body}"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port: expected 0 to 65535, got {self.port}")


def shown(url: str) -> str:
    """`url` without its user information (a password), for messages and log lines."""
    try:
        return str(httpx.URL(url).copy_with(username=None, password=None))
    except (httpx.InvalidURL, ValueError, TypeError):
        return "<an unparseable URL>"


def open_cache(config: ProxyConfig) -> AsyncStore:
    """The exact tier `config` asks for."""
    if config.redis is not None:
        from llmcache.stores.redis import RedisStore

        return RedisStore(config.redis)
    if config.path is not None:
        from llmcache.stores.disk import DiskStore

        return DiskStore(config.path)
    from llmcache.stores.memory import MemoryStore

    return MemoryStore(max_entries=config.memory_entries)


def _cache_name(config: ProxyConfig) -> str:
    if config.redis is not None:
        name = f"redis {shown(config.redis)}"
    elif config.path is not None:
        name = f"disk {config.path}"
    else:
        name = f"memory, {config.memory_entries} entries"
    return name + (", semantic" if config.semantic else "")


def open_semantic(config: ProxyConfig) -> SemanticCache | None:
    """The semantic tier `config` asks for: the bundled embedder (extra ``semantic``),
    its index saved under ``path/semantic`` when the cache is on disk."""
    if not config.semantic:
        return None
    from llmcache.vector import SemanticCache, WordLlamaEmbedder

    persist = config.path / "semantic" if config.path is not None else None
    return SemanticCache(WordLlamaEmbedder(), ttl=config.ttl, persist_path=persist)


def create_app(
    config: ProxyConfig,
    *,
    cache: AsyncStore | None = None,
    network: httpx.AsyncBaseTransport | None = None,
) -> ProxyApp:
    """The proxy's ASGI app for `config`: one pooled `httpx.AsyncClient` to the upstream
    whose transport is the cache (`AsyncCacheTransport`). ``cache`` replaces the tier
    `config` names (the app does not close one given); ``network`` the transport under
    the cache (default: `httpx.AsyncHTTPTransport`)."""
    from llmcache.integrations.httpx import AsyncCacheTransport

    owned = cache is None
    store = open_cache(config) if cache is None else cache
    semantic = open_semantic(config)
    network = (
        network
        if network is not None
        else httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=64)
        )
    )
    transport = AsyncCacheTransport(
        transport=network, cache=store, semantic=semantic, ttl=config.ttl
    )
    client = UpstreamClient(
        transport=transport,
        base_url=config.upstream,
        timeout=DEFAULT_TIMEOUT,
        # A reverse proxy forwards what it got: no credentials from the environment
        # (.netrc), no environment proxies, no redirects followed on a client's behalf.
        trust_env=False,
        follow_redirects=False,
    )

    async def close_tiers() -> None:  # the client closed the transport, then the network
        if semantic is not None:
            await semantic.aclose()
        if owned:
            await store.aclose()

    return build_app(
        client,
        config.upstream,
        metrics=ProxyMetrics(transport.counters),
        max_body=config.max_body,
        on_close=close_tiers,
    )


class _Server(uvicorn.Server):
    """uvicorn's server, telling `ready` once it accepts connections; a stop asked for
    before uvicorn listened for signals (`_StopSignals`) ends it as soon as it started."""

    def __init__(
        self, config: uvicorn.Config, ready: Callable[[], None], signals: _StopSignals
    ) -> None:
        super().__init__(config)
        self._ready = ready
        self._signals = signals

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self._signals.received:
            self.should_exit = True
        elif self.started:
            self._ready()


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), for uvicorn to listen on; port 0 picks a free
    one. Raises OSError (the address is in use, or not this machine's)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def serve(config: ProxyConfig, *, out: Callable[[str], None] | None = None) -> int:
    """Run the proxy until SIGTERM or SIGINT (see the module docstring); returns the exit
    code. Raises OSError when the address cannot be bound (before anything is opened)."""
    say = out if out is not None else _print
    configure_logging()
    sock = bind(config.host, config.port)
    with sock, _StopSignals() as signals:
        host, port = sock.getsockname()[:2]
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        uv_config = uvicorn.Config(
            create_app(config),
            lifespan="on",
            access_log=False,
            server_header=False,
            log_config=None,
            log_level="warning",
            timeout_graceful_shutdown=config.grace,
            backlog=2048,
        )
        server = _Server(
            uv_config,
            lambda: say(
                f"llmcache proxy: listening on {url}, forwarding to {shown(config.upstream)} "
                f"(cache: {_cache_name(config)})"
            ),
            signals,
        )
        server.run(sockets=[sock])
    say("llmcache proxy: stopped")
    return 0


def _print(line: str) -> None:
    print(line, flush=True)


class _StopSignals:
    """SIGTERM and SIGINT recorded, from before uvicorn starts to after it stopped.

    uvicorn handles them while it serves; once it stopped gracefully it raises the signal
    again for the handler it found, which would end the process (SIGTERM's default) or
    raise KeyboardInterrupt before the cache is closed; and one that comes while the
    cache opens (the semantic tier's model loads) would be lost. This handler keeps it:
    `_Server` stops at once when one came before it started."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def __enter__(self) -> _StopSignals:
        self._saved = {
            sig: signal.signal(sig, self._record) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)

    def _record(self, sig: int, frame: FrameType | None) -> None:
        self.received.append(sig)


def configure_logging() -> None:
    """Warnings and errors of llmcache and uvicorn to standard error, one line each."""
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
