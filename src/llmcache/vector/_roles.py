"""Roles of words: what `DirectionGuard` compares (the words that follow
to/from/than/over/into/instead), what `OrderGuard` compares (terms trading places around a
word), and converse relations ("A is slower than B" = "B is faster than A")."""

from __future__ import annotations

import re
from functools import lru_cache

from llmcache.vector import _lexicon as lex
from llmcache.vector._entities import entities
from llmcache.vector._text import CACHE_SIZE as _CACHE
from llmcache.vector._text import stem as _stem
from llmcache.vector._text import tokens as _tokens
from llmcache.vector._text import words as _words

__all__ = ["converse", "roles", "swapped"]


_DIRECTIONAL = {
    "to": "to",
    "into": "to",
    "from": "from",
    "than": "than",
    "over": "over",
    "instead": "instead",
    "towards": "to",
    "toward": "to",
}


# "to" marks a destination only after a verb of moving or converting (or with a "from");
# elsewhere it is mostly an infinitive ("how to", "want to learn").
_TO_VERBS = frozenset(
    map(
        _stem,
        """convert translate migrate move copy send transfer switch
change go get fly drive travel map cast export import upload download port sync add
""".split(),
    )
)


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
        if (
            prep == "to"
            and not has_from
            and not any(stem in _TO_VERBS for _, stem, _ in tokens[max(0, i - 5) : i])
        ):
            continue
        for _, stem, content in tokens[i + 1 : i + 4]:
            if content:
                roles.setdefault(prep, set()).add(stem)
                break
    return {prep: frozenset(stems) for prep, stems in roles.items()}


# ------------------------------------------------------------------ word order, converses


_CAPITAL = re.compile(r"(?<=[\w,] )[A-Z][\w']*")
_QUOTED = re.compile(
    "`[^`\n]{1,80}`|\"[^\"\n]{1,80}\"|(?<!\\w)'[^'\n]{1,80}'(?!\\w)|\u201c[^\u201d\n]{1,80}\u201d"
)


def _adverb(word: str) -> bool:
    return len(word) >= 6 and word.endswith("ly") and not word.endswith(("ply", "fly"))


@lru_cache(maxsize=_CACHE)
def _sequence(text: str) -> tuple[tuple[str, bool, bool], ...]:
    """``(stem, is a term, may be a pivot)`` per word, in order.

    A term is a content word or a word of a name, capitalised mid-sentence even when it is
    a common word ("Is Java faster than Go?"). A pivot is what a role swap turns around (a
    verb, a preposition, a relation noun): not a symmetric word ("and", "between"), not a
    name nor a quoted or code word (those are what take roles), not an -ly adverb (it
    moves freely: "horizontally center" / "center horizontally"). Stems, not synonyms: a
    synonym merged with another word would hide the words that moved.
    """
    names = {word for entity in entities(text) for word in entity.split()}
    names.update(m.group().lower() for m in _CAPITAL.finditer(text) if m.group() != "I")
    quoted = {word for m in _QUOTED.finditer(text) for word in _words(m.group())}
    out = []
    for word, _, content in _tokens(text):
        name = word in names and word not in lex.STOPWORDS
        pivot = not (word in lex.SYMMETRIC or word in quoted or name or _adverb(word))
        out.append((_stem(word), content or word in names, pivot))
    return tuple(out)


def _unique(seq: tuple[tuple[str, bool, bool], ...]) -> dict[str, int]:
    """Position of each stem that occurs once in ``seq``."""
    seen: dict[str, int] = {}
    twice: set[str] = set()
    for i, (stem, _, _) in enumerate(seq):
        if stem in seen:
            twice.add(stem)
        seen[stem] = i
    return {stem: i for stem, i in seen.items() if stem not in twice}


@lru_cache(maxsize=_CACHE)
def swapped(cached: str, query: str) -> tuple[str, str, str] | None:
    """``(x, pivot, y)`` when two terms of both texts stand on either side of a word they
    share and trade places around it ("Did Rome conquer Carthage?" / "Did Carthage conquer
    Rome?": rome, conquer, carthage), else ``None``.

    Moving a clause ("In Go, how do I ..." / "How do I ... in Go?") never does that: a moved
    block keeps its place relative to every word around it. Only words found once in each
    text count, and words that relate two things symmetrically ("and", "between") are no
    pivot.
    """
    sa, sb = _sequence(cached), _sequence(query)
    ua, ub = _unique(sa), _unique(sb)
    common = sorted((i, stem) for stem, i in ua.items() if stem in ub)
    if len(common) < 3:
        return None
    terms = {stem for stem, term, _ in sa if term} & {stem for stem, term, _ in sb if term}
    pivots = {stem for stem, _, pivot in sa if pivot} & {stem for stem, _, pivot in sb if pivot}
    # Along the first text's order, a pivot needs a term before it placed after it in the
    # second text, and a term after it placed before it: the best of each, in one pass.
    before: list[tuple[int, str] | None] = []
    best: tuple[int, str] | None = None
    for _, stem in common:
        before.append(best)
        if stem in terms and (best is None or ub[stem] > best[0]):
            best = (ub[stem], stem)
    after: tuple[int, str] | None = None
    for k in range(len(common) - 1, -1, -1):
        stem = common[k][1]
        left = before[k]
        if (
            after is not None
            and left is not None
            and stem in pivots
            and left[0] > ub[stem] > after[0]
        ):
            return left[1], stem, after[1]
        if stem in terms and (after is None or ub[stem] < after[0]):
            after = (ub[stem], stem)
    return None


def _converse_stems(words: frozenset[str]) -> frozenset[str]:
    return frozenset(map(_stem, words))


_CONVERSES = tuple((_converse_stems(left), _converse_stems(right)) for left, right in lex.CONVERSES)


@lru_cache(maxsize=_CACHE)
def converse(cached: str, query: str) -> tuple[str, str] | None:
    """The pair of opposites when the texts ask the same by turning a relation over: two
    terms trade places around it and it becomes its opposite, with nothing else changed
    ("Is Go faster than Java?" / "Is Java slower than Go?": ``("fast...", "slow...")``)."""
    sa, sb = _sequence(cached), _sequence(query)
    ta = {stem for stem, term, _ in sa if term}
    tb = {stem for stem, term, _ in sb if term}
    only_a, only_b = ta - tb, tb - ta
    if len(only_a) != 1 or len(only_b) != 1:
        return None
    c1, c2 = next(iter(only_a)), next(iter(only_b))
    if not any(
        c1 in left and c2 in right or c1 in right and c2 in left for left, right in _CONVERSES
    ):
        return None
    ua, ub = _unique(sa), _unique(sb)
    ia = [i for i, (stem, _, _) in enumerate(sa) if stem == c1]
    ib = [i for i, (stem, _, _) in enumerate(sb) if stem == c2]
    shared = [s for s in ta & tb if s in ua and s in ub]
    for x in shared:
        for y in shared:
            if any(ua[x] < i < ua[y] for i in ia) and any(ub[y] < j < ub[x] for j in ib):
                return c1, c2
    return None
