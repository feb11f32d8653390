"""The root of llmcache's own errors: ``except LLMCacheError`` catches every error llmcache
raises on purpose. Each class also keeps the builtin base it had before the root existed
(in brackets), so an ``except KeyError`` or ``except ValueError`` written earlier still
catches what it caught.

::

    LLMCacheError                 anything llmcache raises on purpose
    ├── StoreError                [RuntimeError] a store could not do what was asked: a clear
    │   │                         or delete that did not happen, a strict open that failed
    │   └── SchemaError           a Postgres table holds a schema this llmcache cannot use
    ├── BackendError              a model server call failed (never cached)
    │   ├── BackendUnavailable    unreachable or overloaded, after every retry
    │   ├── BackendTimeout        no answer in time
    │   ├── ModelNotFound         the server does not have the model
    │   ├── BadRequest            the server refused the request
    │   │   └── AuthenticationError
    │   ├── BadResponse           an answer that is not what the API promises
    │   └── StreamError           a stream that broke off
    ├── BackendNotFound           [KeyError] no backend plugin of that name
    ├── BackendLoadError          [ImportError] a backend plugin failed to import or load
    ├── BackendConflict           [ValueError] a backend name claimed twice
    ├── CodecError                [ValueError] bytes that are not an llmcache entry
    ├── NotKeyable                [ValueError] a value canonical bytes cannot hold
    ├── ControlHeaderError        [ValueError] a malformed cache-control request header
    ├── IndexFileError            [ValueError] a saved vector index that cannot be loaded
    ├── EmbeddingError            [ValueError] an embedder's answer of the wrong shape
    ├── NotOpen                   a disk tier whose directory could not be opened
    └── Unavailable               [ConnectionError] a Postgres tier whose circuit is open

The last two are raised and caught inside the stores: a failing tier never raises from
``get``/``set`` on the request path (it degrades to a miss and is counted); `StoreError` is
for explicit operations whose caller must know that they did not happen. A model server's
transport errors (httpx's) are mapped at the boundary into `BackendError`'s family
(``llmcache_http``).

>>> from llmcache.errors import LLMCacheError, StoreError
>>> issubclass(StoreError, (LLMCacheError, RuntimeError))
True
>>> from llmcache import BackendNotFound, get_backend
>>> try:
...     get_backend("no-such-backend")
... except LLMCacheError as exc:
...     print(type(exc).__name__, isinstance(exc, KeyError))
BackendNotFound True
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
