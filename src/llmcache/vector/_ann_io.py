"""Saving and loading an `ApproximateIndex`: a JSON manifest naming a graph and a rows file.

The manifest holds the settings, the id -> graph key map and an xxh3 checksum of the graph
file; the rows are a `VectorIndex` archive. `llmcache.vector.ann` keeps the public methods
(`ApproximateIndex.save` and `ApproximateIndex.load`) and calls these.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import orjson
import xxhash

from llmcache.vector.index import IndexFileError, VectorIndex, _write_archive

if TYPE_CHECKING:
    from llmcache.vector.ann import ApproximateIndex
    from llmcache.vector.index import PathLike

__all__ = ["graph_digest", "load_approximate", "save_approximate"]

_FORMAT = "llmcache-ann-index"
_VERSION = 2  # 2: options hold expansion_search only when pinned (null: auto)


def save_approximate(index: ApproximateIndex, path: PathLike,
                     atomic_write: Callable[[PathLike, Callable[[BinaryIO], object]], None],
                     ) -> None:
    """`ApproximateIndex.save`; ``atomic_write`` is `llmcache.vector.ann`'s (a test seam)."""
    target = Path(path)
    tag = uuid.uuid4().hex[:16]
    graph, rows = (target.with_name(f"{target.name}.{tag}.{ext}") for ext in ("usearch",
                                                                              "npz"))
    try:
        with index._lock:
            index._graph.save(str(graph))
            arrays = index._rows._snapshot()
            manifest = {"format": _FORMAT, "version": _VERSION, "dim": index.dim,
                        "options": {**index._options,
                                    "expansion_search": index._pinned_ef},
                        "candidates": index._candidates,
                        "next_key": index._next_key, "graph": graph.name,
                        "rows": rows.name, "ids": list(index._keys),
                        "keys": list(index._keys.values())}
        atomic_write(rows, lambda f: _write_archive(f, arrays))
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


def load_approximate(cls: type[ApproximateIndex], path: PathLike) -> ApproximateIndex:
    """`ApproximateIndex.load`: every file checked against the manifest."""
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
    if (len(ids) != len(keys) or len(set(ids)) != len(ids)
            or not all(isinstance(i, str) for i in ids)
            or not all(isinstance(key, int) and 0 <= key < next_key for key in keys)):
        raise bad("id map does not hold unique ids and keys")
    graph_path, rows_path = (target.with_name(name) for name in names)
    for data in (graph_path, rows_path):
        if not data.exists():
            raise bad(f"data file {data.name} is missing")
    if graph_digest(graph_path) != digest:
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
