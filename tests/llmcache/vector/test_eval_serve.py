"""`serve_pairs` and `tally`: labeled pairs scored through `SemanticCache.get` itself, so a
verifier and its grey zone take part (the hook of ``benchmarks/verifier_eval.py``)."""

from __future__ import annotations

import pytest

from llmcache.backends.mock import MockBackend
from llmcache.vector.embedders import HashingEmbedder
from llmcache.vector.eval import (
    BUNDLED_PAIRS,
    Pair,
    load_pairs,
    score_pairs,
    serve_pairs,
    summarize,
    tally,
)
from llmcache.vector.verifier import Verifier

PAIRS = [
    Pair(
        "How do I reverse a list in Python?",
        "how do i reverse a list in python",
        True,
        "near_repeat",
    ),
    Pair(
        "How do I reverse a list in Python?",
        "How do I reverse a list in Python quickly?",
        True,
        "paraphrase",
    ),
    Pair("Where is order 48213?", "Where is order 48231?", False, "number"),
    Pair("How do I make pancakes?", "What is the boiling point of water?", False, "unrelated"),
]


def _scripted(answer: str) -> tuple[Verifier, MockBackend]:
    backend = MockBackend(lambda call: answer)
    return Verifier(backend), backend


def test_without_a_verifier_it_agrees_with_score_pairs() -> None:
    pairs = load_pairs(BUNDLED_PAIRS)
    embedder = HashingEmbedder()
    for threshold in (0.5, 0.7):
        scored = score_pairs(pairs, embedder)
        assert serve_pairs(pairs, embedder, threshold=threshold) == [
            s.served(threshold) for s in scored
        ]
        report = tally(pairs, serve_pairs(pairs, embedder, threshold=threshold))
        expected = summarize(scored, threshold, 0.02)
        assert {k: report[k] for k in ("served", "wrong", "per_category")} == {
            k: expected[k] for k in ("served", "wrong", "per_category")
        }


def test_the_verifier_decides_in_the_grey_zone_and_hard_vetoes_stand() -> None:
    embedder = HashingEmbedder()
    yes, backend_yes = _scripted("Yes")
    no, backend_no = _scripted("No.")
    served_yes = serve_pairs(PAIRS, embedder, threshold=0.5, verifier=yes)
    served_no = serve_pairs(PAIRS, embedder, threshold=0.5, verifier=no)
    # Every candidate is asked (grey_zone None), except the hard veto on the number.
    assert served_yes == [True, True, False, False]
    assert served_no == [False, False, False, False]
    assert backend_yes.call_count == backend_no.call_count == 2
    # Each question is about its own pair only.
    for call, pair in zip(backend_yes.calls, PAIRS[:2], strict=True):
        assert call.prompt is not None and pair.a in call.prompt and pair.b in call.prompt


def test_a_grey_zone_below_the_threshold_serves_only_what_the_verifier_accepts() -> None:
    embedder = HashingEmbedder()
    pair = PAIRS[1]
    similarity = score_pairs([pair], embedder)[0].similarity
    assert 0.3 < similarity < 0.99
    above = min(1.0, similarity + 0.01)
    assert serve_pairs([pair], embedder, threshold=above) == [False]
    yes, asked = _scripted("yes")
    zone = (similarity - 0.1, above)
    assert serve_pairs([pair], embedder, threshold=above, verifier=yes, grey_zone=zone) == [True]
    no, _ = _scripted("no")
    assert serve_pairs([pair], embedder, threshold=above, verifier=no, grey_zone=zone) == [False]
    # Above the zone the verifier is not asked and the threshold rules alone.
    silent, not_asked = _scripted("no")
    assert serve_pairs(
        [pair],
        embedder,
        threshold=similarity - 0.2,
        verifier=silent,
        grey_zone=(similarity - 0.2, similarity - 0.1),
    ) == [True]
    assert asked.call_count == 1 and not_asked.call_count == 0


def test_tally_counts_shares_and_categories() -> None:
    report = tally(PAIRS, [True, False, True, False])
    assert (report["served"], report["wrong"]) == (0.5, 0.5)
    assert (report["pairs"], report["should_hit"], report["traps"]) == (4, 2, 2)
    assert report["per_category"]["number"] == {
        "pairs": 1,
        "should_hit": 0,
        "traps": 1,
        "served": 1.0,
        "wrong": 1.0,
    }
    assert "wrong" not in report["per_category"]["paraphrase"]
    with pytest.raises(ValueError, match="4 pairs but 3"):
        tally(PAIRS, [True, True, True])
