"""What a `SemanticCache` keeps about each entry, and how it is saved and opened again.

The entries themselves live in the cache's `Store` (a `DiskStore` when persisted). Beside
it, in ``<persist_path>/index/``, go one index file per partition and a manifest listing
the records (key, scope, text, fingerprint, expiry) in LRU order and the identity of the
embedder that made the vectors (name, size, version). Every file is written to
a temporary name and renamed, so a crash leaves the old file or the new one; whatever is
missing or unreadable is rebuilt from the stored entries (each carries its record in
``metadata["_semantic"]``).

On open (`read_persisted`) the manifest says which records existed, the store says which entries
still do, and each partition's index file gives the vectors. Whatever disagrees is
repaired: records whose entry is gone are dropped, entries without a record (a crash after
a write, before the next save) are read back from their ``metadata["_semantic"]``, and rows
missing from an index (or a whole index that is missing, corrupt, or made by another
embedder: another name, size or version) are embedded again. An embedder that fails or
answers nonsense while doing so leaves those entries to exact lookups (counted, logged
once); the next open tries again. Opening never fails for it.

A cache with a stated error bound also saves what it learned (its labeled observations,
see `llmcache.vector.observations`) beside the manifest, in ``observations.json``, with the
identity of the embedder whose similarities they are: another embedder starts without them.

These functions take what they work on as arguments and give back what they found; the
cache's state stays the cache's (`SemanticCache` calls them with its own).
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from llmcache.entry import CachedResponse
from llmcache.stores.base import Store
from llmcache.vector.embedders import (
    Embedder,
    EmbeddingError,
    Matrix,
    declared_dim,
    embedder_version,
    unit_embeddings,
)
from llmcache.vector.index import IndexFileError, VectorIndex, VectorSearch, atomic_write

__all__ = [
    "MANIFEST",
    "OBSERVATIONS",
    "EmbedderIdentity",
    "Record",
    "Restored",
    "index_file",
    "load_index",
    "load_partition_index",
    "partition_index",
    "read_manifest",
    "read_observation_rows",
    "read_persisted",
    "record_from_entry",
    "try_load_index",
    "write_manifest",
    "write_observation_rows",
    "write_persisted",
]

logger = logging.getLogger("llmcache.vector.semantic")

MANIFEST = "manifest.json"
OBSERVATIONS = "observations.json"  # beside the manifest: what a bounded cache learned
_FORMAT = "llmcache-semantic-manifest"
_VERSION = 1
META_KEY = "_semantic"  # where an entry carries its record, for rebuilds
_EMBED_BATCH = 512


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
    if not (scope is None or isinstance(scope, str)) or not (text is None or isinstance(text, str)):
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
        return (
            self.name == other.name
            and self.version == other.version
            and (self.dim is None or other.dim is None or self.dim == other.dim)
        )

    def __str__(self) -> str:
        dim = "?" if self.dim is None else str(self.dim)
        return (
            self.name
            + f" ({dim}-dim"
            + (f", version {self.version})" if self.version is not None else ")")
        )


def write_manifest(directory: Path, embedder: EmbedderIdentity, records: list[Record]) -> None:
    rows = [[r.key, r.scope, r.text, r.fingerprint, r.expires_at] for r in records]
    data = orjson.dumps(
        {
            "format": _FORMAT,
            "version": _VERSION,
            "embedder": embedder.name,
            "embedder_dim": embedder.dim,
            "embedder_version": embedder.version,
            "records": rows,
        }
    )
    atomic_write(directory / MANIFEST, lambda f: f.write(data))


def _identity(data: dict[str, Any]) -> EmbedderIdentity:
    name, dim, version = data["embedder"], data.get("embedder_dim"), data.get("embedder_version")
    if (
        not isinstance(name, str)
        or not (version is None or isinstance(version, str))
        or not (dim is None or (isinstance(dim, int) and not isinstance(dim, bool) and dim >= 1))
    ):
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
        logger.warning(
            "semantic index manifest %s is unreadable (%s); rebuilding from the stored entries",
            path,
            exc,
        )
        return None
    try:
        if data["format"] != _FORMAT or data["version"] != _VERSION:
            raise ValueError(f"format {data['format']!r} version {data['version']!r}")
        records = []
        for key, scope, text, fp, expires in data["records"]:
            if not isinstance(key, str) or not isinstance(fp, str):
                raise ValueError("bad record")
            if (
                not (scope is None or isinstance(scope, str))
                or not (text is None or isinstance(text, str))
                or not (expires is None or isinstance(expires, (int, float)))
            ):
                raise ValueError("bad record")
            records.append(Record(key, scope, None, text, fp, expires))
        return _identity(data), records
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning(
            "semantic index manifest %s is corrupt (%s); rebuilding from the stored entries",
            path,
            exc,
        )
        return None


def try_load_index(
    path: Path,
    loader: Callable[[Path], VectorSearch] = load_index,
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


# ----------------------------------------------------------------- opening and saving


@dataclass(slots=True)
class Restored:
    """What `read_persisted` read back: the records in LRU order (oldest first), the partitions'
    indexes, the partitions whose index file must be written at the next save, and how
    many partitions' vectors came from an embedder of another identity (embedded again)."""

    records: OrderedDict[str, Record]
    indexes: dict[str, VectorSearch]
    dirty: set[str]
    stale_partitions: int


