"""Exact top-k cosine search over float32 rows kept in one preallocated numpy matrix.

Rows are L2-normalised on the way in, so a search is one matrix-vector product over the
live rows (``matrix[:n] @ q``) followed by ``argmax`` (k=1) or ``argpartition`` (k>1). The
buffer grows by doubling and removals move the last row into the hole, so the live rows
stay contiguous and no add copies the whole matrix except on the rare doubling.

>>> index = VectorIndex(3)
>>> index.add(["cat", "car"], [[1.0, 0.1, 0.0], [0.0, 1.0, 0.2]])
>>> [(hit.id, round(hit.score, 3)) for hit in index.search([1.0, 0.0, 0.0], k=2)]
[('cat', 0.995), ('car', 0.0)]
>>> index.search([0.0, 1.0, 0.0], threshold=0.99)   # nothing that close: no hit
[]
>>> index.remove(["cat"]), len(index), "car" in index
(1, 1, True)

The file format lives here too: `VectorIndex.save` writes one ``.npz`` archive of four
arrays, never a pickle: ``meta`` (a JSON header), ``matrix`` (the unit rows), ``ids`` (the
ids' UTF-8 bytes, end to end) and ``offsets`` (where each id starts), through
`atomic_write`, which every index file and the semantic cache's manifest go through.
"""

from __future__ import annotations

import os
import threading
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import orjson

from llmcache._atomic_file import atomic_write as atomic_write
from llmcache.errors import LLMCacheError
from llmcache.vector._arguments import check_int

# The row helpers, used by every index, re-exported from where they lived.
from llmcache.vector._rows import Matrix as Matrix
from llmcache.vector._rows import checked_rows as checked_rows
from llmcache.vector._rows import normalized_query as normalized_query
from llmcache.vector._rows import query_and_scale as query_and_scale
from llmcache.vector._rows import top_k as top_k

__all__ = ["IdFilter", "IndexFileError", "SearchHit", "VectorIndex", "VectorSearch"]

Metric = Literal["cosine"]
PathLike = str | os.PathLike[str]
#: Restricts a search to some ids: a collection of ids, or a boolean mask aligned with
#: ``index.ids()`` as it was when taken (row order changes on removal, so take it fresh).
IdFilter = Collection[str] | npt.NDArray[np.bool_]

# Score-matrix budget for one chunk of `search_batch`: (queries x rows) float32 must not
# grow with the batch, or 1000 queries over 1M rows would ask for 4 GB at once.
_BATCH_SCORE_BYTES = 64 * 1024 * 1024

_ARCHIVE_FORMAT = "llmcache-vector-index"
_ARCHIVE_VERSION = 1


class SearchHit(NamedTuple):
    """One result of a search: the stored id and its cosine similarity to the query."""

    id: str
    score: float


class IndexFileError(LLMCacheError, ValueError):
    """A saved index cannot be loaded: truncated, corrupt, foreign or inconsistent."""


class VectorSearch(Protocol):
    """What `VectorIndex`, `ApproximateIndex` and `AutoIndex` share, for code that takes any."""

    @property
    def dim(self) -> int: ...
    def add(self, ids: Sequence[str], vectors: npt.ArrayLike) -> None: ...
    def add_one(self, id: str, vector: npt.ArrayLike) -> None: ...
    def remove(self, ids: Iterable[str] | str) -> int: ...
    def __len__(self) -> int: ...
    def __contains__(self, id: object) -> bool: ...
    def get_vector(self, id: str) -> npt.NDArray[np.float32]: ...
    def ids(self) -> list[str]: ...
    def search(
        self,
        query: npt.ArrayLike,
        k: int = 1,
        *,
        threshold: float | None = None,
        filter_ids: IdFilter | None = None,
    ) -> list[SearchHit]: ...
    def search_batch(
        self,
        queries: npt.ArrayLike,
        k: int = 1,
        *,
        threshold: float | None = None,
        filter_ids: IdFilter | None = None,
    ) -> list[list[SearchHit]]: ...
    def save(self, path: PathLike) -> None: ...


