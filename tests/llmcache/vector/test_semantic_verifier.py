"""The verifier: yes/no parsing, cached verdicts, and its place in SemanticCache lookups."""

from __future__ import annotations

import pytest

from llmcache.backends.errors import BackendUnavailable
from llmcache.backends.mock import AsyncMockBackend, MockBackend, MockCall
from llmcache.keys import Request
from llmcache.stores.memory import MemoryStore
from llmcache.vector.embedders import HashingEmbedder
from llmcache.vector.semantic import SemanticCache
from llmcache.vector.verifier import DEFAULT_PROMPT, Verifier, parse_verdict


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("yes", True),
        ("Yes.", True),
        ("YES", True),
        ("**Yes**", True),
        ("yes, same answer", True),
        ("Answer: yes", True),
        ("true", True),
        ("Same.", True),
        ("no", False),
        ("No.", False),
        ("no - B asks about Germany", False),
        ("Different", False),
        ("Answer: no", False),
        ("<think>They look alike, yes? Not quite.</think>\nNo", False),
        ("<think>unfinished reasoning yes", None),
        ("", None),
        ("maybe", None),
        ("I cannot tell", None),
        ("yes and no", None),
    ],
)
def test_parse_verdict(reply: str, verdict: bool | None) -> None:
    assert parse_verdict(reply) is verdict


def test_asks_at_temperature_zero_and_caches_unordered_pairs() -> None:
    backend = MockBackend(lambda call: "Yes", model="judge")
    verifier = Verifier(backend, max_tokens=8)
    assert verifier.verify("how do I exit vim", "How can I quit vim?")
    assert verifier.verify("How can I quit vim?", "how do I exit vim")
    assert backend.call_count == 1
    call = backend.calls[0]
    assert call.options == {"temperature": 0, "num_predict": 8} and call.model == "judge"
    assert "how do I exit vim" in (call.prompt or "") and "Answer yes or no" in DEFAULT_PROMPT
    assert verifier.stats() == {
        "calls": 1,
        "yes": 1,
        "no": 0,
        "unparsed": 0,
        "errors": 0,
        "cached": 1,
    }
    assert verifier.verify("same", "same") and backend.call_count == 1  # no call needed


def test_verdicts_are_per_model_and_shareable_through_a_store() -> None:
    store = MemoryStore(max_entries=10)
    first = MockBackend(lambda call: "no", model="a")
    assert not Verifier(first, store=store).verify("x one", "x two")
    second = MockBackend(lambda call: "yes", model="b")
    assert Verifier(second, store=store).verify("x one", "x two")  # another model: asked
    assert not Verifier(MockBackend(lambda c: "yes", model="a"), store=store).verify(
        "x two", "x one"
    )  # same model: the stored "no"
    assert second.call_count == 1


def test_unclear_replies_and_errors_refuse_and_are_not_cached() -> None:
    replies = iter(["hmm", "yes"])
    backend = MockBackend(lambda call: next(replies))
    verifier = Verifier(backend)
    assert not verifier.verify("a b", "a c")
    assert verifier.verify("a b", "a c")  # asked again: the unclear reply was not kept
    assert verifier.stats()["unparsed"] == 1

    def down(call: MockCall) -> str:
        raise BackendUnavailable("down")

    failing = Verifier(MockBackend(down))
    assert not failing.verify("a b", "a c")
    assert failing.stats()["errors"] == 1
    with pytest.raises(ValueError, match="placeholders"):
        Verifier(backend, prompt="no placeholders")


async def test_async_backend() -> None:
    async def judge(call: MockCall) -> str:
        return "no"

    verifier = Verifier(AsyncMockBackend(judge))
    assert not await verifier.averify("a b", "a c")
    assert not await verifier.averify("a c", "a b")
    assert verifier.stats()["calls"] == 1
    with pytest.raises(TypeError, match="averify"):
        verifier.verify("a b", "a c")
    assert await Verifier(MockBackend(lambda c: "yes")).averify("a b", "a c")


@pytest.mark.parametrize("prompt", ["{a} {b} {c}", "{a} {b} {0}", "{a} {b} }"])
def test_a_prompt_that_cannot_be_filled_is_refused_at_construction(prompt: str) -> None:
    # `verify` used to count such a prompt as a failing judge while `averify` raised:
    # one question, built once, for both.
    with pytest.raises(ValueError, match="prompt"):
        Verifier(MockBackend(lambda call: "yes"), prompt=prompt)


def req(prompt: str) -> Request:
    return Request(model="m", prompt=prompt)


