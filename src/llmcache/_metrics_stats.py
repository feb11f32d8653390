"""One operation's numbers in `llmcache.metrics`: the counters record, its summary
(percentiles, rounding) and its JSON form, plus the counter-dict arithmetic for sources.

Kept apart from `MetricsCollector` so each module stays small; nothing here is public API.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
_SUMMED = ("count", "total_ms", "cache_hits", "cache_misses", "errors", "cancelled",
           "tokens_saved", "time_saved_ms", "batch_count", "batch_items", "batch_wait_ms")


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
        if isinstance(value, (int, float)) and not isinstance(value, bool):
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
