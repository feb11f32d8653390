"""What the proxy counts, and ``/metrics`` in the Prometheus text format (version 0.0.4).

=============================================  ==============================================
metric                                         what
=============================================  ==============================================
``llmcache_proxy_requests_total{cache}``       requests answered, by the ``x-llmcache``
                                               status the client got (``hit``, ``miss``,
                                               ``bypass``, ``uncacheable``), or ``error``
                                               (the upstream gave no answer: a 502 or 504),
                                               ``refused`` (the proxy answered: 413, 400)
``llmcache_proxy_upstream_errors_total{reason}``  ``connect``, ``timeout``, ``protocol``
                                               (no answer), ``cut`` (the body broke off),
                                               ``http_429``, ``http_5xx`` (passed through)
``llmcache_proxy_client_disconnects_total``    clients that went away before the end
``llmcache_proxy_coalesced_total``             requests that waited for an identical one
``llmcache_proxy_cache_errors_total``          cache tier failures the requests survived
``llmcache_proxy_tokens_saved_total``          tokens the hits did not cost upstream
``llmcache_proxy_seconds_saved_total``         hits times the average miss's duration
``llmcache_proxy_in_flight``                   requests being answered now
``llmcache_proxy_request_duration_seconds``    a histogram, by ``cache``: from the request's
                                               start to its answer's last byte
=============================================  ==============================================

The cache's own figures (coalesced, errors, tokens and time saved) are read from the
pipeline's counters at scrape time, through `ProxyMetrics`'s ``cache_counters``; the rest
is counted here, on the event loop that serves the requests (one thread: no lock).

>>> m = ProxyMetrics()
>>> m.finished("hit", 0.0004)
>>> text = m.render()
>>> 'llmcache_proxy_requests_total{cache="hit"} 1' in text
True
>>> 'llmcache_proxy_request_duration_seconds_bucket{cache="hit",le="0.0005"} 1' in text
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

__all__ = ["BUCKETS", "CONTENT_TYPE", "ProxyMetrics"]

#: Upper bounds of the latency buckets, in seconds: a hit is sub-millisecond, a model call
#: seconds to minutes.
BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)

#: The media type of the text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_STATUSES = ("hit", "miss", "bypass", "uncacheable", "error", "refused")
_REASONS = ("connect", "timeout", "protocol", "cut", "http_429", "http_5xx")

CacheCounters = Callable[[], Mapping[str, float]]
"""Returns the pipeline's counts (`llmcache._pipeline.Counters.as_dict`'s keys)."""


class _Histogram:
    __slots__ = ("buckets", "count", "counts", "total")

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break  # cumulated when rendered

    def lines(self, name: str, labels: str) -> list[str]:
        out, running = [], 0
        for bound, n in zip(self.buckets, self.counts, strict=True):
            running += n
            out.append(f'{name}_bucket{{{labels},le="{_number(bound)}"}} {running}')
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.count}')
        out.append(f"{name}_sum{{{labels}}} {_number(self.total)}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class ProxyMetrics:
    """The proxy's counts (see the module docstring). ``cache_counters`` reads the cache's
    own counts at scrape time (None: reported as zero)."""

    def __init__(
        self, cache_counters: CacheCounters | None = None, *, buckets: Sequence[float] = BUCKETS
    ) -> None:
        self.cache_counters = cache_counters
        self.requests = dict.fromkeys(_STATUSES, 0)
        self.upstream_errors = dict.fromkeys(_REASONS, 0)
        self.disconnects = 0
        self.in_flight = 0
        self._buckets = tuple(buckets)
        self.latency = {status: _Histogram(self._buckets) for status in _STATUSES}

    def started(self) -> None:
        """A request came in."""
        self.in_flight += 1

    def finished(self, status: str, seconds: float) -> None:
        """A request's answer ended (or broke off) after `seconds`; `status` is what the
        cache did (a value of ``x-llmcache``), ``error`` or ``refused``. An unknown status
        (an upstream behind another cache) is counted as ``bypass``."""
        if status not in self.requests:
            status = "bypass"
        self.in_flight = max(0, self.in_flight - 1)
        self.requests[status] += 1
        self.latency[status].observe(seconds)

    def abandoned(self) -> None:
        """A request whose client went away before its body ended (no answer went out)."""
        self.in_flight = max(0, self.in_flight - 1)
        self.disconnects += 1

    def upstream_error(self, reason: str) -> None:
        """Count an upstream failure (one of the module docstring's reasons)."""
        self.upstream_errors[reason] = self.upstream_errors.get(reason, 0) + 1

    def render(self) -> str:
        """Every metric, in the Prometheus text format."""
        cache = dict(self.cache_counters()) if self.cache_counters is not None else {}
        out: list[str] = []
        _family(
            out,
            "llmcache_proxy_requests_total",
            "counter",
            "Requests answered, by what the cache did (x-llmcache), error or refused.",
            [(f'cache="{s}"', n) for s, n in self.requests.items()],
        )
        _family(
            out,
            "llmcache_proxy_upstream_errors_total",
            "counter",
            "Upstream failures: no answer, a body cut off, or a 429 / 5xx passed on.",
            [(f'reason="{r}"', n) for r, n in self.upstream_errors.items()],
        )
        for name, kind, text, value in (
            (
                "client_disconnects_total",
                "counter",
                "Clients that went away before their answer ended.",
                self.disconnects,
            ),
            (
                "coalesced_total",
                "counter",
                "Requests that waited for an identical request's answer.",
                cache.get("coalesced", 0),
            ),
            (
                "cache_errors_total",
                "counter",
                "Cache tier failures that requests survived as misses.",
                cache.get("errors", 0),
            ),
            (
                "tokens_saved_total",
                "counter",
                "Tokens the cache hits did not cost upstream.",
                cache.get("tokens_saved", 0),
            ),
            (
                "seconds_saved_total",
                "counter",
                "Hits times the average miss's duration, in seconds.",
                cache.get("time_saved_ms", 0) / 1000,
            ),
            ("in_flight", "gauge", "Requests being answered now.", self.in_flight),
        ):
            _family(out, f"llmcache_proxy_{name}", kind, text, [("", value)])
        name = "llmcache_proxy_request_duration_seconds"
        out += [
            f"# HELP {name} Time from a request's start to its answer's last byte.",
            f"# TYPE {name} histogram",
        ]
        for status, histogram in self.latency.items():
            out += histogram.lines(name, f'cache="{status}"')
        return "\n".join(out) + "\n"


def _family(
    out: list[str], name: str, kind: str, text: str, samples: Sequence[tuple[str, float]]
) -> None:
    out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        out.append(f"{name}{{{labels}}} {_number(value)}" if labels else f"{name} {_number(value)}")
