"""What `EntityGuard` compares: names, code identifiers, files, paths and quoted strings.

Both functions are cached per text, like those of `llmcache.vector._text`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from llmcache.vector import _lexicon as lex
from llmcache.vector._text import CACHE_SIZE as _CACHE
from llmcache.vector._text import bundled as _bundled

__all__ = ["entities", "padded"]

_ENTITY_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"\"([^\"\n]{1,80})\"",
        "\u201c([^\u201d\n]{1,80})\u201d",
        r"`([^`\n]{1,80})`",
        r"(?<!\w)'([^'\n]{1,80})'(?!\w)",
        r"\b([A-Z]{2,}[0-9]*)s?\b",  # acronyms: AWS, SQL, HTTP2
        r"\b([a-z]+[A-Z][A-Za-z0-9]*)\b",  # camelCase, iPhone, macOS
        r"\b([A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*)\b",  # PascalCase: JavaScript, GitHub
        r"\b([A-Za-z0-9]+_[A-Za-z0-9_]+)\b",  # snake_case
        r"\b([A-Za-z_]\w*(?:\.[A-Za-z_]\w+)+)(?:\(\))?",  # os.path.join, notes.txt
        r"(?<![\w/])((?:~|\.{1,2})?/[\w.\-]+(?:/[\w.\-]+)*)",  # paths
        r"(?<![\w-])(--[A-Za-z][\w-]*)",  # long flags (short: SymbolGuard)
        r"(?<![\w-])([A-Za-z]-[A-Za-z]\w*)",  # t-test, x-axis, k-means
        r"\b(\w+)\(\)",  # calls: print()
        r"(?<!\w)[@#]([A-Za-z]\w+)",  # mentions, hashtags
    )
)
_CAPITALISED = re.compile(r"\b[A-Z][a-zA-Z'\-]*")
_SENTENCE_END = frozenset(".!?:;\n\"'([*-\u2022>")
_NOT_NAMES = frozenset({"i", "e g", "i e", "ok"})


@lru_cache(maxsize=_CACHE)
def entities(text: str) -> frozenset[str]:
    """Names and code in ``text``, normalised (lower case, words joined by single spaces)."""
    text = _bundled(text)
    found: set[str] = set()
    for pattern in _ENTITY_PATTERNS:
        found.update(m.group(1) for m in pattern.finditer(text))
    for m in _CAPITALISED.finditer(text):
        before = text[: m.start()].rstrip()
        word = m.group().lower().replace("\u2019", "'")
        if (
            before
            and before[-1] not in _SENTENCE_END
            and word not in lex.STOPWORDS
            and word not in lex.NEGATION_CUES
        ):
            found.add(m.group())
    norm = {_normalized(_POSSESSIVE.sub("", e)) for e in found}
    return frozenset(e for e in norm if e and e not in _NOT_NAMES)


_POSSESSIVE = re.compile(r"['\u2019](?:s|m|re|ve|ll|d)?\b")
_HYPHEN = re.compile(r"(?<=\w)-(?=\w)")


def _normalized(text: str) -> str:
    # "Wi-Fi" and "wifi", "Python's" and "python" compare equal.
    return " ".join(re.findall(r"[a-z0-9]+", _HYPHEN.sub("", text.lower())))


@lru_cache(maxsize=_CACHE)
def padded(text: str) -> str:
    """``text`` normalised like `entities`, with a space at each end for word look-ups."""
    return f" {_normalized(_POSSESSIVE.sub('', _bundled(text)))} "
