"""Embedders: text in, unit-length float32 rows out, behind one small `Embedder` protocol.

- `WordLlamaEmbedder`: the bundled local default (the ``semantic`` extra, ``wordllama``,
  MIT). Its weights ship inside the wheel and are loaded from there with downloads
  disabled, so nothing touches the network at run time.
- `BackendEmbedder`: any `Backend`'s ``embed`` (for example Ollama ``/api/embed``) through
  an `EmbeddingCache`, so each distinct text is sent once.
- `HashingEmbedder`: hashed words and character trigrams; needs nothing, deterministic,
  for tests and as a last-resort fallback (it measures word overlap, not meaning).

An embedder's identity is its ``name``, its ``dim`` and, when it has one, its ``version``:
the name goes into the semantic cache's partition keys, so vectors of two embedders never
share an index, and a persisted cache reopened under another identity (same name, other
size or version) embeds its stored texts again instead of comparing vectors that do not
compare. Vectors an embedder returns are checked (`unit_embeddings`): the wrong shape, NaN
or inf is an `EmbeddingError`, which the semantic cache counts as a miss.

>>> emb = HashingEmbedder(dim=64)
>>> vecs = emb.embed(["reset my password", "reset my password please", ""])
>>> vecs.shape, vecs.dtype.name
((3, 64), 'float32')
>>> round(float(vecs[0] @ vecs[0]), 3), float(abs(vecs[2]).sum())   # unit rows; empty -> 0
(1.0, 0.0)
>>> bool(vecs[0] @ vecs[1] > 0.7)
True
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import math
import os
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import xxhash

from llmcache.backends.base import AsyncBackend, Backend
from llmcache.embeddings import EmbeddingCache
from llmcache.errors import LLMCacheError
from llmcache.vector._arguments import check_int

__all__ = [
    "BackendEmbedder",
    "Embedder",
    "EmbeddingError",
    "HashingEmbedder",
    "WordLlamaEmbedder",
    "declared_dim",
    "embedder_version",
    "normalize_rows",
    "unit_embeddings",
]

Matrix = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into an ``(n, dim)`` float32 array of L2-normalised rows.

    A text with nothing to embed may give a zero row; callers treat it as "no meaning"
    (the semantic cache then falls back to exact matching for it).

    ``name``, ``dim`` and an optional ``version`` attribute (any string; bump it when the
    weights change under the same name and size) make the embedder's identity: a persisted
    `SemanticCache` reopened with another identity embeds its stored texts again.
    """

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> Matrix: ...


def normalize_rows(vectors: Any, dim: int | None = None) -> Matrix:
    """``vectors`` as a C-contiguous float32 ``(n, dim)`` array of unit rows.

    Rows of zeros (and rows holding NaN or inf) become zero rows instead of NaN.

    >>> normalize_rows([[3.0, 4.0], [0.0, 0.0]]).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    arr = np.array(vectors, dtype=np.float32, ndmin=2, copy=True)
    if arr.ndim != 2 or (dim is not None and arr.shape[1] != dim):
        raise ValueError(f"expected an (n, {dim or 'dim'}) array of vectors, got {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=1)
    arr[bad] = 0.0
    norms = np.linalg.norm(arr, axis=1)
    ok = norms > 0
    arr[ok] /= norms[ok, None]
    return np.ascontiguousarray(arr)


class EmbeddingError(LLMCacheError, ValueError):
    """An embedder answered something other than ``(n, dim)`` finite numbers."""


def declared_dim(embedder: Embedder) -> int | None:
    """The size ``embedder`` says its vectors have, or ``None`` when it does not know yet
    (a `BackendEmbedder` before its first answer: it is not asked here) or says nonsense.

    >>> declared_dim(HashingEmbedder(dim=32))
    32
    """
    try:
        dim = embedder._dim if isinstance(embedder, BackendEmbedder) else embedder.dim
    except Exception:  # a property that fails is "unknown", never a failed call
        return None
    return dim if isinstance(dim, int) and not isinstance(dim, bool) and dim >= 1 else None


def embedder_version(embedder: Embedder) -> str | None:
    """``embedder``'s optional ``version`` attribute, as a string (``None`` if absent)."""
    version = getattr(embedder, "version", None)
    return None if version is None else str(version)


