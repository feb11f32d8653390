"""What `SymbolGuard` compares: operators, brackets, flags and code tokens, in order.

Word embeddings and the other guards read words and numbers, so "7 * 3" and "7 + 3",
"x++" and "++x", "C" and "C++", "chmod +x" and "chmod -x" look alike to them. Here a text
becomes a `Symbols` record:

- ``ops``: each operator with what stands on its left and right (``n`` a number, a single
  letter as itself, ``q`` a quoted literal, ``w`` a word touching it, ``-`` nothing), in
  order; "divided by", "to the power of", "×", "≥" ... read as their symbols;
- ``flags``: the signs that open command-line flags (``-``, ``--``, ``+``) and the letters of
  bundled short flags, so ``-rf``, ``-fr`` and ``-r -f`` are one thing;
- ``names``: names ending in a symbol (``C++``, ``C#``, ``B+``, ``B-``).

Inside backticks a quoted literal is an operator too (``'`` or ``"``): quoting changes what
a shell expands, so "`echo $HOME`", "`echo '$HOME'`" and "`echo \"$HOME\"`" all differ, as
a sigil (``$``) does anywhere. `letters` reads the lone single letters of a text (keys,
variables, grades, hepatitis and vitamin kinds), which are words to nothing else here.

Inside backticks punctuation that prose uses as sentence marks is an operator as well
(``?.``, ``??``, ``..``, ``...``, ``@``, ``:``, ``,``): "`a ?? b`" is not "`a?.b`".

An operator counts when it stands in a formula: inside backticks, longer than one character,
touching an operand, or next to a number, a single letter, a quote or a bracket. A dash
between two words ("quick question - how do I ...") is prose, as are paths, URLs, "and/or"
and "km/h", a percent sign after a number and an exclamation mark after a word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from llmcache.vector import _lexicon as lex
from llmcache.vector._text import CACHE_SIZE as _CACHE

__all__ = ["Symbols", "commutative_swap", "letters", "symbols"]

_OPERATORS = sorted(
    """
