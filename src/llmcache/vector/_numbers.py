"""What the numbers guard compares: every number-like thing in a text, normalised.

Each match is replaced by a space once taken, so "2024-03-05" is one date and not three
numbers. Order matters: URLs and emails first (they hold digits), then dates, versions,
times, money, percentages, numbers with units, ids, and last the words (number words,
months, weekdays, relative days).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from llmcache.vector import _lexicon as lex

__all__ = ["extract_numbers"]

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_UNIT = "|".join(sorted((re.escape(u) for u in lex.UNITS), key=len, reverse=True))
_CUR_WORD = "|".join(sorted(lex.CURRENCY_WORDS, key=len, reverse=True))
_SCALE = r"(k|bn|million|billion|thousand|m|b)?"
# A number followed by a scale word: "1.2 billion", "50 lakh", "2 hundred".
_SCALED = "|".join(sorted(lex.SCALE_WORDS, key=len, reverse=True))


def _plain(number: str) -> str:
    return number.replace(",", "")


def _value(number: str) -> str:
    # Amounts compare by value ("2.50" = "2.5"); plain decimals keep their digits, since
    # "Python 3.10" and "3.1" are different things.
    try:
        value = Decimal(_plain(number)).normalize()
    except InvalidOperation:
        return _plain(number)
    return f"{value:f}"


def _scaled(number: str, scale: str | None) -> str:
    scale = (scale or "").lower()
    factor = {"k": 1000, "m": 10**6, "b": 10**9, "bn": 10**9}.get(scale) or lex.SCALE_WORDS.get(
        scale, 1
    )
    return _value(str(Decimal(_plain(number)) * factor))


def _date(y: str, m: str, d: str) -> list[str]:
    return [f"date:{int(y)}-{int(m)}-{int(d)}"]


def _short_date(a: str, b: str, y: str) -> list[str]:
    year = int(y) + 2000 if len(y) == 2 else int(y)
    return [f"date:{int(a)}/{int(b)}/{year}"]


def _time(h: str, m: str | None, ampm: str | None) -> list[str]:
    hour = int(h) % 12 + (12 if ampm and ampm.lower() == "p" else 0) if ampm else int(h)
    return [f"time:{hour}:{int(m or 0):02d}"]


def _number_unit(number: str, unit: str | None) -> list[str]:
    unit = (unit or "").lower()
    if unit in lex.THOUSANDS:
        return [f"num:{_scaled(number, unit)}"]
    return [f"num:{_plain(number)}"] + ([f"unit:{unit}"] if unit else [])


_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], list[str]]], ...] = (
    (
        re.compile(r"(?i)\bhttps?://[^\s<>\"']+|\bwww\.[^\s<>\"']+"),
        lambda m: ["url:" + m.group().lower().rstrip(".,;:!?)")],
    ),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), lambda m: ["email:" + m.group().lower()]),
    (re.compile(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b"), lambda m: _date(*m.groups())),
    (re.compile(r"(?i)\bv?(\d+(?:\.\d+){2,})\b"), lambda m: ["ver:" + m.group(1)]),
    (
        re.compile(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})\b"),
        lambda m: _short_date(*m.groups()),
    ),
    (re.compile(r"(?i)\bv(\d+(?:\.\d+)?)\b"), lambda m: ["ver:" + m.group(1)]),
    (
        re.compile(r"(?i)\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\b\.?"),
        lambda m: _time(m.group(1), m.group(2), m.group(3)),
    ),
    (re.compile(r"\b(\d{1,2}):(\d{2})\b"), lambda m: _time(m.group(1), m.group(2), None)),
    (
        re.compile(rf"(?i)([$€£¥₹])\s?({_NUM})\s*{_SCALE}\b"),
        lambda m: [
            f"num:{_scaled(m.group(2), m.group(3))}",
            "cur:" + lex.CURRENCY_SYMBOLS[m.group(1)],
        ],
    ),
    (
        re.compile(rf"(?i)\b({_NUM})\s*{_SCALE}\s*({_CUR_WORD})\b"),
        lambda m: [
            f"num:{_scaled(m.group(1), m.group(2))}",
            "cur:" + lex.CURRENCY_WORDS[m.group(3).lower()],
        ],
    ),
    (
        re.compile(rf"(?i)\b({_NUM})\s*(?:%|percent\b|per cent\b|pct\b)"),
        lambda m: [f"pct:{_value(m.group(1))}"],
    ),
    (re.compile(r"(?i)\b(\d+)(?:st|nd|rd|th)\b"), lambda m: [f"num:{int(m.group(1))}"]),
    (
        re.compile(rf"(?i)(?<![\w.#-])({_NUM})\s*({_SCALED})\b"),
        lambda m: [f"num:{_scaled(m.group(1), m.group(2))}"],
    ),
    (
        re.compile(rf"(?i)(?<![\w.#-])({_NUM})\s?({_UNIT})?(?![\w-])"),
        lambda m: _number_unit(m.group(1), m.group(2)),
    ),
    (re.compile(r"#(\d+)\b"), lambda m: [f"num:{int(m.group(1))}"]),
    # A number joined to the word it counts: "a 3-year-old", "a 50-million-row table".
    (
        re.compile(rf"(?i)(?<![\w.#-])({_NUM})-(?:({_SCALED})-)?(?=[a-z])"),
        lambda m: [f"num:{_scaled(m.group(1), m.group(2))}"],
    ),
    # Anything else holding a digit is an identifier: ORD-48213, A1B2, gpt-4o, x86, mp3.
    (
        re.compile(r"[#\w][\w#-]*\d[\w#-]*|[#\w]*\d[\w#-]*"),
        lambda m: ["id:" + m.group().lower().strip("#-")],
    ),
)

_WORDS = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)?")
_NOT_ONE_BEFORE = frozenset(
    "which the this that any no every each some another last first "
    "only a anyone someone no-one least".split()
)
_NOT_ONE_AFTER = frozenset(
    "of is are was that which who more another or and by to in on at "
    "for with thing way can should would will does do".split()
)
_PER_PERIOD = re.compile(r"(?i)\b(?:per|each|every) (day|week|month|year)\b")
# "15 km a week" is "15 km per week"; "in a week" is no rate.
_COUNTS = "|".join(["\\d[\\d,.]*", "once", "twice", "thrice", *lex.NUMBER_WORDS, *lex.SCALE_WORDS])
_A_PERIOD = re.compile(
    rf"(?i)(\b(?:{_COUNTS})\s*(?:[^\s\d]{{1,12}}\s+)?)an? "
    r"(day|week|month|year)\b"
)
_A_PERIOD_HINT = re.compile(r"(?i)\ban? (?:day|week|month|year)\b")
_WORD_HYPHEN = re.compile(r"(?<=[A-Za-z])-(?=[A-Za-z])")
_PERIODIC = {"day": "daily", "week": "weekly", "month": "monthly", "year": "yearly"}
_REL_UNITS = lex.PERIODS | set(lex.WEEKDAYS) | set(lex.MONTHS)


def _number_words(words: list[tuple[str, str]]) -> list[str]:
    """Number words ("twenty five", "two hundred", "a dozen") as ``num:`` values."""
    out: list[str] = []
    total, current, active = 0, 0, False

    def flush() -> None:
        nonlocal total, current, active
        if active:
            out.append(f"num:{total + current}")
        total, current, active = 0, 0, False

    for i, (_, word) in enumerate(words):
        if word in lex.NUMBER_WORDS:
            if word == "one":
                before = words[i - 1][1] if i else ""
                after = words[i + 1][1] if i + 1 < len(words) else ""
                if before in _NOT_ONE_BEFORE or not after or after in _NOT_ONE_AFTER:
                    flush()
                    continue
            value = lex.NUMBER_WORDS[word]
            if active and current and value >= 10 or active and current % 10:
                flush()  # "two three" is two numbers, "twenty five" is one
            current += value
            active = True
        elif word in lex.SCALE_WORDS:
            # "a million" or "a few hundred" is a number too: the scale alone
            current = max(current, 1) * lex.SCALE_WORDS[word]
            active = True
            if lex.SCALE_WORDS[word] >= 1000:
                total, current = total + current, 0
        elif word == "and" and active:
            continue
        else:
            flush()
    flush()
    return out


def _sentence_initial(text: str, start: int) -> bool:
    before = text[:start].rstrip()
    return not before or before[-1] in ".!?:;\n\"'(-*"


def _calendar_words(words: list[tuple[str, str]], starts: list[int], text: str) -> list[str]:
    out: list[str] = []
    for i, (raw, word) in enumerate(words):
        after = words[i + 1][1] if i + 1 < len(words) else ""
        # "May I", "march on", "Sun cream": everyday words, unless clearly a name.
        named = raw[0].isupper() and not _sentence_initial(text, starts[i])
        if word in lex.MONTHS:
            if word not in lex.AMBIGUOUS_MONTHS or named:
                out.append(f"month:{lex.MONTHS[word]}")
        elif word in lex.WEEKDAYS or (word[:-1] in lex.WEEKDAYS and len(word) > 6):
            if len(word) > 4 or named:  # "Mondays" is Monday, "sun" is not Sunday
                out.append(f"day:{lex.WEEKDAYS[word if word in lex.WEEKDAYS else word[:-1]]}")
        elif word in lex.ORDINAL_WORDS and word != "first":
            out.append(f"num:{lex.ORDINAL_WORDS[word]}")
        elif word in lex.RELATIVE_DAYS:
            out.append(f"rel:{word}")
        elif word in lex.RELATIVE_MARKERS and after in _REL_UNITS:
            out.append(f"rel:{word}-{after}")
    return out


@lru_cache(maxsize=8192)
def extract_numbers(text: str) -> Counter[str]:
    """The normalised number-like items of ``text`` as a multiset (do not mutate it).

    >>> sorted(extract_numbers("Refund $1,250.00 for order #48213 by March 5th, 3pm"))
    ['cur:usd', 'month:3', 'num:1250', 'num:48213', 'num:5', 'time:15:00']
    >>> extract_numbers("two eggs") == extract_numbers("2 eggs")
    True
    """
    found: Counter[str] = Counter()
    rest = text.replace("\u2019", "'")
    if _A_PERIOD_HINT.search(rest):
        rest = _A_PERIOD.sub(r"\1per \2", rest)

    def taker(convert: Callable[[re.Match[str]], list[str]]) -> Callable[[re.Match[str]], str]:
        def take(m: re.Match[str]) -> str:
            found.update(convert(m))
            return " "  # taken: no later rule sees these digits again

        return take

    rules = _RULES if any(c.isdigit() for c in rest) else _RULES[:2]  # urls, emails
    for pattern, convert in rules:
        rest = pattern.sub(taker(convert), rest)
    rest = _PER_PERIOD.sub(lambda m: _PERIODIC[m.group(1).lower()], rest)
    rest = _WORD_HYPHEN.sub(" ", rest)  # "twenty-five", "seven-year-old"
    matches = list(_WORDS.finditer(rest))
    words = [(m.group(), m.group().lower()) for m in matches]
    found.update(_number_words(words))
    found.update(_calendar_words(words, [m.start() for m in matches], rest))
    return found
