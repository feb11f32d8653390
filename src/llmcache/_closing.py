"""The ``with`` / ``async with`` faces of objects whose block gives the object itself.

`Scope` and `AsyncScope`: leaving hands ``_leave`` (``_aleave``) the exception the block
raised (None if none), so a subclass writes what leaving does, never the exit protocol.
`Closing` and `AsyncClosing`: objects that hold something to release; leaving calls their
``close`` (``aclose``), whatever happened.
"""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

__all__ = ["AsyncClosing", "AsyncScope", "Closing", "Scope"]

_S = TypeVar("_S", bound="Scope")
_A = TypeVar("_A", bound="AsyncScope")


class Scope:
    """``with obj:`` gives `obj` and calls ``obj._leave(exc)`` on the way out."""

    __slots__ = ()

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave(exc)

    def _leave(self, exc: BaseException | None) -> None:
        """What leaving the block does; ``exc`` is what the block raised, None if nothing."""


class AsyncScope:
    """``async with obj:`` gives `obj` and awaits ``obj._aleave(exc)`` on the way out."""

    __slots__ = ()

    async def __aenter__(self: _A) -> _A:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._aleave(exc)

    async def _aleave(self, exc: BaseException | None) -> None:
        """What leaving the block does; ``exc`` is what the block raised, None if nothing."""


class Closing(Scope):
    """``with obj:`` gives `obj` and calls ``obj.close()`` on the way out."""

    def close(self) -> None:
        """Release what this object holds. Idempotent."""
        return None

    def _leave(self, exc: BaseException | None) -> None:
        self.close()


class AsyncClosing(AsyncScope):
    """``async with obj:`` gives `obj` and awaits ``obj.aclose()`` on the way out."""

    async def aclose(self) -> None:
        """Release what this object holds. Idempotent."""
        return None

    async def _aleave(self, exc: BaseException | None) -> None:
        await self.aclose()
