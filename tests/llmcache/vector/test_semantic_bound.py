"""SemanticCache with a stated error bound (``max_error``) and verification off the request
path: learned thresholds, a judge asked in the background, approved pairs promoted to
aliases, rejected ones remembered, labels from fresh answers, and what persists."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from llmcache.backends.mock import AsyncMockBackend, MockBackend, MockCall
from llmcache.keys import Request
from llmcache.stores.redis import RedisStore
from llmcache.vector.bound import learn_threshold
from llmcache.vector.compare import ANSWER_PROMPT
from llmcache.vector.embedders import HashingEmbedder
from llmcache.vector.semantic import SemanticCache
from llmcache.vector.verifier import Verifier

WORDS = (
    "apple river stone cloud maple harbor lantern meadow copper violet summit "
    "orchard falcon willow ember canyon glacier pepper saddle thistle velvet "
    "quarry tundra walnut zephyr bramble cobalt dune fjord garnet heron island "
    "juniper kestrel lagoon marble nectar oasis prairie quill raven sierra"
).split()
SEP = "\x1e"
A = "How do I reverse a list in Python?"
B = "how do i reverse a python list"  # 0.94 to A with the hashing embedder


def req(prompt: str, **kw: Any) -> Request:
    return Request(model="m", prompt=prompt, **kw)


def sentence(rng: random.Random, n: int = 10) -> str:
    return " ".join(rng.sample(WORDS, n))


def variant(rng: random.Random, text: str) -> str:
    """``text`` with one word replaced: about 0.85-0.9 with the hashing embedder."""
    words = text.split()
    words[rng.randrange(len(words))] = rng.choice([w for w in WORDS if w not in words])
    return " ".join(words)


def labeled(n: int, seed: int = 0) -> list[tuple[str, str, bool]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a = sentence(rng)
        out.append((a, variant(rng, a), True))
    return out


class Judge:
    """A scripted judge (the public MockBackend with a handler), whose prompt is just the
    two texts, recording what it was asked and what it approved."""

    def __init__(self, answer: Any = "yes", *, block: threading.Event | None = None) -> None:
        self.answer = answer
        self.block = block
        self.asked: list[tuple[str, str]] = []
        self.approved: set[frozenset[str]] = set()
        self.backend = MockBackend(self.handle, model="judge")
        self.verifier = Verifier(self.backend, prompt="{a}" + SEP + "{b}")

    def handle(self, call: MockCall) -> str:
        if self.block is not None:
            self.block.wait(10)
        a, _, b = (call.prompt or "").partition(SEP)
        self.asked.append((a, b))
        reply = self.answer(a, b) if callable(self.answer) else self.answer
        if reply == "yes":
            self.approved.add(frozenset((a, b)))
        return str(reply)


def verify_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("llmcache-semantic-verify")]


# ------------------------------------------------------------------ defaults stay as they were


def test_without_max_error_the_verifier_is_asked_inline_as_before() -> None:
    judge = Judge("yes")
    with SemanticCache(
        HashingEmbedder(), threshold=0.99, verifier=judge.verifier, grey_zone=(0.5, 0.99)
    ) as cache:
        assert cache.verify_mode == "inline" and cache.max_error is None
        cache.set(req(A), "xs[::-1]")
        hit = cache.get(req(B))
        assert hit is not None and hit.content == "xs[::-1]"
        assert "basis" not in hit.entry.metadata["semantic"]
        assert judge.asked and verify_threads() == []
        assert "learned" not in cache.stats() and "background" not in cache.stats()


# ------------------------------------------------------------------ off the request path


def test_a_grey_candidate_does_not_wait_for_the_judge_and_is_then_an_alias() -> None:
    release = threading.Event()
    judge = Judge("yes", block=release)
    with SemanticCache(HashingEmbedder(), max_error=0.01, verifier=judge.verifier) as cache:
        assert cache.verify_mode == "background"
        cache.set(req(A), "xs[::-1]")
        assert cache.get(req(B)) is None  # answered at once, though the judge is stuck
        release.set()
        assert cache.wait_verified(timeout=10)
        for _ in range(2):
            hit = cache.get(req(B))
            assert hit is not None and hit.content == "xs[::-1]" and not hit.exact
            assert hit.entry.metadata["semantic"]["basis"] == "alias"
            assert hit.matched_prompt == A
        assert judge.backend.call_count == 1
        stats = cache.stats()
        assert stats["promoted"] == 1 and stats["alias_hits"] == 2
        assert stats["learned"]["sources"]["judge"] == 1


def test_a_rejected_pair_is_remembered_and_not_asked_again() -> None:
    judge = Judge("no")
    with SemanticCache(HashingEmbedder(), max_error=0.01, verifier=judge.verifier) as cache:
        cache.set(req(A), "xs[::-1]")
        for _ in range(3):
            assert cache.get(req(B)) is None
            assert cache.wait_verified(timeout=10)
        assert judge.backend.call_count == 1
        assert cache.stats()["background"]["submitted"] == 1
        assert cache.stats()["refused"] == 1


def test_the_model_answer_of_the_request_is_kept_over_an_alias() -> None:
    release = threading.Event()
    judge = Judge("yes", block=release)
    with SemanticCache(HashingEmbedder(), max_error=0.01, verifier=judge.verifier) as cache:
        cache.set(req(A), "xs[::-1]")
        assert cache.get(req(B)) is None
        cache.set(req(B), "list(reversed(xs))")  # the model's own answer, set meanwhile
        release.set()
        assert cache.wait_verified(timeout=10)
        hit = cache.get(req(B))
        assert hit is not None and hit.exact and hit.content == "list(reversed(xs))"
        assert cache.stats()["promoted"] == 0


def test_an_alias_dies_with_the_entry_it_points_at() -> None:
    judge = Judge("yes")
    with SemanticCache(HashingEmbedder(), max_error=0.01, verifier=judge.verifier) as cache:
        cache.set(req(A), "xs[::-1]")
        cache.get(req(B))
        cache.wait_verified(timeout=10)
        assert cache.get(req(B)) is not None
        assert cache.delete(req(A))
        assert cache.get(req(B)) is None  # no target: a miss, and the alias is gone
        assert cache.stats()["alias_hits"] == 1


@pytest.mark.parametrize("reply", ["maybe", "yes and no", ""])
def test_a_judge_answering_nonsense_counts_as_no(reply: str) -> None:
    judge = Judge(reply)
    with SemanticCache(HashingEmbedder(), max_error=0.01, verifier=judge.verifier) as cache:
        cache.set(req(A), "xs[::-1]")
        assert cache.get(req(B)) is None
        cache.wait_verified(timeout=10)
        assert cache.get(req(B)) is None
        assert cache.stats()["refused"] == 1


def test_a_judge_that_times_out_counts_as_no() -> None:
    never = threading.Event()
    backend = MockBackend(lambda call: "yes" if never.wait(10) else "no")
    verifier = Verifier(backend, timeout=0.05)
    try:
        with SemanticCache(HashingEmbedder(), max_error=0.01, verifier=verifier) as cache:
            cache.set(req(A), "xs[::-1]")
            assert cache.get(req(B)) is None
            assert cache.wait_verified(timeout=10)
            assert cache.get(req(B)) is None
            assert verifier.stats()["errors"] == 1 and cache.stats()["refused"] == 1
    finally:
        never.set()


def test_a_full_queue_drops_verifications_and_counts_them() -> None:
    release = threading.Event()
    judge = Judge("yes", block=release)
    try:
        with SemanticCache(
            HashingEmbedder(), max_error=0.01, verifier=judge.verifier, max_pending=1
        ) as cache:
            rng = random.Random(3)
            queries = []
            for i in range(4):
                a = sentence(rng)
                cache.set(req(a, namespace=str(i)), i)
                queries.append(req(variant(rng, a), namespace=str(i)))
            for query in queries:  # one running, one queued, the others dropped
                assert cache.get(query) is None
            assert cache.stats()["background"]["dropped"] >= 2
            release.set()
            assert cache.wait_verified(timeout=10)
    finally:
        release.set()
    assert verify_threads() == []  # close stopped the worker


def test_hard_vetoes_are_never_judged_soft_ones_only_through_the_judge() -> None:
    judge = Judge("yes")
    with SemanticCache(HashingEmbedder(), max_error=0.01, verifier=judge.verifier) as cache:
        cache.set(req("Where is order 48213?"), "shipped")
        assert cache.get(req("Where is order 48231?")) is None
        cache.wait_verified(timeout=10)
        assert judge.asked == [] and cache.stats()["vetoes"]["numbers"] == 1
    with SemanticCache(HashingEmbedder(), max_error=0.01) as cache:  # no judge
        cache.set(req(A), "xs[::-1]")
        assert cache.get(req(B)) is None  # nothing learned, no judge: never served


async def test_async_lookups_verify_on_a_task() -> None:
    async def yes(call: MockCall) -> str:
        return "yes"

    verifier = Verifier(AsyncMockBackend(yes))
    cache = SemanticCache(HashingEmbedder(), max_error=0.01, verifier=verifier)
    try:
        await cache.aset(req(A), "xs[::-1]")
        assert await cache.aget(req(B)) is None
        await cache.await_verified()
        hit = await cache.aget(req(B))
        assert hit is not None and hit.entry.metadata["semantic"]["basis"] == "alias"
        assert verify_threads() == []
    finally:
        await cache.aclose()


def test_a_chat_is_judged_whole() -> None:
    judge = Judge("no")
    history = [
        {"role": "user", "content": "I run Python 3.12 on Linux."},
        {"role": "assistant", "content": "OK."},
    ]
    with SemanticCache(HashingEmbedder(), max_error=0.01, verifier=judge.verifier) as cache:
        cache.set(Request(model="m", messages=[*history, {"role": "user", "content": A}]), 1)
        cache.get(Request(model="m", messages=[*history, {"role": "user", "content": B}]))
        cache.wait_verified(timeout=10)
    ((cached, asked),) = judge.asked  # each the chat's transcript, history included
    assert "I run Python 3.12 on Linux." in cached and cached.endswith(A)
    assert "I run Python 3.12 on Linux." in asked and asked.endswith(B)


# ------------------------------------------------------------------ learning


def test_a_warm_start_lets_the_cache_serve_at_once_within_the_bound() -> None:
    with SemanticCache(HashingEmbedder(), guards=(), max_error=0.05, explore=0.0) as cache:
        assert cache.observe_pairs(labeled(80)) == 80
        rng = random.Random(99)
        a = sentence(rng)
        cache.set(req(a), "answer")
        hit = cache.get(req(variant(rng, a)))
        assert hit is not None and hit.entry.metadata["semantic"]["basis"] == "learned"
        bound = hit.entry.metadata["semantic"]["bound"]
        assert bound["level"] == "cache" and bound["upper"] <= 0.05
        assert hit.similarity >= bound["threshold"]
        assert cache.stats()["learned_hits"] == 1


def test_warm_start_from_a_pairs_file(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        "".join(f'{{"a": "{a}", "b": "{b}", "same_answer": true}}\n' for a, b, _ in labeled(5))
    )
    with SemanticCache(HashingEmbedder(), guards=(), max_error=0.05) as cache:
        assert cache.observe_pairs(path) == 5
        assert {o.source for o in cache.observations()} == {"pairs"}
    with SemanticCache(HashingEmbedder()) as plain, pytest.raises(ValueError, match="max_err"):
        plain.observe_pairs(path)


def test_an_entry_found_wrong_is_not_served_at_or_below_that_similarity() -> None:
    linked = "how do I reverse a linked list in Python"  # 0.931 to A; B is 0.94
    with SemanticCache(HashingEmbedder(), guards=(), max_error=0.05, explore=1.0, seed=1) as cache:
        cache.observe_pairs(labeled(59))
        cache.set(req(A), "xs[::-1]")
        before = cache.decide(req(linked), req(A))
        assert before is not None and before.serve and before.floor is None
        assert cache.get(req(B)) is None  # explored
        cache.set(req(B), "a different answer")  # so A's answer was wrong for B
        after = cache.decide(req(linked), req(A))
        assert after is not None and not after.serve
        assert after.floor == pytest.approx(0.94, abs=0.005)
        # The wrong answer also counts against the thresholds, up there where the labels
        # were all right: it stops the scan until enough right ones outweigh it.
        assert after.threshold is None


def test_explored_and_grey_candidates_are_labeled_by_the_fresh_answer() -> None:
    with SemanticCache(
        HashingEmbedder(), guards=(), max_error=0.05, explore=1.0, seed=1, compare="normalized"
    ) as cache:
        cache.observe_pairs(labeled(59))  # just enough: the estimate uses all the bound
        rng = random.Random(5)
        a = sentence(rng)
        b = variant(rng, a)
        cache.set(req(a), "The answer.")
        assert cache.get(req(b)) is None  # explored: the model answers this time
        cache.set(req(b), "the answer")  # ... and its answer labels the candidate
        assert cache.stats()["explored"] == 1
        compared = [o for o in cache.observations() if o.source == "compare"]
        assert [o.correct for o in compared] == [True]
        c = variant(rng, a)
        assert cache.get(req(c)) is None
        cache.set(req(c), "another answer")
        compared = [o for o in cache.observations() if o.source == "compare"]
        assert [o.correct for o in compared] == [True, False]


def test_a_judge_can_compare_answers_in_the_background() -> None:
    asked: list[str] = []

    def same(call: MockCall) -> str:
        asked.append(call.prompt or "")
        return "yes"

    comparer = Verifier(MockBackend(same), prompt=ANSWER_PROMPT)
    with SemanticCache(HashingEmbedder(), guards=(), max_error=0.05, compare=comparer) as cache:
        cache.set(req(A), "Use slicing: xs[::-1].")
        assert cache.get(req(B)) is None
        cache.set(req(B), "xs[::-1] reverses it.")
        assert cache.wait_verified(timeout=10)
        assert [o.source for o in cache.observations()] == ["compare"]
        assert "Use slicing" in asked[0] and "Do the two answers say the same" in asked[0]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"compare": "fuzzy"}, "compare"),
        ({"compare": 3}, "compare"),
        ({"verify": "later"}, "verify"),
        ({"max_error": 0.0}, "max_error"),
        ({"max_error": 0.01, "confidence": 1.0}, "confidence"),
    ],
)
def test_bad_arguments(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SemanticCache(HashingEmbedder(), **kw)


def test_a_judge_wrong_on_purpose_serves_only_what_it_approved_or_what_was_learned() -> None:
    """Every hit served on a grey-zone candidate was approved by the judge or learned
    within the bound, whatever the judge says: here it approves everything, traps (a
    changed word) included."""
    max_error = 0.05
    rng = random.Random(7)
    judge = Judge("yes")
    bases: list[str] = []
    with SemanticCache(
        HashingEmbedder(),
        guards=(),
        max_error=max_error,
        explore=0.0,
        verifier=judge.verifier,
        verify="inline",
    ) as cache:
        cache.observe_pairs(labeled(30, seed=1))  # too few to certify anything alone
        for _ in range(150):
            a = sentence(rng)
            b = variant(rng, a)  # a trap: another word, another question
            cache.set(req(a), a)
            before = cache.observations()
            hit = cache.get(req(b))
            assert hit is not None  # the judge lets every trap through ...
            meta = hit.entry.metadata["semantic"]
            bases.append(meta["basis"])
            if meta["basis"] == "judge":  # ... on its word,
                assert frozenset((hit.content, b)) in judge.approved
                continue
            assert meta["basis"] == "learned"  # or on what it taught, within the bound:
            level = [
                o for o in before if meta["bound"]["level"] == "cache" or o.partition is not None
            ]
            found = learn_threshold(
                [o.similarity for o in level], [o.correct for o in level], max_error=max_error
            )
            assert found.threshold is not None and hit.similarity >= found.threshold
            assert meta["bound"]["upper"] == pytest.approx(found.upper)
            assert meta["bound"]["upper"] <= max_error
    assert "judge" in bases and "learned" in bases
    # The learned thresholds are only as good as their labels: taught by a judge that
    # approves traps, they serve traps. The bound is stated relative to the labels.


def test_no_judge_approval_and_nothing_learned_serves_nothing() -> None:
    judge = Judge("no")
    rng = random.Random(11)
    with SemanticCache(
        HashingEmbedder(), guards=(), max_error=0.01, verifier=judge.verifier, verify="inline"
    ) as cache:
        for i in range(40):
            a = sentence(rng)
            cache.set(req(a, namespace=str(i)), a)
            assert cache.get(req(variant(rng, a), namespace=str(i))) is None
        assert cache.stats()["semantic_hits"] == 0 and len(judge.asked) == 40


# ------------------------------------------------------------------ what persists


def test_observations_persist_beside_the_manifest(tmp_path: Path) -> None:
    with SemanticCache(
        HashingEmbedder(), guards=(), max_error=0.05, persist_path=tmp_path
    ) as cache:
        cache.observe_pairs(labeled(10))
    assert (tmp_path / "index" / "observations.json").exists()
    with SemanticCache(HashingEmbedder(), max_error=0.05, persist_path=tmp_path) as cache:
        assert len(cache.observations()) == 10
    with SemanticCache(HashingEmbedder(dim=64), max_error=0.05, persist_path=tmp_path) as cache:
        assert cache.observations() == []  # another embedder's similarities
    with SemanticCache(HashingEmbedder(), persist_path=tmp_path) as cache:
        assert cache.observations() == []  # no bound: nothing learned or loaded


def test_corrupt_observations_start_empty(tmp_path: Path) -> None:
    with SemanticCache(
        HashingEmbedder(), guards=(), max_error=0.05, persist_path=tmp_path
    ) as cache:
        cache.observe_pairs(labeled(3))
    (tmp_path / "index" / "observations.json").write_bytes(b"{not json")
    with SemanticCache(HashingEmbedder(), max_error=0.05, persist_path=tmp_path) as cache:
        assert cache.observations() == []


def test_observations_are_shared_through_a_redis_tier(redis_url: str) -> None:
    first = SemanticCache(
        HashingEmbedder(), guards=(), max_error=0.05, store=RedisStore(redis_url, namespace="sem")
    )
    first.observe_pairs(labeled(12))
    first.save()
    second = SemanticCache(
        HashingEmbedder(), guards=(), max_error=0.05, store=RedisStore(redis_url, namespace="sem")
    )
    assert len(second.observations()) == 12  # read at open
    second.observe_pairs(labeled(3, seed=5))
    assert second.sync_observations() == 0
    assert first.sync_observations() == 3
    assert len(first.observations()) == 15
    other = SemanticCache(
        HashingEmbedder(dim=64), max_error=0.05, store=RedisStore(redis_url, namespace="sem")
    )
    assert other.observations() == []
    for cache in (first, second, other):
        cache.close()


def test_close_stops_the_workers_and_later_lookups_fail() -> None:
    judge = Judge("yes")
    cache = SemanticCache(HashingEmbedder(), max_error=0.01, verifier=judge.verifier)
    cache.set(req(A), "x")
    cache.get(req(B))
    cache.close()
    assert verify_threads() == []
    with pytest.raises(RuntimeError, match="closed"):
        cache.get(req(B))
    asyncio.run(cache.aclose())  # idempotent


def test_background_verification_without_a_bound_keeps_the_static_threshold() -> None:
    judge = Judge("yes")
    with SemanticCache(
        HashingEmbedder(),
        threshold=0.99,
        grey_zone=(0.5, 0.99),
        verifier=judge.verifier,
        verify="background",
    ) as cache:
        assert cache.max_error is None
        cache.set(req(A), "xs[::-1]")
        cache.set(req("How do I sort a dict by value?"), "sorted(d.items(), ...)")
        exact = cache.get(req("How do I sort a dict by value?"))
        assert exact is not None and exact.exact  # above the threshold: as before
        assert cache.get(req(B)) is None  # grey: the judge is asked in the background
        assert cache.wait_verified(timeout=10)
        hit = cache.get(req(B))
        assert hit is not None and hit.entry.metadata["semantic"]["basis"] == "alias"
        assert "learned" not in cache.stats() and cache.stats()["background"]["done"] == 1


def test_aliases_are_bounded_like_entries() -> None:
    judge = Judge("yes")
    rng = random.Random(2)
    with SemanticCache(
        HashingEmbedder(),
        guards=(),
        max_error=0.01,
        max_entries=2,
        verifier=judge.verifier,
        verify="inline",
    ) as cache:
        a = sentence(rng)
        cache.set(req(a), "answer")
        queries = [req(variant(rng, a)) for _ in range(3)]
        for query in queries:
            assert cache.get(query) is not None  # approved inline, and promoted
        assert cache.stats()["promoted"] == 3
        hits = [cache.get(query) for query in queries]
        bases = [h.entry.metadata["semantic"]["basis"] if h else None for h in hits]
        assert bases[1:] == ["alias", "alias"]  # the oldest alias made room
        assert bases[0] == "judge"  # ... its approval is still remembered


def test_background_verification_without_a_bound_remembers_rejections() -> None:
    judge = Judge("no")
    with SemanticCache(
        HashingEmbedder(),
        threshold=0.99,
        grey_zone=(0.5, 0.99),
        verifier=judge.verifier,
        verify="background",
    ) as cache:
        cache.set(req(A), "xs[::-1]")
        for _ in range(3):
            assert cache.get(req(B)) is None
            assert cache.wait_verified(timeout=10)
        assert cache.stats()["background"]["submitted"] == 1
