"""Guards: cheap textual checks that veto a semantic hit embeddings would wrongly allow.

Sentence embeddings average words, so "order 48213" and "order 48231", "is it safe" and
"is it not safe", "capital of France" and "capital of Germany" score close to 1. Each guard
compares the cached request's text with the new one for one kind of difference and
returns a reason to refuse, or ``None``. They are pure Python over precompiled regexes and
run only on candidates already above the similarity threshold.

=================  ===================================================================
``numbers``        numbers, amounts, percentages, dates, times, weekdays, months,
                   relative days, versions, ids, emails and URLs (normalised multisets)
``negation``       negation cues (not, no, never, without, n't ...) counted per text
``antonyms``       a word on one side, its opposite on the other (buy/sell, before/after,
                   enable/disable ...), and un-/dis-/in- prefixed forms
``entities``       names and code: capitalised words mid-sentence, acronyms, quoted
                   strings, snake_case/camelCase, dotted names, files, paths, long flags
``quantifiers``    all/every/each vs any/some/at least one vs most, both vs either ...
``symbols``        operators and their operands in order ("7 * 3" vs "7 + 3", "x++" vs
                   "++x"), quoting in code, command-line flags, names ending in a
                   symbol (C++, C#, B+), lone single letters ("the y key", "plan b")
``direction``      the same words in other roles ("from A to B" vs "from B to A")
``order``          two terms trading places around a word they share ("Did Rome conquer
                   Carthage?" vs "Did Carthage conquer Rome?")
``history``        two chats ending on the same question after histories that changed
                   (another subject, the opposite goal), not only grew
``scope``          content words (stemmed, stopwords and question framing removed,
                   everyday synonyms joined) must match up to a small tolerance
=================  ===================================================================

A converse ("Is Go faster than Java?" / "Is Java slower than Go?": the terms trade places
and the relation turns into its opposite, nothing else changes) asks the same question:
the antonym, direction, order and scope guards let it through. Every guard ignores the
courtesy that opens or closes a text ("Hi! ... Thanks so much!", `_text.plain`). A chat is
compared as the transcript `SemanticCache` makes of it (`llmcache.vector._conversation`):
the facts of its whole history count, and the scope and order guards read it turn by turn.

>>> guards = default_guards()
>>> first_veto(guards, "Where is order 48213?", "Where's order #48231?")
('numbers', 'numbers differ: num:48213 vs num:48231')
>>> first_veto(guards, "Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?")[0]
'negation'
>>> first_veto(guards, "What is the capital of France?", "What's the capital of Germany?")[0]
'entities'
>>> first_veto(guards, "How do I reverse a list in Python?",
...            "what's the best way to reverse a list in python") is None
True
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import ClassVar

from llmcache.vector import _lexicon as lex
from llmcache.vector._conversation import parse as _turns
from llmcache.vector._entities import entities as _entities
from llmcache.vector._entities import padded as _padded
from llmcache.vector._numbers import extract_numbers
from llmcache.vector._roles import converse as _converse
from llmcache.vector._roles import roles as _roles
from llmcache.vector._roles import swapped as _swapped
from llmcache.vector._symbols import commutative_swap as _commutative_swap
from llmcache.vector._symbols import letters as _letters
from llmcache.vector._symbols import symbols as _symbols
from llmcache.vector._text import CACHE_SIZE as _CACHE
from llmcache.vector._text import content_words as _content
from llmcache.vector._text import is_typo as _is_typo
from llmcache.vector._text import plain as _plain
from llmcache.vector._text import stem as _stem
from llmcache.vector._text import tokens as _tokens
from llmcache.vector._text import words as _words

__all__ = [
    "AntonymGuard",
    "DirectionGuard",
    "EntityGuard",
    "Guard",
    "HistoryGuard",
    "NegationGuard",
    "NumberGuard",
    "OrderGuard",
    "QuantifierGuard",
    "ScopeGuard",
    "SymbolGuard",
    "default_guards",
    "first_veto",
    "guards_by_name",
]


class Guard(ABC):
    """One check between a cached request's text and a new one.

    Subclasses set ``name`` (used in statistics and to switch guards off) and implement
    `veto`. Guards must be symmetric and must not raise on any text.
    """

    name: ClassVar[str] = "guard"

    @abstractmethod
    def veto(self, cached: str, query: str) -> str | None:
        """A short reason why ``cached``'s answer must not serve ``query``, or ``None``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def first_veto(guards: Iterable[Guard], cached: str, query: str) -> tuple[str, str] | None:
    """``(guard name, reason)`` of the first guard that vetoes, or ``None``."""
    for guard in guards:
        reason = guard.veto(cached, query)
        if reason is not None:
            return guard.name, reason
    return None


