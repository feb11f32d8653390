"""The file side of `VectorIndex`: crash-safe writes and the ``.npz`` archive format.

`atomic_write` is shared by every index and by the semantic cache's manifest. The archive
holds four arrays, never a pickle: ``meta`` (a JSON header), ``matrix`` (the unit rows),
``ids`` (the ids' UTF-8 bytes, end to end) and ``offsets`` (where each id starts).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import numpy.typing as npt
import orjson

from llmcache.vector._rows import Matrix

if TYPE_CHECKING:
    from llmcache.vector.index import PathLike

__all__ = ["archive_arrays", "atomic_write", "fsync_dir", "read_archive", "unpack_archive"]

_FORMAT = "llmcache-vector-index"
_VERSION = 1


def atomic_write(path: PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` so that a crash at any moment leaves either the old file or the new.

    ``write`` fills a temporary file in the same directory (a rename must not cross file
    systems); it is fsynced, renamed over ``path`` with `os.replace` (atomic on POSIX and
    Windows), then the directory is fsynced so the rename itself survives a power cut."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def fsync_dir(directory: Path) -> None:
    """Make renames in ``directory`` durable; a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # Windows: directories cannot be opened, and NTFS journals renames
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def archive_arrays(dim: int, metric: str, ids: list[str],
                   matrix: Matrix) -> dict[str, npt.NDArray[Any]]:
    """The arrays of an archive holding ``ids`` and their rows ``matrix`` (copies the
    caller took under its lock)."""
    n = len(ids)
    encoded = [id_.encode("utf-8", "surrogatepass") for id_ in ids]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    meta = orjson.dumps({"format": _FORMAT, "version": _VERSION, "dim": dim,
                         "metric": metric, "count": n})
    return {"meta": np.frombuffer(meta, dtype=np.uint8), "matrix": matrix,
            "ids": np.frombuffer(b"".join(encoded), dtype=np.uint8), "offsets": offsets}


def read_archive(path: PathLike) -> dict[str, Any]:
    """The four arrays of the archive at ``path``, unchecked; `IndexFileError` if it cannot
    be read as one, ``FileNotFoundError`` unchanged."""
    # Defined in (and documented with) `llmcache.vector.index`, which imports this module.
    from llmcache.vector.index import IndexFileError

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


def unpack_archive(path: Path, parts: dict[str, Any]) -> tuple[int, list[str], Any]:
    """``(dim, ids, matrix)`` of an archive's arrays, every one checked against the header;
    `IndexFileError` naming the first inconsistency."""
    from llmcache.vector.index import IndexFileError

    def bad(why: str) -> IndexFileError:
        return IndexFileError(f"{path}: corrupt vector index: {why}")

    try:
        meta = orjson.loads(parts["meta"].tobytes())
    except orjson.JSONDecodeError as exc:
        raise bad(f"unreadable header ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise bad("not an llmcache vector index")
    if meta.get("version") != _VERSION:
        raise bad(f"format version {meta.get('version')!r}, this llmcache reads {_VERSION}")
    dim, count = meta.get("dim"), meta.get("count")
    if not isinstance(dim, int) or not isinstance(count, int) or dim < 1 or count < 0:
        raise bad(f"bad dim/count in header: {dim!r}/{count!r}")
    matrix, blob, offsets = parts["matrix"], parts["ids"], parts["offsets"]
    if matrix.dtype != np.float32 or matrix.shape != (count, dim):
        raise bad(f"matrix is {matrix.dtype}{matrix.shape}, header says "
                  f"float32({count}, {dim})")
    if offsets.dtype != np.int64 or offsets.shape != (count + 1,) or blob.ndim != 1:
        raise bad(f"id table does not hold {count} ids")
    if (offsets[0] != 0 or offsets[-1] != blob.size
            or (count and bool((np.diff(offsets) < 0).any()))):
        raise bad("id offsets out of order")
    raw = blob.tobytes()
    bounds = offsets.tolist()
    try:
        ids = [raw[a:b].decode("utf-8", "surrogatepass")
               for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    except UnicodeDecodeError as exc:
        raise bad(f"id is not UTF-8 ({exc})") from exc
    if len(set(ids)) != count:
        raise bad("duplicate ids")
    if not np.isfinite(matrix).all():
        raise bad("matrix holds NaN or inf")
    if meta.get("metric") != "cosine":
        raise bad(f"metric {meta.get('metric')!r}, this llmcache knows 'cosine'")
    return dim, ids, matrix
