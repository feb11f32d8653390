"""Where httpx meets llmcache: host and timeout settings, error mapping, the retry clock.

Every httpx exception and every non-2xx status passes through `map_errors` or
`status_error`, so callers only ever see `llmcache.backends.errors`::

    httpx.ConnectError                      -> BackendUnavailable  (retried)
    HTTP 503                                -> BackendUnavailable  (retried)
    HTTP 429                                -> BackendUnavailable
    httpx.TimeoutException                  -> BackendTimeout
    other transport errors                  -> BackendUnavailable (StreamError mid-stream)
    HTTP 404 "model 'x' not found"          -> ModelNotFound
    other HTTP 4xx                          -> BadRequest (with the server's message)
    other HTTP 5xx                          -> BackendError (with status_code)

>>> resolve_host("0.0.0.0:8080"), resolve_host("https://example.com")
('http://127.0.0.1:8080', 'https://example.com:443')
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
import urllib.parse
from types import TracebackType

import httpx
import orjson

from llmcache.backends.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BadRequest,
    BadResponse,
    ModelNotFound,
    StreamError,
)

__all__ = [
    "DEFAULT_HOST",
    "RetryClock",
    "is_retryable",
    "make_timeout",
    "map_errors",
    "redact",
    "resolve_host",
    "status_error",
]

DEFAULT_HOST = "http://127.0.0.1:11434"
_DEFAULT_PORT = 11434
# Ollama's own client connects to loopback when told the server's wildcard bind address.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}
_MODEL_NOT_FOUND = re.compile(r"model ['\"]?(?P<name>[^'\"]*?)['\"]? not found")


def resolve_host(host: str | None) -> str:
    """The base URL for `host` (``OLLAMA_HOST`` syntax: scheme and port optional)."""
    host = (host or "").strip()
    if not host:
        return DEFAULT_HOST
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = "http", host
    port = {"http": 80, "https": 443}.get(scheme, _DEFAULT_PORT) if sep else _DEFAULT_PORT
    split = urllib.parse.urlsplit(f"{scheme}://{rest}")
    name = split.hostname or "127.0.0.1"
    name = _WILDCARDS.get(name, name)
    try:
        if ipaddress.ip_address(name).version == 6:
            name = f"[{name}]"
    except ValueError:
        pass  # a DNS name
    userinfo = split.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{name}" if userinfo else name
    path = split.path.strip("/")
    return f"{scheme}://{netloc}:{split.port or port}" + (f"/{path}" if path else "")


def redact(url: str) -> str:
    """`url` without credentials, for messages and reprs."""
    split = urllib.parse.urlsplit(url)
    if "@" not in split.netloc:
        return url
    return urllib.parse.urlunsplit(split._replace(netloc=split.netloc.rpartition("@")[2]))


def make_timeout(timeout: float | httpx.Timeout) -> tuple[httpx.Timeout, float]:
    """The httpx timeout and the budget (seconds) a whole call, retries included, may use.

    Infinite waits are refused: a hung model server must not hang the application.
    """
    if timeout is None:
        raise ValueError("timeout=None would wait forever; pass seconds (e.g. 30.0) or an "
                         "httpx.Timeout with every phase set")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, httpx.Timeout)):
        raise TypeError(f"timeout must be seconds or an httpx.Timeout, got {timeout!r}")
    value = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(float(timeout))
    phases = (value.connect, value.read, value.write, value.pool)
    for phase in phases:
        if phase is None or not 0 < phase < math.inf:
            raise ValueError(f"every timeout phase must be a finite number of seconds > 0, "
                             f"got {value!r}")
    return value, max(p for p in phases if p is not None)


class RetryClock:
    """Retry bookkeeping for one call: how many retries are left, the next backoff delay,
    and per-attempt timeouts shrunk so the call ends near its budget."""

    __slots__ = ("_base", "_deadline", "_delay", "_left")

    def __init__(self, timeout: httpx.Timeout, budget: float, retries: int,
                 backoff: float) -> None:
        self._base = timeout
        self._deadline = time.monotonic() + budget
        self._left = retries
        self._delay = backoff

    def timeout(self) -> httpx.Timeout:
        """The timeout for the next attempt: no phase longer than the budget left."""
        left = max(self._deadline - time.monotonic(), 0.001)
        base = self._base
        return httpx.Timeout(connect=min(base.connect or left, left),
                             read=min(base.read or left, left),
                             write=min(base.write or left, left),
                             pool=min(base.pool or left, left))

    def next_delay(self) -> float | None:
        """Seconds to sleep before retrying, or None when retries or budget are spent."""
        if self._left <= 0 or self._delay >= self._deadline - time.monotonic():
            return None
        delay, self._left, self._delay = self._delay, self._left - 1, self._delay * 2
        return delay


def is_retryable(error: BackendError) -> bool:
    """Only failures where the server certainly did no work: refused connections and 503."""
    return isinstance(error, BackendUnavailable) and (
        error.status_code == 503 or isinstance(error.__cause__, httpx.ConnectError))


def _message(content: bytes, status: int) -> str:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("error"), str):
        return str(value["error"])
    text = content.decode("utf-8", "replace").strip()
    return text[:300] if text else f"HTTP {status}"


def status_error(status: int, content: bytes, model: str) -> BackendError:
    """The error for a non-2xx reply, carrying the server's ``{"error": ...}`` message."""
    message = _message(content, status)
    if status == 404:
        found = _MODEL_NOT_FOUND.search(message)
        if found:
            return ModelNotFound(found["name"] or model, message, status_code=404)
        return BackendError(message, status_code=404)
    if status in (429, 503):
        return BackendUnavailable(message, status_code=status)
    if 400 <= status < 500:
        return BadRequest(message, status_code=status)
    if status >= 500:
        return BackendError(message, status_code=status)
    return BadResponse(f"unexpected HTTP {status}: {message}", status_code=status)


class map_errors:  # noqa: N801 - used like a function: `with map_errors(...):`
    """Translate httpx exceptions raised inside the block; ``streaming`` once a 200 stream
    has started, when a lost connection means an incomplete answer."""

    __slots__ = ("host", "streaming")

    def __init__(self, host: str, *, streaming: bool = False) -> None:
        self.host = host
        self.streaming = streaming

    def __enter__(self) -> map_errors:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not isinstance(exc, httpx.HTTPError):
            return
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        error: BackendError
        if isinstance(exc, httpx.TimeoutException):
            error = BackendTimeout(f"no answer from {self.host} in time ({detail})")
        elif isinstance(exc, httpx.ConnectError):
            error = BackendUnavailable(f"cannot connect to {self.host} ({detail})")
        elif isinstance(exc, httpx.DecodingError):
            error = BadResponse(f"undecodable reply from {self.host} ({detail})")
        elif self.streaming and isinstance(exc, httpx.TransportError):
            error = StreamError(f"connection to {self.host} lost mid-stream ({detail})")
        elif isinstance(exc, httpx.TransportError):
            error = BackendUnavailable(f"connection to {self.host} failed ({detail})")
        else:
            error = BackendError(f"request to {self.host} failed ({detail})")
        raise error from exc
