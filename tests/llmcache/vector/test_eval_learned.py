"""The learned-mode evaluation: a simulated judge with fixed mistakes, splits, figures."""

from __future__ import annotations

import doctest
import random

import pytest

from llmcache.vector import eval_learned
from llmcache.vector.embedders import HashingEmbedder
from llmcache.vector.eval import Pair
from llmcache.vector.eval_learned import (
    SplitOptions,
    curve,
    judge_view,
    learned_splits,
    serve_learned,
    simulated_judge,
    summarize_outcomes,
)
from llmcache.vector.verifier import Verifier


def test_doctests() -> None:
    assert doctest.testmod(eval_learned).failed == 0


def pairs(n: int, seed: int = 0) -> list[Pair]:
    rng = random.Random(seed)
    return [
        Pair(
            f"question {rng.random()} about {i}",
            f"question about {i} again",
            i % 2 == 0,
            "kind-a" if i % 3 else "kind-b",
        )
        for i in range(n)
    ]


def test_the_simulated_judge_is_right_as_often_as_asked_and_sticks_to_its_answers() -> None:
    labeled = pairs(2000)
    judge = simulated_judge(labeled, accuracy=0.9, seed=3)
    verdicts = [judge.verify(p.a, p.b) for p in labeled]
    right = sum(v == p.same_answer for v, p in zip(verdicts, labeled, strict=True))
    assert 0.87 <= right / len(labeled) <= 0.93
    again = simulated_judge(labeled, accuracy=0.9, seed=3)  # no cache: decided afresh
    assert [again.verify(p.b, p.a) for p in labeled] == verdicts  # either order, same
    other = simulated_judge(labeled, accuracy=0.9, seed=4)
    assert [other.verify(p.a, p.b) for p in labeled] != verdicts  # its own mistakes
    assert not judge.verify("never labeled", "at all")


def test_the_simulated_judge_sees_chats_as_the_cache_shows_them() -> None:
    chat_a = [
        {"role": "user", "content": "I have two cats."},
        {"role": "assistant", "content": "Nice!"},
        {"role": "user", "content": "How often should I feed them?"},
    ]
    chat_b = [
        {"role": "user", "content": "I have two cats."},
        {"role": "assistant", "content": "Nice!"},
        {"role": "user", "content": "How often do they need food?"},
    ]
    judge = simulated_judge([Pair(chat_a, chat_b, True)], accuracy=1.0)  # type: ignore[arg-type]
    assert "two cats" in judge_view(chat_a) and judge_view(chat_a).endswith("feed them?")
    assert judge.verify(judge_view(chat_a), judge_view(chat_b))


def test_splits_score_each_half_and_report_the_spread() -> None:
    labeled = [
        Pair(f"How do I cook {w} rice?", f"how do i cook {w} rice", True, "repeat")
        for w in ("brown", "wild", "red", "black", "sushi", "jasmine")
    ]
    labeled += [
        Pair(f"Where is order {n}?", f"Where is order {n + 7}?", False, "number")
        for n in (11111, 22222, 33333, 44444)
    ]
    report = learned_splits(
        labeled,
        HashingEmbedder(),
        max_error=0.01,
        splits=3,
        judge=lambda k: simulated_judge(labeled, accuracy=1.0, seed=k),
    )
    assert report["splits"] == 3 and len(report["runs"]) == 3
    assert report["per_category"]["repeat"]["pairs"] == 9  # half of 6, three times
    assert report["figures"]["served"]["mean"] == 1.0
    assert report["figures"]["wrong"]["max"] == 0.0
    with pytest.raises(ValueError, match="max_error"):
        learned_splits(labeled, HashingEmbedder(), max_error=1.0, judge=lambda k: None)


def test_curve_is_learned_splits_at_each_bound_with_the_same_options() -> None:
    labeled = [
        Pair(f"How do I cook {w} rice?", f"how do i cook {w} rice", True, "repeat")
        for w in ("brown", "wild", "red", "black")
    ]
    labeled += [
        Pair(f"Where is order {n}?", f"Where is order {n + 7}?", False, "number")
        for n in (11111, 22222, 33333)
    ]
    options: SplitOptions = {"splits": 2, "seed": 3, "floor": 0.2, "verify": "inline"}

    def judge(k: int) -> Verifier:
        return simulated_judge(labeled, accuracy=0.8, seed=k)

    rows = curve(labeled, HashingEmbedder(), bounds=(0.01, 0.2), judge=judge, **options)
    for row in rows:
        report = learned_splits(
            labeled, HashingEmbedder(), max_error=row["max_error"], judge=judge, **options
        )
        assert row["served"] == report["figures"]["served"]["mean"]
        assert row["wrong"] == report["figures"]["wrong"]["mean"]
        assert row["learned"] == report["basis"].get("learned", 0)
    assert [row["max_error"] for row in rows] == [0.01, 0.2]
    for wrong in ({"split": 2}, {"max_error": 0.1}):  # a typo or the swept bound: refused
        with pytest.raises(TypeError):
            curve(labeled, HashingEmbedder(), judge=judge, **wrong)


def test_without_a_judge_and_with_nothing_learned_nothing_is_served() -> None:
    labeled = [Pair("How do I cook rice?", "how do i cook rice", True, "repeat")]
    outcomes = serve_learned([], labeled, HashingEmbedder(), max_error=0.01, judge=None)
    assert [o.served for o in outcomes] == [False]


def test_wrong_answers_are_counted_three_ways() -> None:
    labeled = [
        Pair("a", "b", True),
        Pair("c", "d", False),
        Pair("e", "f", False),
        Pair("g", "h", True),
    ]
    outcomes = [
        eval_learned.Outcome(p, served, False, None)
        for p, served in zip(labeled, (True, True, False, False), strict=True)
    ]
    report = summarize_outcomes(outcomes)
    assert (
        report["served"],
        report["wrong"],
        report["wrong_per_lookup"],
        report["wrong_per_served"],
    ) == (0.5, 0.5, 0.25, 0.5)
    assert report["per_category"] == {
        "uncategorised": {"pairs": 4, "should_hit": 2, "served": 0.5, "wrong": 0.5}
    }