def _fmt(items: Iterable[str]) -> str:
    shown = sorted(items)
    return ", ".join(shown[:4]) + (" ..." if len(shown) > 4 else "") if shown else "-"


# -------------------------------------------------------------------------------- numbers


_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")


@lru_cache(maxsize=_CACHE)
def _digit_order(text: str) -> tuple[str, ...]:
    return tuple(d.replace(",", "") for d in _DIGITS.findall(text))


class NumberGuard(Guard):
    """Veto when numbers, amounts, dates, times, versions, ids, emails or URLs differ.

    Values are normalised ("$5" = "5 dollars", "1,000" = "1000", "two" = "2",
    "March 5th" = "5 March") and compared as multisets; the same digits in another order
    ("from 2 to 5", "from 5 to 2") veto too.

    >>> NumberGuard().veto("Book a table for 2 at 7pm", "book a table for two at 19:00")
    >>> NumberGuard().veto("Is 2024-03-05 a holiday?", "Is 2024-03-06 a holiday?")
    'numbers differ: date:2024-3-5 vs date:2024-3-6'
    """

    name = "numbers"

    def veto(self, cached: str, query: str) -> str | None:
        cached, query = _plain(cached), _plain(query)
        a, b = extract_numbers(cached), extract_numbers(query)
        if a != b:
            return f"numbers differ: {_fmt((a - b).elements())} vs {_fmt((b - a).elements())}"
        da, db = _digit_order(cached), _digit_order(query)
        # "from 2 to 5" is not "from 5 to 2", but "17 + 26" is "26 + 17"
        if da != db and sorted(da) == sorted(db) and not _commutative_swap(cached, query):
            return f"numbers in another order: {' '.join(da)} vs {' '.join(db)}"
        return None


# ------------------------------------------------------------------------------- negation


@lru_cache(maxsize=_CACHE)
def _negations(text: str) -> int:
    return sum(1 for w in _words(text) if w in lex.NEGATION_CUES or w.endswith("n't"))


class NegationGuard(Guard):
    """Veto when the texts hold a different number of negation cues.

    >>> NegationGuard().veto("Why won't my car start?", "why doesn't my car start")
    >>> NegationGuard().veto("Can I pay by card?", "Can't I pay by card?")
    'negation differs: 0 cue(s) vs 1'
    """

    name = "negation"

    def veto(self, cached: str, query: str) -> str | None:
        cached, query = _plain(cached), _plain(query)
        a, b = _negations(cached), _negations(query)
        return None if a == b else f"negation differs: {a} cue(s) vs {b}"


# ------------------------------------------------------------------------------- antonyms

_ANTONYMS = tuple(
    (frozenset(map(_stem, left)) | left, frozenset(map(_stem, right)) | right)
    for left, right in lex.ANTONYMS
)
# word -> the antonym pairs it belongs to, so a check looks only at pairs its words touch
_PAIRS_OF: dict[str, list[int]] = {}
for _i, (_left, _right) in enumerate(_ANTONYMS):
    for _word in _left | _right:
        _PAIRS_OF.setdefault(_word, []).append(_i)


