"""`AutoIndex`: an exact `VectorIndex` while small, an HNSW `ApproximateIndex` beyond a size
you choose, with the graph built in a background thread so that no writer waits for it.

>>> index = make_index(2, approximate_above=2)
>>> index.add(["a", "b"], [[1, 0], [0, 1]])
>>> index.add_one("c", [1, 1])   # 3 > 2 rows: a graph is being built in the background,
>>> index.search([1, 0.1])[0].id  # while the exact rows keep answering
'a'
>>> index.wait_ready(timeout=60), index.is_approximate
(True, True)
>>> index.search([1, 0.1])[0].id
'a'
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from llmcache.vector._arguments import check_int, check_real
from llmcache.vector.ann import ApproximateIndex, require_ann
from llmcache.vector.index import IdFilter, IndexOver, Metric, PathLike, SearchHit, VectorIndex

__all__ = ["AutoIndex", "make_index"]

log = logging.getLogger(__name__)

# Below this many tombstones the graph is never rebuilt, whatever their share: a small
# graph would otherwise be rebuilt every few removals.
_MIN_TOMBSTONES = 64
# The builder replays journalled writes outside the write lock (writers go on, and journal
# more) while a round holds more rows than this, for at most _CATCH_UP_ROUNDS rounds; the
# last round runs under the lock, so that round is all the writers ever wait for.
_REPLAY_UNLOCKED_ABOVE = 64
_CATCH_UP_ROUNDS = 8
# A failed build is retried after retry_after seconds, doubled per failure in a row, <= 64x.
_MAX_BACKOFF_DOUBLINGS = 6

# A journalled write: (ids, float32 rows as given) for an add, (ids, None) for a remove.
_Op = tuple[list[str], npt.NDArray[np.float32] | None]


class _Build:
    """One graph build in flight: the rows it starts from and the writes made since."""

    __slots__ = ("done", "journal", "rows")

    def __init__(self, rows: VectorIndex) -> None:
        self.rows: VectorIndex | None = rows  # handed to the new graph, then dropped here
        self.journal: list[_Op] = []
        self.done = threading.Event()  # set once this build is swapped in, failed or dropped


def _replay(index: ApproximateIndex, ops: list[_Op]) -> None:
    for ids, rows in ops:
        if rows is None:
            index.remove(ids)
        else:
            index.add(ids, rows)


class AutoIndex(IndexOver):
    """Exact `VectorIndex` while small; once it holds more than ``approximate_above`` rows a
    graph (`ApproximateIndex`) is built over them and takes over, and it stays approximate,
    so it never flips back and forth around the line. ``approximate_above=None`` never
    switches. The ``ann`` extra is checked when the index is made, not at the switch.

    **The switch.** The add that crosses the line copies the rows (one matrix copy, under
    the write lock) and starts a daemon thread that builds the graph from the copy (15 to
    50 s for 50k x 384 on 2 cores, by load). Meanwhile searches and writes go on against
    the exact index, and every write is also journalled (ids with a copy of the vectors, or
    ids removed). The builder then replays the journal onto the new index, in rounds outside
    the write lock while it is long, the last round under it, and swaps the new index in
    under the same lock. Writes are serialised by that lock, so at the swap the new index
    holds exactly what the exact one does: no write is lost, no removed row comes back.
    `wait_ready` waits for the build; `building` says whether one is in flight.
    ``background=False`` builds inside the add that crosses the line instead, as before:
    that add returns with the graph in place, other writers wait, searches do not.

    **Tombstones.** Removing or replacing a row leaves a dead node in the graph (see
    `ApproximateIndex.tombstones`); later adds reuse them, but removals that outrun adds
    pile them up: searches walk them (a third more distances per query when they number a
    third of the live rows, twice as many when they equal them) and their memory stays.
    When they outnumber ``tombstone_ratio`` times the live rows (and 64), the graph is
    rebuilt from a copy of the live rows in the same way, the old graph serving meanwhile.
    A rebuild inserts each live row again, so at most 1/ratio (4) inserts per removal that
    called for it, and it gives back the memory, which usearch never does. ``None`` never
    rebuilds.

    **Failures.** A build that raises is logged (one warning with the traceback), counted
    in `build_failures`, and the index stays as it was; a later write retries after
    ``retry_after`` seconds, doubled for each failure in a row (up to 64 times).
    `clear` drops a build in flight: its thread finishes and its graph is thrown away.

    Write through the `AutoIndex` only, never through `backend`: such writes would escape
    the journal. ``ann_options`` go to `ApproximateIndex`.

    An add or a remove may start a graph build (the switch, or a rebuild).
    """

    _rows: VectorIndex | ApproximateIndex  # the backend

    def __init__(
        self,
        dim: int,
        *,
        approximate_above: int | None = 50_000,
        capacity: int = 1024,
        metric: Metric = "cosine",
        background: bool = True,
        tombstone_ratio: float | None = 0.25,
        retry_after: float = 60.0,
        **ann_options: Any,
    ) -> None:
        if approximate_above is not None:
            approximate_above = check_int(
                "approximate_above", approximate_above, minimum=0, none=True
            )
            require_ann()  # checked without importing usearch: see ann_installed
        if tombstone_ratio is not None:
            tombstone_ratio = check_real(
                "tombstone_ratio", tombstone_ratio, "a finite number > 0 or None", lambda x: x > 0
            )
        retry_after = check_real(
            "retry_after", retry_after, "finite seconds >= 0", lambda x: x >= 0
        )
        self.approximate_above = approximate_above
        self.background = background
        self.tombstone_ratio = tombstone_ratio
        self.retry_after = retry_after
        self._ann_options = ann_options
        self._rows = VectorIndex(dim, capacity=capacity, metric=metric)
        # Serialises writers, the start of a build, and its last replay and swap. Re-entrant
        # because with background=False the build runs inside the add that holds it.
        self._write_lock = threading.RLock()
        self._build: _Build | None = None
        self._failures = 0
        self._failures_in_row = 0
        self._next_attempt = 0.0  # time.monotonic() before which no build starts

    @property
    def is_approximate(self) -> bool:
        return isinstance(self._rows, ApproximateIndex)

    @property
    def backend(self) -> VectorIndex | ApproximateIndex:
        """The index that holds the rows and answers searches now (read it, never write)."""
        return self._rows

    @property
    def building(self) -> bool:
        """Whether a graph build (the switch, or a rebuild) is in flight."""
        return self._build is not None

    @property
    def build_failures(self) -> int:
        """How many graph builds have failed so far."""
        return self._failures

    def __repr__(self) -> str:
        state = ", building" if self._build is not None else ""
        return f"AutoIndex({self._rows!r}, approximate_above={self.approximate_above}{state})"

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until no graph build is in flight; True if none is when it returns, False if
        ``timeout`` seconds ran out first. It does not say which way a build went: see
        `is_approximate` and `build_failures`. A later write may start another build.

        >>> index = AutoIndex(2, approximate_above=None)
        >>> index.wait_ready(timeout=0)   # nothing to wait for
        True
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while (build := self._build) is not None:
            left = None if deadline is None else deadline - time.monotonic()
            if (left is not None and left <= 0) or not build.done.wait(left):
                return False
        return True

    # ---------------------------------------------------------------- writes

    def _add(self, id_list: list[str], vectors: npt.ArrayLike) -> None:
        with self._write_lock:
            self._rows.add(id_list, vectors)
            if self._build is not None and id_list:
                # Journalled after the add succeeded, so only valid rows are; a copy, since
                # the caller may reuse its array. The replay normalises it as the add did.
                self._build.journal.append((list(id_list), np.array(vectors, np.float32)))
            self._maybe_build()

    def _remove(self, id_list: list[str]) -> int:
        with self._write_lock:
            removed = self._rows.remove(id_list)
            if removed and self._build is not None:  # removing nothing changes nothing
                self._build.journal.append((id_list, None))
            self._maybe_build()
        return removed

    def clear(self) -> None:
        """Remove every row; a build in flight is dropped. An approximate index stays so."""
        with self._write_lock:
            self._rows.clear()
            build, self._build = self._build, None
        if build is not None:
            build.done.set()  # waiters see nothing in flight; its thread sees it was dropped

    # ---------------------------------------------------------------- builds

    def _maybe_build(self) -> None:
        # Caller holds the write lock.
        if self._build is not None or time.monotonic() < self._next_attempt:
            return
        impl = self._rows
        copy_rows: Callable[[], VectorIndex]
        if isinstance(impl, VectorIndex):
            if self.approximate_above is None or len(impl) <= self.approximate_above:
                return
            copy_rows = impl.copy
        else:
            dead = impl.tombstones
            if (
                self.tombstone_ratio is None
                or dead < _MIN_TOMBSTONES
                or dead <= self.tombstone_ratio * len(impl)
            ):
                return
            copy_rows = impl.exact_copy
        build: _Build | None = None
        try:
            # One matrix copy under the rows' lock (10 ms at 50k x 384, 18 ms at 100k): the
            # builder must not read rows that writers move (a removal fills its hole).
            build = self._build = _Build(copy_rows())
            if self.background:
                threading.Thread(
                    target=self._run, args=(build,), daemon=True, name="llmcache-autoindex-build"
                ).start()
        except Exception as exc:  # no memory for the copy, no thread left: a failed build
            self._fail(build, exc)
            return
        if not self.background:
            self._run(build)

    def _run(self, build: _Build) -> None:
        """Build a graph over ``build.rows``, catch up with the journal, swap it in."""
        try:
            rows, build.rows = build.rows, None
            assert rows is not None
            fresh = ApproximateIndex.from_exact(rows, **self._ann_options)
            for round_ in range(_CATCH_UP_ROUNDS + 1):
                with self._write_lock:
                    if self._build is not build:
                        return  # dropped by clear(): throw the graph away
                    ops, build.journal = build.journal, []
                    if (
                        round_ == _CATCH_UP_ROUNDS
                        or sum(len(ids) for ids, _ in ops) <= _REPLAY_UNLOCKED_ABOVE
                    ):
                        _replay(fresh, ops)
                        self._rows = fresh  # one reference: searches see old or new, whole
                        self._build = None
                        self._failures_in_row = 0
                        # Removals replayed above leave tombstones in the new graph too;
                        # enough of them call for a rebuild now, not at some later write.
                        self._maybe_build()
                        return
                _replay(fresh, ops)  # outside the lock: writers go on and journal more
        except BaseException as exc:
            self._fail(build, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            build.done.set()

    def _fail(self, build: _Build | None, exc: BaseException) -> None:
        with self._write_lock:
            if self._build is not build:
                return  # dropped by clear() meanwhile: nobody waits for its result
            self._build = None
            self._failures += 1
            self._failures_in_row += 1
            delay = self.retry_after * 2 ** min(self._failures_in_row - 1, _MAX_BACKOFF_DOUBLINGS)
            self._next_attempt = time.monotonic() + delay
            kind = "old graph" if self.is_approximate else "exact rows"
        log.warning(
            "AutoIndex: building the graph failed (%s); searches stay on the %s, "
            "next try at a write after %.0f s",
            exc,
            kind,
            delay,
            exc_info=exc,
        )

    # ---------------------------------------------------------------- reads

    def _search(
        self, query: npt.ArrayLike, k: int, threshold: float | None, filter_ids: IdFilter | None
    ) -> list[SearchHit]:
        return self._rows.search(query, k, threshold=threshold, filter_ids=filter_ids)

    def _search_batch(
        self, queries: npt.ArrayLike, k: int, threshold: float | None, filter_ids: IdFilter | None
    ) -> list[list[SearchHit]]:
        return self._rows.search_batch(queries, k, threshold=threshold, filter_ids=filter_ids)

    # ---------------------------------------------------------------- persistence

    def save(self, path: PathLike) -> None:
        """Save in the format of the current backend; `load` tells the two apart. During a
        build that is the index serving now (the exact rows, or the old graph), never a
        half-built graph: the build goes on, and `load` starts it again if still due."""
        self._rows.save(path)

    @classmethod
    def load(
        cls, path: PathLike, *, approximate_above: int | None = 50_000, **options: Any
    ) -> AutoIndex:
        """Load what any of the three index classes saved (a zip archive is exact).
        ``options`` are those of `AutoIndex`. An exact file above ``approximate_above``
        rows, or a graph with too many tombstones, starts its build at once."""
        with open(path, "rb") as f:
            exact = f.read(2) == b"PK"
        impl = VectorIndex.load(path) if exact else ApproximateIndex.load(path)
        index = cls(impl.dim, approximate_above=approximate_above, **options)
        with index._write_lock:
            index._rows = impl
            index._maybe_build()
        return index


def make_index(dim: int, *, approximate_above: int | None = 50_000, **options: Any) -> AutoIndex:
    """An index that is exact up to ``approximate_above`` rows and approximate beyond.

    ``options`` go to `AutoIndex` (``capacity``, ``background``, ``tombstone_ratio``,
    ``retry_after``, and `ApproximateIndex` settings such as ``expansion_search``).
    ``ImportError`` naming the ``ann`` extra when usearch is missing, unless
    ``approximate_above`` is None.

    >>> make_index(3, approximate_above=None)
    AutoIndex(VectorIndex(dim=3, size=0, capacity=1024), approximate_above=None)
    """
    return AutoIndex(dim, approximate_above=approximate_above, **options)
