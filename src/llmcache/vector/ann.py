"""Approximate nearest-neighbour search (HNSW, on usearch) behind the `VectorIndex` interface,
and `AutoIndex`, which starts exact and switches to approximate above a size you choose.

usearch is the optional extra ``ann`` (``pip install 'llmcache[ann]'``), imported only when
an approximate index is made. Exact search reads every row per query (about 25 ms at
100k x 384 on 2 cores); the graph visits a few thousand, at the price of sometimes missing
the true nearest neighbour (``benchmarks/test_bench_vector.py`` measures how often).

>>> index = make_index(2, approximate_above=2)
>>> index.add(["a", "b"], [[1, 0], [0, 1]])
>>> index.is_approximate
False
>>> index.add_one("c", [1, 1])   # 3 > 2 rows: a graph is built over the rows
>>> index.is_approximate, index.search([1, 0.1])[0].id
(True, 'a')
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import orjson
import xxhash

from llmcache.vector.index import (
    IdFilter,
    IndexFileError,
    Metric,
    PathLike,
    SearchHit,
    VectorIndex,
    _write_archive,
    atomic_write,
    checked_rows,
    normalized_query,
    top_k,
)

if TYPE_CHECKING:
    from usearch.index import Index as _Graph

__all__ = ["ApproximateIndex", "AutoIndex", "ann_available", "make_index"]

INSTALL_HINT = "pip install 'llmcache[ann]'"
_FORMAT = "llmcache-ann-index"
_VERSION = 1
# Up to this many allowed ids, a filtered search is exact over their rows: a small filter
# (one tenant's entries) would otherwise need a very deep walk of the whole graph.
_EXACT_FILTER_MAX = 20_000


def _usearch() -> ModuleType:
    try:
        return importlib.import_module("usearch.index")
    except ImportError as exc:
        raise ImportError(f"the approximate index needs usearch: {INSTALL_HINT}") from exc


def ann_available() -> bool:
    """Whether the ``ann`` extra (usearch) can be imported."""
    try:
        _usearch()
    except ImportError:
        return False
    return True


class ApproximateIndex:
    """HNSW cosine top-k over string ids, with the interface of `VectorIndex`.

    The float32 unit rows live in an exact `VectorIndex`; the graph (usearch, its own copy
    in ``dtype``, bfloat16 by default) only proposes ``candidates`` rows per query, which
    are then scored exactly. So scores are true cosines (thresholds mean the same as in
    `VectorIndex`), filters of up to 20,000 ids are answered exactly, and the graph may
    store a compact type: on these machines usearch builds a bf16 graph about 3x faster
    than an f32 one. ``connectivity``, ``expansion_add`` and ``expansion_search`` are
    HNSW's M, efConstruction and ef; usearch's default ef is 64. Measured on the
    benchmark's embedding-like set at 1M x 384 (exact search: 80-140 ms there), recall@1
    of noisy copies is 0.92 at ef=256 (about 1 ms a query), 0.985 at 1024 (7 ms) and
    0.997 at 2048 (15 ms). A missed neighbour is a cache miss that costs a model call, so
    large indexes should raise ``expansion_search``. Uniformly random vectors, which have
    no neighbourhood structure, need far more (see ``benchmarks/test_bench_vector.py``).

    >>> index = ApproximateIndex(2)
    >>> index.add(["a", "b"], [[1, 0], [0, 1]])
    >>> index.add_one("a", [1, 1])          # replaces "a"
    >>> [(hit.id, round(hit.score, 3)) for hit in index.search([1, 0.2], k=2)]
    [('a', 0.832), ('b', 0.196)]
    """

    def __init__(self, dim: int, *, metric: Metric = "cosine", connectivity: int = 16,
                 expansion_add: int = 128, expansion_search: int = 256, dtype: str = "bf16",
                 candidates: int = 16) -> None:
        _usearch()
        self._rows = VectorIndex(dim, metric=metric)
        self._options: dict[str, Any] = {"connectivity": connectivity, "dtype": dtype,
                                         "expansion_add": expansion_add,
                                         "expansion_search": expansion_search}
        self._candidates = max(1, candidates)
        self._graph = self._new_graph()
        self._keys: dict[str, int] = {}  # id -> graph key; a replaced vector gets a new key
        self._id_of: dict[int, str] = {}  # graph key -> id
        self._next_key = 0
        self._lock = threading.Lock()  # taken before the rows' own lock, never after

    def _new_graph(self) -> _Graph:
        # Inner product on unit rows is cosine without usearch re-normalising every pair.
        graph: _Graph = _usearch().Index(ndim=self.dim, metric="ip", **self._options)
        return graph

    @property
    def dim(self) -> int:
        return self._rows.dim

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, id: object) -> bool:
        return id in self._rows

    def __repr__(self) -> str:
        return f"ApproximateIndex(dim={self.dim}, size={len(self)})"

    def ids(self) -> list[str]:
        """The stored ids in row order (a copy); a boolean filter mask aligns with this."""
        return self._rows.ids()

    def get_vector(self, id: str) -> npt.NDArray[np.float32]:
        """A copy of the stored (normalised) vector of ``id``; ``KeyError`` if absent."""
        return self._rows.get_vector(id)

    def add_one(self, id: str, vector: npt.ArrayLike) -> None:
        self.add([id], np.asarray(vector)[None, :] if np.ndim(vector) == 1 else vector)

    def add(self, ids: Sequence[str], vectors: npt.ArrayLike) -> None:
        """Add or replace rows: all or nothing on bad input, a repeated id keeps its last."""
        if isinstance(ids, str):
            raise TypeError("ids must be a sequence of ids; use add_one(id, vector) for one")
        id_list = list(ids)
        for id_ in id_list:
            if not isinstance(id_, str):
                raise TypeError(f"ids must be str, got {type(id_).__name__}: {id_!r}")
        raw, norms = checked_rows(vectors, self.dim, ids=id_list)
        last = {id_: pos for pos, id_ in enumerate(id_list)}
        if len(last) != len(id_list):
            keep = np.fromiter(last.values(), dtype=np.intp, count=len(last))
            raw, norms, id_list = raw[keep], norms[keep], list(last)
        unit = np.ascontiguousarray(raw / norms[:, None], dtype=np.float32)
        with self._lock:
            self._link(id_list, unit)
            self._rows.add(id_list, unit)

    def _link(self, id_list: list[str], unit: npt.NDArray[np.float32]) -> None:
        if not id_list:
            return
        keys = np.arange(self._next_key, self._next_key + len(id_list), dtype=np.uint64)
        self._graph.add(keys, unit)
        self._next_key += len(id_list)
        stale = [self._keys[id_] for id_ in id_list if id_ in self._keys]
        if stale:
            self._graph.remove(np.array(stale, dtype=np.uint64))
            for key in stale:
                del self._id_of[key]
        for id_, key in zip(id_list, keys.tolist(), strict=True):
            self._keys[id_] = key
            self._id_of[key] = id_

    @classmethod
    def from_exact(cls, rows: VectorIndex, **options: Any) -> ApproximateIndex:
        """Build a graph over ``rows`` and adopt them (no copy): ``rows`` belongs to the new
        index from now on and must not be used directly any more."""
        index = cls(rows.dim, **options)
        with rows._lock:
            index._rows = rows
            index._link(list(rows._ids), rows._matrix[:len(rows._ids)])
        return index

    def remove(self, ids: Iterable[str] | str) -> int:
        """Remove ``ids``; returns how many were present. The graph keeps tombstones."""
        if isinstance(ids, str):
            ids = [ids]
        with self._lock:
            present = [id_ for id_ in dict.fromkeys(ids) if id_ in self._keys]
            if present:
                keys = [self._keys.pop(id_) for id_ in present]
                self._graph.remove(np.array(keys, dtype=np.uint64))
                for key in keys:
                    del self._id_of[key]
                self._rows.remove(present)
        return len(present)

    def clear(self) -> None:
        with self._lock:
            self._graph = self._new_graph()
            self._rows.clear()
            self._keys.clear()
            self._id_of.clear()

    # ------------------------------------------------------------------ search

    def search(self, query: npt.ArrayLike, k: int = 1, *, threshold: float | None = None,
               filter_ids: IdFilter | None = None) -> list[SearchHit]:
        """The best ``k`` of the candidates the graph proposes, scored exactly, best first.

        With ``filter_ids``: exact over the allowed rows when they are at most 20,000,
        otherwise the graph search widens until ``k`` allowed candidates turn up.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        q = normalized_query(query, self.dim)
        with self._lock:
            if not self._keys:
                return []
            if filter_ids is None:
                return self._rescore(q, self._graph.search(q, max(k, self._candidates))
                                     .keys.tolist(), k, threshold)
            allowed = self._allowed(filter_ids)
            if len(allowed) <= _EXACT_FILTER_MAX:
                return self._rows.search(q, k, threshold=threshold, filter_ids=allowed)
            count = 4 * max(k, self._candidates)
            while True:
                found = self._graph.search(q, count).keys.tolist()
                keys = [key for key in found if self._id_of[key] in allowed]
                if len(keys) >= k or count >= len(self._keys):
                    return self._rescore(q, keys, k, threshold)
                count *= 4

    def search_batch(self, queries: npt.ArrayLike, k: int = 1, *,
                     threshold: float | None = None,
                     filter_ids: IdFilter | None = None) -> list[list[SearchHit]]:
        """`search` for each row of ``queries``; one multi-threaded graph search when
        unfiltered."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        raw, norms = checked_rows(queries, self.dim, what="queries")
        unit = np.ascontiguousarray(raw / norms[:, None], dtype=np.float32)
        if filter_ids is not None or len(unit) <= 1:
            return [self.search(q, k, threshold=threshold, filter_ids=filter_ids) for q in unit]
        with self._lock:
            if not self._keys:
                return [[] for _ in range(len(unit))]
            found = self._graph.search(unit, max(k, self._candidates))
            keys: list[list[int]] = found.keys.tolist()
            counts: list[int] = getattr(found, "counts").tolist()  # noqa: B009 (typed union)
            return [self._rescore(q, row[:c], k, threshold)
                    for q, row, c in zip(unit, keys, counts, strict=True)]

    def _rescore(self, q: npt.NDArray[np.float32], keys: list[int], k: int,
                 threshold: float | None) -> list[SearchHit]:
        if not keys:
            return []
        row_of, id_of = self._rows._rows, self._id_of
        rows = np.fromiter((row_of[id_of[key]] for key in keys), dtype=np.intp,
                           count=len(keys))
        rows.sort()  # row order breaks ties, as in VectorIndex
        scores = self._rows._matrix[rows] @ q
        picked = top_k(scores, min(k, len(keys)))
        return [SearchHit(self._rows._ids[r], s)
                for r, s in zip(rows[picked].tolist(), scores[picked].tolist(), strict=True)
                if threshold is None or s >= threshold]

    def _allowed(self, filter_ids: IdFilter) -> set[str]:
        if isinstance(filter_ids, np.ndarray) and filter_ids.dtype == np.bool_:
            ids = self._rows._ids
            if filter_ids.shape != (len(ids),):
                raise ValueError(f"filter mask must have shape ({len(ids)},) like ids(), "
                                 f"got {filter_ids.shape}")
            return {ids[row] for row in np.flatnonzero(filter_ids).tolist()}
        if isinstance(filter_ids, str):
            raise TypeError("filter_ids must be a collection of ids, not a str")
        return {id_ for id_ in filter_ids if id_ in self._keys}

    # ------------------------------------------------------------- persistence

    def save(self, path: PathLike) -> None:
        """Save to ``path``, a JSON manifest (settings, id -> key map) naming two files
        beside it: ``<name>.<tag>.usearch`` (the graph) and ``<name>.<tag>.npz`` (the rows,
        as `VectorIndex.save` writes them). A crash at any moment leaves the old set or the
        new one: both data files get fresh names and are fsynced, then the manifest replaces
        the old one atomically (`atomic_write`); that rename is the commit. Files of older
        saves, and of saves that crashed, are deleted after it. Searches wait while the
        graph is written; the rows are written outside the lock.
        """
        target = Path(path)
        tag = uuid.uuid4().hex[:16]
        graph, rows = (target.with_name(f"{target.name}.{tag}.{ext}") for ext in ("usearch",
                                                                                  "npz"))
        try:
            with self._lock:
                self._graph.save(str(graph))
                arrays = self._rows._snapshot()
                manifest = {"format": _FORMAT, "version": _VERSION, "dim": self.dim,
                            "options": self._options, "candidates": self._candidates,
                            "next_key": self._next_key, "graph": graph.name,
                            "rows": rows.name, "ids": list(self._keys),
                            "keys": list(self._keys.values())}
            atomic_write(rows, lambda f: _write_archive(f, arrays))
            manifest["graph_xxh3_64"] = _digest(graph, fsync=True)
            atomic_write(target, lambda f: f.write(orjson.dumps(manifest)))
        except BaseException:
            for leftover in (graph, rows):
                with contextlib.suppress(OSError):
                    leftover.unlink()
            raise
        for ext in ("usearch", "npz"):
            for old in target.parent.glob(f"{target.name}.*.{ext}"):
                if old.name not in (graph.name, rows.name):
                    with contextlib.suppress(OSError):
                        old.unlink()

    @classmethod
    def load(cls, path: PathLike) -> ApproximateIndex:
        """Read an index written by `save`; `IndexFileError` if anything does not match."""
        target = Path(path)

        def bad(why: str) -> IndexFileError:
            return IndexFileError(f"{target}: corrupt approximate index: {why}")

        try:
            manifest = orjson.loads(target.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise bad(f"unreadable manifest ({exc})") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
            raise bad("not an llmcache approximate index manifest")
        if manifest.get("version") != _VERSION:
            raise bad(f"format version {manifest.get('version')!r}, this reads {_VERSION}")
        try:
            dim, ids, keys = int(manifest["dim"]), list(manifest["ids"]), manifest["keys"]
            names = [str(manifest["graph"]), str(manifest["rows"])]
            options, digest = dict(manifest["options"]), str(manifest["graph_xxh3_64"])
            next_key, candidates = int(manifest["next_key"]), int(manifest["candidates"])
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"missing or malformed field ({exc!r})") from exc
        if any(Path(name).name != name for name in names):
            raise bad(f"data file names {names} leave the directory")
        if (len(ids) != len(keys) or len(set(ids)) != len(ids)
                or not all(isinstance(i, str) for i in ids)
                or not all(isinstance(key, int) and 0 <= key < next_key for key in keys)):
            raise bad("id map does not hold unique ids and keys")
        graph_path, rows_path = (target.with_name(name) for name in names)
        for data in (graph_path, rows_path):
            if not data.exists():
                raise bad(f"data file {data.name} is missing")
        if _digest(graph_path) != digest:
            raise bad(f"graph file {graph_path.name} does not match its checksum")
        rows = VectorIndex.load(rows_path)
        if rows.dim != dim or len(rows) != len(ids) or set(rows._ids) != set(ids):
            raise bad(f"rows file holds {len(rows)} rows of dim {rows.dim}, "
                      f"manifest says {len(ids)} of dim {dim}")
        index = cls(dim, candidates=candidates, **options)
        try:
            index._graph.load(str(graph_path))
        except (RuntimeError, ValueError) as exc:
            raise bad(f"usearch cannot read {graph_path.name}: {exc}") from exc
        graph = index._graph
        if (len(graph) != len(keys) or graph.ndim != dim
                or (keys and not bool(np.all(graph.contains(np.array(keys, np.uint64)))))):
            raise bad(f"graph holds {len(graph)} rows of dim {graph.ndim}, manifest says "
                      f"{len(keys)} of dim {dim}")
        index._rows = rows
        index._keys = dict(zip(ids, keys, strict=True))
        index._id_of = dict(zip(keys, ids, strict=True))
        index._next_key = next_key
        return index


def _digest(path: Path, *, fsync: bool = False) -> str:
    hasher = xxhash.xxh3_64()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            hasher.update(chunk)
        if fsync:
            os.fsync(f.fileno())
    return str(hasher.hexdigest())


class AutoIndex:
    """Exact `VectorIndex` while small; once it holds more than ``approximate_above`` rows,
    a graph is built over them (`ApproximateIndex.from_exact`, no copy of the rows) and it
    stays approximate, so it never flips back and forth around the line.

    ``approximate_above=None`` never switches. The ``ann`` extra is checked when the index
    is made, not at the add that crosses the line. The graph is built inside that add (on
    2 cores about 15 s for 50k rows of dim 384): other writers wait, searches go on
    against the exact rows. ``ann_options`` go to `ApproximateIndex`.
    """

    def __init__(self, dim: int, *, approximate_above: int | None = 50_000,
                 capacity: int = 1024, metric: Metric = "cosine", **ann_options: Any) -> None:
        if approximate_above is not None:
            if approximate_above < 0:
                raise ValueError(f"approximate_above must be >= 0, got {approximate_above}")
            _usearch()
        self.approximate_above = approximate_above
        self._ann_options = ann_options
        self._impl: VectorIndex | ApproximateIndex = VectorIndex(dim, capacity=capacity,
                                                                 metric=metric)
        self._write_lock = threading.Lock()  # writers and the switch, one at a time

    @property
    def is_approximate(self) -> bool:
        return isinstance(self._impl, ApproximateIndex)

    @property
    def backend(self) -> VectorIndex | ApproximateIndex:
        """The index that holds the rows now."""
        return self._impl

    @property
    def dim(self) -> int:
        return self._impl.dim

    def __len__(self) -> int:
        return len(self._impl)

    def __contains__(self, id: object) -> bool:
        return id in self._impl

    def __repr__(self) -> str:
        return f"AutoIndex({self._impl!r}, approximate_above={self.approximate_above})"

    def ids(self) -> list[str]:
        return self._impl.ids()

    def get_vector(self, id: str) -> npt.NDArray[np.float32]:
        return self._impl.get_vector(id)

    def add_one(self, id: str, vector: npt.ArrayLike) -> None:
        self.add([id], np.asarray(vector)[None, :] if np.ndim(vector) == 1 else vector)

    def add(self, ids: Sequence[str], vectors: npt.ArrayLike) -> None:
        with self._write_lock:
            impl, limit = self._impl, self.approximate_above
            impl.add(ids, vectors)
            if isinstance(impl, VectorIndex) and limit is not None and len(impl) > limit:
                self._impl = ApproximateIndex.from_exact(impl, **self._ann_options)

    def remove(self, ids: Iterable[str] | str) -> int:
        with self._write_lock:
            return self._impl.remove(ids)

    def clear(self) -> None:
        with self._write_lock:
            self._impl.clear()

    def search(self, query: npt.ArrayLike, k: int = 1, *, threshold: float | None = None,
               filter_ids: IdFilter | None = None) -> list[SearchHit]:
        return self._impl.search(query, k, threshold=threshold, filter_ids=filter_ids)

    def search_batch(self, queries: npt.ArrayLike, k: int = 1, *,
                     threshold: float | None = None,
                     filter_ids: IdFilter | None = None) -> list[list[SearchHit]]:
        return self._impl.search_batch(queries, k, threshold=threshold, filter_ids=filter_ids)

    def save(self, path: PathLike) -> None:
        """Save in the format of the current backend; `load` tells the two apart."""
        self._impl.save(path)

    @classmethod
    def load(cls, path: PathLike, *, approximate_above: int | None = 50_000,
             **ann_options: Any) -> AutoIndex:
        """Load what any of the three index classes saved (a zip archive is exact)."""
        with open(path, "rb") as f:
            exact = f.read(2) == b"PK"
        impl = VectorIndex.load(path) if exact else ApproximateIndex.load(path)
        index = cls(impl.dim, approximate_above=approximate_above, **ann_options)
        index._impl = impl
        return index


def make_index(dim: int, *, approximate_above: int | None = 50_000,
               **options: Any) -> AutoIndex:
    """An index that is exact up to ``approximate_above`` rows and approximate beyond.

    ``options`` go to `AutoIndex` (``capacity``, and `ApproximateIndex` settings such as
    ``expansion_search``). ``ImportError`` naming the ``ann`` extra when usearch is
    missing, unless ``approximate_above`` is None.
    """
    return AutoIndex(dim, approximate_above=approximate_above, **options)
