"""What a `SemanticCache` keeps about each entry, and how it is saved next to the entries.

The entries themselves live in the cache's `Store` (a `DiskStore` when persisted). Beside
it, in ``<persist_path>/index/``, go one index file per partition and a manifest listing
the records (key, scope, text, fingerprint, expiry) in LRU order and the identity of the
embedder that made the vectors (name, size, version). Every file is written to
a temporary name and renamed, so a crash leaves the old file or the new one; whatever is
missing or unreadable is rebuilt from the stored entries (each carries its record in
``metadata["_semantic"]``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from llmcache.entry import CachedResponse
from llmcache.vector.embedders import Embedder, declared_dim, embedder_version
from llmcache.vector.index import IndexFileError, VectorIndex, VectorSearch, atomic_write

__all__ = ["MANIFEST", "EmbedderIdentity", "Record", "index_file", "load_index",
           "load_partition_index", "partition_index", "read_manifest", "record_from_entry",
           "try_load_index", "write_manifest"]

logger = logging.getLogger("llmcache.vector.semantic")

MANIFEST = "manifest.json"
_FORMAT = "llmcache-semantic-manifest"
_VERSION = 1
META_KEY = "_semantic"  # where an entry carries its record, for rebuilds


@dataclass(slots=True)
class Record:
    """One cached request as the semantic layer knows it.

    ``scope`` identifies the request minus its matched text (``None`` when the request is
    cached for exact lookups only); ``partition`` is the scope under the current embedder.
    """

    key: str
    scope: str | None
    partition: str | None
    text: str | None
    fingerprint: str
    expires_at: float | None

    def metadata(self) -> dict[str, Any]:
        return {"scope": self.scope, "text": self.text}


def record_from_entry(key: str, entry: CachedResponse) -> tuple[str | None, str | None] | None:
    """``(scope, text)`` carried by a stored entry, or ``None`` if it is not ours."""
    meta = entry.metadata.get(META_KEY) if isinstance(entry.metadata, dict) else None
    if not isinstance(meta, dict):
        return None
    scope, text = meta.get("scope"), meta.get("text")
    if not (scope is None or isinstance(scope, str)) or not (text is None or
                                                             isinstance(text, str)):
        return None
    return scope, text


def index_file(directory: Path, partition: str) -> Path:
    """Where the index of ``partition`` (a ``v2:<hex>`` key) is saved."""
    return directory / f"{partition.rpartition(':')[2]}.index"


def load_index(path: Path) -> VectorSearch:
    """Read an index saved by any index class (exact ``.npz`` or approximate)."""
    with open(path, "rb") as f:
        head = f.read(2)
    if head == b"PK":
        return VectorIndex.load(path)
    from llmcache.vector.ann import ApproximateIndex  # needs the ``ann`` extra

    return ApproximateIndex.load(path)


def partition_index(dim: int, approximate_above: int | None) -> VectorSearch:
    """A new partition's index: exact, turning approximate above ``approximate_above`` rows
    when the ``ann`` extra is installed (`AutoIndex`; usearch is imported only then)."""
    from llmcache.vector.ann import ann_installed

    if approximate_above is None or not ann_installed():
        return VectorIndex(dim, capacity=16)  # partitions are many and mostly small
    from llmcache.vector.autoindex import AutoIndex

    return AutoIndex(dim, approximate_above=approximate_above, capacity=16)


def load_partition_index(path: Path, approximate_above: int | None) -> VectorSearch:
    """`load_index`, wrapped as `partition_index` would make it, so a restored partition
    still switches (or rebuilds its graph) as it grows."""
    from llmcache.vector.ann import ann_installed

    if approximate_above is None or not ann_installed():
        return load_index(path)
    from llmcache.vector.autoindex import AutoIndex

    return AutoIndex.load(path, approximate_above=approximate_above, capacity=16)


@dataclass(frozen=True, slots=True)
class EmbedderIdentity:
    """What the saved vectors were made by: the embedder's name, size and version.

    ``dim`` is ``None`` when unknown (an embedder not yet asked, a manifest written before
    llmcache recorded it): an unknown size matches any, and the indexes' own sizes decide.
    """

    name: str
    dim: int | None = None
    version: str | None = None

    @classmethod
    def of(cls, embedder: Embedder) -> EmbedderIdentity:
        """``embedder``'s identity now (its size is not asked of a server)."""
        return cls(embedder.name, declared_dim(embedder), embedder_version(embedder))

    def same_as(self, other: EmbedderIdentity) -> bool:
        return (self.name == other.name and self.version == other.version
                and (self.dim is None or other.dim is None or self.dim == other.dim))

    def __str__(self) -> str:
        dim = "?" if self.dim is None else str(self.dim)
        return self.name + f" ({dim}-dim" + (f", version {self.version})"
                                             if self.version is not None else ")")


def write_manifest(directory: Path, embedder: EmbedderIdentity, records: list[Record]) -> None:
    rows = [[r.key, r.scope, r.text, r.fingerprint, r.expires_at] for r in records]
    data = orjson.dumps({"format": _FORMAT, "version": _VERSION, "embedder": embedder.name,
                         "embedder_dim": embedder.dim, "embedder_version": embedder.version,
                         "records": rows})
    atomic_write(directory / MANIFEST, lambda f: f.write(data))


def _identity(data: dict[str, Any]) -> EmbedderIdentity:
    name, dim, version = data["embedder"], data.get("embedder_dim"), data.get("embedder_version")
    if not isinstance(name, str) or not (version is None or isinstance(version, str)) \
            or not (dim is None or (isinstance(dim, int) and not isinstance(dim, bool)
                                    and dim >= 1)):
        raise ValueError("bad embedder identity")
    return EmbedderIdentity(name, dim, version)


def read_manifest(directory: Path) -> tuple[EmbedderIdentity, list[Record]] | None:
    """``(embedder identity, records)`` from the manifest, or ``None`` if absent or
    unusable."""
    path = directory / MANIFEST
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        logger.warning("semantic index manifest %s is unreadable (%s); rebuilding from the "
                       "stored entries", path, exc)
        return None
    try:
        if data["format"] != _FORMAT or data["version"] != _VERSION:
            raise ValueError(f"format {data['format']!r} version {data['version']!r}")
        records = []
        for key, scope, text, fp, expires in data["records"]:
            if not isinstance(key, str) or not isinstance(fp, str):
                raise ValueError("bad record")
            if not (scope is None or isinstance(scope, str)) \
                    or not (text is None or isinstance(text, str)) \
                    or not (expires is None or isinstance(expires, (int, float))):
                raise ValueError("bad record")
            records.append(Record(key, scope, None, text, fp, expires))
        return _identity(data), records
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning("semantic index manifest %s is corrupt (%s); rebuilding from the "
                       "stored entries", path, exc)
        return None


def try_load_index(path: Path, loader: Callable[[Path], VectorSearch] = load_index,
                   ) -> VectorSearch | None:
    """The index ``loader`` reads at ``path``, or ``None`` (missing, corrupt, or needing an
    extra)."""
    try:
        return loader(path)
    except FileNotFoundError:
        return None
    except (IndexFileError, OSError, ValueError, ImportError) as exc:
        logger.warning("semantic index file %s is unusable (%s); rebuilding it", path, exc)
        with contextlib.suppress(OSError):
            path.unlink()
        return None
