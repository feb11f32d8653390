"""VectorIndex: add, replace, remove and search against a brute-force numpy reference."""

from __future__ import annotations

import doctest

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmcache.vector.index as index_module
from llmcache.vector import SearchHit, VectorIndex

DIM = 8


def unit(rows: npt.ArrayLike) -> npt.NDArray[np.float32]:
    arr = np.asarray(rows, dtype=np.float64)
    return (arr / np.linalg.norm(arr, axis=-1, keepdims=True)).astype(np.float32)


def brute(
    stored: dict[str, npt.NDArray[np.float32]],
    query: npt.ArrayLike,
    k: int,
    threshold: float | None = None,
    allowed: set[str] | None = None,
) -> list[tuple[str, float]]:
    q = unit(query).astype(np.float64)
    scored = [
        (id_, float(np.dot(unit(v).astype(np.float64), q)))
        for id_, v in stored.items()
        if allowed is None or id_ in allowed
    ]
    scored.sort(key=lambda pair: -pair[1])
    return [(i, s) for i, s in scored[:k] if threshold is None or s >= threshold]


def assert_same(
    hits: list[SearchHit],
    expected: list[tuple[str, float]],
    stored: dict[str, npt.NDArray[np.float32]],
    query: npt.ArrayLike,
) -> None:
    """Same scores in the same order; ids may differ only between (near-)tied scores."""
    assert len(hits) == len(expected)
    np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], atol=1e-5)
    q = unit(query)
    for hit in hits:  # every id reported really has the score reported
        assert float(np.dot(unit(stored[hit.id]), q)) == pytest.approx(hit.score, abs=1e-5)
    assert len({h.id for h in hits}) == len(hits)


