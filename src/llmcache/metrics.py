"""Performance metrics: latencies, cache hits, errors and batches per operation.

`MetricsCollector` measures operations (``with metrics.measure("generate"):``): it is
thread-safe, bounded in memory (percentiles come from a reservoir of the most recent samples
per operation), usable from sync and async code, and persistable so a fresh process (a
``stats`` command) can show what an earlier one measured. Caches keep their own cheap
counters and are *pulled* through `register_source` at summary time, so no cache hit ever
waits on the collector's lock.

>>> m = MetricsCollector()
>>> with m.measure("generate") as h:
...     h.cached = True
>>> m.get_summary()["generate"]["cache_hit_rate"]
100.0
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from llmcache._atomic_file import atomic_write
from llmcache._closing import AsyncScope, Scope
from llmcache._numbers import is_number

__all__ = ["Measurement", "MetricsCollector", "SourceProvider", "metrics"]

logger = logging.getLogger(__name__)

SourceProvider = Callable[[], Mapping[str, "int | float"]]
"""A zero-argument callable returning a snapshot of counters (name -> number)."""

_FORMAT = "llmcache.metrics"
_VERSION = 1
DEFAULT_RESERVOIR = 2048


# ---------------------------------------------------------------- one operation's numbers
# The counters record of one operation, its summary (percentiles, rounding) and its JSON
# form, and the counter-dict arithmetic for sources.


@dataclass
class _OpStats:
    count: int = 0
    total_ms: float = 0.0
    min_ms: float = float("inf")
    max_ms: float = 0.0
    samples: deque[float] = field(default_factory=deque)
    cache_hits: int = 0
    cache_misses: int = 0
    errors: int = 0
    cancelled: int = 0
    tokens_saved: int = 0
    time_saved_ms: float = 0.0
    batch_count: int = 0
    batch_items: int = 0
    batch_max: int = 0
    batch_wait_ms: float = 0.0


# Fields that add up when two collectors merge (min/max/samples are combined separately).
_SUMMED = (
    "count",
    "total_ms",
    "cache_hits",
    "cache_misses",
    "errors",
    "cancelled",
    "tokens_saved",
    "time_saved_ms",
    "batch_count",
    "batch_items",
    "batch_wait_ms",
)


def _percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _add_counters(into: dict[str, int | float], values: Mapping[str, int | float]) -> None:
    for key, value in values.items():
        if is_number(value):
            into[str(key)] = into.get(str(key), 0) + value


def _clean_counters(values: Any) -> dict[str, int | float]:
    out: dict[str, int | float] = {}
    _add_counters(out, dict(values))
    return out


def _copy_stats(s: _OpStats) -> _OpStats:
    return _OpStats(**{k: v for k, v in vars(s).items() if k != "samples"})


def _summarise(s: _OpStats, ordered: list[float]) -> dict[str, Any]:
    decided = s.cache_hits + s.cache_misses
    out: dict[str, Any] = {
        "count": s.count,
        "avg_ms": round(s.total_ms / s.count, 3) if s.count else 0.0,
        "min_ms": round(s.min_ms, 3) if s.count else 0.0,
        "max_ms": round(s.max_ms, 3),
        "p50_ms": round(_percentile(ordered, 0.50), 3),
        "p95_ms": round(_percentile(ordered, 0.95), 3),
        "p99_ms": round(_percentile(ordered, 0.99), 3),
        "cache_hits": s.cache_hits,
        "cache_misses": s.cache_misses,
        "cache_hit_rate": round(100.0 * s.cache_hits / decided, 1) if decided else 0.0,
        "errors": s.errors,
        "cancelled": s.cancelled,
        "tokens_saved": s.tokens_saved,
        "time_saved_ms": round(s.time_saved_ms, 3),
    }
    if s.batch_count:
        out["batches"] = {
            "count": s.batch_count,
            "avg_size": round(s.batch_items / s.batch_count, 2),
            "max_size": s.batch_max,
            "avg_wait_ms": round(s.batch_wait_ms / s.batch_count, 3),
        }
    return out


def _stats_to_dict(s: _OpStats) -> dict[str, Any]:
    data = {k: v for k, v in vars(s).items() if k != "samples"}
    data["min_ms"] = None if s.count == 0 else s.min_ms  # JSON has no infinity
    data["samples"] = list(s.samples)
    return data


def _stats_from_dict(raw: Mapping[str, Any], reservoir: int) -> _OpStats:
    s = _OpStats(samples=deque((float(x) for x in raw.get("samples", ())), maxlen=reservoir))
    for name in _SUMMED + ("max_ms", "batch_max"):
        kind = type(getattr(s, name))  # int or float, from the dataclass defaults
        setattr(s, name, kind(raw.get(name, 0)))
    min_ms = raw.get("min_ms")
    s.min_ms = float("inf") if min_ms is None else float(min_ms)
    return s


class Measurement(Scope, AsyncScope):
    """One timed block, from `MetricsCollector.measure`; a sync and an async context manager.

    Set ``cached`` inside the block once you know whether the cache answered. After the block
    ``duration_ms`` holds the measured time.

    >>> m = MetricsCollector()
    >>> async def work() -> None:
    ...     async with m.measure("embed") as h:
    ...         h.cached = False
    >>> import asyncio; asyncio.run(work())
    >>> m.get_summary()["embed"]["cache_misses"]
    1
    """

    __slots__ = ("_collector", "_start", "cached", "duration_ms", "operation")

    def __init__(self, collector: MetricsCollector, operation: str, cached: bool) -> None:
        self._collector = collector
        self.operation = operation
        self.cached = cached
        self.duration_ms = 0.0
        self._start = 0.0

    def __enter__(self) -> Measurement:
        self._start = time.perf_counter()
        return self

    def _leave(self, exc: BaseException | None) -> None:
        self.duration_ms = (time.perf_counter() - self._start) * 1000.0
        if exc is None:
            self._collector.record(self.operation, self.duration_ms, cached=self.cached)
        elif isinstance(exc, Exception):
            self._collector.record(self.operation, self.duration_ms, error=True)
        else:
            # Cancellation and interrupts are not failures of the operation itself.
            self._collector._record_cancelled(self.operation, self.duration_ms)

    async def __aenter__(self) -> Measurement:
        return self.__enter__()

    async def _aleave(self, exc: BaseException | None) -> None:
        self._leave(exc)


class MetricsCollector:
    """Thread-safe per-operation metrics with bounded memory.

    Each operation keeps counts, min/max/total and the last ``reservoir_size`` durations (for
    p50/p95/p99). A measured block that raises counts an error and is neither a hit nor a miss;
    a cancelled one is counted under ``cancelled``. `record_cache_hit` and `record_cache_miss`
    are for code paths that are not timed with `measure` (do not use both for one call).

    >>> m = MetricsCollector()
    >>> m.record("search", 12.0, cached=False)
    >>> m.record_cache_hit("search", tokens_saved=40, time_saved_ms=12.0)
    >>> s = m.get_summary()["search"]
    >>> (s["count"], s["cache_hits"], s["cache_hit_rate"], s["tokens_saved"])
    (1, 1, 50.0, 40)
    """

    def __init__(self, *, reservoir_size: int = DEFAULT_RESERVOIR) -> None:
        if type(reservoir_size) is not int or reservoir_size < 1:
            raise ValueError(f"reservoir_size: expected a positive int, got {reservoir_size!r}")
        self.reservoir_size = reservoir_size
        self._lock = threading.Lock()
        self._ops: dict[str, _OpStats] = {}
        # name -> provider (a WeakMethod for bound methods, so a dead cache is dropped)
        self._sources: dict[str, Callable[[], SourceProvider | None]] = {}
        # Counters of sources loaded from a file or merged from another collector.
        self._source_base: dict[str, dict[str, int | float]] = {}

    # -- recording ---------------------------------------------------------------------------

    def _op(self, operation: str) -> _OpStats:
        # Caller holds the lock.
        stats = self._ops.get(operation)
        if stats is None:
            stats = self._ops[operation] = _OpStats(samples=deque(maxlen=self.reservoir_size))
        return stats

    def measure(self, operation: str, cached: bool = False) -> Measurement:
        """Time a block: ``with m.measure("op") as h:`` or ``async with``; see `Measurement`.

        >>> m = MetricsCollector()
        >>> with m.measure("parse"):
        ...     _ = sum(range(10))
        >>> m.get_summary()["parse"]["count"]
        1
        """
        return Measurement(self, operation, cached)

    def record(
        self, operation: str, duration_ms: float, *, cached: bool = False, error: bool = False
    ) -> None:
        """Record one call that took ``duration_ms``; an error is not a hit nor a miss."""
        d = float(duration_ms)
        if not d >= 0.0 or d == float("inf"):
            raise ValueError(f"duration_ms: expected a finite number >= 0, got {duration_ms!r}")
        with self._lock:
            s = self._op(operation)
            self._add_duration(s, d)
            if error:
                s.errors += 1
            elif cached:
                s.cache_hits += 1
            else:
                s.cache_misses += 1

    @staticmethod
    def _add_duration(s: _OpStats, d: float) -> None:
        s.count += 1
        s.total_ms += d
        s.min_ms = min(s.min_ms, d)
        s.max_ms = max(s.max_ms, d)
        s.samples.append(d)

    def _record_cancelled(self, operation: str, duration_ms: float) -> None:
        with self._lock:
            s = self._op(operation)
            self._add_duration(s, duration_ms)
            s.cancelled += 1

    def record_cache_hit(
        self, operation: str, *, tokens_saved: int = 0, time_saved_ms: float = 0.0
    ) -> None:
        """Count a hit, with the tokens and model time it saved."""
        with self._lock:
            s = self._op(operation)
            s.cache_hits += 1
            s.tokens_saved += int(tokens_saved)
            s.time_saved_ms += float(time_saved_ms)

    def record_cache_miss(self, operation: str) -> None:
        """Count a miss."""
        with self._lock:
            self._op(operation).cache_misses += 1

    def record_error(self, operation: str) -> None:
        """Count a failed call that was not timed."""
        with self._lock:
            self._op(operation).errors += 1

    def record_batch(self, operation: str, size: int, wait_ms: float) -> None:
        """Count one dispatched batch of ``size`` items whose oldest item waited ``wait_ms``."""
        if size < 0:
            raise ValueError(f"size: expected >= 0, got {size!r}")
        with self._lock:
            s = self._op(operation)
            s.batch_count += 1
            s.batch_items += size
            s.batch_max = max(s.batch_max, size)
            s.batch_wait_ms += float(wait_ms)

    # -- sources -----------------------------------------------------------------------------

    def register_source(self, name: str, provider: SourceProvider) -> None:
        """Pull ``provider()`` (a dict of counters) at summary time, under ``name``.

        Bound methods are held weakly: when their object dies the source disappears.

        >>> class Cache:
        ...     def counters(self) -> dict[str, int]:
        ...         return {"hits": 3}
        >>> m, c = MetricsCollector(), Cache()
        >>> m.register_source("cache", c.counters)
        >>> m.get_sources()
        {'cache': {'hits': 3}}
        """
        if not callable(provider):
            raise TypeError(f"provider: expected a callable, got {type(provider).__name__}")
        ref: Callable[[], SourceProvider | None] | None = None
        if hasattr(provider, "__self__") and hasattr(provider, "__func__"):
            with contextlib.suppress(TypeError):  # objects without __weakref__: held strongly
                ref = weakref.WeakMethod(provider)
        if ref is None:

            def strong(provider: SourceProvider = provider) -> SourceProvider | None:
                return provider

            ref = strong
        with self._lock:
            self._sources[name] = ref

    def unregister_source(self, name: str) -> None:
        """Stop pulling ``name`` (no error if it is not registered)."""
        with self._lock:
            self._sources.pop(name, None)

    def get_sources(self) -> dict[str, dict[str, int | float]]:
        """Counters of every source: live providers plus any loaded or merged ones, summed."""
        with self._lock:
            refs = list(self._sources.items())
            out = {name: dict(vals) for name, vals in self._source_base.items()}
        dead = []
        # Providers run outside our lock: they may take their own locks.
        for name, ref in refs:
            provider = ref()
            if provider is None:
                dead.append(name)
                continue
            try:
                values = provider()
            except Exception:
                logger.warning("metrics source %r failed; skipped", name, exc_info=True)
                continue
            _add_counters(out.setdefault(name, {}), values)
        if dead:
            with self._lock:
                for name in dead:
                    if name in self._sources and self._sources[name]() is None:
                        del self._sources[name]
        return out

    # -- reading -----------------------------------------------------------------------------

    def get_summary(self) -> dict[str, dict[str, Any]]:
        """Per operation: count, avg/min/max/p50/p95/p99 ms, hits, misses, hit rate (percent),
        errors, cancelled, tokens_saved, time_saved_ms and, when recorded, ``batches``.

        Times are rounded to 3 decimals (microseconds): cache hits are far below 0.1 ms.
        """
        with self._lock:
            snap = [(name, _copy_stats(s), sorted(s.samples)) for name, s in self._ops.items()]
        return {name: _summarise(s, ordered) for name, s, ordered in snap}

    def log_summary(self, level: int = logging.INFO) -> None:
        """Log one line per operation."""
        summary = self.get_summary()
        logger.log(level, "Performance summary (%d operations)", len(summary))
        for name, st in summary.items():
            logger.log(
                level,
                "  %s: %d calls, avg=%.3fms p95=%.3fms, cache=%.1f%%, errors=%d",
                name,
                st["count"],
                st["avg_ms"],
                st["p95_ms"],
                st["cache_hit_rate"],
                st["errors"],
            )

    def reset(self) -> None:
        """Forget all operations and loaded source counters (live sources stay registered)."""
        with self._lock:
            self._ops.clear()
            self._source_base.clear()

    # -- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data of everything measured, sources pulled now included."""
        sources = self.get_sources()
        with self._lock:
            ops = {name: _stats_to_dict(s) for name, s in self._ops.items()}
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "reservoir_size": self.reservoir_size,
            "operations": ops,
            "sources": sources,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricsCollector:
        """Rebuild a collector from `to_dict` output; ``ValueError`` on anything malformed."""
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise ValueError("not llmcache metrics data (missing format marker)")
        if data.get("version") != _VERSION:
            raise ValueError(f"unsupported metrics version {data.get('version')!r}")
        try:
            out = cls(reservoir_size=int(data.get("reservoir_size", DEFAULT_RESERVOIR)))
            for name, raw in dict(data.get("operations", {})).items():
                out._ops[str(name)] = _stats_from_dict(raw, out.reservoir_size)
            for name, vals in dict(data.get("sources", {})).items():
                out._source_base[str(name)] = _clean_counters(vals)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ValueError(f"malformed metrics data: {exc}") from exc
        return out

    def merge(self, other: MetricsCollector) -> None:
        """Add ``other``'s measurements and source counters into this collector.

        >>> a, b = MetricsCollector(), MetricsCollector()
        >>> a.record("op", 1.0); b.record("op", 3.0)
        >>> a.merge(b); a.get_summary()["op"]["avg_ms"]
        2.0
        """
        # Snapshot first, then apply under our own lock: never hold both locks (no deadlock).
        incoming = MetricsCollector.from_dict(other.to_dict())
        with self._lock:
            for name, o in incoming._ops.items():
                s = self._op(name)
                for attr in _SUMMED:
                    setattr(s, attr, getattr(s, attr) + getattr(o, attr))
                s.min_ms, s.max_ms = min(s.min_ms, o.min_ms), max(s.max_ms, o.max_ms)
                s.batch_max = max(s.batch_max, o.batch_max)
                s.samples.extend(o.samples)
            for name, vals in incoming._source_base.items():
                _add_counters(self._source_base.setdefault(name, {}), vals)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write `to_dict` as JSON atomically (temp file in the same folder + ``os.replace``)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2)
        atomic_write(target, lambda fh: fh.write(payload))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, missing_ok: bool = False) -> MetricsCollector:
        """Read a file written by `save`; an empty collector if absent and ``missing_ok``.

        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "m.json")
        >>> m = MetricsCollector(); m.record("op", 2.0); m.save(p)
        >>> MetricsCollector.load(p).get_summary()["op"]["count"]
        1
        """
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError:
            if missing_ok:
                return cls()
            raise
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"{os.fspath(path)}: not valid JSON: {exc}") from exc
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{os.fspath(path)}: {exc}") from exc


#: The process-wide collector: ``from llmcache import metrics``.
metrics = MetricsCollector()
