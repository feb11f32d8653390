"""Thread-safety smoke test: writers and readers at once, then a consistent index."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from llmcache.vector import VectorIndex, VectorSearch, ann_available, make_index

DIM = 16


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    # Switch threads every 10 us instead of 5 ms, so the operations really interleave.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def _hammer(index: VectorSearch, tmp_path: Path, rounds: int) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()
    # Each writer owns its ids and writes vectors that encode (writer, id, version), so the
    # final state can be checked exactly.
    final: dict[str, int] = {}

    def vector(writer: int, slot: int, version: int) -> np.ndarray:
        v = np.zeros(DIM, np.float32)
        v[writer] = 1.0
        v[4 + slot % 8] = 0.5
        v[12 + version % 4] = 0.25
        return v

    def writer(w: int) -> Callable[[], None]:
        def run() -> None:
            rng = np.random.default_rng(w)
            for version in range(rounds):
                slots = rng.choice(20, size=5, replace=False).tolist()
                index.add(
                    [f"w{w}-{s}" for s in slots], np.stack([vector(w, s, version) for s in slots])
                )
                for s in slots:
                    final[f"w{w}-{s}"] = version
                gone = int(rng.integers(20))
                if index.remove([f"w{w}-{gone}"]):
                    final.pop(f"w{w}-{gone}", None)

        return run

    def reader(r: int) -> Callable[[], None]:
        def run() -> None:
            rng = np.random.default_rng(100 + r)
            while not stop.is_set():
                q = rng.standard_normal(DIM)
                hits = index.search(q, k=5)
                assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
                assert len(index.search_batch(np.stack([q, -q]), k=3)) == 2
                ids = index.ids()
                assert len(ids) == len(set(ids))
                if ids:
                    index.search(q, k=2, filter_ids=ids[: len(ids) // 2 + 1])

        return run

    def guard(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # reported below, in the test thread
                errors.append(exc)

        return run

    writers = [threading.Thread(target=guard(writer(w))) for w in range(4)]
    readers = [threading.Thread(target=guard(reader(r))) for r in range(3)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(60)
    index.save(tmp_path / "during")  # a save racing the readers
    stop.set()
    for t in readers:
        t.join(60)
    assert not errors, errors
    assert sorted(index.ids()) == sorted(final) and len(index) == len(final)
    for id_, version in final.items():
        w, slot = (int(x) for x in id_[1:].split("-"))
        expected = vector(w, slot, version)
        np.testing.assert_allclose(
            index.get_vector(id_), expected / np.linalg.norm(expected), atol=1e-6
        )


def test_vector_index_under_concurrent_writers_and_readers(tmp_path: Path) -> None:
    _hammer(VectorIndex(DIM, capacity=1), tmp_path, rounds=150)


@pytest.mark.skipif(not ann_available(), reason="needs the ann extra (usearch)")
def test_auto_index_switching_under_concurrent_writers_and_readers(tmp_path: Path) -> None:
    index = make_index(DIM, approximate_above=40)
    _hammer(index, tmp_path, rounds=60)
    assert index.wait_ready(timeout=60) and index.is_approximate  # the switch is in the background