def unit_embeddings(
    raw: Any, count: int, dim: int | None, name: str = "embedder"
) -> tuple[Matrix, npt.NDArray[np.bool_]]:
    """What an embedder returned for ``count`` texts, checked: C-contiguous float32 unit
    rows (zero rows stay zero) and a mask of the rows that held NaN or inf (zeroed).

    `EmbeddingError` when ``raw`` is not a ``(count, dim)`` array of numbers (``dim=None``:
    any width). Norms are taken in float64, so rows too large for float32 still normalise.

    >>> rows, bad = unit_embeddings([[3e38, 4e38], [float("nan"), 0.0]], 2, 2)
    >>> [round(x, 3) for x in rows[0].tolist()], rows[1].tolist(), bad.tolist()
    ([0.6, 0.8], [0.0, 0.0], [False, True])
    >>> try:
    ...     unit_embeddings([[1.0, 0.0]], 1, 3, "mine")
    ... except EmbeddingError as exc:
    ...     print(exc)
    mine: embed returned shape (1, 2) for 1 texts, expected (1, 3)
    """
    try:
        arr = np.asarray(raw)
    except Exception as exc:  # ragged lists and the like
        raise EmbeddingError(f"{name}: embed returned no array ({exc})") from None
    if arr.dtype.kind not in "iuf":
        raise EmbeddingError(f"{name}: embed returned {arr.dtype} values, expected numbers")
    if (
        arr.ndim != 2
        or arr.shape[0] != count
        or arr.shape[1] < 1
        or (dim is not None and arr.shape[1] != dim)
    ):
        raise EmbeddingError(
            f"{name}: embed returned shape {arr.shape} for {count} texts, "
            f"expected ({count}, {dim or 'dim'})"
        )
    if arr.dtype == np.float32:
        # The usual answer: finite rows whose float32 norms neither over- nor underflowed
        # (NaN and inf fail the comparisons). No float64 copy; one row (a lookup's query)
        # in plain floats, since numpy's per-call costs dominate at that size.
        unit: Matrix
        if count == 1:
            sumsq = float(np.vdot(arr, arr))  # vdot, unlike dot, does not warn on overflow
            if 1e-30 < sumsq < 1e30:
                unit = np.ascontiguousarray(arr * np.float32(1.0 / math.sqrt(sumsq)))
                return unit, np.zeros(1, dtype=np.bool_)
        else:
            sums = np.einsum("ij,ij->i", arr, arr)  # einsum does not warn on overflow either
            if bool(((sums > 1e-30) & (sums < 1e30)).all()):
                unit = np.ascontiguousarray(arr / np.sqrt(sums)[:, None])
                return unit, np.zeros(count, dtype=np.bool_)
    rows = arr.astype(np.float64)
    bad: npt.NDArray[np.bool_] = np.asarray(~np.isfinite(rows).all(axis=1), dtype=np.bool_)
    rows[bad] = 0.0
    norms = np.linalg.norm(rows, axis=1)
    ok = norms > 0
    rows[ok] /= norms[ok, None]
    return np.ascontiguousarray(rows, dtype=np.float32), bad


# ------------------------------------------------------------------------------ hashing

