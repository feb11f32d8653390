"""What llmcache takes as a number where a caller passes one (a temperature): an int or a
float, never a bool (an int to Python, but never meant as a number here)."""

from __future__ import annotations

from typing import TypeGuard

__all__ = ["is_number"]


def is_number(value: object) -> TypeGuard[int | float]:
    """Whether `value` is an int or a float, and not a bool.

    >>> is_number(0.2), is_number(0), is_number(True), is_number("0.2")
    (True, True, False, False)
    """
    # Exact types first: a temperature is checked on every cached call, and the
    # isinstance() checks (ABC machinery for a subclass) cost more.
    return (
        type(value) is float
        or type(value) is int
        or (not isinstance(value, bool) and isinstance(value, (int, float)))
    )