def _store_keys(store: Any) -> set[str] | None:
    keys = getattr(store, "keys", None)
    return set(keys()) if callable(keys) else None


def _read_records(
    directory: Path,
    store: Store,
    partition_of: Callable[[str], str],
    max_entries: int,
    now: float,
) -> tuple[OrderedDict[str, Record], EmbedderIdentity | None]:
    """The records of the manifest in ``directory`` that ``store`` still holds, plus the
    entries it holds that the manifest missed; expired ones and the oldest beyond
    ``max_entries`` are deleted from the store."""
    records: OrderedDict[str, Record] = OrderedDict()
    manifest = read_manifest(directory)
    for record in manifest[1] if manifest is not None else []:
        record.partition = partition_of(record.scope) if record.scope else None
        records[record.key] = record
    keys = _store_keys(store)
    if keys is not None:
        for key in [k for k in records if k not in keys]:
            del records[key]
        for key in sorted(keys - records.keys()):
            entry = store.get(key)
            parsed = record_from_entry(key, entry) if entry is not None else None
            if entry is None or parsed is None:
                continue  # expired meanwhile, or not written by a semantic cache
            scope, text = parsed
            records[key] = Record(
                key,
                scope,
                partition_of(scope) if scope else None,
                text,
                entry.fingerprint,
                entry.expires_at,
            )
    for record in [r for r in records.values() if r.expires_at is not None and r.expires_at <= now]:
        del records[record.key]
        store.delete(record.key)
    while len(records) > max_entries:
        _, oldest = records.popitem(last=False)
        store.delete(oldest.key)
    return records, manifest[0] if manifest is not None else None


def _embed(
    embedder: Embedder,
    records: list[Record],
    dim: int | None,
    embed_failed: Callable[[Exception], None],
) -> tuple[list[str], Matrix | None]:
    """Keys and unit rows of ``records``' texts, ``dim`` wide (``None``: as the embedder
    declares, or as its first answer is). Rows with NaN, or without meaning, are left out
    (reported to ``embed_failed``); an embedder that fails or answers the wrong shape
    raises `EmbeddingError`."""
    keys: list[str] = []
    rows: list[Matrix] = []
    for start in range(0, len(records), _EMBED_BATCH):
        chunk = records[start : start + _EMBED_BATCH]
        try:
            raw = embedder.embed([r.text or "" for r in chunk])
        except Exception as exc:
            raise EmbeddingError(f"{embedder.name}: embed failed ({exc!r})") from exc
        if dim is None:
            dim = declared_dim(embedder)
        vecs, bad = unit_embeddings(raw, len(chunk), dim, embedder.name)
        dim = int(vecs.shape[1])
        if bad.any():
            embed_failed(
                EmbeddingError(
                    f"{embedder.name}: embed returned NaN or inf for {int(bad.sum())} texts"
                )
            )
        for record, vec in zip(chunk, vecs, strict=True):
            if np.any(vec):  # a zero vector has no direction: exact lookups only
                keys.append(record.key)
                rows.append(vec)
    return keys, np.stack(rows) if rows else None