_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    """Bag of words plus character trigrams, hashed (xxh3) into ``dim`` signed buckets.

    Deterministic across processes and machines. Similar spellings and shared words score
    high; synonyms score nothing, which makes it a fine test double and a poor judge of
    meaning.

    >>> HashingEmbedder(dim=32).name
    'hashing-v1-32'
    """

    def __init__(self, dim: int = 256, *, seed: int = 0) -> None:
        self.dim = dim = check_int("dim", dim, minimum=8)
        self.seed = seed = check_int("seed", seed, minimum=0)
        self.name = f"hashing-v1-{dim}" + (f"-s{seed}" if seed else "")

    def _features(self, text: str) -> Iterator[tuple[str, float]]:
        for word in _WORD.findall(text.lower().replace("'", "")):
            yield "w:" + word, 1.0
            padded = f"<{word}>"
            for i in range(len(padded) - 2):
                yield "g:" + padded[i : i + 3], 0.35

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Unit rows for ``texts`` (a zero row for a text without words)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature, weight in self._features(text):
                h = xxhash.xxh3_64_intdigest(feature.encode(), seed=self.seed)
                out[row, h % self.dim] += weight if h >> 63 else -weight
        return normalize_rows(out, self.dim)


# ------------------------------------------------------------------------------ backend


