"""Due dates: the model names the date, this module does the calendar arithmetic.

Small models copy words well and count days badly, so the extraction schema lets the model
answer either an ISO date or the date words of the note ("tomorrow", "by Friday",
"December 12"); `resolve_due` turns them into a date against the same "today" that the
prompt gave the model. `mentions_date` tells whether a note names a date at all, so a due
date the model invented for a note without one is dropped. Words of urgency ("urgent",
"asap") set a priority, not a date.

>>> today = date(2025, 11, 26)  # a Wednesday
>>> [resolve_due(s, today).isoformat() for s in ("tomorrow", "by Friday", "2025-12-24")]
['2025-11-27', '2025-11-28', '2025-12-24']
>>> resolve_due("December 12", today), resolve_due("someday", today)
(datetime.date(2025, 12, 12), None)
>>> mentions_date("call mom in the afternoon"), mentions_date("finish report by Friday")
(True, True)
>>> mentions_date("schedule dentist appointment"), mentions_date("review pull request urgent")
(False, False)
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

__all__ = ["date_words", "mentions_date", "resolve_due"]

_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_WEEKDAYS.update({name.lower(): i for i, name in enumerate(calendar.day_abbr)})
_WEEKDAYS.update({"tues": 1, "wednes": 2, "thur": 3, "thurs": 3})
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_TODAY_WORDS = (
    "today",
    "tonight",
    "this morning",
    "this afternoon",
    "this evening",
    "in the morning",
    "in the afternoon",
    "in the evening",
    "afternoon",
    "morning",
    "evening",
    "now",
    "eod",
    "end of day",
)
_ISO = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")
_IN_N = re.compile(
    r"\bin\s+(\d{1,3}|a|an|one|two|three|four|five|six|seven)\s+"
    r"(day|days|week|weeks)\b"
)
_SMALL = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
}
_FILLER = re.compile(r"\b(by|on|due|before|until|till|for|at|the|of|this|coming)\b")
_WORD = re.compile(r"[a-z0-9]+")


def _clean(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _month_day(text: str, today: date) -> date | None:
    words = text.split()
    for i, word in enumerate(words):
        month = _MONTHS.get(word)
        if month is None:
            continue
        # "december 12" or "12 december" (ordinal suffixes are split off by _WORD: "12th")
        for j in (i + 1, i - 1):
            if 0 <= j < len(words):
                digits = re.match(r"^(\d{1,2})(st|nd|rd|th)?$", words[j])
                if digits:
                    day = int(digits.group(1))
                    year = today.year
                    for _ in range(2):  # this year, or next year once the date has passed
                        try:
                            found = date(year, month, day)
                        except ValueError:
                            return None
                        if found >= today:
                            return found
                        year += 1
    return None


def resolve_due(value: str, today: date) -> date | None:
    """The date that `value` (an ISO date or date words) names, seen from `today`; ``None``
    when it names none this module understands."""
    match = _ISO.match(value)
    if match:
        try:
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            return None
    text = _clean(value)
    if not text:
        return None
    if "day after tomorrow" in text:
        return today + timedelta(days=2)
    if "tomorrow" in text:
        return today + timedelta(days=1)
    stripped = _FILLER.sub(" ", text).split()
    if any(w in text for w in ("next week", "in a week")):
        return today + timedelta(days=7)
    if "weekend" in text:
        return today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    if "end of week" in text or "end of the week" in text:
        return today + timedelta(days=(4 - today.weekday()) % 7)
    if "next month" in text:
        month = today.month % 12 + 1
        year = today.year + (today.month == 12)
        return date(year, month, min(today.day, calendar.monthrange(year, month)[1]))
    found = _IN_N.search(text)
    if found:
        count = int(found.group(1)) if found.group(1).isdigit() else _SMALL[found.group(1)]
        return today + timedelta(days=count * (7 if found.group(2).startswith("week") else 1))
    for word in stripped:
        if word in _WEEKDAYS:
            # The coming one; the same weekday as today means a week from now.
            return today + timedelta(days=(_WEEKDAYS[word] - today.weekday()) % 7 or 7)
    month_day = _month_day(text, today)
    if month_day is not None:
        return month_day
    if any(f" {w} " in f" {text} " for w in _TODAY_WORDS):
        return today
    return None


def date_words(text: str) -> set[str]:
    """The words of `text` that can name a date (weekdays, months, today/tomorrow...)."""
    words = set(_WORD.findall(text.lower()))
    known = (
        set(_WEEKDAYS)
        | set(_MONTHS)
        | {
            "today",
            "tonight",
            "tomorrow",
            "week",
            "weekend",
            "month",
            "morning",
            "afternoon",
            "evening",
            "eod",
            "days",
            "day",
        }
    )
    found = words & known
    found |= {w for w in words if re.fullmatch(r"\d{1,4}(st|nd|rd|th)?", w)}
    if _ISO.search(text) or re.search(r"\d{4}-\d{2}-\d{2}", text):
        found.add("iso-date")
    return found


def mentions_date(text: str) -> bool:
    """Whether `text` names a date or a time of day at all."""
    return bool(date_words(text))