@lru_cache(maxsize=_CACHE)
def _word_forms(text: str) -> frozenset[str]:
    words = [w.split("'")[0] for w in _words(text)]
    return frozenset(words) | frozenset(map(_stem, words))


class AntonymGuard(Guard):
    """Veto when one text has a word and the other its opposite (and not the word).

    >>> AntonymGuard().veto("When should I buy Tesla stock?", "When should I sell Tesla stock?")
    'opposites: buy vs sell'
    >>> AntonymGuard().veto("how to install docker", "how to uninstall docker")
    'opposites: install vs uninstall'
    >>> AntonymGuard().veto("log in to the app", "login into the app")
    """

    name = "antonyms"

    def veto(self, cached: str, query: str) -> str | None:
        cached, query = _plain(cached), _plain(query)
        a, b = _word_forms(cached), _word_forms(query)
        touched = sorted({i for word in a ^ b for i in _PAIRS_OF.get(word, ())})
        for left, right in (_ANTONYMS[i] for i in touched):
            for x, y in ((a, b), (b, a)):
                if x & left and y & right and not x & right and not y & left:
                    first, second = sorted(x & left)[0], sorted(y & right)[0]
                    if x is b:
                        first, second = second, first
                    if _converse(cached, query) is not None:
                        return None  # "A slower than B" is "B faster than A"
                    return f"opposites: {first} vs {second}"
        only_a, only_b = a - b, b - a
        for word in only_a:
            for prefix in lex.NEGATING_PREFIXES:
                if len(word) >= 4 and prefix + word in only_b:
                    return f"opposites: {word} vs {prefix + word}"
                if (
                    word.startswith(prefix)
                    and len(word) - len(prefix) >= 4
                    and word[len(prefix) :] in only_b
                ):
                    return f"opposites: {word} vs {word[len(prefix) :]}"
        return None


# ------------------------------------------------------------------------------- entities


def _mentions(padded: str, entity: str) -> bool:
    """Whether ``padded`` holds ``entity``, or its plural or singular ("Mondays")."""
    if f" {entity} " in padded:
        return True
    if len(entity) <= 3 or " " in entity:
        return False
    return f" {entity[:-1]} " in padded if entity.endswith("s") else f" {entity}s " in padded


class EntityGuard(Guard):
    """Veto when a name, code identifier, file or quoted string of one text is absent from
    the other (compared case-insensitively as words).

    >>> EntityGuard().veto("How do I center a div in CSS?", "how do i center a div in css")
    >>> EntityGuard().veto("Open config.yaml", "Open config.toml")
    'entities differ: config yaml vs config toml'
    """

    name = "entities"

    def veto(self, cached: str, query: str) -> str | None:
        cached, query = _plain(cached), _plain(query)
        pa, pb = _padded(cached), _padded(query)
        missing_a = [e for e in _entities(cached) if not _mentions(pb, e)]
        missing_b = [e for e in _entities(query) if not _mentions(pa, e)]
        if not missing_a and not missing_b:
            return None
        return f"entities differ: {_fmt(missing_a)} vs {_fmt(missing_b)}"


# ---------------------------------------------------------------------- scope, direction


def _adverb(word: str) -> bool:
    return word.endswith("ly") and len(word) > 4


def _drop_compounds(only: dict[str, str], other_only: dict[str, str], other: str) -> None:
    """ "quicksort" in one text and "quick sort" in the other are one word."""
    tokens = _tokens(other)
    for stem, word in list(only.items()):
        for (w1, s1, _), (w2, s2, _) in zip(tokens, tokens[1:], strict=False):
            if w1 + w2 == word or _stem(w1 + w2) == stem:
                del only[stem]
                other_only.pop(s1, None)
                other_only.pop(s2, None)
                break


