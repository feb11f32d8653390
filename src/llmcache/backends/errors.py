"""Errors a backend raises, mapped at the boundary from whatever its transport raises.

::

    BackendError                 anything that went wrong talking to a model
    ├── BackendUnavailable       connection refused/reset, DNS, 503 after retries
    ├── BackendTimeout           no answer within the configured timeout
    ├── ModelNotFound            the server does not have the model (.model names it)
    ├── BadRequest               the server refused the request (HTTP 400 and friends)
    │   └── AuthenticationError  the server refused the credentials (HTTP 401/403)
    ├── BadResponse              the reply was not what the protocol promises (bad JSON ...)
    └── StreamError              the server reported an error in the middle of a stream

None of these is ever cached. ``status_code`` is the HTTP status when there was one
(``-1`` for an error line inside a 200 stream, as the official Ollama client does).
"""

from __future__ import annotations

from llmcache.errors import LLMCacheError

__all__ = [
    "AuthenticationError",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "BadRequest",
    "BadResponse",
    "ModelNotFound",
    "StreamError",
]


class BackendError(LLMCacheError):
    """Base of every backend failure."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class BackendUnavailable(BackendError):
    """The server could not be reached, or said it is overloaded, after all retries."""


class BackendTimeout(BackendError):
    """The server did not answer within the timeout."""


class ModelNotFound(BackendError):
    """The server has no model of that name."""

    def __init__(
        self, model: str, message: str | None = None, *, status_code: int | None = 404
    ) -> None:
        super().__init__(message or f"model {model!r} not found", status_code=status_code)
        self.model = model


class BadRequest(BackendError):
    """The server refused the request as malformed or unsupported."""


class AuthenticationError(BadRequest):
    """The server refused the credentials (a missing, wrong or unauthorised API key).

    A `BadRequest`, because retrying the same request cannot help; its message never holds
    the key itself.
    """


class BadResponse(BackendError):
    """The server's reply broke the protocol (not JSON, missing fields ...)."""


class StreamError(BackendError):
    """An error reported after a stream had started."""
