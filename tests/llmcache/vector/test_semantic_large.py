"""Large partitions: a SemanticCache's index turns approximate above `approximate_above`,
stays so across a restart, and never imports usearch before it needs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmcache.keys import Request
from llmcache.vector import AutoIndex, SemanticCache, VectorIndex, ann_available
from llmcache.vector.embedders import HashingEmbedder

needs_usearch = pytest.mark.skipif(not ann_available(), reason="needs the ann extra (usearch)")
TOPICS = [f"topic{i} subject{i} matter{i}" for i in range(60)]


def request(text: str, model: str = "m") -> Request:
    return Request(model=model, prompt=text)


def fill(cache: SemanticCache, n: int = len(TOPICS)) -> None:
    for i, text in enumerate(TOPICS[:n]):
        cache.set(request(text), f"answer {i}")


def partition_index(cache: SemanticCache) -> object:
    (index,) = cache._indexes.values()  # one model, one partition
    return index


def wait(index: object) -> None:
    assert isinstance(index, AutoIndex)
    assert index.wait_ready(timeout=60)


@needs_usearch
def test_a_partition_turns_approximate_above_the_line_and_keeps_answering() -> None:
    cache = SemanticCache(
        HashingEmbedder(dim=256), threshold=0.5, guards=(), approximate_above=20, max_entries=1000
    )
    fill(cache)
    index = partition_index(cache)
    wait(index)
    assert isinstance(index, AutoIndex) and index.is_approximate
    for i, text in enumerate(TOPICS):
        hit = cache.get(request(text + " please"))
        assert hit is not None and hit.entry.content == f"answer {i}", (i, hit)
    assert cache.get(request(TOPICS[3] + " please", model="other")) is None


@needs_usearch
def test_a_restored_partition_is_still_an_auto_index(tmp_path: Path) -> None:
    with SemanticCache(
        HashingEmbedder(dim=256),
        threshold=0.5,
        guards=(),
        approximate_above=20,
        max_entries=1000,
        persist_path=tmp_path,
    ) as cache:
        fill(cache)
        wait(partition_index(cache))
    with SemanticCache(
        HashingEmbedder(dim=256),
        threshold=0.5,
        guards=(),
        approximate_above=20,
        max_entries=1000,
        persist_path=tmp_path,
    ) as again:
        index = partition_index(again)
        wait(index)
        assert isinstance(index, AutoIndex) and index.is_approximate and len(index) == 60
        hit = again.get(request(TOPICS[41] + " please"))
        assert hit is not None and hit.entry.content == "answer 41"


def test_none_keeps_every_partition_exact() -> None:
    cache = SemanticCache(HashingEmbedder(dim=64), approximate_above=None)
    fill(cache, 5)
    assert type(partition_index(cache)) is VectorIndex


@pytest.mark.parametrize("bad", [-1, 1.5, True, "100"])
def test_a_bad_approximate_above_names_the_field(bad: object) -> None:
    with pytest.raises(ValueError, match="approximate_above"):
        SemanticCache(HashingEmbedder(dim=64), approximate_above=bad)  # type: ignore[arg-type]


@needs_usearch
def test_usearch_is_not_imported_until_a_graph_is_built() -> None:
    # usearch loaded before llama.cpp breaks llama's tokenizer, so a process that never
    # builds a graph must never load it.
    code = textwrap.dedent("""
        import sys
        from llmcache.keys import Request
        from llmcache.vector import SemanticCache
        from llmcache.vector.embedders import HashingEmbedder
        cache = SemanticCache(HashingEmbedder(dim=64), approximate_above=50)
        for i in range(10):
            cache.set(Request(model="m", prompt=f"question {i}"), "answer")
        cache.get(Request(model="m", prompt="question 3?"))
        print("usearch" in sys.modules)
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False", out.stderr
