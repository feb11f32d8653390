"""ApproximateIndex (usearch), AutoIndex switching, and the missing-extra error."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

import llmcache.vector.ann as ann_module
from llmcache.vector import (
    ApproximateIndex,
    AutoIndex,
    IndexFileError,
    VectorIndex,
    ann_available,
    make_index,
)

needs_usearch = pytest.mark.skipif(not ann_available(), reason="needs the ann extra (usearch)")
DIM = 16


def unit(rows: npt.ArrayLike) -> npt.NDArray[np.float32]:
    arr = np.asarray(rows, dtype=np.float64)
    return (arr / np.linalg.norm(arr, axis=-1, keepdims=True)).astype(np.float32)


def pair(
    n: int, seed: int = 0, dim: int = DIM, **options: object
) -> tuple[ApproximateIndex, VectorIndex, npt.NDArray[np.float32]]:
    """The same rows in an approximate and an exact index."""
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    ids = [f"v{i}" for i in range(n)]
    approx = ApproximateIndex(dim, **options)  # type: ignore[arg-type]
    approx.add(ids, vectors)
    exact = VectorIndex(dim)
    exact.add(ids, vectors)
    return approx, exact, vectors


def test_missing_extra_raises_import_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "usearch", None)  # import usearch -> ImportError
    monkeypatch.setitem(sys.modules, "usearch.index", None)
    assert not ann_available()
    for make in (
        lambda: ApproximateIndex(4),
        lambda: make_index(4),
        lambda: AutoIndex(4, approximate_above=10),
    ):
        with pytest.raises(ImportError, match=r"pip install 'llmcache\[ann\]'"):
            make()
    exact_only = make_index(4, approximate_above=None)  # never switches: no extra needed
    exact_only.add(["a", "b"], np.eye(4)[:2])
    assert not exact_only.is_approximate and exact_only.search([1, 0, 0, 0])[0].id == "a"


def test_importing_the_package_does_not_import_usearch() -> None:
    code = "import sys, llmcache.vector; print('usearch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


@needs_usearch
def test_doctests_run() -> None:
    failures, tried = doctest.testmod(ann_module)
    assert tried > 5 and failures == 0


@needs_usearch
def test_interface_add_replace_remove_get() -> None:
    approx, exact, vectors = pair(300)
    assert len(approx) == 300 and "v7" in approx and "nope" not in approx
    assert approx.ids() == exact.ids()
    np.testing.assert_allclose(approx.get_vector("v7"), unit(vectors[7]), atol=1e-6)
    approx.add_one("v7", -vectors[7])
    np.testing.assert_allclose(approx.get_vector("v7"), unit(-vectors[7]), atol=1e-6)
    hit = approx.search(-vectors[7], k=1)[0]
    assert hit.id == "v7" and hit.score == pytest.approx(1.0, abs=1e-5)  # exact rescoring
    assert approx.remove(["v7", "v8", "zzz"]) == 2 and approx.remove("v9") == 1
    assert len(approx) == 297 and "v7" not in approx
    assert all(h.id not in {"v7", "v8", "v9"} for h in approx.search(vectors[8], k=20))
    approx.add(["a", "b", "a"], [[1.0] * DIM, [2.0] * DIM, [-1.0] * DIM])
    assert approx.get_vector("a")[0] < 0 and len(approx) == 299
    with pytest.raises(ValueError, match=r"vectors\[0\] \(id 'z'\) is a zero vector"):
        approx.add(["z"], np.zeros((1, DIM)))
    with pytest.raises(TypeError):
        approx.add([3], np.ones((1, DIM)))  # type: ignore[list-item]
    assert len(approx) == 299 and "z" not in approx
    approx.clear()
    assert len(approx) == 0 and approx.search(vectors[0]) == []


@needs_usearch
def test_recall_on_5k_random_vectors() -> None:
    # Stored: 5k random unit vectors of dim 384. Queries: noisy copies of stored ones, as a
    # cache sees (a reworded question lands near the stored one).
    rng = np.random.default_rng(3)
    approx, _, vectors = pair(5000, seed=3, dim=384)
    picks = rng.choice(5000, size=300, replace=False)
    noisy = unit(vectors[picks]) + rng.normal(0, 0.01, (300, 384)).astype(np.float32)
    found = [hits[0].id for hits in approx.search_batch(noisy, k=1)]
    recall = np.mean([f == f"v{i}" for f, i in zip(found, picks, strict=True)])
    assert recall >= 0.95, recall


@needs_usearch
def test_recall_against_brute_force_for_random_queries() -> None:
    # The hard case (no structure at all), at a dimension where HNSW still works well.
    approx, exact, _ = pair(5000, seed=4, dim=32, expansion_search=128)
    queries = np.random.default_rng(5).standard_normal((300, 32))
    got = [h[0].id for h in approx.search_batch(queries, k=1)]
    want = [h[0].id for h in exact.search_batch(queries, k=1)]
    assert np.mean([g == w for g, w in zip(got, want, strict=True)]) >= 0.95


@needs_usearch
def test_scores_thresholds_and_batch_match_the_exact_index() -> None:
    approx, exact, vectors = pair(400)
    queries = vectors[:20] + 0.05
    for q in queries:
        a, e = approx.search(q, k=3), exact.search(q, k=3)
        assert [h.id for h in a] == [h.id for h in e]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in e], atol=1e-6)
        cut = (e[0].score + e[1].score) / 2
        assert [h.id for h in approx.search(q, k=3, threshold=cut)] == [e[0].id]
    batch = approx.search_batch(queries, k=3)
    assert [[h.id for h in hs] for hs in batch] == [
        [h.id for h in approx.search(q, k=3)] for q in queries
    ]
    assert [h.id for h in approx.search_batch(queries[:1], k=2)[0]] == [
        h.id for h in approx.search(queries[0], k=2)
    ]
    assert approx.search(vectors[0], k=1, threshold=1.5) == []


@needs_usearch
@pytest.mark.parametrize("exact_limit", [20_000, 0])  # exact over the filter / graph walk
def test_filters(monkeypatch: pytest.MonkeyPatch, exact_limit: int) -> None:
    monkeypatch.setattr(ann_module, "_EXACT_FILTER_MAX", exact_limit)
    approx, exact, vectors = pair(500)
    allowed = {f"v{i}" for i in range(0, 500, 3)}
    for q in vectors[:10]:
        got = approx.search(q, k=2, filter_ids=allowed)
        want = exact.search(q, k=2, filter_ids=allowed)
        assert [h.id for h in got] == [h.id for h in want]
    mask = np.array([id_ in allowed for id_ in approx.ids()])
    assert (
        approx.search(vectors[1], k=1, filter_ids=mask)[0].id
        == exact.search(vectors[1], k=1, filter_ids=allowed)[0].id
    )
    assert approx.search(vectors[1], filter_ids={"v1"})[0].id == "v1"
    assert approx.search(vectors[1], filter_ids=set()) == []
    assert approx.search_batch(vectors[:2], filter_ids={"v3"})[1][0].id == "v3"
    with pytest.raises(ValueError, match="mask"):
        approx.search(vectors[1], filter_ids=np.ones(3, dtype=bool))
    with pytest.raises(TypeError):
        approx.search(vectors[1], filter_ids="v1")


@needs_usearch
def test_save_load_round_trip_and_cleanup(tmp_path: Path) -> None:
    approx, _, vectors = pair(300, expansion_search=80)
    approx.remove(["v1"])
    path = tmp_path / "ann.json"
    approx.save(path)
    approx.add_one("late", vectors[1])
    approx.save(path)  # the second save deletes the first one's data files
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3 and names[0] == "ann.json", names
    loaded = ApproximateIndex.load(path)
    assert loaded.ids() == approx.ids() and loaded._options == approx._options
    for q in vectors[:10]:
        assert loaded.search(q, k=3) == approx.search(q, k=3)
    loaded.add_one("after-load", vectors[2] * -1)
    assert loaded.search(-vectors[2])[0].id == "after-load"
    assert "late" in loaded and "v1" not in loaded


@needs_usearch
@pytest.mark.parametrize("failure", ["graph", "rows", "manifest"])
def test_a_failed_save_keeps_the_previous_one(
    tmp_path: Path, failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    approx, _, _ = pair(100)
    path = tmp_path / "ann.json"
    approx.save(path)
    before = sorted(p.name for p in tmp_path.iterdir())
    approx.add_one("new", np.ones(DIM))
    calls = {"n": 0}
    real_atomic_write = ann_module.atomic_write

    def failing_write(target: Path, write: object) -> None:
        calls["n"] += 1  # 1st call writes the rows, 2nd the manifest
        if (failure, calls["n"]) in {("rows", 1), ("manifest", 2)}:
            raise OSError(28, "No space left on device")
        real_atomic_write(target, write)  # type: ignore[arg-type]

    def failing_graph_save(*args: object) -> None:
        raise RuntimeError("disk full")

    if failure == "graph":
        monkeypatch.setattr(approx._graph, "save", failing_graph_save)
    monkeypatch.setattr(ann_module, "atomic_write", failing_write)
    with pytest.raises((OSError, RuntimeError)):
        approx.save(path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    loaded = ApproximateIndex.load(path)
    assert len(loaded) == 100 and "new" not in loaded


@needs_usearch
def test_corrupt_or_mismatched_files_are_refused(tmp_path: Path) -> None:
    approx, _, _ = pair(50)
    path = tmp_path / "ann.json"
    approx.save(path)
    graph = next(tmp_path.glob("*.usearch"))
    rows = next(tmp_path.glob("*.npz"))
    good_manifest, good_graph = path.read_bytes(), graph.read_bytes()

    def refused(match: str) -> None:
        with pytest.raises(IndexFileError, match=match):
            ApproximateIndex.load(path)

    graph.write_bytes(good_graph[: len(good_graph) // 2])
    refused("checksum")
    graph.write_bytes(good_graph)
    path.write_bytes(good_manifest.replace(graph.name.encode(), b"../elsewhere.usearch"))
    refused("leave the directory")
    path.write_bytes(good_manifest[:40])
    refused("unreadable manifest")
    path.write_bytes(b'{"format": "llmcache-ann-index", "version": 1}')
    refused("missing or malformed")
    path.write_bytes(good_manifest.replace(b'"v1"', b'"v2"'))
    refused("unique ids")
    path.write_bytes(good_manifest)
    other = tmp_path / "other.json"
    pair(51)[0].save(other)
    rows.write_bytes(next(tmp_path.glob("other.json.*.npz")).read_bytes())
    refused("rows file holds 51 rows")
    rows.unlink()
    refused("missing")


@needs_usearch
def test_auto_index_switches_once_and_keeps_every_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    vectors = rng.standard_normal((120, DIM)).astype(np.float32)
    # background=False: the graph is built inside the add that crosses the line (the
    # background switch is tested in test_vector_autoindex.py).
    index = make_index(DIM, approximate_above=100, background=False, expansion_search=100)
    index.add([f"v{i}" for i in range(90)], vectors[:90])
    assert not index.is_approximate and isinstance(index.backend, VectorIndex)
    index.save(tmp_path / "exact")
    index.add([f"v{i}" for i in range(90, 120)], vectors[90:])
    assert index.is_approximate and isinstance(index.backend, ApproximateIndex)
    assert len(index) == 120 and sorted(index.ids()) == sorted(f"v{i}" for i in range(120))
    for i in (0, 50, 119):
        np.testing.assert_allclose(index.get_vector(f"v{i}"), unit(vectors[i]), atol=1e-6)
        assert index.search(vectors[i])[0].id == f"v{i}"
    assert index.remove([f"v{i}" for i in range(60)]) == 60
    assert index.is_approximate and len(index) == 60  # no switching back
    assert index.search_batch(vectors[60:62], k=1)[1][0].id == "v61"
    index.save(tmp_path / "approx")
    exact = AutoIndex.load(tmp_path / "exact")
    approx = AutoIndex.load(tmp_path / "approx", approximate_above=100)
    assert not exact.is_approximate and len(exact) == 90
    assert approx.is_approximate and approx.ids() == index.ids() and "v61" in approx
    assert "approximate_above=100" in repr(approx)
    approx.clear()
    assert len(approx) == 0


@needs_usearch
def test_auto_index_never_switches_without_a_limit() -> None:
    index = AutoIndex(DIM, approximate_above=None)
    index.add_one("a", np.ones(DIM))
    index.add([f"v{i}" for i in range(50)], np.random.default_rng(0).standard_normal((50, DIM)))
    assert not index.is_approximate and index.remove("a") == 1 and "a" not in index
    with pytest.raises(ValueError):
        AutoIndex(DIM, approximate_above=-1)


@needs_usearch
def test_a_graph_rebuilt_from_an_exact_copy_has_no_tombstones() -> None:
    approx, exact, vectors = pair(200)
    approx.remove([f"v{i}" for i in range(0, 200, 2)])
    assert approx.tombstones == 100
    fresh = ApproximateIndex.from_exact(approx.exact_copy())
    assert fresh.tombstones == 0 and sorted(fresh.ids()) == sorted(approx.ids())
    for q in vectors[1:40:2]:
        assert fresh.search(q, k=3) == approx.search(q, k=3)
    fresh.add_one("new", vectors[0])  # the copy is the new index's own: the old one is
    assert "new" not in approx  # untouched


@needs_usearch
@pytest.mark.parametrize("factory", [ApproximateIndex, lambda dim: AutoIndex(dim)])
def test_a_repeated_id_lands_where_the_exact_index_puts_it(factory: object) -> None:
    # ids() order is what a boolean filter mask aligns with, so every index must agree with
    # VectorIndex on it, also when one add repeats an id.
    rows = [[1.0] * DIM, [2.0] * DIM, [-1.0] * DIM, [0.5] * DIM]
    exact, other = VectorIndex(DIM), factory(DIM)  # type: ignore[operator]
    for index in (exact, other):
        index.add(["a", "b", "a", "c"], rows)
    assert other.ids() == exact.ids() == ["b", "a", "c"]
    mask = np.array([False, True, False])
    assert other.search(rows[2], k=3, filter_ids=mask) == exact.search(
        rows[2], k=3, filter_ids=mask
    )


@needs_usearch
@pytest.mark.parametrize("factory", [VectorIndex, ApproximateIndex, lambda dim: AutoIndex(dim)])
def test_every_index_checks_its_arguments_alike(factory: object) -> None:
    index = factory(DIM)  # type: ignore[operator]
    index.add(["a"], [[1.0] * DIM])
    with pytest.raises(TypeError, match="use add_one"):
        index.add("ab", [[1.0] * DIM, [2.0] * DIM])
    with pytest.raises(TypeError, match="ids must be str"):
        index.add([1], [[1.0] * DIM])
    for k in (0, -1):
        with pytest.raises(ValueError, match="k must be >= 1"):
            index.search([1.0] * DIM, k=k)
        with pytest.raises(ValueError, match="k must be >= 1"):
            index.search_batch([[1.0] * DIM], k=k)
    with pytest.raises(TypeError, match="not a str"):
        index.search([1.0] * DIM, filter_ids="a")
    with pytest.raises(ValueError, match=r"filter mask must have shape \(1,\)"):
        index.search([1.0] * DIM, filter_ids=np.array([True, False]))
    assert index.remove("a") == 1 and index.remove(["a"]) == 0 and len(index) == 0
