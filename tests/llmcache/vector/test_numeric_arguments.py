"""Numeric arguments of the vector classes are checked where they are passed: NaN, inf,
out-of-range, non-integral or non-numeric values raise a ValueError naming the argument and
the valid range (issue 13, finding 8)."""

from __future__ import annotations

import doctest
import math
import re
from collections.abc import Callable
from typing import Any

import pytest

from llmcache.backends.mock import MockBackend
from llmcache.keys import Request
from llmcache.vector.autoindex import AutoIndex
from llmcache.vector.embedders import HashingEmbedder
from llmcache.vector.eval import Pair, evaluate
from llmcache.vector.index import VectorIndex
from llmcache.vector.semantic import SemanticCache
from llmcache.vector.verifier import Verifier

NAN, INF = math.nan, math.inf
COSINES = [NAN, INF, -INF, 1.5, -1.01, "0.7", None, [0.5]]
COUNTS = [NAN, INF, 0, -1, 2.5, True, "3", None]


def semantic(**kw: Any) -> SemanticCache:
    return SemanticCache(HashingEmbedder(dim=32), **kw)


def refused(make: Callable[[], object], name: str, valid: str) -> None:
    with pytest.raises(ValueError) as info:
        make()
    message = str(info.value)
    assert message.startswith(f"{name}:"), message
    assert valid in message, message


@pytest.mark.parametrize("value", COSINES, ids=repr)
def test_semantic_threshold(value: Any) -> None:
    refused(lambda: semantic(threshold=value), "threshold", "[-1, 1]")
    if value is not None:  # per call, None means "the cache's"
        cache = semantic()
        refused(
            lambda: cache.get(Request(model="m", prompt="hi"), threshold=value),
            "threshold",
            "[-1, 1]",
        )


@pytest.mark.parametrize("value", COUNTS, ids=repr)
def test_semantic_counts(value: Any) -> None:
    refused(lambda: semantic(max_entries=value), "max_entries", ">= 1")
    refused(lambda: semantic(candidates=value), "candidates", ">= 1")


@pytest.mark.parametrize("value", [NAN, INF, -1, 2.5, True, "3"], ids=repr)
def test_semantic_approximate_above(value: Any) -> None:
    refused(lambda: semantic(approximate_above=value), "approximate_above", ">= 0")


@pytest.mark.parametrize("value", [NAN, INF, 0, -1.0], ids=repr)
def test_semantic_ttl(value: Any) -> None:
    refused(lambda: semantic(ttl=value), "ttl", "> 0")
    cache = semantic()
    refused(lambda: cache.set(Request(model="m", prompt="hi"), "x", ttl=value), "ttl", "> 0")


@pytest.mark.parametrize("value", [True, "60"], ids=repr)
def test_semantic_ttl_of_another_type(value: Any) -> None:
    # As every store's ttl (`check_ttl`): a TypeError naming the argument.
    with pytest.raises(TypeError, match="^ttl: expected seconds"):
        semantic(ttl=value)


@pytest.mark.parametrize(
    "value",
    [
        (NAN, 0.9),
        (0.5, INF),
        (0.9, 0.5),
        (-2.0, 0.5),
        0.5,
        (0.5,),
        (0.1, 0.2, 0.3),
        ("0.5", "0.9"),
        "0.5-0.9",
    ],
    ids=repr,
)
def test_semantic_grey_zone(value: Any) -> None:
    refused(lambda: semantic(grey_zone=value), "grey_zone", "-1 <= lo <= hi <= 1")


@pytest.mark.parametrize("value", COUNTS[:-1], ids=repr)
def test_vector_index_sizes(value: Any) -> None:
    refused(lambda: VectorIndex(value), "dim", ">= 1")
    refused(lambda: VectorIndex(4, capacity=value), "capacity", ">= 1")
    refused(lambda: AutoIndex(value, approximate_above=None), "dim", ">= 1")
    refused(lambda: AutoIndex(4, approximate_above=None, capacity=value), "capacity", ">= 1")


@pytest.mark.parametrize("value", [NAN, INF, -1, 2.5, True], ids=repr)
def test_autoindex_numbers(value: Any) -> None:
    refused(lambda: AutoIndex(4, approximate_above=value), "approximate_above", ">= 0")


@pytest.mark.parametrize("value", [NAN, INF, 0, -0.5, "0.25"], ids=repr)
def test_autoindex_ratios(value: Any) -> None:
    refused(
        lambda: AutoIndex(4, approximate_above=None, tombstone_ratio=value),
        "tombstone_ratio",
        "> 0",
    )
    if value not in (0,):  # 0 s is a valid retry delay
        refused(
            lambda: AutoIndex(4, approximate_above=None, retry_after=value), "retry_after", ">= 0"
        )


@pytest.mark.parametrize("value", [NAN, INF, 0, -1, 2.5, True, "16"], ids=repr)
def test_verifier_max_tokens(value: Any) -> None:
    refused(lambda: Verifier(MockBackend(), max_tokens=value), "max_tokens", ">= 1")


@pytest.mark.parametrize("value", [NAN, INF, 0, -1.0, True], ids=repr)
def test_verifier_ttl(value: Any) -> None:
    refused(lambda: Verifier(MockBackend(), ttl=value), "ttl", "> 0")


@pytest.mark.parametrize("value", [NAN, INF, -1, 2.5, True, "0"], ids=repr)
def test_hashing_embedder_seed(value: Any) -> None:
    refused(lambda: HashingEmbedder(seed=value), "seed", ">= 0")


def test_evaluate_numbers() -> None:
    pairs = [Pair("a b c", "a b c", True)]
    for value in (NAN, INF, 1.5):
        refused(
            lambda: evaluate(pairs, HashingEmbedder(), threshold=value),  # noqa: B023
            "threshold",
            "[-1, 1]",
        )
        refused(
            lambda: evaluate(pairs, HashingEmbedder(), budget=value),  # noqa: B023
            "budget",
            "[0, 1]",
        )


def test_valid_values_still_pass() -> None:
    cache = semantic(
        threshold=-1, max_entries=1, candidates=1, approximate_above=0, ttl=0.5, grey_zone=(0, 1)
    )
    assert cache.threshold == -1.0 and cache.grey_zone == (0.0, 1.0)
    assert semantic(threshold=1.0, approximate_above=None, ttl=None).threshold == 1.0
    assert VectorIndex(1, capacity=1).dim == 1
    AutoIndex(2, approximate_above=None, tombstone_ratio=None, retry_after=0)
    Verifier(MockBackend(), max_tokens=None, ttl=None)
    assert re.match(r"hashing-v1-\d+-s5", HashingEmbedder(seed=5).name)


def test_doctests_run() -> None:
    from llmcache.vector import _arguments

    failures, tried = doctest.testmod(_arguments)
    assert failures == 0 and tried > 0