class IndexBase(ABC):
    """What `VectorIndex`, `ApproximateIndex` and `AutoIndex` share in code: the public
    signatures of `VectorSearch`'s writes and searches, their argument checks, and the one-row
    and one-id forms. Each index implements the hooks (``_add``, ``_remove``, ``_search``,
    ``_search_batch``), which get checked arguments."""

    def add_one(self, id: str, vector: npt.ArrayLike) -> None:
        """Add or replace one vector."""
        self.add([id], np.asarray(vector)[None, :] if np.ndim(vector) == 1 else vector)

    def add(self, ids: Sequence[str], vectors: npt.ArrayLike) -> None:
        """Add rows ``vectors`` (n, dim) under ``ids``; an id already present is replaced.

        All or nothing: a bad row raises before the index changes. Within one call a
        repeated id keeps its last vector, as if added one by one.
        """
        if isinstance(ids, str):
            raise TypeError("ids must be a sequence of ids; use add_one(id, vector) for one")
        id_list = list(ids)
        for id_ in id_list:
            if not isinstance(id_, str):
                raise TypeError(f"ids must be str, got {type(id_).__name__}: {id_!r}")
        self._add(id_list, vectors)

    def remove(self, ids: Iterable[str] | str) -> int:
        """Remove ``ids`` (a single id may be passed as a str); returns how many were present."""
        return self._remove([ids] if isinstance(ids, str) else list(ids))

    def search(
        self,
        query: npt.ArrayLike,
        k: int = 1,
        *,
        threshold: float | None = None,
        filter_ids: IdFilter | None = None,
    ) -> list[SearchHit]:
        """The ``k`` stored vectors most similar to ``query``, best first.

        ``threshold`` drops hits scoring below it; ``filter_ids`` restricts the candidates
        (ids not in the index are ignored). The query is normalised, so scores are cosines.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return self._search(query, k, threshold, filter_ids)

    def search_batch(
        self,
        queries: npt.ArrayLike,
        k: int = 1,
        *,
        threshold: float | None = None,
        filter_ids: IdFilter | None = None,
    ) -> list[list[SearchHit]]:
        """`search` for each row of ``queries`` (m, dim)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return self._search_batch(queries, k, threshold, filter_ids)

    @abstractmethod
    def _add(self, ids: list[str], vectors: npt.ArrayLike) -> None: ...

    @abstractmethod
    def _remove(self, ids: list[str]) -> int: ...

    @abstractmethod
    def _search(
        self, query: npt.ArrayLike, k: int, threshold: float | None, filter_ids: IdFilter | None
    ) -> list[SearchHit]: ...

    @abstractmethod
    def _search_batch(
        self, queries: npt.ArrayLike, k: int, threshold: float | None, filter_ids: IdFilter | None
    ) -> list[list[SearchHit]]: ...


class IndexOver(IndexBase):
    """An index whose rows live in another index, ``_rows``, which answers the reads that
    need nothing else (`ApproximateIndex` over a `VectorIndex`, `AutoIndex` over either)."""

    _rows: VectorSearch

    @property
    def dim(self) -> int:
        return self._rows.dim

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, id: object) -> bool:
        return id in self._rows

    def ids(self) -> list[str]:
        """The stored ids in row order (a copy); a boolean filter mask aligns with this."""
        return self._rows.ids()

    def get_vector(self, id: str) -> npt.NDArray[np.float32]:
        """A copy of the stored (normalised) vector of ``id``; ``KeyError`` if absent."""
        return self._rows.get_vector(id)


def unique_rows(
    ids: list[str], vectors: npt.ArrayLike, dim: int
) -> tuple[list[str], Matrix, npt.NDArray[np.float32]]:
    """``(ids, rows, norms)`` of an add, the rows checked (`checked_rows`); an id repeated
    in ``ids`` keeps its last row, at the place of its last occurrence."""
    rows, norms = checked_rows(vectors, dim, ids=ids)
    last = {id_: pos for pos, id_ in enumerate(ids)}
    if len(last) != len(ids):
        keep = np.fromiter(sorted(last.values()), dtype=np.intp, count=len(last))
        rows, norms, ids = rows[keep], norms[keep], [ids[p] for p in keep]
    return ids, rows, norms


