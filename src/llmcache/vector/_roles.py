"""What `DirectionGuard` compares: the words that follow to/from/than/over/into/instead."""

from __future__ import annotations

from functools import lru_cache

from llmcache.vector._text import CACHE_SIZE as _CACHE
from llmcache.vector._text import stem as _stem
from llmcache.vector._text import tokens as _tokens

__all__ = ["roles"]


_DIRECTIONAL = {"to": "to", "into": "to", "from": "from", "than": "than", "over": "over",
                "instead": "instead", "towards": "to", "toward": "to"}


# "to" marks a destination only after a verb of moving or converting (or with a "from");
# elsewhere it is mostly an infinitive ("how to", "want to learn").
_TO_VERBS = frozenset(map(_stem, """convert translate migrate move copy send transfer switch
change go get fly drive travel map cast export import upload download port sync add
""".split()))


@lru_cache(maxsize=_CACHE)
def roles(text: str) -> dict[str, frozenset[str]]:
    """For each directional preposition, the content stems that follow it (within 3)."""
    tokens = _tokens(text)
    roles: dict[str, set[str]] = {}
    has_from = any(word == "from" for word, _, _ in tokens)
    for i, (word, _, _) in enumerate(tokens):
        prep = _DIRECTIONAL.get(word)
        if prep is None:
            continue
        if prep == "to" and not has_from and not any(
                stem in _TO_VERBS for _, stem, _ in tokens[max(0, i - 5):i]):
            continue
        for _, stem, content in tokens[i + 1:i + 4]:
            if content:
                roles.setdefault(prep, set()).add(stem)
                break
    return {prep: frozenset(stems) for prep, stems in roles.items()}