class ScopeGuard(Guard):
    """Veto when the texts are about different things: their content words differ (in a
    chat transcript, turn by turn: the last questions, the user's earlier turns, the
    assistant's; a transcript never matches a text without earlier turns).

    Content words are lower-cased and stemmed; stopwords and question framing ("how do I",
    "what's the best way to", "can you tell me") are dropped; everyday synonyms
    (buy/purchase, fix/repair, photo/picture ...) count as one word; a word one edit away
    from a word of the other text is taken for a typo. Quantifiers, comparatives and
    why/when/where/who are content. Each text may keep words the other lacks up to a
    weight of ``tolerance``: an ``-ly`` adverb or a word that hardly changes a request
    ("app", "account", "home", "some") weighs 0.5, any other word 1. Two texts without a
    content word match only if they have the same words.

    >>> ScopeGuard().veto("How can I purchase a ticket?", "what's the way to buy tickets")
    >>> ScopeGuard().veto("How do I cook rice?", "How do I cook rice in a microwave?")
    'scope differs: - vs microwave'
    >>> ScopeGuard().veto("Who founded Apple", "When was Apple founded")
    'scope differs: who vs when'
    """

    name = "scope"

    def __init__(self, tolerance: float = 0.5) -> None:
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
        self.tolerance = tolerance

    def veto(self, cached: str, query: str) -> str | None:
        cached, query = _plain(cached), _plain(query)
        ta, tb = _turns(cached), _turns(query)
        if ta is None and tb is None:
            return self._compare(cached, query)
        if ta is None or tb is None:
            return "history differs: earlier turns on one side only"
        for part, x, y in (
            ("", ta.last, tb.last),
            ("user turns: ", " ".join(ta.user), " ".join(tb.user)),
            ("assistant turns: ", " ".join(ta.assistant), " ".join(tb.assistant)),
        ):
            reason = self._compare(x, y)
            if reason is not None:
                return part + reason
        return None

    @staticmethod
    def unshared(cached: str, query: str) -> tuple[dict[str, str], dict[str, str]]:
        """The content words (stem -> word) each text holds and the other lacks, after
        typos, compounds and a converse relation are matched up."""
        a, b = _content(cached), _content(query)
        only_a = {s: w for s, w in a.items() if s not in b}
        only_b = {s: w for s, w in b.items() if s not in a}
        for sa, wa in list(only_a.items()):
            for sb, wb in list(only_b.items()):
                if _is_typo(wa, wb):
                    del only_a[sa], only_b[sb]
                    break
        _drop_compounds(only_a, only_b, query)
        _drop_compounds(only_b, only_a, cached)
        if only_a and only_b and (pair := _converse(cached, query)) is not None:
            only_a.pop(pair[0], None)  # the relation turned over, with its terms
            only_b.pop(pair[1], None)
        return only_a, only_b

    def _compare(self, cached: str, query: str) -> str | None:
        a, b = _content(cached), _content(query)
        only_a, only_b = self.unshared(cached, query)
        if not a and not b and not cached.strip() and not query.strip():
            return None  # two chats without earlier turns of one kind
        if not a or not b:
            # Nothing to compare ("thanks!" vs "hello"): only the same words may match,
            # unless both are formulas ("What's 15 / 3?"), which other guards compare.
            if not a and not b and _symbols(cached).ops and _symbols(query).ops:
                return None
            return None if _padded(cached) == _padded(query) else "scope: no content words"
        # An adverb added is a nuance, one replaced by another a change ("ripen quickly" /
        # "ripen slowly"): adverbs weigh less only when one side alone has them.
        adverbs = not (any(map(_adverb, only_a.values())) and any(map(_adverb, only_b.values())))
        weight = max(self._weight(only_a.values(), adverbs), self._weight(only_b.values(), adverbs))
        if weight <= self.tolerance:
            return None
        return f"scope differs: {_fmt(only_a.values())} vs {_fmt(only_b.values())}"

    @staticmethod
    def _weight(words: Iterable[str], adverbs: bool = True) -> float:
        return sum(0.5 if w in lex.SOFT or (adverbs and _adverb(w)) else 1.0 for w in words)

    def __repr__(self) -> str:
        return f"ScopeGuard(tolerance={self.tolerance})"


