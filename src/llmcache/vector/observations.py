"""What a semantic cache with a stated error bound has learned: labeled observations, and
the thresholds they allow per partition and per entry.

Each `Observation` is one candidate whose fate is known (see `llmcache.vector.bound`): a
judge's verdict, a comparison of the model's fresh answer with the cached one, or a
labeled pair given for a warm start. An `ObservationLog` keeps the newest
``max_observations`` and answers, for a candidate, whether it may be served:

- *partition* level: the partition's own observations, when they certify a threshold;
- else the *cache* level: every observation of the cache (labeled pairs belong to no
  partition and count only here), which pools partitions' traffic;
- *entry* level: a cached entry never serves a candidate at or below the highest
  similarity at which it was found wrong (a rejected rephrasing, an answer that differed),
  whatever the levels above allow: one entry's known mistake is never outvoted.

Observations are plain JSON rows (``[id, similarity, correct, source, partition, entry,
at]``): saved in the cache's manifest and shared through its store as one entry per
embedder, merged by id, so processes sharing a Redis tier learn from each other's labels.
Rows read back are untrusted: malformed ones are dropped.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from llmcache.entry import CachedResponse, JSONValue
from llmcache.keys import fingerprint, hash_bytes
from llmcache.vector._arguments import check_int, check_real
from llmcache.vector._json_lines import json_lines
from llmcache.vector.bound import (
    DEFAULT_CONFIDENCE,
    Threshold,
    check_confidence,
    check_max_error,
    learn_threshold,
)

__all__ = [
    "SOURCES",
    "Decision",
    "Observation",
    "ObservationLog",
    "PairSide",
    "observations_entry",
    "observations_key",
    "read_labeled_pairs",
    "rows_from_entry",
]

#: Where labels come from.
SOURCES = frozenset({"judge", "compare", "pairs"})
_FORMAT = "llmcache-observations"
_VERSION = 1
_CACHE = ""  # the cache-wide level's name in the thresholds memo

#: One side of a labeled pair: a question, or a chat (a list of messages).
PairSide = str | list[dict[str, Any]]


def _side(value: object) -> bool:
    return (isinstance(value, str) and bool(value.strip())) or (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in value
        )
    )


def read_labeled_pairs(path: str | os.PathLike[str]) -> list[tuple[PairSide, PairSide, bool]]:
    """``(a, b, same_answer)`` from a pairs file (the format of ``llmcache eval``: one JSON
    object a line, ``a`` and ``b`` questions or chats); ``ValueError`` naming the line for
    anything malformed."""
    pairs: list[tuple[PairSide, PairSide, bool]] = []
    for n, obj in json_lines(path):
        if (
            not isinstance(obj, dict)
            or not _side(obj.get("a"))
            or not _side(obj.get("b"))
            or not isinstance(obj.get("same_answer"), bool)
        ):
            raise ValueError(
                f'{path}:{n}: expected "a" and "b" (texts or lists of '
                'messages) and "same_answer" true or false'
            )
        pairs.append((obj["a"], obj["b"], obj["same_answer"]))
    return pairs


@dataclass(frozen=True, slots=True)
class Observation:
    """A candidate at ``similarity`` to cached ``entry`` in ``partition`` (``None`` for a
    labeled pair outside any partition), whose cached answer was right or not."""

    similarity: float
    correct: bool
    source: str
    partition: str | None = None
    entry: str | None = None
    at: float = 0.0
    id: str = ""

    def row(self) -> list[JSONValue]:
        return [
            self.id,
            self.similarity,
            self.correct,
            self.source,
            self.partition,
            self.entry,
            self.at,
        ]

    @classmethod
    def from_row(cls, row: object) -> Observation | None:
        """The observation of a JSON row, or ``None`` if it is malformed."""
        if not isinstance(row, list) or len(row) != 7:
            return None
        id_, sim, correct, source, partition, entry, at = row
        if not (
            isinstance(id_, str)
            and id_
            and isinstance(correct, bool)
            and isinstance(source, str)
            and source in SOURCES
            and (partition is None or isinstance(partition, str))
            and (entry is None or isinstance(entry, str))
        ):
            return None
        if (
            not all(
                isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
                for x in (sim, at)
            )
            or not -1.0 <= sim <= 1.0
        ):
            return None
        return cls(float(sim), correct, source, partition, entry, float(at), id_)


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a candidate may be served on what was learned, and why.

    ``level`` is where the threshold came from (``"partition"``, ``"cache"``, or ``"none"``
    when nothing is certified); ``upper`` bounds the wrong share at or above ``threshold``
    (from ``observations`` labeled candidates); ``floor`` is the entry's highest similarity
    known wrong; ``explore`` is the chance of calling the model anyway on a served one.
    """

    serve: bool
    level: str
    threshold: float | None
    upper: float
    observations: int
    floor: float | None
    explore: float

    def metadata(self) -> dict[str, JSONValue]:
        return {
            "level": self.level,
            "threshold": self.threshold,
            "upper": self.upper,
            "observations": self.observations,
        }


