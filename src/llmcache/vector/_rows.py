"""Row helpers shared by the indexes: validate rows and queries, pick the top k scores.

Pure numpy, no state: `VectorIndex`, `ApproximateIndex` and `AutoIndex` all go through
these, so a bad row is refused with the same message whatever the index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["Matrix", "checked_rows", "normalized_query", "query_and_scale", "top_k"]

Matrix = npt.NDArray[np.float32]


def _row_name(what: str, i: int, ids: Sequence[str] | None) -> str:
    if what == "query":
        return what
    return f"{what}[{i}]" + (f" (id {ids[i]!r})" if ids else "")


def checked_rows(
    vectors: npt.ArrayLike, dim: int, *, ids: Sequence[str] | None = None, what: str = "vectors"
) -> tuple[Matrix, npt.NDArray[np.float32]]:
    """``vectors`` as float32 rows (n, dim) and their L2 norms, or a ``ValueError`` that
    names the first bad row. The rows may alias the caller's array: never write to them."""
    raw = np.asarray(vectors)
    if raw.dtype.kind not in "iuf":  # strings, objects, bools: never silently converted
        if raw.size == 0 and not ids:
            raw = raw.astype(np.float32)
        else:
            raise ValueError(f"{what}: expected numbers, got dtype {raw.dtype}")
    if raw.dtype != np.float32:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is caught as inf below
            raw = raw.astype(np.float32)
    if raw.size == 0 and not ids:
        return np.empty((0, dim), np.float32), np.empty(0, np.float32)
    if raw.ndim != 2 or raw.shape[1] != dim:
        raise ValueError(f"{what}: expected shape (n, {dim}), got {raw.shape}")
    if ids is not None and len(ids) != raw.shape[0]:
        raise ValueError(f"{len(ids)} ids for {raw.shape[0]} rows of {what}")
    sumsq = np.einsum("ij,ij->i", raw, raw)  # einsum, unlike dot, does not warn on overflow
    norms: npt.NDArray[np.float32] = np.sqrt(sumsq)
    # Zero, NaN and inf land here, and so do float32 sums of squares that over- or
    # underflowed: those rows are re-measured in float64 before anything is refused.
    for i in np.flatnonzero(~((sumsq > 0) & (sumsq < np.inf))).tolist():
        row = raw[i].astype(np.float64)
        if not np.isfinite(row).all():
            raise ValueError(f"{_row_name(what, i, ids)} contains NaN or inf")
        scale = float(np.abs(row).max())
        norm = scale * float(np.linalg.norm(row / scale)) if scale else 0.0
        if not 0.0 < norm < float(np.finfo(np.float32).max):
            why = "is a zero vector" if norm == 0.0 else "is too large to normalise"
            raise ValueError(f"{_row_name(what, i, ids)} {why}: it has no direction to compare")
        norms[i] = norm
    return raw, norms


def query_and_scale(query: npt.ArrayLike, dim: int) -> tuple[npt.NDArray[np.float32], float]:
    """``query`` (dim,) as float32 (possibly the caller's own array) and ``1 / ||query||``;
    ``ValueError`` if it is zero, NaN/inf or misshapen.

    Scaling a query does not change which rows score best, so a search ranks with the raw
    query and scales only the k scores it returns: no normalised copy per query."""
    if isinstance(query, np.ndarray) and query.dtype == np.float32 and query.shape == (dim,):
        sumsq = float(np.vdot(query, query))  # vdot, unlike dot, does not warn on overflow
        if 0.0 < sumsq < math.inf:
            return query, 1.0 / math.sqrt(sumsq)
    arr = np.asarray(query)
    if arr.ndim != 1:
        raise ValueError(f"query: expected shape ({dim},), got {arr.shape}")
    rows, norms = checked_rows(arr[None, :], dim, what="query")
    slow: npt.NDArray[np.float32] = rows[0] / norms[0]
    return slow, 1.0


def normalized_query(query: npt.ArrayLike, dim: int) -> npt.NDArray[np.float32]:
    """``query`` (dim,) as a new unit float32 vector (see `query_and_scale`)."""
    q, scale = query_and_scale(query, dim)
    unit: npt.NDArray[np.float32] = q * np.float32(scale)
    return unit


def top_k(scores: npt.NDArray[np.float32], k: int) -> list[int]:
    """Positions of the ``k`` largest ``scores``, best first; ties go to the lower position.

    ``argmax`` for k=1; for k>1 ``partition`` finds the k-th score and only the k winners
    are sorted. Equal scores at the boundary (duplicate vectors) are settled by position,
    so the answer never depends on how the partition happened to fall."""
    n = int(scores.shape[0])
    if k == 1:
        return [int(scores.argmax())]
    if k < n:
        kth = scores[np.argpartition(scores, n - k)[n - k]]
        above = np.flatnonzero(scores > kth)
        level = np.flatnonzero(scores == kth)[: k - above.size]
        chosen = np.concatenate((above, level))
        result: list[int] = chosen[np.lexsort((chosen, -scores[chosen]))].tolist()
        return result
    ranked: list[int] = np.argsort(-scores, kind="stable").tolist()
    return ranked
