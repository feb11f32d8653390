"""Timing loops, run on all contenders side by side.

The machines here are shared and noisy, so each figure is taken in *rounds*: in every round
every contender does one batch, in a shuffled order, and the samples of all rounds are
pooled. A burst of load from elsewhere then lands on all contenders instead of on whichever
happened to run at that moment, which is what keeps the ratios within one run meaningful.
"""

from __future__ import annotations

import gc
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from benchmarks.peers.contenders import Contender
from benchmarks.peers.workload import Request

__all__ = ["Samples", "hit_latency", "miss_then_store", "percentile", "throughput"]

Tick = Callable[[], None]


@dataclass
class Samples:
    """Per-call latencies in nanoseconds, and the calls that went wrong."""

    ns: list[int] = field(default_factory=list)
    wrong: int = 0  # a miss where a hit was due, or another request's answer

    def pct(self, q: float) -> float:
        """The ``q``-th percentile in microseconds."""
        return percentile(sorted(self.ns), q) / 1000.0


def percentile(ordered: Sequence[int], q: float) -> float:
    """The ``q``-th percentile (0..100) of already sorted values, linearly interpolated."""
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def hit_latency(
    contenders: Sequence[Contender],
    requests: Sequence[Request],
    answers: Sequence[str],
    *,
    per_round: int,
    rounds: int,
    warmup: int,
    seed: int = 1,
    tick: Tick | None = None,
) -> dict[str, Samples]:
    """Single ``lookup`` calls on cached requests, each timed alone with perf_counter_ns.

    Every contender first reads ``warmup`` requests untimed (connections, page cache,
    CPU caches), then each round times ``per_round`` reads of random cached requests.
    """
    rng = random.Random(seed)
    out = {c.id: Samples() for c in contenders}
    for c in contenders:
        for i in rng.sample(range(len(requests)), min(warmup, len(requests))):
            c.lookup(requests[i])
    clock = time.perf_counter_ns
    for _ in range(rounds):
        order = list(contenders)
        rng.shuffle(order)
        for c in order:
            picks = [rng.randrange(len(requests)) for _ in range(per_round)]
            samples, lookup = out[c.id], c.lookup
            gc.collect()
            for i in picks:
                request = requests[i]
                t0 = clock()
                value = lookup(request)
                t1 = clock()
                samples.ns.append(t1 - t0)
                if value != answers[i]:
                    samples.wrong += 1
            if tick is not None:
                tick()
    return out


def miss_then_store(
    contenders: Sequence[Contender],
    fresh: dict[str, list[tuple[Request, str]]],
    *,
    rounds: int,
    tick: Tick | None = None,
) -> dict[str, Samples]:
    """``fill`` on requests the contender has never seen: a lookup that misses, then the
    store of the answer (the model call in between is free here). ``fresh`` gives each
    contender its own unseen requests and their answers."""
    rng = random.Random(2)
    out = {c.id: Samples() for c in contenders}
    clock = time.perf_counter_ns
    for r in range(rounds):
        order = list(contenders)
        rng.shuffle(order)
        for c in order:
            batch = fresh[c.id][r::rounds]
            samples, fill = out[c.id], c.fill
            gc.collect()
            for request, answer in batch:
                t0 = clock()
                value = fill(request, answer)
                t1 = clock()
                samples.ns.append(t1 - t0)
                if value != answer:
                    samples.wrong += 1
            if tick is not None:
                tick()
    return out


def throughput(
    contender: Contender,
    requests: Sequence[Request],
    *,
    threads: int,
    seconds: float,
    seed: int = 3,
) -> tuple[float, int]:
    """Hits per second with ``threads`` threads reading cached requests for ``seconds``.

    Returns (hits per second over all threads, calls that raised or missed).
    """
    barrier = threading.Barrier(threads + 1)
    counts = [0] * threads
    errors = [0] * threads
    stop_at = [0.0]

    def worker(slot: int) -> None:
        order = list(range(len(requests)))
        random.Random(seed + slot).shuffle(order)
        lookup, n, done, bad = contender.lookup, len(order), 0, 0
        barrier.wait()
        deadline = stop_at[0]
        while True:
            # Check the clock every 32 calls: its cost is then noise, not a share of a hit.
            for j in range(done, done + 32):
                try:
                    if lookup(requests[order[j % n]]) is None:
                        bad += 1
                except Exception:
                    bad += 1
            done += 32
            if time.perf_counter() >= deadline:
                break
        counts[slot], errors[slot] = done, bad

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    gc.collect()
    start = time.perf_counter()
    stop_at[0] = start + seconds
    barrier.wait()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    return sum(counts) / elapsed, sum(errors)