class ObservationLog:
    """Labeled observations and the thresholds they certify; thread-safe.

    ``max_error`` and ``confidence`` are the stated bound (see `llmcache.vector.bound`);
    ``explore`` is the largest chance that a candidate served on a learned threshold calls
    the model anyway, to keep labels coming where hits are served (scaled by how much of
    the bound the estimate uses); ``max_observations`` keeps the newest.
    """

    def __init__(
        self,
        *,
        max_error: float,
        confidence: float = DEFAULT_CONFIDENCE,
        explore: float = 0.05,
        max_observations: int = 10_000,
    ) -> None:
        self.max_error = check_max_error(max_error)
        self.confidence = check_confidence(confidence)
        self.explore = check_real(
            "explore", explore, "a probability in [0, 1]", lambda x: 0.0 <= x <= 1.0
        )
        self.max_observations = check_int("max_observations", max_observations, minimum=1)
        self._lock = threading.Lock()
        self._rows: OrderedDict[str, Observation] = OrderedDict()  # oldest first
        self._by_partition: dict[str | None, dict[str, Observation]] = {}
        self._memo: dict[str, Threshold] = {}
        self._floors: dict[str | None, dict[str, float]] = {}
        self._changed = False

    # ------------------------------------------------------------------ adding

    def _insert(self, obs: Observation) -> bool:
        if obs.id in self._rows:
            return False
        self._rows[obs.id] = obs
        self._by_partition.setdefault(obs.partition, {})[obs.id] = obs
        self._memo.pop(_CACHE, None)
        self._memo.pop(obs.partition or _CACHE, None)
        self._floors.pop(obs.partition, None)
        return True

    def _trim(self) -> None:
        if len(self._rows) <= self.max_observations:
            return
        ordered = sorted(self._rows.values(), key=lambda o: (o.at, o.id))
        for obs in ordered[: len(ordered) - self.max_observations]:
            del self._rows[obs.id]
            members = self._by_partition[obs.partition]
            del members[obs.id]
            if not members:
                del self._by_partition[obs.partition]
            self._memo.pop(obs.partition or _CACHE, None)
            self._floors.pop(obs.partition, None)
        self._memo.pop(_CACHE, None)

    def add(
        self,
        similarity: float,
        correct: bool,
        source: str,
        *,
        partition: str | None = None,
        entry: str | None = None,
        at: float = 0.0,
    ) -> Observation:
        """Record one labeled candidate; returns it (with a fresh id)."""
        if source not in SOURCES:
            raise ValueError(f"source: expected one of {sorted(SOURCES)}, got {source!r}")
        similarity = check_real(
            "similarity", similarity, "a cosine in [-1, 1]", lambda x: -1.0 <= x <= 1.0
        )
        obs = Observation(
            similarity, bool(correct), source, partition, entry, at, os.urandom(8).hex()
        )
        with self._lock:
            self._insert(obs)
            self._trim()
            self._changed = True
        return obs

    def merge(self, observations: Iterable[Observation]) -> int:
        """Take observations made elsewhere (deduplicated by id); how many were new."""
        with self._lock:
            added = sum(self._insert(obs) for obs in observations)
            self._trim()
            return added

    def snapshot(self) -> list[Observation]:
        """Every observation kept, oldest first."""
        with self._lock:
            return list(self._rows.values())

    def take_changed(self) -> bool:
        """Whether observations were added here since the last call (then: sync them)."""
        with self._lock:
            changed, self._changed = self._changed, False
            return changed

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    # ------------------------------------------------------------------ deciding

    def _level(self, name: str, members: Iterable[Observation]) -> Threshold:
        found = self._memo.get(name)
        if found is None:
            rows = list(members)
            found = learn_threshold(
                [o.similarity for o in rows],
                [o.correct for o in rows],
                max_error=self.max_error,
                confidence=self.confidence,
            )
            self._memo[name] = found
        return found

    def threshold(self, partition: str | None) -> tuple[str, Threshold]:
        """The level that certifies a threshold for ``partition`` and what it found."""
        with self._lock:
            if partition is not None and partition in self._by_partition:
                own = self._level(partition, self._by_partition[partition].values())
                if own.threshold is not None:
                    return "partition", own
            every = self._level(_CACHE, self._rows.values())
            return ("cache" if every.threshold is not None else "none"), every

    def floor(self, partition: str | None, entry: str) -> float | None:
        """The highest similarity at which ``entry`` was found wrong, if ever."""
        with self._lock:
            floors = self._floors.get(partition)
            if floors is None:
                floors = self._floors[partition] = {}
                for obs in self._by_partition.get(partition, {}).values():
                    if not obs.correct and obs.entry is not None:
                        floors[obs.entry] = max(obs.similarity, floors.get(obs.entry, -math.inf))
            return floors.get(entry)

    def decide(self, partition: str | None, entry: str, similarity: float) -> Decision:
        """May a candidate of ``entry`` at ``similarity`` be served on learned thresholds?"""
        level, found = self.threshold(partition)
        floor = self.floor(partition, entry)
        serve = (
            found.threshold is not None
            and similarity >= found.threshold
            and (floor is None or similarity > floor)
        )
        explore = self.explore * min(1.0, found.upper / self.max_error) if serve else 0.0
        return Decision(
            serve, level, found.threshold, found.upper, found.observations, floor, explore
        )

    def stats(self) -> dict[str, Any]:
        """Observations kept (per source, and wrong ones) and the cache-wide threshold."""
        with self._lock:
            rows = list(self._rows.values())
        level, found = self.threshold(None)
        sources = {name: sum(o.source == name for o in rows) for name in sorted(SOURCES)}
        return {
            "observations": len(rows),
            "wrong": sum(not o.correct for o in rows),
            "sources": sources,
            "max_error": self.max_error,
            "confidence": self.confidence,
            "threshold": found.threshold,
            "upper": found.upper if found.threshold is not None else None,
        }


