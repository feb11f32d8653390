"""What a tier on a server (Redis, Postgres) keeps around every call: the circuit breaker
in front of the server, the counts, and the log of failures served as misses."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from llmcache.entry import CachedResponse
from llmcache.stores.base import ErrorLog, StoreStats

__all__ = ["Breaker", "ServerTier"]


class Breaker:
    """A circuit breaker for one server (`server` names its kind in the recovery message
    logged on `log`: "Redis", "Postgres").

    After a connection failure or a timeout, the server is skipped for `retry_after`
    seconds: a dead server then costs a clock read, not its timeout on every call. When the
    window has passed, exactly one caller probes (the others keep skipping); its success
    closes the circuit, its failure opens it for another window. The closed-circuit check is
    one attribute read (``down_until == 0``), so a healthy server pays nothing.
    """

    def __init__(self, retry_after: float, name: str, *, server: str, log: logging.Logger) -> None:
        self.retry_after = retry_after
        self.down_until = 0.0  # time.monotonic() before which the server is skipped; 0: up
        self.last_error: str | None = None
        self.opened = 0  # how many times the circuit opened
        self._name = name
        self._server = server
        self._log = log
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """True when a call may go to the server now (closed circuit, or this caller probes)."""
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
                self._log.info("%s: %s is reachable again", self._name, self._server)

    def failure(self, exc: BaseException) -> None:
        with self._lock:
            if not self.down_until:
                self.opened += 1
            self.down_until = time.monotonic() + self.retry_after
            self.last_error = f"{type(exc).__name__}: {exc}"

    @property
    def is_open(self) -> bool:
        return bool(self.down_until)


class ServerTier:
    """The breaker, counts and failure log of a tier on a server; `_guard` sets them up.

    A call asks `_up` first (``False``: skipped while the circuit is open, counted), tells
    `_ok` when the server answered, and `_failed` when a failure became a miss or a dropped
    write. Subclasses open the circuit on the failures that say the server is down.
    """

    _decode_bytes: Callable[[Any], CachedResponse]  # the codec's decode, bound once

    def _guard(self, label: str, retry_after: float, *, server: str, log: logging.Logger) -> None:
        self._stats = StoreStats()
        self._skipped = 0
        self._count_lock = threading.Lock()
        self._errlog = ErrorLog(log, label)
        self._breaker = Breaker(retry_after, label, server=server, log=log)

    def _count(self, name: str, n: int = 1) -> None:
        with self._count_lock:
            setattr(self._stats, name, getattr(self._stats, name) + n)

    def _up(self) -> bool:
        """May this call go to the server? False while the circuit is open (counted as
        skipped)."""
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
        """Count and log (once per kind) a failure turned into a miss or a dropped write."""
        self._errlog.report(operation, exc)
        self._count("errors")

    def _decoded(self, data: Any, operation: str) -> CachedResponse | None:
        """The entry in `data` (bytes read from the server: untrusted), or ``None`` when it
        does not decode (counted and logged as a failure of `operation`)."""
        try:
            return self._decode_bytes(data)
        except (ValueError, TypeError) as exc:  # CodecError is a ValueError
            self._failed(f"{operation} (decode)", exc)
            return None

    def _circuit(self) -> dict[str, Any]:
        """``skipped``, ``circuit_open``, ``circuit_opened``, ``last_error`` for stats."""
        breaker = self._breaker
        with self._count_lock:
            skipped = self._skipped
        return {
            "skipped": skipped,
            "circuit_open": breaker.is_open,
            "circuit_opened": breaker.opened,
            "last_error": breaker.last_error,
        }