def same_hits(got: list[list[SearchHit]], want: list[list[SearchHit]]) -> bool:
    """Equal ids in equal order and scores equal to float32 rounding (gemm and gemv sum in
    different orders)."""
    return [[h.id for h in hs] for hs in got] == [[h.id for h in hs] for hs in want] and all(
        np.allclose([h.score for h in a], [h.score for h in b], atol=1e-6)
        for a, b in zip(got, want, strict=True)
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def filled(
    rng: np.random.Generator, n: int = 50, dim: int = DIM
) -> tuple[VectorIndex, dict[str, npt.NDArray[np.float32]]]:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    stored = {f"id{i}": vectors[i] for i in range(n)}
    index = VectorIndex(dim, capacity=4)
    index.add(list(stored), vectors)
    return index, stored


def test_doctests_run() -> None:
    failures, tried = doctest.testmod(index_module)
    assert tried > 5 and failures == 0


def test_search_matches_brute_force_for_every_k(rng: np.random.Generator) -> None:
    index, stored = filled(rng)
    for _ in range(20):
        q = rng.standard_normal(DIM)
        for k in (1, 2, 5, 49, 50, 80):
            assert_same(index.search(q, k), brute(stored, q, k), stored, q)


def test_scores_are_cosines_of_unnormalised_input() -> None:
    index = VectorIndex(2)
    index.add(["x", "y"], [[10.0, 0.0], [3.0, 3.0]])
    hits = index.search([0.5, 0.0], k=2)
    assert [h.id for h in hits] == ["x", "y"]
    assert hits[0].score == pytest.approx(1.0) and hits[1].score == pytest.approx(0.7071, 1e-4)
    assert np.linalg.norm(index.get_vector("y")) == pytest.approx(1.0, abs=1e-6)


def test_replace_remove_contains_len_ids(rng: np.random.Generator) -> None:
    index, stored = filled(rng, n=10)
    index.add_one("id3", [1.0] * DIM)
    stored["id3"] = np.ones(DIM, np.float32)
    assert len(index) == 10 and index.search([1.0] * DIM)[0] == SearchHit("id3", pytest.approx(1))
    assert index.remove(["id0", "id9", "missing", "id0"]) == 2
    assert index.remove("id5") == 1  # a bare str is one id, not its characters
    for gone in ("id0", "id9", "id5"):
        del stored[gone]
        assert gone not in index
    assert sorted(index.ids()) == sorted(stored) and len(index) == 7
    for id_, vector in stored.items():
        np.testing.assert_allclose(index.get_vector(id_), unit(vector), atol=1e-6)
    with pytest.raises(KeyError):
        index.get_vector("id0")
    q = rng.standard_normal(DIM)
    assert_same(index.search(q, 7), brute(stored, q, 7), stored, q)


def test_get_vector_is_a_copy() -> None:
    index = VectorIndex(2)
    index.add_one("a", [1.0, 0.0])
    index.get_vector("a")[:] = 0
    assert index.get_vector("a").tolist() == [1.0, 0.0]


def test_repeated_id_in_one_add_keeps_the_last_vector() -> None:
    index = VectorIndex(2)
    index.add(["a", "b", "a"], [[1, 0], [0, 1], [-1, 0]])
    assert len(index) == 2 and index.get_vector("a").tolist() == [-1.0, 0.0]
    index.add(["b", "c", "b"], [[1, 1], [1, 0], [0, -1]])  # replace + new + repeat
    assert index.get_vector("b").tolist() == [0.0, -1.0] and len(index) == 3


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([0.0, 0.0, 0.0], r"vectors\[1\] \(id 'b'\) is a zero vector"),
        ([1.0, np.nan, 0.0], r"vectors\[1\] \(id 'b'\) contains NaN or inf"),
        ([1.0, np.inf, 0.0], r"vectors\[1\] \(id 'b'\) contains NaN or inf"),
        ([1e300, 0.0, 0.0], r"vectors\[1\] \(id 'b'\) contains NaN or inf"),  # float32 overflow
    ],
)
def test_bad_rows_are_refused_before_anything_changes(bad: list[float], message: str) -> None:
    index = VectorIndex(3)
    index.add_one("keep", [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=message):
        index.add(["a", "b", "keep"], np.array([[0, 1, 0], bad, [0, 0, 1]], dtype=np.float64))
    assert index.ids() == ["keep"] and index.get_vector("keep").tolist() == [1.0, 0.0, 0.0]


def test_extreme_but_finite_magnitudes_are_normalised() -> None:
    index = VectorIndex(3)
    index.add(["big", "tiny"], np.array([[3e30, 4e30, 0], [0, 3e-30, 4e-30]], np.float32))
    np.testing.assert_allclose(index.get_vector("big"), [0.6, 0.8, 0.0], atol=1e-6)
    np.testing.assert_allclose(index.get_vector("tiny"), [0.0, 0.6, 0.8], atol=1e-6)
    assert index.search(np.array([3e30, 4e30, 0], np.float32))[0].id == "big"


def test_shape_type_and_query_errors() -> None:
    index = VectorIndex(3)
    with pytest.raises(ValueError, match=r"expected shape \(n, 3\)"):
        index.add(["a"], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="2 ids for 1 rows"):
        index.add(["a", "b"], [[1.0, 2.0, 3.0]])
    with pytest.raises(TypeError, match="add_one"):
        index.add("ab", [[1.0, 2.0, 3.0]])
    with pytest.raises(TypeError, match="ids must be str"):
        index.add([1], [[1.0, 2.0, 3.0]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="expected numbers"):
        index.add(["a"], [["1", "2", "3"]])
    index.add([], np.empty((0, 3)))
    index.add([], [])
    assert len(index) == 0 and index.search([1, 2, 3]) == []
    index.add_one("a", [1, 2, 3])
    for query, message in [
        ([0, 0, 0], "query is a zero vector"),
        ([np.nan, 1, 1], "query contains NaN"),
        ([1, 2], r"expected shape \(n, 3\)"),
        ([[1, 2, 3]], r"query: expected shape \(3,\)"),
    ]:
        with pytest.raises(ValueError, match=message):
            index.search(query)
    with pytest.raises(ValueError, match="k must be >= 1"):
        index.search([1, 2, 3], k=0)
    with pytest.raises(ValueError, match=r"queries\[1\] is a zero vector"):
        index.search_batch([[1, 2, 3], [0, 0, 0]])
    with pytest.raises(ValueError, match="dim"):
        VectorIndex(0)
    with pytest.raises(ValueError, match="metric"):
        VectorIndex(3, metric="l2")  # type: ignore[arg-type]


def test_threshold_drops_hits_below_it(rng: np.random.Generator) -> None:
    index, stored = filled(rng)
    q = rng.standard_normal(DIM)
    top = brute(stored, q, 50)
    cut = (top[2][1] + top[3][1]) / 2  # between the 3rd and the 4th best
    assert [h.id for h in index.search(q, 10, threshold=cut)] == [i for i, _ in top[:3]]
    assert index.search(q, 1, threshold=1.01) == []
    assert index.search(q, 1, threshold=top[0][1] - 1e-6)[0].id == top[0][0]
    assert [len(h) for h in index.search_batch([q, -q], 10, threshold=cut)][0] == 3


@pytest.mark.parametrize("size", [3, 30])  # few: gathered rows; many: one full product
def test_filter_by_ids_and_by_mask(rng: np.random.Generator, size: int) -> None:
    index, stored = filled(rng, n=40)
    allowed = {f"id{i}" for i in rng.choice(40, size=size, replace=False)}
    q = rng.standard_normal(DIM)
    expected = brute(stored, q, 5, allowed=allowed)
    assert_same(index.search(q, 5, filter_ids=allowed | {"nope"}), expected, stored, q)
    mask = np.array([id_ in allowed for id_ in index.ids()])
    assert_same(index.search(q, 5, filter_ids=mask), expected, stored, q)
    assert_same(index.search(q, 1, filter_ids=list(allowed)), expected[:1], stored, q)
    batch = index.search_batch([q, q], 5, filter_ids=allowed)
    assert_same(batch[0], expected, stored, q)
    assert_same(batch[1], expected, stored, q)


def test_filter_edge_cases(rng: np.random.Generator) -> None:
    index, _ = filled(rng, n=5)
    q = rng.standard_normal(DIM)
    assert index.search(q, filter_ids=set()) == [] and index.search(q, filter_ids={"x"}) == []
    assert index.search_batch([q], filter_ids=[]) == [[]]
    with pytest.raises(ValueError, match=r"mask must have shape \(5,\)"):
        index.search(q, filter_ids=np.ones(4, dtype=bool))
    with pytest.raises(TypeError, match="not a str"):
        index.search(q, filter_ids="id1")


def test_search_batch_equals_single_searches(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, _ = filled(rng, n=60)
    queries = rng.standard_normal((25, DIM))
    for k in (1, 3, 60, 100):
        assert same_hits(index.search_batch(queries, k), [index.search(q, k) for q in queries])
    # Small score budget: several chunks of queries, same answers.
    monkeypatch.setattr(index_module, "_BATCH_SCORE_BYTES", 4 * 60 * 7)
    assert same_hits(index.search_batch(queries, 3), [index.search(q, 3) for q in queries])
    assert VectorIndex(DIM).search_batch(queries, 2) == [[] for _ in range(25)]
    twins = VectorIndex(2)  # exact ties: the lower row wins, in both paths
    twins.add(["a", "b", "c", "d"], [[1, 0], [0, 1], [1, 0], [1, 0]])
    for k in (1, 2, 3, 4):
        single = [h.id for h in twins.search([1, 0], k)]
        assert single == ["a", "c", "d", "b"][:k]
        assert [h.id for h in twins.search_batch([[1, 0], [1, 0]], k)[1]] == single
    assert index.search_batch(np.empty((0, DIM))) == []


def test_growth_doubles_and_keeps_rows(rng: np.random.Generator) -> None:
    index = VectorIndex(4, capacity=1)
    vectors = rng.standard_normal((300, 4)).astype(np.float32)
    capacities = set()
    for i, v in enumerate(vectors):
        index.add_one(f"v{i}", v)
        capacities.add(index.capacity)
    assert sorted(capacities) == [2**p for p in range(10)]  # 1, 2, 4, ... 512
    for i in (0, 150, 299):
        np.testing.assert_allclose(index.get_vector(f"v{i}"), unit(vectors[i]), atol=1e-6)


def test_removals_keep_rows_contiguous_and_shrink(rng: np.random.Generator) -> None:
    index, stored = filled(rng, n=200)
    doomed = [f"id{i}" for i in range(0, 200, 2)] + [f"id{i}" for i in range(1, 150, 2)]
    assert index.remove(doomed) == len(doomed)
    for id_ in doomed:
        del stored[id_]
    assert index.capacity < 200 and len(index) == 25
    assert index._ids == index.ids() and {index._rows[i] for i in stored} == set(range(25))
    q = rng.standard_normal(DIM)
    assert_same(index.search(q, 25), brute(stored, q, 25), stored, q)
    index.clear()
    assert len(index) == 0 and index.capacity == 4 and index.search(q) == []


_ids = st.sampled_from([f"k{i}" for i in range(12)])
_vec = st.lists(st.floats(-4, 4, allow_nan=False, width=32), min_size=4, max_size=4).filter(
    lambda v: sum(x * x for x in v) > 1e-3
)
_op = st.one_of(
    st.tuples(st.just("add"), st.lists(st.tuples(_ids, _vec), max_size=5)),
    st.tuples(st.just("remove"), st.lists(_ids, max_size=4)),
)


@given(
    ops=st.lists(_op, max_size=25),
    query=_vec,
    k=st.integers(1, 14),
    threshold=st.none() | st.floats(-1, 1),
)
def test_random_adds_and_removes_then_search_equals_brute_force(
    ops: list[tuple[str, list[object]]], query: list[float], k: int, threshold: float | None
) -> None:
    index = VectorIndex(4, capacity=1)
    stored: dict[str, npt.NDArray[np.float32]] = {}
    for kind, items in ops:
        if kind == "add":
            pairs: list[tuple[str, list[float]]] = items  # type: ignore[assignment]
            index.add([p[0] for p in pairs], np.array([p[1] for p in pairs]).reshape(-1, 4))
            stored.update((i, np.array(v, np.float32)) for i, v in pairs)
        else:
            ids: list[str] = items  # type: ignore[assignment]
            assert index.remove(ids) == len(set(ids) & stored.keys())
            for id_ in ids:
                stored.pop(id_, None)
        assert len(index) == len(stored) and set(index.ids()) == set(stored)
    hits = index.search(query, k, threshold=threshold)
    expected = brute(stored, query, k, threshold)
    # A hit right at the threshold may fall either side of it in float32.
    if threshold is not None and any(abs(s - threshold) < 1e-5 for _, s in brute(stored, query, k)):
        return
    assert_same(hits, expected, stored, query)


def test_copy_and_view_serve_the_indexes_built_on_this_one() -> None:
    # ApproximateIndex and AutoIndex use these instead of the index's private attributes.
    index = VectorIndex(DIM, capacity=2)
    vectors = np.random.default_rng(3).standard_normal((5, DIM)).astype(np.float32)
    index.add([f"v{i}" for i in range(5)], vectors)
    twin = index.copy()
    index.remove(["v0"])
    assert twin.ids() == [f"v{i}" for i in range(5)] and len(index) == 4
    np.testing.assert_allclose(twin.get_vector("v0"), unit(vectors[0]), atol=1e-6)
    ids, rows = index.view()
    assert ids == index.ids() and rows.shape == (4, DIM) and not rows.flags.writeable
    np.testing.assert_allclose(rows, [index.get_vector(id_) for id_ in ids])
    with pytest.raises(ValueError, match="read-only"):
        rows[0, 0] = 1.0
    index.add_one("v9", vectors[0])  # the index itself still writes its matrix
    assert index.search(vectors[0])[0].id == "v9"