def mask_rows(filter_ids: IdFilter, n: int) -> npt.NDArray[np.intp] | None:
    """The rows a boolean mask over ``n`` rows selects (checked against them); None when
    ``filter_ids`` is a collection of ids. A str is refused: it is one id, not a collection."""
    if isinstance(filter_ids, np.ndarray) and filter_ids.dtype == np.bool_:
        if filter_ids.shape != (n,):
            raise ValueError(
                f"filter mask must have shape ({n},) like ids(), got {filter_ids.shape}"
            )
        return np.flatnonzero(filter_ids)
    if isinstance(filter_ids, str):
        raise TypeError("filter_ids must be a collection of ids, not a str")
    return None


class VectorIndex(IndexBase):
    """Exact cosine top-k over float32 rows with string ids; thread-safe.

    Re-adding an id replaces its vector. Zero vectors and NaN/inf are refused with a
    ``ValueError`` naming the row, before anything changes. One lock guards the matrix;
    a search holds it for the product and never copies the matrix.

    >>> index = VectorIndex(2, capacity=1)
    >>> index.add_one("a", [3.0, 4.0])
    >>> [round(x, 6) for x in index.get_vector("a").tolist()]   # stored normalised
    [0.6, 0.8]
    >>> index.add(["b", "c"], [[1.0, 0.0], [0.0, 1.0]])   # grows: max(needed, 2 x capacity)
    >>> index.capacity, index.ids()
    (3, ['a', 'b', 'c'])
    >>> [[hit.id for hit in hits] for hits in index.search_batch([[1, 0], [0, 1]], k=1)]
    [['b'], ['c']]
    >>> index.search([1, 1], k=3, filter_ids={"b", "c"})[0].score > 0.7
    True
    >>> index.add_one("a", [0.0, 0.0])
    Traceback (most recent call last):
    ...
    ValueError: vectors[0] (id 'a') is a zero vector: it has no direction to compare
    """

    def __init__(self, dim: int, *, capacity: int = 1024, metric: Metric = "cosine") -> None:
        dim = check_int("dim", dim, minimum=1)
        capacity = check_int("capacity", capacity, minimum=1)
        if metric != "cosine":
            raise ValueError(f"metric must be 'cosine', got {metric!r}")
        self._dim = dim
        self._metric: Metric = metric
        self._min_capacity = capacity
        self._matrix: Matrix = np.empty((capacity, dim), dtype=np.float32)
        self._ids: list[str] = []  # row -> id
        self._rows: dict[str, int] = {}  # id -> row
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def metric(self) -> Metric:
        return self._metric

    @property
    def capacity(self) -> int:
        """Rows the buffer holds before the next doubling."""
        return int(self._matrix.shape[0])

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, id: object) -> bool:
        return id in self._rows

    def __repr__(self) -> str:
        return f"VectorIndex(dim={self._dim}, size={len(self)}, capacity={self.capacity})"

    def ids(self) -> list[str]:
        """The stored ids in row order (a copy)."""
        with self._lock:
            return list(self._ids)

    def get_vector(self, id: str) -> npt.NDArray[np.float32]:
        """A copy of the stored (normalised) vector of ``id``; ``KeyError`` if absent."""
        with self._lock:
            vector: npt.NDArray[np.float32] = self._matrix[self._rows[id]].copy()
        return vector

    # ---------------------------------------------------------------- mutation

    def _add(self, ids: list[str], vectors: npt.ArrayLike) -> None:
        id_list, rows, norms = unique_rows(ids, vectors, self._dim)
        if not id_list:
            return
        with self._lock:
            n = len(self._ids)
            new_ids: list[str] = []
            dest = np.empty(len(id_list), dtype=np.intp)
            for j, id_ in enumerate(id_list):
                row = self._rows.get(id_)
                if row is None:
                    row = n + len(new_ids)
                    new_ids.append(id_)
                dest[j] = row
            self._reserve(n + len(new_ids))
            if len(new_ids) == len(id_list):
                # The common case, all new: normalise straight into the buffer, no temporary.
                np.divide(rows, norms[:, None], out=self._matrix[n : n + len(new_ids)])
            else:
                self._matrix[dest] = rows / norms[:, None]
            for id_ in new_ids:
                self._rows[id_] = len(self._ids)
                self._ids.append(id_)

    def _remove(self, ids: list[str]) -> int:
        # Each hole is filled with the last row, so the live rows stay ``matrix[:n]``.
        removed = 0
        with self._lock:
            matrix, id_of, row_of = self._matrix, self._ids, self._rows
            for id_ in ids:
                row = row_of.pop(id_, None)
                if row is None:
                    continue
                last = len(id_of) - 1
                if row != last:
                    moved = id_of[last]
                    matrix[row] = matrix[last]
                    id_of[row] = moved
                    row_of[moved] = row
                id_of.pop()
                removed += 1
            n, cap = len(id_of), self.capacity
            # Give memory back after a large purge; a quarter keeps grow/shrink amortised.
            if cap > self._min_capacity and n < cap // 4:
                self._resize(max(self._min_capacity, 2 * n))
        return removed

    def clear(self) -> None:
        """Remove everything and return to the initial capacity."""
        with self._lock:
            self._ids.clear()
            self._rows.clear()
            self._matrix = np.empty((self._min_capacity, self._dim), dtype=np.float32)

    def _reserve(self, needed: int) -> None:
        if needed > self.capacity:
            self._resize(max(needed, 2 * self.capacity))

    def _resize(self, capacity: int) -> None:
        n = len(self._ids)
        grown: Matrix = np.empty((capacity, self._dim), dtype=np.float32)
        grown[:n] = self._matrix[:n]
        self._matrix = grown

    # ------------------------------------------------------------------ search

    def _search(
        self, query: npt.ArrayLike, k: int, threshold: float | None, filter_ids: IdFilter | None
    ) -> list[SearchHit]:
        q, scale = query_and_scale(query, self._dim)
        with self._lock:
            n = len(self._ids)
            if n == 0:
                return []
            if filter_ids is None:
                scores = self._matrix[:n] @ q
                if k == 1:  # the hit path: nothing but the product, argmax and one hit
                    row = int(scores.argmax())
                    score = float(scores[row]) * scale
                    if threshold is not None and score < threshold:
                        return []
                    return [SearchHit(self._ids[row], score)]
                picked = top_k(scores, k)
                found = zip(picked, scores[picked].tolist(), strict=True)
            else:
                rows = self._filter_rows(filter_ids, n)
                if rows.size == 0:
                    return []
                if 4 * rows.size < n:  # few candidates: score only their rows
                    scores = self._matrix[rows] @ q
                else:  # most rows: one product beats gathering a big sub-matrix
                    scores = (self._matrix[:n] @ q)[rows]
                picked = top_k(scores, k)
                found = zip(rows[picked].tolist(), scores[picked].tolist(), strict=True)
            hits = [SearchHit(self._ids[r], s * scale) for r, s in found]
        return [h for h in hits if threshold is None or h.score >= threshold]

    def _search_batch(
        self, queries: npt.ArrayLike, k: int, threshold: float | None, filter_ids: IdFilter | None
    ) -> list[list[SearchHit]]:
        # One matrix product per chunk of queries.
        raw, norms = checked_rows(queries, self._dim, what="queries")
        qs = raw / norms[:, None]
        out: list[list[SearchHit]] = []
        with self._lock:
            n = len(self._ids)
            if n == 0:
                return [[] for _ in range(len(qs))]
            rows = None if filter_ids is None else self._filter_rows(filter_ids, n)
            if rows is not None and rows.size == 0:
                return [[] for _ in range(len(qs))]
            gather = rows is not None and 4 * rows.size < n
            candidates = self._matrix[rows] if gather else self._matrix[:n]
            step = max(1, _BATCH_SCORE_BYTES // (4 * n))
            for start in range(0, len(qs), step):
                scores = qs[start : start + step] @ candidates.T
                if rows is not None and not gather:
                    scores = scores[:, rows]
                if k == 1:
                    tops = scores.argmax(axis=1)[:, None].tolist()
                else:  # per query, so ties break exactly as in `search`
                    tops = [top_k(row_scores, k) for row_scores in scores]
                for q_scores, top in zip(scores, tops, strict=True):
                    best = q_scores[top].tolist()
                    chosen = top if rows is None else rows[top].tolist()
                    out.append(
                        [
                            SearchHit(self._ids[r], s)
                            for r, s in zip(chosen, best, strict=True)
                            if threshold is None or s >= threshold
                        ]
                    )
        return out

    def _filter_rows(self, filter_ids: IdFilter, n: int) -> npt.NDArray[np.intp]:
        masked = mask_rows(filter_ids, n)
        if masked is not None:
            return masked
        row_of = self._rows
        found = {row_of[id_] for id_ in filter_ids if id_ in row_of}
        rows = np.fromiter(found, dtype=np.intp, count=len(found))
        rows.sort()  # row order breaks ties the same way as an unfiltered search
        return rows

    # ------------------------------------------------------------- persistence

    def save(self, path: PathLike) -> None:
        """Write the index to ``path`` as one ``.npz`` (no pickles), crash-safely.

        The archive goes to a temporary file in the same directory, is fsynced, then
        renamed over ``path``: a crash at any moment leaves the old file or the new one.
        The rows are copied under the lock and written outside it, so searches go on.
        """
        arrays = self.archive()
        atomic_write(path, lambda f: write_archive(f, arrays))

    def archive(self) -> dict[str, npt.NDArray[Any]]:
        """The arrays of this index's file, copied under the lock, for `write_archive`.

        `save` is this plus `atomic_write`; an index that keeps its rows in a `VectorIndex`
        (`ApproximateIndex`) takes them with its own state, under its own lock, and writes
        them outside it.
        """
        with self._lock:
            n = len(self._ids)
            matrix = self._matrix[:n].copy()
            ids = list(self._ids)
        return _archive_arrays(self._dim, self._metric, ids, matrix)

    @classmethod
    def load(cls, path: PathLike) -> VectorIndex:
        """Read an index written by `save`; `IndexFileError` if it is corrupt or foreign.

        Loading never unpickles: ``np.load(..., allow_pickle=False)`` refuses object arrays.
        ``FileNotFoundError`` passes through unchanged.
        """
        return cls._from_parts(Path(path), _read_archive(path))

    @classmethod
    def _from_parts(cls, path: Path, parts: dict[str, Any]) -> VectorIndex:
        dim, ids, matrix = _unpack_archive(path, parts)
        count = len(ids)
        index = cls(dim)
        if count > index.capacity:
            index._matrix = np.ascontiguousarray(matrix)  # adopt it: no second 1.5 GB copy
        else:
            index._matrix[:count] = matrix
        index._ids = ids
        index._rows = {id_: row for row, id_ in enumerate(ids)}
        return index

    # ------------------------------------------------- for indexes built on this one

    def copy(self) -> VectorIndex:
        """A new index holding a copy of these rows (one matrix copy, under the lock).

        >>> index = VectorIndex(2)
        >>> index.add(["a"], [[1.0, 0.0]])
        >>> twin = index.copy(); twin.add_one("b", [0.0, 1.0])
        >>> index.ids(), twin.ids()
        (['a'], ['a', 'b'])
        """
        with self._lock:
            n = len(self._ids)
            twin = VectorIndex(self._dim, capacity=max(1, n), metric=self._metric)
            twin._matrix[:n] = self._matrix[:n]
            twin._ids = list(self._ids)
            twin._rows = dict(self._rows)
        twin._min_capacity = self._min_capacity
        return twin

    def view(self) -> tuple[list[str], Matrix]:
        """The ids and their unit rows as they are now: a copy of the ids and a read-only
        view of the matrix, not a copy of it. A later `add` or `remove` may change what the
        view shows (a removal moves the last row into the hole): read it while nobody writes
        to the index, as `ApproximateIndex.from_exact` does with the index it adopts."""
        with self._lock:
            view = self._matrix[: len(self._ids)]
            view.flags.writeable = False  # this view only; the index still writes its matrix
            return list(self._ids), view


# ----------------------------------------------------------------- the file format


def write_archive(f: BinaryIO, arrays: dict[str, npt.NDArray[Any]]) -> None:
    """Write the arrays of `VectorIndex.archive` into ``f`` as an ``.npz`` (no pickles)."""
    # Looked up at each save, so the crash tests can replace it with a writer that dies.
    np.savez(f, allow_pickle=False, **arrays)


def _archive_arrays(
    dim: int, metric: str, ids: list[str], matrix: Matrix
) -> dict[str, npt.NDArray[Any]]:
    """The arrays of an archive holding ``ids`` and their rows ``matrix`` (copies the
    caller took under its lock)."""
    n = len(ids)
    encoded = [id_.encode("utf-8", "surrogatepass") for id_ in ids]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    meta = orjson.dumps(
        {
            "format": _ARCHIVE_FORMAT,
            "version": _ARCHIVE_VERSION,
            "dim": dim,
            "metric": metric,
            "count": n,
        }
    )
    return {
        "meta": np.frombuffer(meta, dtype=np.uint8),
        "matrix": matrix,
        "ids": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "offsets": offsets,
    }


def _read_archive(path: PathLike) -> dict[str, Any]:
    """The four arrays of the archive at ``path``, unchecked; `IndexFileError` if it cannot
    be read as one, ``FileNotFoundError`` unchanged."""
    try:
        # Our own handle: np.load(path) leaks its file when the zip is truncated.
        with open(path, "rb") as fh:
            data = np.load(fh, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise IndexFileError(f"{path}: not a vector index archive (.npz)")
            with data:
                parts = {name: data[name] for name in ("meta", "matrix", "ids", "offsets")}
    except FileNotFoundError:
        raise
    except IndexFileError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise IndexFileError(f"{path}: cannot read vector index: {exc}") from exc
    return parts


def _unpack_archive(path: Path, parts: dict[str, Any]) -> tuple[int, list[str], Any]:
    """``(dim, ids, matrix)`` of an archive's arrays, every one checked against the header;
    `IndexFileError` naming the first inconsistency."""

    def bad(why: str) -> IndexFileError:
        return IndexFileError(f"{path}: corrupt vector index: {why}")

    try:
        meta = orjson.loads(parts["meta"].tobytes())
    except orjson.JSONDecodeError as exc:
        raise bad(f"unreadable header ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != _ARCHIVE_FORMAT:
        raise bad("not an llmcache vector index")
    if meta.get("version") != _ARCHIVE_VERSION:
        raise bad(f"format version {meta.get('version')!r}, this llmcache reads {_ARCHIVE_VERSION}")
    dim, count = meta.get("dim"), meta.get("count")
    if not isinstance(dim, int) or not isinstance(count, int) or dim < 1 or count < 0:
        raise bad(f"bad dim/count in header: {dim!r}/{count!r}")
    matrix, blob, offsets = parts["matrix"], parts["ids"], parts["offsets"]
    if matrix.dtype != np.float32 or matrix.shape != (count, dim):
        raise bad(f"matrix is {matrix.dtype}{matrix.shape}, header says float32({count}, {dim})")
    if offsets.dtype != np.int64 or offsets.shape != (count + 1,) or blob.ndim != 1:
        raise bad(f"id table does not hold {count} ids")
    if (
        offsets[0] != 0
        or offsets[-1] != blob.size
        or (count and bool((np.diff(offsets) < 0).any()))
    ):
        raise bad("id offsets out of order")
    raw = blob.tobytes()
    bounds = offsets.tolist()
    try:
        ids = [
            raw[a:b].decode("utf-8", "surrogatepass")
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
    except UnicodeDecodeError as exc:
        raise bad(f"id is not UTF-8 ({exc})") from exc
    if len(set(ids)) != count:
        raise bad("duplicate ids")
    if not np.isfinite(matrix).all():
        raise bad("matrix holds NaN or inf")
    if meta.get("metric") != "cosine":
        raise bad(f"metric {meta.get('metric')!r}, this llmcache knows 'cosine'")
    return dim, ids, matrix
