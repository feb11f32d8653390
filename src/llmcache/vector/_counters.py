"""The counters a semantic cache reports in ``stats()``: the same names on every tier
(in-process `SemanticCache`, `PostgresSemanticCache`), so their figures compare."""

from __future__ import annotations

#: Lookups, writes and the judge's verdicts.
SHARED_COUNTERS = (
    "exact_hits",
    "semantic_hits",
    "misses",
    "sets",
    "expirations",
    "verified",
    "refused",
)


def new_counters(*own: str) -> dict[str, int]:
    """Zeroed counters: the shared ones, then a tier's ``own``."""
    return dict.fromkeys((*SHARED_COUNTERS, *own), 0)
