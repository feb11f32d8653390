"""The statistics of a stated error bound (`llmcache.vector.bound`) and the observation log
that applies them per partition and per entry (`llmcache.vector.observations`)."""

from __future__ import annotations

import doctest
import math
import random

import pytest

from llmcache.entry import CachedResponse
from llmcache.vector import background, bound, compare, observations, promotion
from llmcache.vector.bound import (
    binomial_cdf,
    learn_threshold,
    min_observations,
    upper_bound,
)
from llmcache.vector.observations import (
    Observation,
    ObservationLog,
    observations_entry,
    observations_key,
    rows_from_entry,
)


@pytest.mark.parametrize("module", [bound, observations, background, compare, promotion])
def test_doctests(module: object) -> None:
    failures, _ = doctest.testmod(module)  # type: ignore[arg-type]
    assert failures == 0


@pytest.mark.parametrize(
    ("k", "n", "p"),
    [(0, 10, 0.1), (2, 10, 0.3), (5, 20, 0.01), (10, 10, 0.5), (-1, 5, 0.5), (3, 50, 0.0)],
)
def test_binomial_cdf_matches_the_sum_of_terms(k: int, n: int, p: float) -> None:
    expected = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(max(0, k + 1)))
    assert binomial_cdf(k, n, p) == pytest.approx(min(1.0, expected), abs=1e-12)


def test_upper_bound_is_clopper_pearson() -> None:
    # With no wrong answer the bound has a closed form: 1 - alpha ** (1 / n).
    for n in (1, 10, 299, 1000):
        assert upper_bound(0, n, confidence=0.95) == pytest.approx(1 - 0.05 ** (1 / n))
    high = upper_bound(3, 100, confidence=0.95)
    assert binomial_cdf(3, 100, high) == pytest.approx(0.05, abs=1e-9)
    assert upper_bound(0, 0) == 1.0 and upper_bound(5, 5) == 1.0
    assert upper_bound(1, 100, confidence=0.99) > upper_bound(1, 100, confidence=0.9)


def test_min_observations() -> None:
    assert min_observations(0.01, 0.95) == 299
    assert min_observations(0.05, 0.95) == 59
    assert upper_bound(0, min_observations(0.02), confidence=0.95) <= 0.02


def test_nothing_is_learned_from_too_few_observations() -> None:
    found = learn_threshold([0.99] * 298, [True] * 298, max_error=0.01)
    assert found.threshold is None
    assert learn_threshold([0.99] * 299, [True] * 299, max_error=0.01).threshold == 0.99


def test_the_scan_stops_at_the_first_threshold_that_fails() -> None:
    # 300 right at 0.9, then a block of wrong ones at 0.8: the threshold stays at 0.9 even
    # though many right ones further down would dilute the wrong ones again.
    sims = [0.9] * 300 + [0.8] * 20 + [0.7] * 5000
    right = [True] * 300 + [False] * 20 + [True] * 5000
    found = learn_threshold(sims, right, max_error=0.01)
    assert found.threshold == 0.9 and found.wrong == 0 and found.upper <= 0.01


def test_a_wrong_answer_at_the_top_needs_many_right_ones_to_outweigh_it() -> None:
    sims = [1.0] + [0.95] * 400
    right = [False] + [True] * 400
    assert learn_threshold(sims, right, max_error=0.01).threshold is None
    found = learn_threshold(sims + [0.95] * 200, right + [True] * 200, max_error=0.01)
    assert found.threshold == 0.95 and found.wrong == 1 and found.upper <= 0.01


def test_ties_are_taken_together() -> None:
    sims = [0.9] * 299 + [0.9]
    right = [True] * 299 + [False]  # the wrong one shares the similarity of the others
    found = learn_threshold(sims, right, max_error=0.01)
    assert found.threshold is None  # 1 wrong in 300 cannot certify 1%


@pytest.mark.parametrize("value", [0, 1, -0.1, float("nan"), True, "0.01"])
def test_bad_bounds(value: object) -> None:
    with pytest.raises(ValueError, match="max_error"):
        ObservationLog(max_error=value)  # type: ignore[arg-type]


