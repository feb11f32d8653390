"""Where httpx meets llmcache: timeouts, the retry clock, error mapping, redaction.

Every httpx exception raised while a plugin talks to its server passes through `map_errors`,
so callers only ever see `llmcache.backends.errors`::

    httpx.TimeoutException                  -> BackendTimeout
    httpx.ConnectError                      -> BackendUnavailable  (a plugin may retry it)
    httpx.DecodingError                     -> BadResponse
    other transport errors                  -> BackendUnavailable (StreamError mid-stream)
    any other httpx.HTTPError               -> BackendError

Non-2xx replies are the plugin's to map (each API words its errors its own way): its
``_status_error`` hook turns one into an error of the same tree. Credentials never reach a
message: `redact` drops them from URLs and `scrub` replaces a secret a server echoes.

>>> redact("https://user:pw@example.com:443/v1"), scrub("bad key sk-1", "sk-1")
('https://example.com:443/v1', 'bad key [redacted]')
"""

from __future__ import annotations

import math
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from llmcache.backends.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BadResponse,
    StreamError,
)

__all__ = ["RetryClock", "connection_refused", "make_timeout", "map_errors", "redact", "scrub"]


def redact(url: str) -> str:
    """`url` without credentials, for messages and reprs."""
    split = urllib.parse.urlsplit(url)
    if "@" not in split.netloc:
        return url
    return urllib.parse.urlunsplit(split._replace(netloc=split.netloc.rpartition("@")[2]))


def scrub(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` replaced."""
    return text.replace(secret, "[redacted]") if secret else text


def make_timeout(timeout: float | httpx.Timeout) -> tuple[httpx.Timeout, float]:
    """The httpx timeout and the budget (seconds) a whole call, retries included, may use.

    Infinite waits are refused: a hung model server must not hang the application.
    """
    if timeout is None:
        raise ValueError(
            "timeout=None would wait forever; pass seconds (e.g. 30.0) or an "
            "httpx.Timeout with every phase set"
        )
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, httpx.Timeout)):
        raise TypeError(f"timeout must be seconds or an httpx.Timeout, got {timeout!r}")
    value = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(float(timeout))
    phases = (value.connect, value.read, value.write, value.pool)
    for phase in phases:
        if phase is None or not 0 < phase < math.inf:
            raise ValueError(
                f"every timeout phase must be a finite number of seconds > 0, got {value!r}"
            )
    return value, max(p for p in phases if p is not None)


class RetryClock:
    """Retry bookkeeping for one call: how many retries are left, the next backoff delay,
    and per-attempt timeouts shrunk so the call ends near its budget."""

    __slots__ = ("_base", "_deadline", "_delay", "_left")

    def __init__(self, timeout: httpx.Timeout, budget: float, retries: int, backoff: float) -> None:
        self._base = timeout
        self._deadline = time.monotonic() + budget
        self._left = retries
        self._delay = backoff

    def timeout(self) -> httpx.Timeout:
        """The timeout for the next attempt: no phase longer than the budget left."""
        left = max(self._deadline - time.monotonic(), 0.001)
        base = self._base
        return httpx.Timeout(
            connect=min(base.connect or left, left),
            read=min(base.read or left, left),
            write=min(base.write or left, left),
            pool=min(base.pool or left, left),
        )

    def next_delay(self) -> float | None:
        """Seconds to sleep before retrying, or None when retries or budget are spent."""
        if self._left <= 0 or self._delay >= self._deadline - time.monotonic():
            return None
        delay, self._left, self._delay = self._delay, self._left - 1, self._delay * 2
        return delay


def connection_refused(error: BackendError) -> bool:
    """Whether `error` is a connection that never opened: the server certainly did no work,
    so any plugin may retry it."""
    return isinstance(error, BackendUnavailable) and isinstance(error.__cause__, httpx.ConnectError)


@contextmanager
def map_errors(host: str, *, streaming: bool = False) -> Iterator[None]:
    """Translate httpx exceptions raised inside the block; ``streaming`` once a 200 stream
    has started, when a lost connection means an incomplete answer. ``host`` (already
    redacted) names the server in the messages."""
    try:
        yield
    except httpx.HTTPError as exc:
        raise _mapped(exc, host, streaming) from exc


def _mapped(exc: httpx.HTTPError, host: str, streaming: bool) -> BackendError:
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return BackendTimeout(f"no answer from {host} in time ({detail})")
    if isinstance(exc, httpx.ConnectError):
        return BackendUnavailable(f"cannot connect to {host} ({detail})")
    if isinstance(exc, httpx.DecodingError):
        return BadResponse(f"undecodable reply from {host} ({detail})")
    if streaming and isinstance(exc, httpx.TransportError):
        return StreamError(f"connection to {host} lost mid-stream ({detail})")
    if isinstance(exc, httpx.TransportError):
        return BackendUnavailable(f"connection to {host} failed ({detail})")
    return BackendError(f"request to {host} failed ({detail})")
