"""Text features shared by the guards: words, a light stemmer, synonyms, content words.

Every function is cached per text: a lookup compares one query with a few candidates, and
the candidates come back again and again.
"""

from __future__ import annotations

import re
from functools import lru_cache

from llmcache.vector import _lexicon as lex

__all__ = ["CACHE_SIZE", "bundled", "content_words", "is_typo", "plain", "stem", "tokens", "words"]

CACHE_SIZE = 8192  # texts whose features are kept
_WORD = re.compile(r"[a-z][a-z0-9]*(?:'[a-z]+)?")


_PUNCT = r"[,.!:;\-\u2013\u2014]+"
_LEAD = re.compile(
    rf"(?i)^\s*(?:(?:{lex.GREETINGS}|{lex.THANKS})\s*(?:{_PUNCT}\s*|$)"
    rf"|(?:{'|'.join(lex.OPENERS)})\s*(?:{_PUNCT}\s*)?)"
)
_TRAIL = re.compile(
    rf"(?i)(?:^|(?<=[.!?])|(?<=[.!?][\"')]))\s*"
    rf"(?:{lex.THANKS}|{lex.GREETINGS})\s*[.!]*\s*$"
)


_LABEL = re.compile(r"(?m)^(?:User|Assistant): ")


def _plain_line(text: str) -> str:
    out = text
    for _ in range(4):
        stripped = _TRAIL.sub("", _LEAD.sub("", out, count=1), count=1)
        if stripped == out:
            break
        out = stripped
    return out if out.strip() else text


@lru_cache(maxsize=CACHE_SIZE)
def plain(text: str) -> str:
    """``text`` without the courtesy that opens or closes it ("Hi! Quick one: how do I ...?
    Thanks so much!" is "how do I ...?"), or ``text`` itself when nothing else is left.
    Each turn of a chat transcript (``User: ...`` lines) is read on its own."""
    if "\n" not in text:
        return _plain_line(text)
    lines = []
    for line in text.split("\n"):
        label = _LABEL.match(line)
        cut = label.end() if label else 0
        lines.append(line[:cut] + _plain_line(line[cut:]))
    return "\n".join(lines)


@lru_cache(maxsize=CACHE_SIZE)
def words(text: str) -> tuple[str, ...]:
    """Lower-case word tokens, apostrophes kept ("don't")."""
    return tuple(_WORD.findall(text.lower().replace("\u2019", "'")))


def _undouble(word: str) -> str:
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        return word[:-1]
    if len(word) > 3 and word.endswith("ll"):  # travelled, cancelled: US spelling
        return word[:-1]
    return word


_IZE = re.compile(r"(?<=.{3})is(e|ed|es|ing|ation)$")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light, consistent stemmer: both sides of a comparison go through it, so a stem
    only has to be the same for inflections of one word, not a dictionary form."""
    word = lex.IRREGULAR.get(word, word)
    if len(word) <= 3 or word in lex.KEEP_FORM:
        return word
    word = _IZE.sub(r"iz\1", word)
    if word.endswith(("ies", "ied")) and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) > 5 and re.search("[aeiouy]", word[:-3]):
        word = _undouble(word[:-3])
    elif word.endswith("ed") and len(word) > 4:
        word = _undouble(word[:-2])
    elif word.endswith("tion"):
        word = word[:-3]
    if word.endswith("ily") and len(word) > 5:  # easily: easy
        word = word[:-3] + "y"
    elif word.endswith("ly") and len(word) > 5:  # politely: polite
        word = word[:-2]
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


_NUMBERS = (lex.NUMBER_WORDS.keys() | lex.SCALE_WORDS.keys() | lex.ORDINAL_WORDS.keys()) - {
    "first",
    "single",
    "double",
}
_SYNONYM = {stem(w): stem(group[0]) for group in lex.SYNONYMS for w in group}
_PHRASES = tuple(
    (re.compile(p), r)
    for p, r in (
        *lex.PHRASES,
        (r"\bwhat time\b", "when"),
        (r"\bhow come\b", "why"),
        (r"\bfor what reason\b", "why"),
        (r"\bwhat is the reason\b", "why"),
    )
)


# "calculated" frames a question as "calculate" does: inflected stopwords are stopwords.
_STOP_STEMS = frozenset(stem(w) for w in lex.STOPWORDS if len(w) > 3) - {stem(w) for w in lex.KEEP}


def _canon(word: str) -> str:
    base = stem(word)
    return _SYNONYM.get(base, base)


_SHORT_FLAGS = re.compile(r"(?<!\S)-[A-Za-z]{1,6}(?:\s+-[A-Za-z]{1,6})*(?![\w-])")


def bundled(text: str) -> str:
    """Short flags as one bundle of sorted letters: `ls -la`, `ls -al`, `ls -a -l` agree."""
    if "-" not in text:
        return text
    return _SHORT_FLAGS.sub(
        lambda m: "-" + "".join(sorted(set(m.group().replace("-", "").replace(" ", "")))), text
    )


@lru_cache(maxsize=CACHE_SIZE)
def tokens(text: str) -> tuple[tuple[str, str, bool], ...]:
    """``(word, canonical stem, is content)`` per word, numbers and negations dropped."""
    if "\n" in text:  # a chat transcript: its role labels are no words of the request
        text = _LABEL.sub(" ", text)
    lowered = bundled(text).lower().replace("\u2019", "'")
    for pattern, replacement in _PHRASES:
        lowered = pattern.sub(replacement, lowered)
    out: list[tuple[str, str, bool]] = []
    for token in _WORD.findall(lowered):
        word, _, suffix = token.partition("'")
        if (
            suffix == "t"
            or word in lex.NEGATION_CUES
            or word in _NUMBERS
            or any(c.isdigit() for c in word)
        ):
            continue  # negations and numbers have their own guards
        content = word in lex.KEEP or (
            word not in lex.STOPWORDS and len(word) > 1 and stem(word) not in _STOP_STEMS
        )
        out.append((word, _canon(word), content))
    return tuple(out)


@lru_cache(maxsize=CACHE_SIZE)
def content_words(text: str) -> dict[str, str]:
    """Canonical content stems of ``text``, each with one surface word (for messages)."""
    return {base: word for word, base, content in tokens(text) if content}


def is_typo(x: str, y: str) -> bool:
    """One edit (or one swap of neighbours) between two longer words: a typo, unless the
    two are a known confusable pair (desert/dessert)."""
    if len(x) < 5 or len(y) < 5 or x[0] != y[0] or abs(len(x) - len(y)) > 1:
        return False
    if x in lex.CONFUSABLES and y in lex.CONFUSABLES:
        return False
    if len(x) == len(y):
        diff = [i for i in range(len(x)) if x[i] != y[i]]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and x[diff[0]] == y[diff[1]]
            and x[diff[1]] == y[diff[0]]
        )
    short, long_ = (x, y) if len(x) < len(y) else (y, x)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))
