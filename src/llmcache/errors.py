"""The root of llmcache's own errors.

::

    LLMCacheError               anything llmcache raises on purpose
    ├── StoreError              (also RuntimeError) a store could not do what was asked:
    │                           a clear or delete that did not happen, a tier that could not
    │                           open with ``strict=True``
    └── ...                     (the other families join this root as they are moved here)

A failing tier never raises from ``get``/``set`` on the request path (it degrades to a
miss and is counted); `StoreError` is for explicit operations whose caller must know that
they did not happen.

>>> from llmcache.errors import LLMCacheError, StoreError
>>> issubclass(StoreError, (LLMCacheError, RuntimeError))
True
"""

from __future__ import annotations

__all__ = ["LLMCacheError", "StoreError"]


class LLMCacheError(Exception):
    """Base of every error llmcache raises on purpose."""


class StoreError(LLMCacheError, RuntimeError):
    """A store could not do an explicit operation (clear, delete, strict open).

    ``store`` names the tier, ``operation`` the method that failed.
    """

    def __init__(self, message: str, *, store: str = "", operation: str = "") -> None:
        super().__init__(message)
        self.store = store
        self.operation = operation