class BackendEmbedder:
    """Embeddings from a model server, each distinct text fetched once.

    Texts are looked up in ``cache`` (an `EmbeddingCache`; by default a private in-memory
    one of 10,000 entries, pass a persistent one to keep vectors across runs) and only the
    missing ones are sent, once each, in one ``embed`` call. ``backend`` may be a `Backend`
    (use `embed`) or an `AsyncBackend` (use `aembed`). ``dim`` is learnt from the first
    answer unless given.

    >>> from llmcache.backends.mock import MockBackend
    >>> backend = MockBackend(embed_dim=16)
    >>> emb = BackendEmbedder(backend, model="nomic-embed-text")
    >>> emb.embed(["a b", "a b", "c"]).shape, backend.calls[0].texts
    ((3, 16), ['a b', 'c'])
    >>> _ = emb.embed(["c"]); backend.call_count     # served from the cache
    1
    >>> emb.name, emb.dim
    ('backend:nomic-embed-text', 16)
    """

    def __init__(
        self,
        backend: Backend | AsyncBackend,
        *,
        model: str | None = None,
        cache: EmbeddingCache | None = None,
        dim: int | None = None,
        name: str | None = None,
    ) -> None:
        self.backend = backend
        self.model: str = model or getattr(backend, "model", "") or ""
        if not self.model:
            raise ValueError("model: name the embedding model (the backend has no default)")
        self.cache = cache if cache is not None else EmbeddingCache(max_entries=10_000)
        self.name = name or f"backend:{self.model}"
        self._dim = None if dim is None else check_int("dim", dim, minimum=1, none=True)

    @property
    def dim(self) -> int:
        """The vector size; asks the backend once (for a probe text) if not known yet."""
        if self._dim is None:
            self.embed(["dimension probe"])
        assert self._dim is not None
        return self._dim

    @dim.setter
    def dim(self, value: int) -> None:
        self._dim = value

    def _missing(self, texts: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
        found: dict[str, Any] = self.cache.get_batch(texts, self.model)
        return found, [t for t, v in found.items() if v is None]

    def _finish(
        self,
        texts: Sequence[str],
        found: dict[str, Any],
        missing: list[str],
        fetched: list[list[float]],
    ) -> Matrix:
        if len(fetched) != len(missing):
            raise ValueError(
                f"{self.name}: asked for {len(missing)} embeddings, got {len(fetched)}"
            )
        if missing:
            self.cache.set_batch(dict(zip(missing, fetched, strict=True)), self.model)
            found.update(
                (text, np.asarray(vec, dtype=np.float32))
                for text, vec in zip(missing, fetched, strict=True)
            )
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        rows = normalize_rows(np.stack([np.asarray(found[t], dtype=np.float32) for t in texts]))
        if self._dim is None:
            self._dim = int(rows.shape[1])
        elif rows.shape[1] != self._dim:
            raise ValueError(
                f"{self.name}: the backend returned {rows.shape[1]}-dim vectors, "
                f"expected {self._dim}"
            )
        return rows

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Unit rows for ``texts``; one backend call for the texts not cached yet."""
        if isinstance(self.backend, AsyncBackend):
            raise TypeError(
                "BackendEmbedder over an AsyncBackend: use `await aembed(...)` "
                "(or SemanticCache.aget/aset)"
            )
        texts = list(texts)
        found, missing = self._missing(texts)
        fetched = self.backend.embed(missing, model=self.model).embeddings if missing else []
        return self._finish(texts, found, missing, fetched)

    async def aembed(self, texts: Sequence[str]) -> Matrix:
        """`embed` for async code: awaits an `AsyncBackend`, or runs a sync one in a thread."""
        texts = list(texts)
        found, missing = self._missing(texts)
        fetched: list[list[float]] = []
        if missing:
            if isinstance(self.backend, AsyncBackend):
                fetched = (await self.backend.embed(missing, model=self.model)).embeddings
            else:
                backend = self.backend
                fetched = (
                    await asyncio.to_thread(backend.embed, missing, model=self.model)
                ).embeddings
        return self._finish(texts, found, missing, fetched)


# ---------------------------------------------------------------------------- wordllama

_WORDLLAMA_CONFIG = "l2_supercat"
_WORDLLAMA_SHIPPED_DIM = 256  # the wheel holds l2_supercat_256; smaller sizes truncate it
_WORDLLAMA_DIMS = (64, 128, 256)
_models: dict[int, Any] = {}
_load_lock = threading.Lock()


@contextlib.contextmanager
def _keep_root_logging() -> Iterator[None]:
    # wordllama calls logging.basicConfig(level=INFO) at import; an application's logging
    # set-up is not ours to change, so whatever it adds to the root logger is undone.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    # Belt and braces next to disable_download=True: should any Hugging Face code run
    # during the load, it must not reach out. Restored at once so the user's process keeps
    # its own setting.
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _import_wordllama() -> Any:
    try:
        with _keep_root_logging():
            wordllama = importlib.import_module("wordllama")
    except ImportError as exc:
        raise ImportError(
            "WordLlamaEmbedder needs the optional package 'wordllama': "
            "pip install 'llmcache[semantic]'"
        ) from exc
    return wordllama


def _load_wordllama(dim: int) -> Any:
    with _load_lock:
        model = _models.get(dim)
        if model is not None:
            return model
        wordllama = _import_wordllama()
        # The wheel ships weights in wordllama/weights and the tokenizer in
        # wordllama/tokenizers. WordLlama.load looks for the tokenizer in the package
        # under "tokenizer/" (singular), misses it and downloads it; pointing cache_dir at
        # the package makes its cache lookup find both files, and disable_download turns
        # any remaining miss into FileNotFoundError instead of a request.
        package_dir = Path(wordllama.__file__).resolve().parent
        with _offline(), _keep_root_logging():
            model = wordllama.WordLlama.load(
                _WORDLLAMA_CONFIG,
                dim=_WORDLLAMA_SHIPPED_DIM,
                trunc_dim=None if dim == _WORDLLAMA_SHIPPED_DIM else dim,
                cache_dir=package_dir,
                disable_download=True,
            )
        _models[dim] = model
        return model


class WordLlamaEmbedder:
    """The bundled local embedder: WordLlama ``l2_supercat`` static token embeddings.

    About 16 MB of weights inside the ``wordllama`` wheel (MIT), no torch, no server, no
    download: the files are read from the installed package. ``dim`` is 256 (shipped) or a
    Matryoshka truncation to 128 or 64. The model is loaded once per process and size.
    Install with ``pip install 'llmcache[semantic]'``.

    >>> emb = WordLlamaEmbedder()          # doctest: +SKIP
    >>> emb.embed(["hi"]).shape            # doctest: +SKIP
    (1, 256)
    """

    def __init__(self, dim: int = 256) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim not in _WORDLLAMA_DIMS:
            raise ValueError(f"dim: WordLlama ships sizes {_WORDLLAMA_DIMS}, got {dim!r}")
        self.dim = dim
        self.name = f"wordllama-{_WORDLLAMA_CONFIG}-{dim}"
        self._model = _load_wordllama(dim)

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Unit rows for ``texts`` (a zero row for an empty text)."""
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        raw = self._model.embed(texts, norm=False, return_np=True)
        return normalize_rows(raw, self.dim)