# ------------------------------------------------------------------ sharing through a store


def observations_key(embedder: str) -> str:
    """The store key of the observations made under the embedder identified by
    ``embedder`` (similarities of another embedder mean something else)."""
    return hash_bytes(f"{_FORMAT}\0{embedder}".encode())


def observations_entry(embedder: str, observations: Iterable[Observation]) -> CachedResponse:
    """The store entry holding ``observations`` (plain JSON, never pickled)."""
    rows = [o.row() for o in observations]
    return CachedResponse(
        content={"format": _FORMAT, "version": _VERSION, "embedder": embedder, "rows": rows},
        fingerprint=fingerprint(f"{_FORMAT}\0{embedder}".encode()),
    )


def rows_from_entry(embedder: str, entry: CachedResponse | None) -> list[Observation]:
    """The observations of a store entry written by `observations_entry` for ``embedder``;
    nothing for anything else (another embedder, a foreign or corrupt entry)."""
    if entry is None or entry.fingerprint != fingerprint(f"{_FORMAT}\0{embedder}".encode()):
        return []
    content = entry.content
    if (
        not isinstance(content, dict)
        or content.get("format") != _FORMAT
        or content.get("version") != _VERSION
        or content.get("embedder") != embedder
        or not isinstance(content.get("rows"), list)
    ):
        return []
    return [obs for obs in map(Observation.from_row, content["rows"]) if obs is not None]
