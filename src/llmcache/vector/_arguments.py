"""Checks of the numeric arguments users pass to the vector classes.

Each refuses NaN, inf, bools, strings and values out of range with a ``ValueError`` that
starts with the argument's name and says what is valid, at the call that took the value,
not at some later search or write where the cause is no longer visible.

>>> check_int("dim", 8, minimum=1), check_real("threshold", 1, "a cosine in [-1, 1]",
...                                            lambda x: -1 <= x <= 1)
(8, 1.0)
>>> check_real("threshold", float("nan"), "a cosine in [-1, 1]", lambda x: -1 <= x <= 1)
Traceback (most recent call last):
...
ValueError: threshold: expected a cosine in [-1, 1], got nan
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

__all__ = ["check_int", "check_real"]


def check_int(name: str, value: object, *, minimum: int, none: bool = False) -> int:
    """``value`` as an int ``>= minimum`` (any integral number but a bool)."""
    if (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and int(value) >= minimum
    ):
        return int(value)
    allowed = " or None" if none else ""
    raise ValueError(f"{name}: expected an int >= {minimum}{allowed}, got {value!r}")


def check_real(name: str, value: object, valid: str, ok: Callable[[float], bool]) -> float:
    """``value`` as a finite float for which ``ok`` holds; ``valid`` says which those are."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and ok(number):
            return number
    raise ValueError(f"{name}: expected {valid}, got {value!r}")
