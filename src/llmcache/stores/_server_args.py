"""What a tier on a server (Redis, Postgres) checks as it is built: that its client library
is installed (or an ImportError names the extra to install), and its arguments."""

from __future__ import annotations

import importlib
import re
from types import ModuleType

from llmcache._numbers import is_number

__all__ = ["matching", "positive", "require_extra"]


def require_extra(missing: str, module: str, *also: str) -> ModuleType:
    """`module`, once it and `also` are imported, or an ImportError saying `missing` (the
    extra to install)."""
    try:
        for name in also:
            importlib.import_module(name)
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(missing) from None


def positive(name: str, value: float) -> float:
    """`value` (argument `name`: seconds) as a float, or a ValueError unless it is > 0."""
    if not is_number(value) or not value > 0:
        raise ValueError(f"{name}: expected seconds > 0, got {value!r}")
    return float(value)


def matching(name: str, value: str, pattern: re.Pattern[str], expected: str) -> str:
    """`value` (argument `name`), or a ValueError saying it is not a str that `pattern`
    matches (`expected` says what it should be)."""
    if not isinstance(value, str) or not pattern.match(value):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return value
