"""AutoIndex: the switch built in the background, writes journalled and replayed, builds
dropped by clear(), failures, tombstone rebuilds, and the final contents checked exactly."""

from __future__ import annotations

import doctest
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import llmcache.vector.autoindex as autoindex_module
from llmcache.vector import ApproximateIndex, AutoIndex, VectorIndex, ann_available

pytestmark = pytest.mark.skipif(not ann_available(), reason="needs the ann extra (usearch)")
DIM = 16
Model = dict[str, npt.NDArray[np.float32]]
# ef above the row count: a search walks every node it can reach in these small graphs,
# so a row its own vector does not find is one the graph cannot reach, never a near miss.
EXHAUSTIVE = 4096


def unit(rows: npt.ArrayLike) -> npt.NDArray[np.float32]:
    arr = np.asarray(rows, dtype=np.float64)
    out: npt.NDArray[np.float32] = (arr / np.linalg.norm(arr, axis=-1, keepdims=True)).astype(
        np.float32
    )
    return out


def vectors(n: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    return rng.standard_normal((n, DIM)).astype(np.float32)


def fill(index: AutoIndex, model: Model, ids: list[str], rows: npt.NDArray[np.float32]) -> None:
    index.add(ids, rows)
    model.update(zip(ids, rows, strict=True))


def check_contents(index: AutoIndex, model: Model, gone: Model) -> None:
    """Exactly the model's ids and vectors, in the rows and in the graph; each found by its
    own vector; removed ids (``gone``: id -> a vector it once had) absent, never returned."""
    assert sorted(index.ids()) == sorted(model) and len(index) == len(model)
    backend = index.backend
    if isinstance(backend, ApproximateIndex):  # the graph: one node per live row, no more
        graph, keys = backend._graph, [backend._keys[id_] for id_ in model]
        assert len(graph) == len(model) and sorted(backend._id_of.values()) == sorted(model)
        nodes = np.asarray(graph.get(np.array(keys, dtype=np.uint64), dtype="f32"))
        np.testing.assert_allclose(nodes, unit(np.stack(list(model.values()))), atol=1e-2)
    unreached = []
    for id_, vec in model.items():
        np.testing.assert_allclose(index.get_vector(id_), unit(vec), atol=1e-6)
        hit = index.search(vec, k=1)[0]
        if hit.id != id_:
            unreached.append(id_)
        assert hit.id != id_ or hit.score == pytest.approx(1.0, abs=1e-5), (id_, hit)
    # usearch's multi-threaded inserts left about 0.1% of nodes unreachable (59 of 100k
    # rows in 23 of 100 graphs of 1,000); ApproximateIndex adds with one thread: none may.
    assert not unreached, unreached
    dead = {id_: vec for id_, vec in gone.items() if id_ not in model}
    assert not any(id_ in index for id_ in dead)
    if dead:
        found = index.search_batch(np.stack(list(dead.values())), k=5)
        assert not {hit.id for hits in found for hit in hits} & dead.keys()


class Gate:
    """Holds every graph build (`ApproximateIndex.from_exact`, our code, not usearch's)
    until released, so a test can write while a build is certainly in flight."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def wrap(self, real: Callable[..., ApproximateIndex]) -> Callable[..., ApproximateIndex]:
        def gated(rows: VectorIndex, **options: Any) -> ApproximateIndex:
            self.calls += 1
            self.started.set()
            if not self.release.wait(30):
                raise TimeoutError("gate never released")
            return real(rows, **options)

        return gated


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    g = Gate()
    monkeypatch.setattr(
        ApproximateIndex, "from_exact", staticmethod(g.wrap(ApproximateIndex.from_exact))
    )
    yield g
    g.release.set()  # never leave a builder thread stuck behind a failed test
    join_builders()


def join_builders() -> None:
    for thread in threading.enumerate():
        if thread.name == "llmcache-autoindex-build":
            thread.join(30)


def test_doctests_run() -> None:
    failures, tried = doctest.testmod(autoindex_module)
    assert tried > 5 and failures == 0


def test_synchronous_mode_switches_inside_the_add() -> None:
    index = AutoIndex(DIM, approximate_above=50, background=False, expansion_search=EXHAUSTIVE)
    model: Model = {}
    rng = np.random.default_rng(0)
    fill(index, model, [f"v{i}" for i in range(51)], vectors(51, rng))
    assert index.is_approximate and not index.building and index.wait_ready(0)
    check_contents(index, model, {})


def test_writes_during_the_build_are_replayed_before_the_switch(gate: Gate) -> None:
    rng = np.random.default_rng(1)
    index = AutoIndex(DIM, approximate_above=200, expansion_search=EXHAUSTIVE)
    model: Model = {}
    gone: Model = {}
    fill(index, model, [f"a{i}" for i in range(150)], vectors(150, rng))
    fill(index, model, [f"b{i}" for i in range(100)], vectors(100, rng))  # crosses: 250
    assert gate.started.wait(10)
    assert index.building and not index.is_approximate and "building" in repr(index)
    assert index.wait_ready(timeout=0.01) is False  # the gate holds it
    # Writes while the graph is built: more than one unlocked catch-up round of new rows,
    # replacements of snapshot rows and of rows added meanwhile, removals of both kinds.
    fill(index, model, [f"c{i}" for i in range(400)], vectors(400, rng))
    replaced: Model = {}
    for id_ in ("a0", "b5", "c7"):
        vec = vectors(1, rng)[0]
        index.add_one(id_, vec)
        replaced[id_] = model[id_]
        model[id_] = vec
    for id_ in ("a1", "a2", "b9", "c8", "c9"):
        gone[id_] = model.pop(id_)
    assert index.remove(["a1", "a2", "b9", "nope"]) == 3
    assert index.remove("c8") == 1 and index.remove(["c9", "c9"]) == 1
    with pytest.raises(ValueError, match="zero vector"):  # refused, so never journalled
        index.add(["z"], np.zeros((1, DIM)))
    index.add([], np.empty((0, DIM)))
    assert index.search(model["c3"])[0].id == "c3"  # the exact rows answer meanwhile
    gate.release.set()
    assert index.wait_ready(timeout=30)
    assert index.is_approximate and not index.building and index.build_failures == 0
    check_contents(index, model, gone)
    for id_, old in replaced.items():  # the old vectors are gone from the graph as well
        assert all(hit.id != id_ or hit.score < 0.99 for hit in index.search(old, k=5))


def test_clear_during_a_build_drops_it_and_a_new_build_wins(gate: Gate) -> None:
    rng = np.random.default_rng(2)
    index = AutoIndex(DIM, approximate_above=100, expansion_search=EXHAUSTIVE)
    fill(index, {}, [f"x{i}" for i in range(101)], vectors(101, rng))
    assert gate.started.wait(10) and index.building
    index.clear()
    assert not index.building and index.wait_ready(0) and len(index) == 0
    model: Model = {}
    fill(index, model, [f"y{i}" for i in range(50)], vectors(50, rng))
    assert not index.building  # below the line again: nothing to build
    gate.release.set()
    join_builders()  # the dropped build ran to its end and threw its graph away
    assert not index.is_approximate
    check_contents(index, model, {})
    # Cross again: a fresh build, whose result is what takes over.
    fill(index, model, [f"w{i}" for i in range(60)], vectors(60, rng))
    assert index.wait_ready(30) and index.is_approximate and gate.calls == 2
    check_contents(index, model, {})


def test_a_dropped_build_never_overwrites_its_successor(gate: Gate) -> None:
    rng = np.random.default_rng(3)
    index = AutoIndex(DIM, approximate_above=100, expansion_search=EXHAUSTIVE)
    fill(index, {}, [f"x{i}" for i in range(101)], vectors(101, rng))
    assert gate.started.wait(10)
    index.clear()
    model: Model = {}
    fill(index, model, [f"y{i}" for i in range(120)], vectors(120, rng))  # second build
    assert index.building and gate.calls == 2
    gate.release.set()  # both finish; only the second may swap in
    assert index.wait_ready(30)
    join_builders()
    assert index.is_approximate
    check_contents(index, model, {})


def test_a_failed_build_is_logged_once_counted_and_not_retried_in_a_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = np.random.default_rng(4)
    # A graph option usearch refuses: the build fails in its thread, for real.
    index = AutoIndex(DIM, approximate_above=20, retry_after=3600, dtype="no-such-type")
    model: Model = {}
    with caplog.at_level(logging.WARNING, logger="llmcache.vector.autoindex"):
        fill(index, model, [f"v{i}" for i in range(21)], vectors(21, rng))
        assert index.wait_ready(30)
        for i in range(20):  # later writes within retry_after start no new build
            fill(index, model, [f"more{i}"], vectors(1, rng))
            assert not index.building
    assert not index.is_approximate and index.build_failures == 1
    records = [r for r in caplog.records if r.name == "llmcache.vector.autoindex"]
    assert len(records) == 1 and "failed" in records[0].getMessage()
    assert records[0].exc_info is not None
    check_contents(index, model, {})
    sync = AutoIndex(DIM, approximate_above=5, background=False, dtype="no-such-type")
    sync.add([f"s{i}" for i in range(6)], vectors(6, rng))  # the add itself succeeds
    assert not sync.is_approximate and sync.build_failures == 1 and len(sync) == 6


def test_a_failed_build_is_retried_at_a_later_write(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = ApproximateIndex.from_exact
    calls: list[int] = []

    def fails_once(rows: VectorIndex, **options: Any) -> ApproximateIndex:
        calls.append(len(rows))
        if len(calls) == 1:
            raise MemoryError("no room for the graph")
        return real(rows, **options)

    monkeypatch.setattr(ApproximateIndex, "from_exact", staticmethod(fails_once))
    rng = np.random.default_rng(5)
    index = AutoIndex(DIM, approximate_above=30, retry_after=0, expansion_search=EXHAUSTIVE)
    model: Model = {}
    with caplog.at_level(logging.WARNING, logger="llmcache.vector.autoindex"):
        fill(index, model, [f"v{i}" for i in range(31)], vectors(31, rng))
        assert index.wait_ready(30) and not index.is_approximate
        assert index.build_failures == 1
        fill(index, model, ["late"], vectors(1, rng))
        assert index.wait_ready(30) and index.is_approximate
    assert calls == [31, 32] and index.build_failures == 1
    check_contents(index, model, {})


def test_tombstones_trigger_a_background_rebuild(gate: Gate) -> None:
    rng = np.random.default_rng(6)
    index = AutoIndex(DIM, approximate_above=100, expansion_search=EXHAUSTIVE)
    model: Model = {}
    gone: Model = {}
    fill(index, model, [f"v{i}" for i in range(400)], vectors(400, rng))
    gate.release.set()
    assert index.wait_ready(30) and index.is_approximate
    first = index.backend
    assert isinstance(first, ApproximateIndex) and first.tombstones == 0
    gate.release.clear()
    gate.started.clear()
    doomed = [f"v{i}" for i in range(0, 60)]
    assert index.remove(doomed) == 60  # 60 < 64 tombstones: no rebuild yet
    gone.update((id_, model.pop(id_)) for id_ in doomed)
    assert not index.building and first.tombstones == 60
    more = [f"v{i}" for i in range(60, 130)]
    assert index.remove(more) == 70  # 130 > 25% of 270 live rows: rebuild
    gone.update((id_, model.pop(id_)) for id_ in more)
    assert gate.started.wait(10) and index.building
    assert index.backend is first and index.search(model["v200"])[0].id == "v200"
    fill(index, model, [f"n{i}" for i in range(30)], vectors(30, rng))  # journalled
    gone["v131"] = model.pop("v131")
    index.remove("v131")
    gate.release.set()
    assert index.wait_ready(30)
    second = index.backend
    assert isinstance(second, ApproximateIndex) and second is not first
    assert second.tombstones == 1 and index.build_failures == 0  # v131, removed meanwhile
    check_contents(index, model, gone)


def test_tombstone_count_matches_usearch(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    index = ApproximateIndex(DIM)

    def usearch_count(approx: ApproximateIndex) -> int:
        return int(approx._graph.stats.nodes) - len(approx._graph)

    live: list[str] = []
    for step in range(40):
        if step % 3 == 2 and live:
            picked = rng.choice(len(live), size=min(len(live), 15), replace=False).tolist()
            index.remove([live[p] for p in picked])
            live = [id_ for p, id_ in enumerate(live) if p not in set(picked)]
        else:
            ids = [f"s{step}-{i}" for i in range(int(rng.integers(1, 8)))]
            ids += live[: int(rng.integers(0, 5))]  # some replacements
            index.add(ids, vectors(len(ids), rng))
            live = list(dict.fromkeys(live + ids))
        assert index.tombstones == usearch_count(index), step
    assert index.tombstones > 0
    index.save(tmp_path / "ann.json")
    loaded = ApproximateIndex.load(tmp_path / "ann.json")
    assert loaded.tombstones == usearch_count(loaded) == index.tombstones
    index.clear()
    assert index.tombstones == 0


def test_save_during_a_build_writes_the_exact_rows_and_load_resumes(
    gate: Gate, tmp_path: Path
) -> None:
    rng = np.random.default_rng(8)
    index = AutoIndex(DIM, approximate_above=100, expansion_search=EXHAUSTIVE)
    model: Model = {}
    fill(index, model, [f"v{i}" for i in range(150)], vectors(150, rng))
    assert gate.started.wait(10)
    fill(index, model, [f"late{i}" for i in range(10)], vectors(10, rng))
    path = tmp_path / "index"
    index.save(path)
    assert path.read_bytes()[:2] == b"PK"  # the exact rows, with the late writes
    gate.release.set()
    assert index.wait_ready(30) and index.is_approximate
    # Above the line, so the load starts the build again.
    loaded = AutoIndex.load(path, approximate_above=100, expansion_search=EXHAUSTIVE)
    assert loaded.wait_ready(30) and loaded.is_approximate
    check_contents(loaded, model, {})
    kept = AutoIndex.load(path, approximate_above=None)
    assert not kept.is_approximate and not kept.building and len(kept) == 160


def test_bad_settings_are_refused() -> None:
    for bad in (
        {"tombstone_ratio": 0},
        {"tombstone_ratio": -1.0},
        {"retry_after": -1},
        {"approximate_above": -1},
    ):
        with pytest.raises(ValueError):
            AutoIndex(DIM, **bad)


@pytest.fixture
def fast_switching() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads really interleave
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("tombstone_ratio", [0.25, None])
def test_hammer_writers_and_readers_across_builds(
    gate: Gate, tombstone_ratio: float | None
) -> None:
    """Writers add, replace and remove (each its own ids) and readers search, while the
    switch and tombstone rebuilds run; every writer checks it reads its own writes and
    that what it removed is never found again."""
    index = AutoIndex(
        DIM, approximate_above=100, tombstone_ratio=tombstone_ratio, expansion_search=EXHAUSTIVE
    )
    writers, rounds = 4, 80
    models: list[Model] = [{} for _ in range(writers)]
    gones: list[Model] = [{} for _ in range(writers)]
    errors: list[BaseException] = []
    halfway = threading.Barrier(writers + 1)
    stop = threading.Event()

    def writer(w: int) -> None:
        rng = np.random.default_rng(w)
        model, gone = models[w], gones[w]
        for r in range(rounds):
            if r == rounds // 2:
                halfway.wait(30)  # the test thread releases the first build here
            # First half: the index grows past the line. Second half: it shrinks, which
            # leaves tombstones in the graph and so calls for rebuilds.
            adds, removes = (8, 2) if r < rounds // 2 else (1, 8)
            ids = [f"w{w}-{int(s)}" for s in rng.choice(100, size=adds, replace=False)]
            rows = vectors(len(ids), rng)
            index.add(ids, rows)
            model.update(zip(ids, rows, strict=True))
            # Read your own writes, whichever index serves now (exact, or the new graph).
            assert ids[0] in index
            np.testing.assert_allclose(index.get_vector(ids[0]), unit(rows[0]), atol=1e-6)
            victims = [f"w{w}-{int(s)}" for s in rng.choice(100, size=removes, replace=False)]
            present = [v for v in dict.fromkeys(victims) if v in model]
            assert index.remove(victims) == len(present)
            for v in present:
                gone[v] = model.pop(v)
                assert all(h.id != v for h in index.search(gone[v], k=3))

    def reader(seed: int) -> None:
        rng = np.random.default_rng(100 + seed)
        while not stop.is_set():
            q = rng.standard_normal(DIM)
            hits = index.search(q, k=5)
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
            assert len(index.search_batch(np.stack([q, -q]), k=3)) == 2
            ids = index.ids()
            assert len(ids) == len(set(ids))

    def guard(fn: Callable[[int], None], arg: int) -> Callable[[], None]:
        def run() -> None:
            try:
                fn(arg)
            except BaseException as exc:  # reported in the test thread
                errors.append(exc)
                halfway.abort()

        return run

    threads = [threading.Thread(target=guard(writer, w)) for w in range(writers)] + [
        threading.Thread(target=guard(reader, r)) for r in range(2)
    ]
    for t in threads:
        t.start()
    held = False
    try:
        halfway.wait(30)  # every writer is mid-way, the build is held: now let it finish
        held = gate.started.is_set() and index.building and not index.is_approximate
    except threading.BrokenBarrierError:
        pass  # a writer failed: reported below
    gate.release.set()
    for t in threads[:writers]:
        t.join(60)
    stop.set()
    for t in threads[writers:]:
        t.join(60)
    assert not errors, errors
    assert held  # the first half's writes really went on during the switch's build
    assert index.wait_ready(30) and index.is_approximate and index.build_failures == 0
    model: Model = {k: v for m in models for k, v in m.items()}
    gone: Model = {k: v for g in gones for k, v in g.items()}
    check_contents(index, model, gone)
    if tombstone_ratio is None:
        assert gate.calls == 1
    else:  # the shrinking half removes about 250 rows net: at least one rebuild
        assert gate.calls >= 2


def test_add_takes_any_sequence_and_remove_any_iterable() -> None:
    index = AutoIndex(DIM, approximate_above=10, expansion_search=EXHAUSTIVE)
    rng = np.random.default_rng(9)
    index.add(tuple(f"t{i}" for i in range(12)), vectors(12, rng))
    assert index.remove(f"t{i}" for i in range(3)) == 3  # a generator, read once
    with pytest.raises(TypeError):
        index.add("abc", vectors(3, rng))  # a str is not a sequence of ids here
    assert index.wait_ready(30) and index.is_approximate and len(index) == 9
