"""Approximate nearest-neighbour search (HNSW, on usearch) behind the `VectorIndex` interface.

usearch is the optional extra ``ann`` (``pip install 'llmcache[ann]'``), imported only when
an approximate index is made. Exact search reads every row per query (about 25 ms at
100k x 384 on 2 cores); the graph visits a few thousand, at the price of sometimes missing
the true nearest neighbour (``benchmarks/test_bench_vector.py`` measures how often).
`AutoIndex` and `make_index` (exact while small, a graph built in the background beyond a
size you choose) are built on this module, in `llmcache.vector.autoindex`.

The file format lives here too: `ApproximateIndex.save` writes a JSON manifest (settings,
the id -> graph key map, an xxh3 checksum of the graph file) naming the graph's file and a
`VectorIndex` archive of the rows.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import threading
import uuid
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import orjson
import xxhash

from llmcache.vector._rows import checked_rows, normalized_query
from llmcache.vector.index import (
    IdFilter,
    IndexFileError,
    IndexOver,
    Metric,
    PathLike,
    SearchHit,
    VectorIndex,
    atomic_write,
    mask_rows,
    unique_rows,
    write_archive,
)

if TYPE_CHECKING:
    from usearch.index import Index as _Graph

__all__ = [
    "ApproximateIndex",
    "ann_available",
    "ann_installed",
    "auto_expansion_search",
    "require_ann",
]

INSTALL_HINT = "pip install 'llmcache[ann]'"
# Up to this many allowed ids, a filtered search is exact over their rows: a small filter
# (one tenant's entries) would otherwise need a very deep walk of the whole graph.
_EXACT_FILTER_MAX = 20_000
# The default ef: flat up to _EF_FLAT_ROWS rows, then in proportion to the rows, capped.
# Calibrated on the benchmark's embedding-like set (recall@1 >= 0.99 at 100k, 300k, 1M).
_EF_MIN, _EF_MAX, _EF_FLAT_ROWS = 256, 4096, 125_000

_FORMAT = "llmcache-ann-index"
_VERSION = 2  # 2: options hold expansion_search only when pinned (null: auto)


def auto_expansion_search(rows: int) -> int:
    """The ef `ApproximateIndex` uses by default for a graph of ``rows`` rows.

    >>> [auto_expansion_search(n) for n in (1_000, 125_000, 300_000, 1_000_000, 10**8)]
    [256, 256, 615, 2048, 4096]
    """
    return min(_EF_MAX, max(_EF_MIN, -(-rows * _EF_MIN // _EF_FLAT_ROWS)))


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


def ann_installed() -> bool:
    """Whether usearch is installed, without importing it.

    Code that may never build a graph checks this instead of importing: usearch loaded into
    a process before llama.cpp breaks llama's tokenizer (``std::bad_cast``), so it is loaded
    only when a graph is actually made.
    """
    try:
        return importlib.util.find_spec("usearch") is not None
    except (ImportError, ValueError):
        return False


def require_ann() -> None:
    """Raise the ``ImportError`` naming the ``ann`` extra unless usearch is installed,
    without importing it when it is (see `ann_installed`)."""
    if not ann_installed():
        _usearch()


class ApproximateIndex(IndexOver):
    """HNSW cosine top-k over string ids, with the interface of `VectorIndex`.

    The float32 unit rows live in an exact `VectorIndex`; the graph (usearch, its own copy
    in ``dtype``, bfloat16 by default) only proposes ``candidates`` rows per query, which
    are then scored exactly. So scores are true cosines (thresholds mean the same as in
    `VectorIndex`), filters of up to 20,000 ids are answered exactly, and the graph may
    store a compact type: on these machines usearch builds a bf16 graph about 3x faster
    than an f32 one. ``connectivity``, ``expansion_add`` and ``expansion_search`` are
    HNSW's M, efConstruction and ef (usearch's own default ef is 64).

    A graph with a fixed ef finds the true nearest row less often as it grows, so by default
    (``expansion_search=None``) ef follows the size: 256 up to 125,000 rows, then in
    proportion to the rows (2,048 at 1M), at most 4,096. Measured on the benchmark's
    embedding-like vectors (``benchmarks/test_bench_vector.py``), recall@1 of noisy copies
    of stored rows: 1.00 at 100k with ef 256, 0.994 at 300k with ef 512, 0.997 at 1M with
    ef 2048 (15 ms a query against 69 ms for exact search in the same run, 2 cores; a
    fixed ef of 256 gave 0.92 there). A missed neighbour is a cache miss that costs a model
    call, which is why the default leans to recall. Pass an int to pin ef, or set
    `expansion_search` later. Uniformly random vectors, which have no neighbourhood
    structure, need far more.

    >>> index = ApproximateIndex(2)
    >>> index.add(["a", "b"], [[1, 0], [0, 1]])
    >>> index.add_one("a", [1, 1])          # replaces "a"
    >>> [(hit.id, round(hit.score, 3)) for hit in index.search([1, 0.2], k=2)]
    [('a', 0.832), ('b', 0.196)]

    A search scores exactly the best ``k`` of the candidates the graph proposes. With
    ``filter_ids`` it is exact over the allowed rows when they are at most 20,000; otherwise
    the graph search widens until ``k`` allowed candidates turn up. `search_batch` without a
    filter is one multi-threaded graph search.
    """

    _rows: VectorIndex

    def __init__(
        self,
        dim: int,
        *,
        metric: Metric = "cosine",
        connectivity: int = 16,
        expansion_add: int = 128,
        expansion_search: int | None = None,
        dtype: str = "bf16",
        candidates: int = 16,
    ) -> None:
        _usearch()
        if expansion_search is not None and expansion_search < 1:
            raise ValueError(
                f"expansion_search must be >= 1 (or None: it follows the size), "
                f"got {expansion_search}"
            )
        self._rows = VectorIndex(dim, metric=metric)
        self._pinned_ef = expansion_search  # None: ef follows the number of rows
        self._options: dict[str, Any] = {
            "connectivity": connectivity,
            "dtype": dtype,
            "expansion_add": expansion_add,
        }
        self._candidates = max(1, candidates)
        self._graph = self._new_graph()
        self._keys: dict[str, int] = {}  # id -> graph key; a replaced vector gets a new key
        self._id_of: dict[int, str] = {}  # graph key -> id
        self._next_key = 0
        self._lock = threading.Lock()  # taken before the rows' own lock, never after

    def _new_graph(self) -> _Graph:
        # Inner product on unit rows is cosine without usearch re-normalising every pair.
        graph: _Graph = _usearch().Index(ndim=self.dim, metric="ip", **self._options)
        graph.expansion_search = self._ef_for(0)  # type: ignore[misc]  # stubs miss the setter
        return graph

    def _ef_for(self, rows: int) -> int:
        if self._pinned_ef is not None:
            return self._pinned_ef
        return auto_expansion_search(rows)

    def _tune(self) -> None:
        # Called by every writer (under the lock): ef follows the size unless pinned.
        ef = self._ef_for(len(self._keys))
        if self._graph.expansion_search != ef:
            self._graph.expansion_search = ef  # type: ignore[misc]  # stubs miss the setter

    @property
    def expansion_search(self) -> int:
        """HNSW's ef now: how many candidates a search keeps while walking the graph.

        Setting it pins it; setting ``None`` lets it follow the size again.

        >>> index = ApproximateIndex(2)
        >>> index.expansion_search
        256
        >>> index.expansion_search = 1024
        >>> index.expansion_search
        1024
        """
        return int(self._graph.expansion_search)

    @expansion_search.setter
    def expansion_search(self, value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError(f"expansion_search must be >= 1 (or None), got {value}")
        with self._lock:
            self._pinned_ef = value
            self._tune()

    def __repr__(self) -> str:
        return f"ApproximateIndex(dim={self.dim}, size={len(self)})"

    def _add(self, ids: list[str], vectors: npt.ArrayLike) -> None:
        id_list, raw, norms = unique_rows(ids, vectors, self.dim)
        unit = np.ascontiguousarray(raw / norms[:, None], dtype=np.float32)
        with self._lock:
            self._link(id_list, unit)
            self._rows.add(id_list, unit)

    def _link(self, id_list: list[str], unit: npt.NDArray[np.float32]) -> None:
        if not id_list:
            return
        keys = np.arange(self._next_key, self._next_key + len(id_list), dtype=np.uint64)
        # One thread: usearch's concurrent inserts leave about 0.1% of nodes unreachable
        # from the entry point (a permanent miss for that entry); measured none with one.
        self._graph.add(keys, unit, threads=1)
        self._next_key += len(id_list)
        stale = [self._keys[id_] for id_ in id_list if id_ in self._keys]
        if stale:  # a replaced vector's old node becomes a tombstone
            self._graph.remove(np.array(stale, dtype=np.uint64))
            for key in stale:
                del self._id_of[key]
        self._count_slots(added=len(id_list), freed=len(stale))
        for id_, key in zip(id_list, keys.tolist(), strict=True):
            self._keys[id_] = key
            self._id_of[key] = id_
        self._tune()

    @classmethod
    def from_exact(cls, rows: VectorIndex, **options: Any) -> ApproximateIndex:
        """Build a graph over ``rows`` and adopt them (no copy): ``rows`` belongs to the new
        index from now on and must not be used directly any more."""
        index = cls(rows.dim, **options)
        index._rows = rows
        index._link(*rows.view())
        return index

    def exact_copy(self) -> VectorIndex:
        """A `VectorIndex` holding a copy of the rows, without the graph: ``from_exact``
        over it builds a fresh graph (one without `tombstones`)."""
        return self._rows.copy()

    # usearch leaves a removed node in the graph, marked free, and gives its slot to a later
    # add; counted here since usearch's count (stats.nodes - len) walks the whole graph.
    _free_slots: int | None = None  # None until counted: a loaded graph may hold some

    @property
    def tombstones(self) -> int:
        """Removed nodes still in the graph (still walked by searches, still in memory)
        until later adds reuse them. `AutoIndex` rebuilds its graph once they pass 25% of
        the live rows; for a bare index, ``from_exact(index.exact_copy())`` does it.

        >>> index = ApproximateIndex(2)
        >>> index.add(["a", "b", "c"], [[1, 0], [0, 1], [1, 1]])
        >>> index.remove(["a", "b"]), index.tombstones
        (2, 2)
        >>> index.add_one("d", [1, 2]); index.tombstones   # a free slot is reused
        1
        """
        with self._lock:
            if self._free_slots is None:
                self._free_slots = int(self._graph.stats.nodes) - len(self._graph)
            return self._free_slots

    def _count_slots(self, *, added: int, freed: int) -> None:
        if self._free_slots is not None:  # each added key takes a free slot if there is one
            self._free_slots = max(0, self._free_slots - added) + freed

    def _remove(self, ids: list[str]) -> int:
        # The nodes become `tombstones` (``compact=True`` would unlink them, but walks the
        # whole graph every call).
        with self._lock:
            present = [id_ for id_ in dict.fromkeys(ids) if id_ in self._keys]
            if present:
                keys = [self._keys.pop(id_) for id_ in present]
                self._graph.remove(np.array(keys, dtype=np.uint64))
                for key in keys:
                    del self._id_of[key]
                self._rows.remove(present)
                self._count_slots(added=0, freed=len(keys))
                self._tune()
        return len(present)

    def clear(self) -> None:
        with self._lock:
            self._graph = self._new_graph()
            self._free_slots = 0
            self._rows.clear()
            self._keys.clear()
            self._id_of.clear()

    # ------------------------------------------------------------------ search

    def _search(
        self, query: npt.ArrayLike, k: int, threshold: float | None, filter_ids: IdFilter | None
    ) -> list[SearchHit]:
        q = normalized_query(query, self.dim)
        with self._lock:
            if not self._keys:
                return []
            if filter_ids is None:
                return self._rescore(
                    q, self._graph.search(q, max(k, self._candidates)).keys.tolist(), k, threshold
                )
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

    def _search_batch(
        self, queries: npt.ArrayLike, k: int, threshold: float | None, filter_ids: IdFilter | None
    ) -> list[list[SearchHit]]:
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
            return [
                self._rescore(q, row[:c], k, threshold)
                for q, row, c in zip(unit, keys, counts, strict=True)
            ]

    def _rescore(
        self, q: npt.NDArray[np.float32], keys: list[int], k: int, threshold: float | None
    ) -> list[SearchHit]:
        # The graph's candidates scored exactly by the rows (ties broken by row order).
        if not keys:
            return []
        id_of = self._id_of
        return self._rows.search(
            q, min(k, len(keys)), threshold=threshold, filter_ids=[id_of[key] for key in keys]
        )

    def _allowed(self, filter_ids: IdFilter) -> set[str]:
        rows = mask_rows(filter_ids, len(self._rows))
        if rows is not None:
            ids = self._rows.ids()
            return {ids[row] for row in rows.tolist()}
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
        graph, rows = (target.with_name(f"{target.name}.{tag}.{ext}") for ext in ("usearch", "npz"))
        try:
            with self._lock:
                self._graph.save(str(graph))
                arrays = self._rows.archive()
                manifest = {
                    "format": _FORMAT,
                    "version": _VERSION,
                    "dim": self.dim,
                    "options": {**self._options, "expansion_search": self._pinned_ef},
                    "candidates": self._candidates,
                    "next_key": self._next_key,
                    "graph": graph.name,
                    "rows": rows.name,
                    "ids": list(self._keys),
                    "keys": list(self._keys.values()),
                }
            atomic_write(rows, lambda f: write_archive(f, arrays))
            manifest["graph_xxh3_64"] = graph_digest(graph, fsync=True)
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
        version = manifest.get("version")
        if version not in (1, _VERSION):
            raise bad(f"format version {version!r}, this reads 1 and {_VERSION}")
        try:
            dim, ids, keys = int(manifest["dim"]), list(manifest["ids"]), manifest["keys"]
            names = [str(manifest["graph"]), str(manifest["rows"])]
            options, digest = dict(manifest["options"]), str(manifest["graph_xxh3_64"])
            if version == 1:  # version 1 saved the old fixed default (256), not a choice
                options.pop("expansion_search", None)
            next_key, candidates = int(manifest["next_key"]), int(manifest["candidates"])
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"missing or malformed field ({exc!r})") from exc
        if any(Path(name).name != name for name in names):
            raise bad(f"data file names {names} leave the directory")
        if (
            len(ids) != len(keys)
            or len(set(ids)) != len(ids)
            or not all(isinstance(i, str) for i in ids)
            or not all(isinstance(key, int) and 0 <= key < next_key for key in keys)
        ):
            raise bad("id map does not hold unique ids and keys")
        graph_path, rows_path = (target.with_name(name) for name in names)
        for data in (graph_path, rows_path):
            if not data.exists():
                raise bad(f"data file {data.name} is missing")
        if graph_digest(graph_path) != digest:
            raise bad(f"graph file {graph_path.name} does not match its checksum")
        rows = VectorIndex.load(rows_path)
        if rows.dim != dim or len(rows) != len(ids) or set(rows.ids()) != set(ids):
            raise bad(
                f"rows file holds {len(rows)} rows of dim {rows.dim}, "
                f"manifest says {len(ids)} of dim {dim}"
            )
        index = cls(dim, candidates=candidates, **options)
        try:
            index._graph.load(str(graph_path))
        except (RuntimeError, ValueError) as exc:
            raise bad(f"usearch cannot read {graph_path.name}: {exc}") from exc
        graph = index._graph
        if (
            len(graph) != len(keys)
            or graph.ndim != dim
            or (keys and not bool(np.all(graph.contains(np.array(keys, np.uint64)))))
        ):
            raise bad(
                f"graph holds {len(graph)} rows of dim {graph.ndim}, manifest says "
                f"{len(keys)} of dim {dim}"
            )
        index._rows = rows
        index._keys = dict(zip(ids, keys, strict=True))
        index._id_of = dict(zip(keys, ids, strict=True))
        index._next_key = next_key
        index._tune()  # usearch's load does not keep ef
        return index


def graph_digest(path: Path, *, fsync: bool = False) -> str:
    """xxh3-64 of the file at ``path``, hex; ``fsync`` also flushes it to disk."""
    hasher = xxhash.xxh3_64()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            hasher.update(chunk)
        if fsync:
            os.fsync(f.fileno())
    return str(hasher.hexdigest())