def read_persisted(
    path: Path,
    store: Store,
    embedder: Embedder,
    *,
    partition_of: Callable[[str], str],
    max_entries: int,
    now: float,
    new_index: Callable[[int], VectorSearch],
    load_index: Callable[[Path], VectorSearch],
    embed_failed: Callable[[Exception], None],
) -> Restored:
    """Read the records and indexes of the cache persisted at ``path`` (its entries are in
    ``store``), repairing what is off (see the module docstring).

    ``partition_of(scope)`` names a scope's partition under ``embedder``; ``new_index(dim)``
    and ``load_index(file)`` make and read a partition's index; ``embed_failed`` hears of
    every embedding that could not be used.
    """
    directory = path / "index"
    directory.mkdir(parents=True, exist_ok=True)
    records, saved = _read_records(directory, store, partition_of, max_entries, now)
    current = EmbedderIdentity.of(embedder)
    same_embedder = saved is not None and saved.same_as(current)
    groups: dict[str, list[Record]] = {}
    for record in records.values():
        if record.partition is not None and record.text is not None:
            groups.setdefault(record.partition, []).append(record)
    stale = 0
    if saved is not None and not same_embedder and groups:
        logger.warning(
            "semantic cache %s: its indexes were made by embedder %s, this one "
            "is %s; embedding the stored texts again",
            path,
            saved,
            current,
        )
        stale += len(groups)
    indexes: dict[str, VectorSearch] = {}
    dirty: set[str] = set()
    rebuilt = 0
    embedding = True  # until the embedder fails: then one failure, not one per partition
    resized = 0
    for partition, members in groups.items():
        file = index_file(directory, partition)
        index = try_load_index(file, load_index) if same_embedder else None
        if index is not None and current.dim is not None and index.dim != current.dim:
            if not resized:  # once: every partition of the cache is likely in this state
                logger.warning(
                    "semantic index %s holds %d-dim vectors, embedder %s gives "
                    "%d; embedding the texts of such indexes again",
                    file,
                    index.dim,
                    current.name,
                    current.dim,
                )
            resized += 1
            index = None
        wanted = {r.key for r in members}
        if index is not None:
            gone = [id_ for id_ in index.ids() if id_ not in wanted]
            if gone:
                index.remove(gone)
                dirty.add(partition)
        missing = [r for r in members if index is None or r.key not in index]
        if missing and embedding:
            try:
                keys, vectors = _embed(
                    embedder, missing, index.dim if index is not None else current.dim, embed_failed
                )
            except EmbeddingError as exc:  # exact lookups only for now; tried again at open
                embed_failed(exc)
                embedding, keys, vectors = False, [], None
            if vectors is not None:
                if index is None:
                    index = new_index(int(vectors.shape[1]))
                index.add(keys, vectors)
            rebuilt += len(keys)
        if missing:
            dirty.add(partition)
        if index is not None and len(index):
            indexes[partition] = index
    known = {index_file(directory, p).name for p in indexes}
    for file in directory.glob("*.index"):
        if file.name not in known:
            file.unlink(missing_ok=True)
    if rebuilt:
        logger.info(
            "semantic cache %s: embedded %d entries again to rebuild its index", path, rebuilt
        )
    return Restored(records, indexes, dirty, stale + resized)


def write_persisted(
    path: Path,
    embedder: EmbedderIdentity,
    records: list[Record],
    changed: dict[str, VectorSearch | None],
) -> None:
    """Write the ``changed`` partitions' indexes (``None`` or empty: delete the file) of
    the cache persisted at ``path``, then the manifest listing ``records``."""
    directory = path / "index"
    for partition, index in changed.items():
        file = index_file(directory, partition)
        if index is None or not len(index):
            file.unlink(missing_ok=True)
        else:
            index.save(file)
    write_manifest(directory, embedder, records)


# ----------------------------------------------------------------- learned observations

_OBS_FORMAT = "llmcache-semantic-observations"


def write_observation_rows(path: Path, embedder: EmbedderIdentity, rows: list[Any]) -> None:
    """Save the labeled observations of a cache with an error bound (plain JSON rows, see
    `llmcache.vector.observations`) beside the manifest of the cache persisted at ``path``,
    with the identity of the embedder whose similarities they hold."""
    directory = path / "index"
    directory.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps(
        {
            "format": _OBS_FORMAT,
            "version": _VERSION,
            "embedder": embedder.name,
            "embedder_dim": embedder.dim,
            "embedder_version": embedder.version,
            "rows": rows,
        }
    )
    atomic_write(directory / OBSERVATIONS, lambda f: f.write(data))


def read_observation_rows(path: Path, embedder: EmbedderIdentity) -> list[Any]:
    """The rows `write_observation_rows` saved for the cache at ``path``, if they were made
    by an embedder of the same identity (another one's similarities mean something else);
    nothing if absent, unreadable or foreign (logged)."""
    file = path / "index" / OBSERVATIONS
    try:
        data = orjson.loads(file.read_bytes())
        if (
            data["format"] != _OBS_FORMAT
            or data["version"] != _VERSION
            or not isinstance(data["rows"], list)
        ):
            raise ValueError(f"format {data['format']!r} version {data['version']!r}")
        saved = _identity(data)
    except FileNotFoundError:
        return []
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        logger.warning(
            "semantic observations %s are unusable (%s); starting without them", file, exc
        )
        return []
    if not saved.same_as(embedder):
        logger.warning(
            "semantic observations %s were made by embedder %s, this one is %s; "
            "starting without them",
            file,
            saved,
            embedder,
        )
        return []
    rows: list[Any] = data["rows"]
    return rows
