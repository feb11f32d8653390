"""Was the cached answer right? Compare it with the model's fresh answer to the new request.

When a cache with a stated error bound lets the model answer a candidate anyway (a grey-zone
candidate, or an exploration of one it could have served), the caller's `set` brings the
fresh answer, and comparing it with the cached one labels the candidate. The comparison is
the user's choice, by how their answers vary:

- ``"exact"``: equal as JSON values (deterministic models, extraction, classification);
- ``"normalized"``: texts equal after Unicode NFKC, case folding, collapsing whitespace and
  dropping trailing punctuation (short answers that differ in form only);
- ``"json"``: texts that parse as JSON compare as the data they hold (key order and spacing
  ignored), other values exactly;
- a `Verifier`, asked in the background with `ANSWER_PROMPT` (free text: two wordings of
  one answer), or any ``callable(cached, fresh) -> bool``.

Each errs on the side of "different": free-text answers to a true paraphrase rarely match
exactly, so a strict comparison labels right answers wrong, which only raises the learned
thresholds. It never labels two different answers the same.

>>> normalized("Paris.", "  paris"), exact("Paris.", "paris"), json_equal('{"a": 1, "b": 2}',
...                                                                       '{"b":2,"a":1}')
(True, False, True)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import orjson

from llmcache.entry import JSONValue

__all__ = [
    "ANSWER_PROMPT",
    "COMPARISONS",
    "Comparison",
    "exact",
    "json_equal",
    "normalized",
    "text_of",
]

Comparison = Callable[[JSONValue, JSONValue], bool]

#: A judge's question when it compares two answers (``compare=Verifier(backend,
#: prompt=ANSWER_PROMPT)``).
ANSWER_PROMPT = """\
Here are two answers an assistant gave.

Answer A:
<<<
{a}
>>>

Answer B:
<<<
{b}
>>>

Do the two answers say the same thing, so that either one could be given in place of the \
other? Any difference in facts, numbers, names, steps or conclusions means no. Answer yes \
or no."""

_SPACE = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s.!?;:,]+$")


def _tagged(value: JSONValue) -> JSONValue:
    # Python says True == 1; JSON does not.
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    return value


def exact(cached: JSONValue, fresh: JSONValue) -> bool:
    """Equal as JSON values (``1`` and ``1.0`` equal, ``true`` and ``1`` not)."""
    return bool(_tagged(cached) == _tagged(fresh))


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _TRAILING.sub("", _SPACE.sub(" ", text).strip())


def normalized(cached: JSONValue, fresh: JSONValue) -> bool:
    """Texts equal but for case, spacing, Unicode form and trailing punctuation."""
    if isinstance(cached, str) and isinstance(fresh, str):
        return _norm(cached) == _norm(fresh)
    return exact(cached, fresh)


def _parsed(value: JSONValue) -> JSONValue:
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def json_equal(cached: JSONValue, fresh: JSONValue) -> bool:
    """Equal as JSON data once texts holding JSON are parsed."""
    return exact(_parsed(cached), _parsed(fresh))


COMPARISONS: dict[str, Comparison] = {"exact": exact, "normalized": normalized, "json": json_equal}


def text_of(value: JSONValue) -> str:
    """An answer as text for a judge: strings as they are, other JSON serialized."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()
