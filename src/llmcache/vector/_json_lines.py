"""Reading a JSON-lines file (the labeled pairs of ``llmcache eval`` and `observe_pairs`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import orjson


def json_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """Each non-blank line of the file at ``path`` parsed, with its number (from 1);
    ``ValueError`` naming the line for one that is not JSON."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc})") from None
            yield n, value