class HistoryGuard(Guard):
    """Veto when two chats end on the same question after histories that changed rather
    than grew: the user's earlier turns on each side hold content words the other's lack
    (more than the scope guard's ``tolerance`` allows).

    The same follow-up ("Is it worth it?", "What should I eat tonight?") after another
    subject or the opposite goal is another question; a history that only grew (chatter,
    one more fact) is left to the scope guard, as is a chat whose last question changed
    too. Unlike ``scope``, this veto is never sent to a judge: these are the traps a
    conversation cache meets most, and a judge that errs once in twenty would serve some.

    >>> HistoryGuard().veto("User: I want to gain weight.\\nUser: What should I eat?",
    ...                     "User: I want to slim down.\\nUser: What should I eat?")
    'same question after another history: gain, weight vs slim'
    >>> HistoryGuard().veto("User: I want to gain weight.\\nUser: What should I eat?",
    ...                     "User: I really want to gain weight.\\nUser: What should I eat?")
    """

    name = "history"

    def __init__(self, tolerance: float = 0.5) -> None:
        self._scope = ScopeGuard(tolerance)

    def veto(self, cached: str, query: str) -> str | None:
        ta, tb = _turns(_plain(cached)), _turns(_plain(query))
        if ta is None or tb is None or _padded(ta.last) != _padded(tb.last):
            return None
        earlier_a, earlier_b = " ".join(ta.user), " ".join(tb.user)
        only_a, only_b = self._scope.unshared(earlier_a, earlier_b)
        if not only_a or not only_b or self._scope._compare(earlier_a, earlier_b) is None:
            return None
        return f"same question after another history: {_fmt(only_a.values())} vs " + _fmt(
            only_b.values()
        )

    def __repr__(self) -> str:
        return f"HistoryGuard(tolerance={self._scope.tolerance})"


class DirectionGuard(Guard):
    """Veto when the same words swap roles around to/from/than/over/into.

    >>> DirectionGuard().veto("convert celsius to fahrenheit", "convert fahrenheit to celsius")
    "roles differ: 'to' fahrenheit vs celsius"
    >>> DirectionGuard().veto("how to convert a string to an int", "convert string into int")
    """

    name = "direction"

    def veto(self, cached: str, query: str) -> str | None:
        cached, query = _plain(cached), _plain(query)
        ra, rb = _roles(cached), _roles(query)
        ca, cb = _content(cached), _content(query)
        for prep in ra.keys() & rb.keys():
            moved_a = [s for s in ra[prep] - rb[prep] if s in cb]
            moved_b = [s for s in rb[prep] - ra[prep] if s in ca]
            if moved_a and moved_b and _converse(cached, query) is None:
                return f"roles differ: {prep!r} {_fmt(moved_a)} vs {_fmt(moved_b)}"
        return None


# ------------------------------------------------------ order, symbols, quantifiers


def _reworded(a: str, b: str) -> bool:
    """Whether each text holds a word (stemmed, stopwords too) the other lacks, three or
    more in all: a sentence rebuilt, not the same sentence with two terms exchanged ("my
    son is taller than my daughter" / "my daughter's taller than my son")."""
    x, y = (Counter(_stem(w.split("'")[0]) for w in _words(_plain(t))) for t in (a, b))
    only_x, only_y = sum((x - y).values()), sum((y - x).values())
    return only_x > 0 and only_y > 0 and only_x + only_y >= 3


