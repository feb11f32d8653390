"""The protocol-free checks every HTTP model client makes: on its settings
(`check_settings`), on a request (`refuse_reserved`, `input_texts`) and on a reply's JSON
(`decode_object`, `int_field`, `str_field`). Each error names what was wrong.

>>> int_field({"eval_count": 3}, "eval_count"), int_field(None, "eval_count")
(3, 0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from llmcache.backends.errors import BadResponse

__all__ = [
    "check_settings",
    "decode_object",
    "input_texts",
    "int_field",
    "refuse_reserved",
    "str_field",
]


def check_settings(
    *, model: object, retries: object, backoff: object, max_connections: object
) -> None:
    """The constructor checks every HTTP client makes, each naming its argument."""
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty model name, got {model!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0, got {retries!r}")
    if not isinstance(backoff, (int, float)) or not 0 <= backoff < float("inf"):
        raise ValueError(f"backoff must be finite seconds >= 0, got {backoff!r}")
    if (
        isinstance(max_connections, bool)
        or not isinstance(max_connections, int)
        or (max_connections < 1)
    ):
        raise ValueError(f"max_connections must be an int >= 1, got {max_connections!r}")


# -- requests ---------------------------------------------------------------------------------


def refuse_reserved(reserved: frozenset[str], *given: Iterable[str]) -> None:
    """Raise `TypeError` if a caller's fields name one the client sets itself: letting them
    override it would send a request whose shape the parser does not expect."""
    clash: set[str] = set()
    for fields in given:
        clash.update(reserved.intersection(fields))
    if clash:
        raise TypeError(
            f"unexpected keyword argument(s) {sorted(clash)}: the client sets "
            "these itself (use the *_stream methods to stream)"
        )


def input_texts(texts: Sequence[str]) -> list[str]:
    """The texts of an embedding call; a bare string is refused, not embedded per letter."""
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts; wrap a single string in a list")
    return list(texts)


# -- replies ----------------------------------------------------------------------------------


def decode_object(content: bytes | str) -> dict[str, Any]:
    """Parse one JSON object, or raise `BadResponse`."""
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise BadResponse(f"server sent invalid JSON: {exc}; body starts {content[:80]!r}") from exc
    if not isinstance(value, dict):
        raise BadResponse(f"server sent JSON {type(value).__name__}, expected an object")
    return value


def int_field(obj: Mapping[str, Any] | None, key: str) -> int:
    """``obj[key]`` as an int (0 when absent or null), or raise `BadResponse`."""
    value = obj.get(key) if obj else None
    if value is None:
        return 0
    if type(value) is not int:
        raise BadResponse(f"field {key!r} should be an integer, got {value!r}")
    return value


def str_field(obj: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    """``obj[key]`` as a string (`default` when absent), or raise `BadResponse`."""
    value = obj.get(key, default)
    if value is not None and not isinstance(value, str):
        raise BadResponse(f"field {key!r} should be a string, got {type(value).__name__}")
    return value