def test_the_learned_threshold_keeps_the_bound() -> None:
    """Simulated traffic where the chance of a wrong answer falls with similarity; the
    learned threshold's true wrong share (computed exactly on the known model) exceeds the
    bound in no more runs than the confidence allows (5%, with room for chance)."""
    max_error, runs, over = 0.02, 60, 0

    def p_wrong(s: float) -> float:
        return max(0.0, min(1.0, (0.9 - s) * 0.5))  # 0 at 0.9 and above, 10% at 0.7

    grid = [0.5 + i / 1000 for i in range(500)]  # similarities are uniform on [0.5, 1)
    for seed in range(runs):
        rng = random.Random(seed)
        sims = [rng.uniform(0.5, 1.0) for _ in range(1500)]
        right = [rng.random() >= p_wrong(s) for s in sims]
        found = learn_threshold(sims, right, max_error=max_error)
        if found.threshold is None:
            continue
        served = [s for s in grid if s >= found.threshold]
        true_share = sum(map(p_wrong, served)) / len(served)
        over += true_share > max_error
    assert over <= 0.05 * runs + 3


# ------------------------------------------------------------------ the observation log


def fill(
    log: ObservationLog,
    n: int,
    sim: float,
    correct: bool = True,
    partition: str | None = None,
    entry: str | None = None,
) -> None:
    for _ in range(n):
        log.add(sim, correct, "judge", partition=partition, entry=entry)


def test_a_partition_uses_its_own_threshold_once_it_has_one() -> None:
    log = ObservationLog(max_error=0.05)
    fill(log, 60, 0.95)  # cache-wide: labeled pairs, no partition
    assert log.decide("p", "e", 0.96).level == "cache"
    fill(log, 60, 0.8, partition="p")
    decision = log.decide("p", "e", 0.85)
    assert decision.serve and decision.level == "partition" and decision.threshold == 0.8
    other = log.decide("q", "e", 0.85)  # the cache-wide pool includes p's 0.8s now
    assert other.level == "cache" and other.serve


def test_an_entry_never_serves_at_or_below_where_it_was_wrong() -> None:
    log = ObservationLog(max_error=0.05)
    fill(log, 200, 0.7)
    assert log.decide("p", "e", 0.9).serve
    log.add(0.9, False, "compare", partition="p", entry="e")
    assert log.floor("p", "e") == 0.9
    assert not log.decide("p", "e", 0.9).serve and log.decide("p", "e", 0.91).serve
    assert log.decide("p", "other", 0.9).serve  # another entry is not concerned


def test_exploration_is_at_most_the_rate_given_and_only_for_served_ones() -> None:
    log = ObservationLog(max_error=0.05, explore=0.2)
    fill(log, 200, 0.8)
    served = log.decide(None, "e", 0.9)
    assert served.serve and 0 < served.explore <= 0.2
    assert log.decide(None, "e", 0.7).explore == 0.0


def test_the_newest_observations_are_kept() -> None:
    log = ObservationLog(max_error=0.05, max_observations=10)
    for i in range(25):
        log.add(0.5 + i / 100, True, "pairs", partition="p" if i % 2 else None, at=float(i))
    kept = log.snapshot()
    assert len(kept) == 10 and {o.at for o in kept} == {float(i) for i in range(15, 25)}


def test_merge_deduplicates_and_rows_round_trip() -> None:
    log = ObservationLog(max_error=0.05)
    first = log.add(0.8, False, "compare", partition="p", entry="e", at=1.0)
    rows = [o.row() for o in log.snapshot()]
    other = ObservationLog(max_error=0.05)
    assert other.merge(o for o in map(Observation.from_row, rows) if o is not None) == 1
    assert other.merge([first]) == 0
    assert other.snapshot() == [first]


@pytest.mark.parametrize(
    "row",
    [
        None,
        [],
        ["id", 0.5, True, "judge", None, None],
        ["id", 2.0, True, "judge", None, None, 0],
        ["id", float("nan"), True, "judge", None, None, 0],
        ["id", 0.5, 1, "judge", None, None, 0],
        ["id", 0.5, True, "oracle", None, None, 0],
        ["", 0.5, True, "judge", None, None, 0],
        ["id", 0.5, True, "judge", 3, None, 0],
        ["id", True, True, "judge", None, None, 0],
    ],
)
def test_malformed_rows_are_dropped(row: object) -> None:
    assert Observation.from_row(row) is None


def test_store_entries_are_read_only_for_their_embedder() -> None:
    log = ObservationLog(max_error=0.05)
    log.add(0.8, True, "pairs")
    entry = observations_entry("emb-a", log.snapshot())
    assert rows_from_entry("emb-a", entry) == log.snapshot()
    assert rows_from_entry("emb-b", entry) == []  # another embedder's similarities
    assert observations_key("emb-a") != observations_key("emb-b")
    planted = CachedResponse(
        content={"format": "llmcache-observations", "version": 1, "embedder": "emb-a", "rows": []},
        fingerprint="x",
    )
    assert rows_from_entry("emb-a", planted) == [] and rows_from_entry("emb-a", None) == []