class OrderGuard(Guard):
    """Veto when two terms of both texts trade places around a word both share: the same
    words, other roles (word-averaging embeddings score such pairs 1.0).

    >>> OrderGuard().veto("Did Rome conquer Carthage?", "Did Carthage conquer Rome?")
    "roles swapped around 'conquer': rome ... carthage vs carthage ... rome"
    >>> OrderGuard().veto("In Go, how do I read a file?", "How do I read a file in Go?")
    >>> OrderGuard().veto("Is Go faster than Java?", "Is Java slower than Go?")  # converse
    """

    name = "order"

    def veto(self, cached: str, query: str) -> str | None:
        cached, query = _plain(cached), _plain(query)
        ta, tb = _turns(cached), _turns(query)
        if ta is None or tb is None:
            return self._compare(cached, query)
        # Chats: the last questions, and the user's turns one by one when they pair up (a
        # reworded history moves facts between and within turns freely).
        pairs = [(ta.last, tb.last)]
        if len(ta.user) == len(tb.user):
            pairs += zip(ta.user, tb.user, strict=True)
        return next((r for x, y in pairs if (r := self._compare(x, y)) is not None), None)

    def judgeable(self, cached: str, query: str) -> bool:
        """Whether a veto of two chats may go to a judge: it comes only from the user's
        earlier turns, each swap within a turn reworded (`_reworded`), never from the last
        questions or from the same words in other places.

        A reworded turn moves facts freely ("Rome for three days in April" / "In April I'll
        spend 3 days in Rome"); "my son is taller than my daughter" turned around is
        another history, and its veto stands like one on the last question.

        >>> a = "User: I'm visiting Rome for three days in April.\\nUser: What should I see?"
        >>> b = "User: In April I'll spend 3 days in Rome.\\nUser: What should I see?"
        >>> OrderGuard().veto(a, b)
        "roles swapped around 'days': rome ... april vs april ... rome"
        >>> OrderGuard().judgeable(a, b)
        True
        >>> OrderGuard().judgeable("Did Rome conquer Carthage?", "Did Carthage conquer Rome?")
        False
        """
        ta, tb = _turns(_plain(cached)), _turns(_plain(query))
        if ta is None or tb is None or len(ta.user) != len(tb.user):
            return False  # then only the last questions were compared
        if self._compare(ta.last, tb.last) is not None:
            return False
        return all(
            self._compare(x, y) is None or _reworded(x, y)
            for x, y in zip(ta.user, tb.user, strict=True)
        )

    @staticmethod
    def _compare(cached: str, query: str) -> str | None:
        found = _swapped(cached, query)
        if found is None or _converse(cached, query) is not None:
            return None
        words = {**_content(query), **_content(cached)}
        x, pivot, y = (words.get(stem, stem) for stem in found)
        return f"roles swapped around {pivot!r}: {x} ... {y} vs {y} ... {x}"


class SymbolGuard(Guard):
    """Veto when operators, their operands' order, quoting in code, command-line flags,
    names ending in a symbol or lone single letters differ (see `llmcache.vector._symbols`).

    >>> SymbolGuard().veto("What's 7 * 3?", "What's 7 + 3?")
    'operators differ: * vs +'
    >>> SymbolGuard().veto("What is 8 times 9?", "What's 9 × 8?")
    >>> SymbolGuard().veto("Is C++ object-oriented?", "Is C object-oriented?")
    'code tokens differ: c++ vs -'
    >>> SymbolGuard().veto("What does `echo $HOME` print?", "What does `echo '$HOME'` print?")
    "operators differ: $ vs '"
    >>> SymbolGuard().veto("What does the d key do in vim?", "What does the x key do in vim?")
    'single letters differ: d vs x'
    """

    name = "symbols"

    def veto(self, cached: str, query: str) -> str | None:
        cached, query = _plain(cached), _plain(query)
        la, lb = _letters(cached), _letters(query)
        if la != lb:
            return f"single letters differ: {_fmt(la - lb)} vs {_fmt(lb - la)}"
        a, b = _symbols(cached), _symbols(query)
        if a == b:
            return None
        ops_a = Counter(op for _, op, _ in a.ops)
        ops_b = Counter(op for _, op, _ in b.ops)
        if ops_a != ops_b:
            return (
                f"operators differ: {_fmt((ops_a - ops_b).elements())} vs "
                f"{_fmt((ops_b - ops_a).elements())}"
            )
        if a.flags != b.flags:
            return f"flags differ: {_fmt(a.flags - b.flags)} vs {_fmt(b.flags - a.flags)}"
        if sorted(a.names) != sorted(b.names):
            return (
                f"code tokens differ: {_fmt(set(a.names) - set(b.names))} vs "
                f"{_fmt(set(b.names) - set(a.names))}"
            )
        if a.ops != b.ops and not _operands_commute(a.ops, b.ops):
            return (
                "operands in another order: "
                + " ".join("".join(op) for op in a.ops)
                + " vs "
                + " ".join("".join(op) for op in b.ops)
            )
        return None