def test_grey_zone_candidates_need_a_yes() -> None:
    answers = {"value": "no"}
    backend = MockBackend(lambda call: answers["value"])
    cache = SemanticCache(
        HashingEmbedder(dim=128), threshold=0.99, grey_zone=(0.5, 0.99), verifier=Verifier(backend)
    )
    cache.set(req("How do I reverse a list in Python?"), "xs[::-1]")
    query = req("how do I reverse a list in python please")  # similarity in the zone
    assert cache.get(query) is None and backend.call_count == 1
    answers["value"] = "yes"
    assert cache.get(query) is None and backend.call_count == 1  # the "no" is cached
    other = req("please how do I reverse a list in python")
    assert cache.get(other) is not None and backend.call_count == 2
    stats = cache.stats()
    assert stats["verified"] == 1 and stats["refused"] == 2
    assert stats["verifier"]["calls"] == 2
    exact = cache.get(req("How do I reverse a list in Python?"))
    assert exact is not None and exact.exact and backend.call_count == 2


def test_above_the_zone_no_call_and_hard_vetoes_never_asked() -> None:
    backend = MockBackend(lambda call: "yes")
    cache = SemanticCache(
        HashingEmbedder(dim=128), threshold=0.5, grey_zone=(0.5, 0.6), verifier=Verifier(backend)
    )
    cache.set(req("Where is order 48213?"), "shipped")
    assert cache.get(req("where is order 48213")) is not None  # above the zone
    assert cache.get(req("Where is order 48231?")) is None  # numbers: never overruled
    assert backend.call_count == 0


def test_soft_scope_vetoes_go_to_the_verifier() -> None:
    backend = MockBackend(lambda call: "yes")
    cache = SemanticCache(
        HashingEmbedder(dim=128), threshold=0.3, grey_zone=(0.3, 0.4), verifier=Verifier(backend)
    )
    cache.set(req("How do I rename a branch in git?"), "git branch -m")
    query = req("How do I change a branch name in git?")  # the scope guard vetoes this
    hit = cache.get(query)
    assert hit is not None and backend.call_count == 1
    without = SemanticCache(HashingEmbedder(dim=128), threshold=0.3)
    without.set(req("How do I rename a branch in git?"), "git branch -m")
    assert without.get(query) is None and without.stats()["vetoes"]["scope"] == 1


def test_no_grey_zone_verifies_every_candidate() -> None:
    backend = MockBackend(lambda call: "no")
    cache = SemanticCache(HashingEmbedder(dim=128), threshold=0.5, verifier=Verifier(backend))
    cache.set(req("How do I reverse a list?"), "a")
    assert cache.get(req("how do i reverse a list")) is None
    assert backend.call_count == 1


async def test_aget_uses_averify() -> None:
    async def judge(call: MockCall) -> str:
        return "yes"

    backend = AsyncMockBackend(judge)
    cache = SemanticCache(HashingEmbedder(dim=128), threshold=0.5, verifier=Verifier(backend))
    await cache.aset(req("How do I reverse a list?"), "a")
    hit = await cache.aget(req("how do i reverse a list"))
    assert hit is not None and hit.content == "a" and backend.call_count == 1


_COUNTED = ("exact_hits", "semantic_hits", "misses", "verified", "refused")


@pytest.mark.parametrize("verdict", ["yes", "no"])
@pytest.mark.parametrize("max_error", [None, 0.01])
async def test_get_and_aget_ask_an_inline_judge_alike(
    verdict: str, max_error: float | None
) -> None:
    # `get` and `aget` drive one lookup (`_lookup`): the same questions, verdicts, hits
    # and counters, with or without a bound.
    def build() -> tuple[SemanticCache, MockBackend]:
        backend = MockBackend(lambda call: verdict)
        cache = SemanticCache(
            HashingEmbedder(dim=128),
            threshold=0.99,
            grey_zone=(0.5, 0.99),
            verifier=Verifier(backend),
            max_error=max_error,
            verify="inline",
        )
        cache.set(req("How do I reverse a list in Python?"), "xs[::-1]")
        return cache, backend

    (sync, sync_backend), (asyn, async_backend) = build(), build()
    query = req("how do I reverse a list in python please")
    got, agot = sync.get(query), await asyn.aget(query)
    assert (got is None) == (agot is None) == (verdict == "no")
    assert got is None or agot is None or got.content == agot.content == "xs[::-1]"
    assert sync_backend.call_count == async_backend.call_count == 1
    assert [sync.stats()[n] for n in _COUNTED] == [asyn.stats()[n] for n in _COUNTED]


def test_sync_get_refuses_an_async_inline_judge_without_a_bound() -> None:
    async def yes(call: MockCall) -> str:
        return "yes"

    cache = SemanticCache(
        HashingEmbedder(dim=128), threshold=0.5, verifier=Verifier(AsyncMockBackend(yes))
    )
    cache.set(req("How do I reverse a list?"), "a")
    with pytest.raises(TypeError, match="averify"):
        cache.get(req("how do i reverse a list"))
