"""The statistics behind a stated error bound: how low may a similarity threshold go?

An *observation* is one semantic candidate whose fate is known: its similarity to the cached
request, and whether the cached answer was right for the new request (from a judge's
verdict, from comparing the model's fresh answer with the cached one, or from a labeled
pair). From observations, `learn_threshold` picks the lowest threshold ``t`` such that,
among candidates scoring at least ``t``, the share of wrong answers is at most
``max_error`` with probability at least ``confidence``:

- For a threshold ``t`` with ``n`` observations at or above it, ``w`` of them wrong, the
  hypothesis "the wrong share above ``t`` exceeds ``max_error``" is rejected when seeing at
  most ``w`` wrong in ``n`` would be rarer than ``1 - confidence`` if the share were
  exactly ``max_error`` (an exact binomial test: the Clopper-Pearson upper bound of ``w/n``
  is then at most ``max_error``). No normal approximation: with a bound of 1% the counts
  of wrong answers are tiny, where approximations are the most optimistic.
- Thresholds are tested in a fixed order, from high similarity down, stopping at the first
  that fails (fixed-sequence testing, as in Angelopoulos et al., "Learn then Test", 2021):
  every threshold accepted has its own test at the full level, and no correction for the
  number of thresholds tried is needed, because the order does not depend on the labels.
  It starts at the highest similarity with enough observations to pass at all
  (`min_observations`: 299 for 1% at 95%), an order set by the similarities alone.
- Consequences worth knowing: below `min_observations` nothing is learned (a 1% bound needs
  about 300 labeled candidates); one wrong answer among the most similar candidates stops
  the scan until enough right ones outweigh it; and the bound holds for labels as good as
  their source (a judge's mistakes are learned as truths).

>>> sims = [0.95] * 300 + [0.6] * 10
>>> right = [True] * 300 + [False] * 10
>>> learn_threshold(sims, right, max_error=0.01).threshold
0.95
>>> learn_threshold(sims[:200], right[:200], max_error=0.01).threshold is None
True
>>> round(upper_bound(0, 299, confidence=0.95), 4)
0.01
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from llmcache.vector._arguments import check_real

__all__ = [
    "DEFAULT_CONFIDENCE",
    "Threshold",
    "binomial_cdf",
    "check_confidence",
    "check_max_error",
    "learn_threshold",
    "min_observations",
    "upper_bound",
]

#: The probability that a learned threshold keeps its bound (the tests' level is 5%).
DEFAULT_CONFIDENCE = 0.95


def check_max_error(value: object) -> float:
    """``value`` as a share of wrong answers in (0, 1)."""
    return check_real(
        "max_error", value, "a share of wrong answers in (0, 1)", lambda x: 0.0 < x < 1.0
    )


def check_confidence(value: object) -> float:
    """``value`` as a probability in (0, 1)."""
    return check_real("confidence", value, "a probability in (0, 1)", lambda x: 0.0 < x < 1.0)


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (exact for small k)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    total = 0.0
    for i in range(k + 1):
        total += math.exp(
            log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        )
    return min(1.0, total)


def upper_bound(wrong: int, n: int, *, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """The one-sided Clopper-Pearson upper bound of a wrong share seen as ``wrong`` in ``n``:
    the largest share under which seeing at most ``wrong`` still has probability
    ``1 - confidence``. ``1.0`` without observations."""
    if n <= 0 or wrong >= n:
        return 1.0
    alpha = 1.0 - confidence
    lo, hi = wrong / n, 1.0
    for _ in range(60):  # bisection: the CDF falls as the share rises
        mid = (lo + hi) / 2
        if binomial_cdf(wrong, n, mid) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


def min_observations(max_error: float, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """The fewest observations, all right, that can certify ``max_error``."""
    return max(1, math.ceil(math.log(1.0 - confidence) / math.log1p(-max_error)))


@dataclass(frozen=True, slots=True)
class Threshold:
    """What `learn_threshold` found: the threshold (``None``: none can be trusted yet), the
    observations at or above it, the wrong ones among them, and their upper bound."""

    threshold: float | None
    observations: int
    wrong: int
    upper: float


def learn_threshold(
    similarities: Sequence[float],
    correct: Sequence[bool],
    *,
    max_error: float,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Threshold:
    """The lowest threshold whose candidates are wrong at most ``max_error`` of the time
    (see the module docstring for the test and why it keeps the bound)."""
    if len(similarities) != len(correct):
        raise ValueError(f"{len(similarities)} similarities but {len(correct)} labels")
    alpha = 1.0 - confidence
    order = sorted(range(len(similarities)), key=lambda i: -similarities[i])
    start = min_observations(max_error, confidence)
    found = Threshold(None, 0, 0, 1.0)
    n = wrong = 0
    i = 0
    while i < len(order):
        value = similarities[order[i]]
        while i < len(order) and similarities[order[i]] == value:  # ties go together
            n += 1
            wrong += not correct[order[i]]
            i += 1
        if n < start:
            continue
        if binomial_cdf(wrong, n, max_error) > alpha:
            break  # the first failure ends the fixed sequence
        found = Threshold(float(value), n, wrong, -1.0)
    if found.threshold is None:
        return found
    return Threshold(
        found.threshold,
        found.observations,
        found.wrong,
        upper_bound(found.wrong, found.observations, confidence=confidence),
    )