=== !== **= //= <<= >>= ** // << >> <= >= == != && || ++ -- += -= *= /= %= ^= &= |= => ->
:: := ${ $( + - * / % ^ & | ~ < > = ! ( ) [ ] { } $
""".split(),
    key=len,
    reverse=True,
)
_OP = "|".join(re.escape(op) for op in _OPERATORS)
# Inside backticks punctuation is syntax too: `a ?? b` (a default) is not `a?.b` (optional
# chaining), `1..10` not `1...10`, `@x` not `x`. In prose these are sentence marks.
_CODE_OPERATORS = sorted(
    [*_OPERATORS, *"??= ?? ?. ?: ?[ ... .. ? . @ : ; ,".split()], key=len, reverse=True
)
_CODE_OP = "|".join(re.escape(op) for op in _CODE_OPERATORS)
_BRACKETS = frozenset("()[]{}")
_WORD_OPS = (
    (re.compile(r"(?i)\bdivided\s+by\b"), "/"),
    (re.compile(r"(?i)\bmultiplied\s+by\b"), "*"),
    (re.compile(r"(?i)\bto\s+the\s+power\s+of\b"), "^"),
    (re.compile(r"(?i)(?<=\d)\s+times\s+(?=\d)"), " * "),
    (re.compile(r"(?i)\bplus\b"), "+"),
    (re.compile(r"(?i)\bminus\b"), "-"),
    (re.compile(r"(?i)(?<=\d)\s+mod(?:ulo)?\s+(?=\d)"), " % "),
)
_UNICODE = str.maketrans(
    {
        "\u00d7": "*",
        "\u2715": "*",
        "\u22c5": "*",
        "\u00f7": "/",
        "\u2212": "-",
        "\u2264": "<=",
        "\u2265": ">=",
        "\u2260": "!=",
    }
)
# Read before the names: URLs, emails, paths, and/or, km/h, a/b/c.
_PATHS = re.compile(
    r"(?i)\b[a-z][\w+.-]*://\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|(?:~|\.{1,2})/[\w.\-/]*|(?<![\w.])\.{1,2}(?=[\s`]|$)|(?<![\w)])/[A-Za-z_][\w.\-/]*"
    r"|[A-Za-z_][\w.\-]*(?:/[A-Za-z_][\w.\-]*)+/?"
)
# Read after them: what the number and entity guards already compare, and prose.
_PROSE = re.compile(
    r"\d+(?:[.,]\d+)*\s?%"  # percentages
    r"|(?<=[A-Za-z])!+(?=\s|$|[?.,;:)\"'])"  # "Thanks!"
    r"|(?<=[A-Za-z0-9])-(?=[A-Za-z0-9])"  # Wi-Fi, t-test, COVID-19, 2024-03-05
    r"|(?<=\s)--(?=\s)"  # a dash
    r"|\$(?=\d)|#(?=\w)|(?<=[A-Z])&(?=[A-Z])"
)  # $5, #42, R&D
_NAME = re.compile(r"\b([A-Z][A-Za-z0-9]*|[a-z][a-z0-9]+)(\+\+|#|\+|-)(?=[\s?.,;:!)'\"`]|$)")
_FLAG = re.compile(r"(?<!\S)(--|-|\+)([A-Za-z][\w-]*)")
_TOKEN = re.compile(
    rf"`(?P<code>[^`\n]+)`|(?P<num>\d+(?:[.,]\d+)*)|(?P<word>[A-Za-z_]\w*)"
    rf"|(?P<quote>'[^'\s]{{1,20}}'|\"[^\"\s]{{1,20}}\")|(?P<op>{_OP})"
)
_CODE_TOKEN = re.compile(
    rf"(?P<num>\d+(?:\.\d+)?)|(?P<word>[A-Za-z_]\w*)"
    rf"|(?P<quote>'[^'\s]{{1,20}}'|\"[^\"\s]{{1,20}}\")|(?P<op>{_CODE_OP})"
)
#: Operators whose operands may swap ("17 + 26" is "26 + 17").
_COMMUTATIVE = frozenset({"+", "*", "==", "!=", "===", "!==", "&", "|", "&&", "||", "^"})
_NUMBERISH = frozenset(lex.NUMBER_WORDS) | frozenset(lex.SCALE_WORDS)
_NOT_VARIABLES = frozenset({"a", "A", "I"})  # an article or "I", unless a formula says so
_NOT_LETTERS = frozenset({"a", "i"})  # the article and the pronoun, in any case

_Item = tuple[str, str, int, int]  # (kind, text, start, end)


@dataclass(frozen=True, slots=True)
class Symbols:
    """The formal tokens of one text (see the module docstring)."""

    ops: tuple[tuple[str, str, str], ...]
    flags: frozenset[str]
    names: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.ops or self.flags or self.names)


def _flags(text: str) -> tuple[str, frozenset[str]]:
    found: set[str] = set()

    def take(m: re.Match[str]) -> str:
        sign, body = m.group(1), m.group(2).lower()
        found.add(sign)
        if sign == "-" and body.isalpha() and len(body) <= 6:  # -rf = -fr = -r -f
            found.update(f"-{c}" for c in body)
        else:
            found.add(sign + body)
        return " "

    return _FLAG.sub(take, text), frozenset(found)


def _names(text: str) -> tuple[str, tuple[str, ...]]:
    found: list[str] = []

    def take(m: re.Match[str]) -> str:
        word, suffix = m.group(1), m.group(2)
        if suffix in ("+", "-") and not word[0].isupper():
            return m.group()  # "x+" or "well-": a formula or prose, not a name
        found.append(word.lower() + suffix)
        return " "

    return _NAME.sub(take, text), tuple(found)


def _is_operand(item: _Item | None) -> bool:
    """A number, a quoted literal, an operator, or a single letter (not "a" or "I")."""
    if item is None:
        return False
    kind, value = item[0], item[1]
    return (
        kind in ("num", "quote", "op")
        or kind == "word"
        and ((len(value) == 1 and value not in _NOT_VARIABLES) or value.lower() in _NUMBERISH)
    )


def _side(item: _Item | None, touching: bool) -> str:
    if item is None or item[0] == "op":
        return "-"
    kind, value = item[0], item[1]
    if kind == "num" or value.lower() in _NUMBERISH:
        return "n"
    if kind == "quote":
        return "q"
    if len(value) == 1:
        return value.lower()
    return "w" if touching else "-"


def _formal(op: str, left: _Item | None, right: _Item | None, touch_l: bool, touch_r: bool) -> bool:
    """Whether a one-character operator stands in a formula rather than in prose."""
    if _is_operand(left) or _is_operand(right):
        return True
    # A word touching it ("!ready", "x=foo"), except brackets: "(optional)" is prose.
    return op not in _BRACKETS and (touch_l or touch_r)


def _ops(text: str, code: bool) -> list[tuple[str, str, str]]:
    items: list[_Item] = [
        (m.lastgroup or "", m.group(m.lastgroup or 0), m.start(), m.end())
        for m in (_CODE_TOKEN if code else _TOKEN).finditer(text)
    ]
    out: list[tuple[str, str, str]] = []
    for i, (kind, value, start, end) in enumerate(items):
        if kind == "code":
            out.extend(_ops(value, True))
            continue
        if kind == "quote" and code:  # '$HOME' is not "$HOME" nor $HOME to a shell
            out.append(("-", value[0], "-"))
            continue
        if kind != "op":
            continue
        left = items[i - 1] if i else None
        right = items[i + 1] if i + 1 < len(items) else None
        touch_l = left is not None and left[3] == start
        touch_r = right is not None and right[2] == end
        if code or len(value) > 1 or _formal(value, left, right, touch_l, touch_r):
            out.append((_side(left, touch_l), value, _side(right, touch_r)))
    return out


_MAYBE = re.compile(
    r"[-+*/%^&|~<>=!()\[\]{}$#`\u00d7\u2715\u22c5\u00f7\u2212\u2264\u2265\u2260]"
    r"|(?i:divided|multiplied|power|plus|minus|times|mod)"
)
_NONE = Symbols((), frozenset(), ())


@lru_cache(maxsize=_CACHE)
def symbols(text: str) -> Symbols:
    """The operators, flags and symbol-suffixed names of ``text``.

    >>> symbols("What's 7 * 3?").ops
    (('n', '*', 'n'),)
    >>> symbols("What is 7 times 3?") == symbols("What's 7 × 3?")
    True
    >>> sorted(symbols("rm -rf /tmp/x").flags) == sorted(symbols("rm -r -f /tmp/x").flags)
    True
    >>> symbols("Is C++ faster than C#?").names
    ('c++', 'c#')
    """
    if not _MAYBE.search(text):
        return _NONE  # most texts: no symbol, no arithmetic word
    text = text.translate(_UNICODE)
    for pattern, replacement in _WORD_OPS:
        text = pattern.sub(replacement, text)
    text = _PATHS.sub(" ", text)
    text, names = _names(text)
    text, flags = _flags(text)
    text = _PROSE.sub(" ", text)
    return Symbols(tuple(_ops(text, False)), flags, names)


def commutative_swap(cached: str, query: str) -> bool:
    """Whether both texts hold one and the same commutative operator between two numbers
    ("17 + 26" and "26 + 17"): their numbers may then come in another order."""
    a, b = symbols(cached).ops, symbols(query).ops
    return len(a) == 1 and a == b and a[0][1] in _COMMUTATIVE and a[0][0] == a[0][2] == "n"


# A letter standing alone: not inside a word, a contraction ("don't", "it's", "o'clock"),
# a hyphenated name ("t-test"), a dotted abbreviation ("e.g.", "U.S.") or a path.
# Nor a letter after a number ("5 m", "3 x 4": a unit or an operator, read elsewhere).
_LETTER = re.compile(r"(?<![\w'\u2019.\-/@$\\])(?<!\d\s)([A-Za-z])(?![\w'\u2019\-]|\.[A-Za-z])")


@lru_cache(maxsize=_CACHE)
def letters(text: str) -> frozenset[str]:
    """The lone single letters of ``text``, lower-cased: "the y key", "hepatitis b",
    "solve for x", "plan B". "a" and "I" are left out (an article, a pronoun), as is a
    letter right after a number (a unit, "5 m", or "3 x 4").

    >>> sorted(letters("Is vitamin K or b12 better than plan B?"))
    ['b', 'k']
    >>> letters("I don't need a t-shirt, e.g. at 5 m")
    frozenset()
    """
    return frozenset(m.lower() for m in _LETTER.findall(text)) - _NOT_LETTERS
