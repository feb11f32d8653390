"""Semantic lookup latency against index size: ``VectorIndex.search(q, k=1)`` against the
bare numpy floor (``matrix @ q`` + ``argmax`` over the same rows), and GPTCache's default
vector store (faiss ``IDMap,Flat`` with L2) when faiss is installed; optionally llmcache's
approximate index (usearch HNSW, ``--ann``: building it costs minutes at 100k on 2 cores).

numpy (and so `VectorIndex`) runs twice: with OpenBLAS's default threads, and held to one
BLAS thread with threadpoolctl, which is also how faiss runs here; each is compared with the
numpy floor of the same threading. Queries are noisy copies of stored vectors (a reworded
question near a stored one). Methods are timed in interleaved rounds, one query at a time.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from benchmarks.peers.measure import Samples

__all__ = ["DIM", "FLOOR", "FLOOR_1", "floor_for", "lookup_latency"]

DIM = 384  # DESIGN.md's semantic target is stated at dim 384
FLOOR = "numpy matmul + argmax (floor)"
FLOOR_1 = "numpy matmul + argmax, 1 BLAS thread (floor)"
Search = Callable[[npt.NDArray[np.float32]], Any]


@dataclass(frozen=True, slots=True)
class _Method:
    search: Search
    one_thread: bool  # run under a one-thread BLAS limit


def floor_for(method: str) -> str:
    """The floor a method is compared with: the numpy product of the same threading."""
    return FLOOR_1 if ("1 BLAS thread" in method or "faiss" in method) else FLOOR


def _unit(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


@contextlib.contextmanager
def _one_blas_thread(active: bool) -> Iterator[None]:
    if not active:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _methods(matrix: npt.NDArray[np.float32], ann: bool) -> dict[str, _Method]:
    from llmcache.vector import VectorIndex

    n = len(matrix)
    ids = [f"id{i}" for i in range(n)]
    index = VectorIndex(DIM, capacity=n)
    index.add(ids, matrix)
    floor = np.ascontiguousarray(matrix)  # its own copy: same shape, no shared cache lines

    def numpy_floor(q: npt.NDArray[np.float32]) -> Any:
        return int((floor @ q).argmax())

    def vector_index(q: npt.NDArray[np.float32]) -> Any:
        return index.search(q, k=1)

    methods = {
        FLOOR: _Method(numpy_floor, False),
        "llmcache VectorIndex": _Method(vector_index, False),
    }
    if importlib.util.find_spec("threadpoolctl") is not None:
        methods[FLOOR_1] = _Method(numpy_floor, True)
        methods["llmcache VectorIndex, 1 BLAS thread"] = _Method(vector_index, True)
    if importlib.util.find_spec("faiss") is not None:
        import faiss

        # One OpenMP thread: with faiss's default (one per core) a single query took ~8 ms
        # instead of ~30 µs on this loaded 2-core machine, its workers waiting for cores.
        faiss.omp_set_num_threads(1)
        flat = faiss.index_factory(DIM, "IDMap,Flat", faiss.METRIC_L2)
        flat.add_with_ids(floor, np.arange(n, dtype=np.int64))

        def faiss_flat(q: npt.NDArray[np.float32]) -> Any:
            return flat.search(q.reshape(1, -1), 1)

        methods["faiss IDMap,Flat, 1 thread (GPTCache's store)"] = _Method(faiss_flat, False)
    if ann:
        from llmcache.vector import ApproximateIndex, ann_available

        if ann_available():
            approx = ApproximateIndex(DIM)
            approx.add(ids, matrix)
            methods["llmcache ApproximateIndex (HNSW)"] = _Method(
                lambda q: approx.search(q, k=1), False
            )
    return methods


def lookup_latency(
    sizes: Sequence[int],
    *,
    queries: int,
    rounds: int,
    ann: bool = False,
    tick: Callable[[], None] | None = None,
) -> dict[int, dict[str, Samples]]:
    """Per size, per method: single-query latencies (ns). ``queries`` per round is scaled
    down with the size so that the 100k figure stays within seconds. ``tick`` is called
    after each size."""
    out: dict[int, dict[str, Samples]] = {}
    rng = np.random.default_rng(5)
    order_rng = random.Random(5)
    for n in sizes:
        matrix = _unit(rng.standard_normal((n, DIM), dtype=np.float32))
        methods = _methods(matrix, ann)
        picks = rng.integers(0, n, size=queries)
        noisy = _unit(matrix[picks] + rng.normal(0, 0.01, (queries, DIM)).astype(np.float32))
        per_round = max(5, min(queries, int(queries * 10_000 / max(n, 10_000))))
        samples = {name: Samples() for name in methods}
        for method in methods.values():  # warm-up: page in the matrix, load kernels
            with _one_blas_thread(method.one_thread):
                for q in noisy[:5]:
                    method.search(q)
        clock = time.perf_counter_ns
        for r in range(rounds):
            names = list(methods)
            order_rng.shuffle(names)
            chosen = noisy[(r * per_round) % queries :][:per_round]
            for name in names:
                method, bucket = methods[name], samples[name].ns
                search = method.search
                gc.collect()
                with _one_blas_thread(method.one_thread):
                    for q in chosen:
                        t0 = clock()
                        search(q)
                        bucket.append(clock() - t0)
        out[n] = samples
        del methods, matrix
        gc.collect()
        if tick is not None:
            tick()
    return out