def _operands_commute(
    a: tuple[tuple[str, str, str], ...], b: tuple[tuple[str, str, str], ...]
) -> bool:
    """One commutative operator whose two operands swapped ("a + b" / "b + a")."""
    return (
        len(a) == len(b) == 1
        and a[0] == b[0][::-1]
        and _commutative_swap("1 " + a[0][1] + " 2", "2 " + b[0][1] + " 1")
    )


_QUANTIFIER_PHRASES = tuple((re.compile(p), r) for p, r in lex.QUANTIFIER_PHRASES)
_LETTERS = re.compile(r"[a-z]+")
_QUANTIFIER_WORDS = frozenset(lex.QUANTIFIERS) | {"least", "single", "one", "majority"}


@lru_cache(maxsize=_CACHE)
def _quantifiers(text: str) -> frozenset[str]:
    lowered = text.lower().replace("\u2019", "'")
    if _QUANTIFIER_WORDS.isdisjoint(_LETTERS.findall(lowered)):
        return frozenset()  # most texts: none at all, no phrase to read
    for pattern, replacement in _QUANTIFIER_PHRASES:
        lowered = pattern.sub(replacement, lowered)
    return frozenset(lex.QUANTIFIERS[w] for w in _LETTERS.findall(lowered) if w in lex.QUANTIFIERS)


class QuantifierGuard(Guard):
    """Veto when each text has a quantifier the other lacks: "all" and "every" are one,
    "any", "some" and "at least one" another, "most", "both", "either" ... others. A
    quantifier on one side only ("Any tips for ...?") is left to the scope guard.

    >>> QuantifierGuard().veto("Do all birds fly?", "Do any birds fly?")
    'quantifiers differ: all vs some'
    >>> QuantifierGuard().veto("Are all cats carnivores?", "Is every cat a carnivore?")
    """

    name = "quantifiers"

    def veto(self, cached: str, query: str) -> str | None:
        cached, query = _plain(cached), _plain(query)
        a, b = _quantifiers(cached), _quantifiers(query)
        if a - b and b - a:
            return f"quantifiers differ: {_fmt(a - b)} vs {_fmt(b - a)}"
        return None


def default_guards() -> list[Guard]:
    """A fresh list of every guard with its default settings, cheapest first.

    >>> [guard.name for guard in default_guards()]
    ['numbers', 'negation', 'antonyms', 'quantifiers', 'entities', 'symbols', 'direction', \
'order', 'history', 'scope']
    """
    return [
        NumberGuard(),
        NegationGuard(),
        AntonymGuard(),
        QuantifierGuard(),
        EntityGuard(),
        SymbolGuard(),
        DirectionGuard(),
        OrderGuard(),
        HistoryGuard(),
        ScopeGuard(),
    ]


def guards_by_name(names: Sequence[str]) -> list[Guard]:
    """The default guards whose names are in ``names`` (``ValueError`` for an unknown name).

    >>> [g.name for g in guards_by_name(["scope", "numbers"])]
    ['numbers', 'scope']
    """
    known = {guard.name: guard for guard in default_guards()}
    unknown = sorted(set(names) - known.keys())
    if unknown:
        raise ValueError(f"unknown guard(s) {unknown}; known: {sorted(known)}")
    return [guard for name, guard in known.items() if name in names]
