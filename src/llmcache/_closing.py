"""The ``with`` / ``async with`` faces of objects that hold something to release: entering
gives the object itself, leaving calls its ``close`` (``aclose``), whatever happened."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

__all__ = ["AsyncClosing", "Closing"]

_C = TypeVar("_C", bound="Closing")
_A = TypeVar("_A", bound="AsyncClosing")


class Closing:
    """``with obj:`` gives `obj` and calls ``obj.close()`` on the way out."""

    def close(self) -> None:
        """Release what this object holds. Idempotent."""
        return None

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClosing:
    """``async with obj:`` gives `obj` and awaits ``obj.aclose()`` on the way out."""

    async def aclose(self) -> None:
        """Release what this object holds. Idempotent."""
        return None

    async def __aenter__(self: _A) -> _A:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
