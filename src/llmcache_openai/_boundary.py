"""Where an OpenAI-compatible API meets llmcache: base URLs, error replies, retries.

httpx exceptions are mapped by the shared `llmcache_http.map_errors`; HTTP statuses map here,
from OpenAI's error bodies (``{"error": {"message", "type", "code"}}``, or the flatter shapes
of vLLM and FastAPI servers)::

    httpx.ConnectError                       -> BackendUnavailable  (retried)
    httpx.TimeoutException, HTTP 408         -> BackendTimeout
    HTTP 401, 403                            -> AuthenticationError (a BadRequest)
    code "model_not_found", or 404 naming
      a model                                -> ModelNotFound
    HTTP 429 (rate limit), 500, 502, 503, 504 -> BackendUnavailable (retried)
    HTTP 429 "insufficient_quota"            -> BadRequest (retrying cannot help)
    other HTTP 4xx                           -> BadRequest
    other HTTP 404                           -> BackendError (is the base URL's /v1 there?)
    other HTTP 5xx                           -> BackendUnavailable

An API key that a server echoes in an error message is replaced by ``[redacted]``.

>>> status_error(404, b'{"error": {"message": "The model `gpt-x` does not exist",'
...              b' "code": "model_not_found"}}', "gpt-x", secret=None).model
'gpt-x'
"""

from __future__ import annotations

import re
import urllib.parse

import orjson

from llmcache.backends.errors import (
    AuthenticationError,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BadRequest,
    BadResponse,
    ModelNotFound,
)
from llmcache_http import connection_refused, redact, scrub

__all__ = ["DEFAULT_BASE_URL", "is_retryable", "resolve_base_url", "status_error"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MODEL_NAME = re.compile(r"model[^`'\"]{0,20}[`'\"](?P<name>[^`'\"]+)[`'\"]", re.IGNORECASE)


def resolve_base_url(url: str | None) -> str:
    """The API's base URL (``OPENAI_BASE_URL`` syntax: scheme, host and the ``/v1`` path),
    without a trailing slash.

    >>> resolve_base_url("http://localhost:8000/v1/"), resolve_base_url(None)
    ('http://localhost:8000/v1', 'https://api.openai.com/v1')
    """
    url = (url or "").strip() or DEFAULT_BASE_URL
    split = urllib.parse.urlsplit(url)
    if split.scheme not in ("http", "https") or not split.hostname:
        raise ValueError(
            f"base_url must be an http(s) URL such as http://localhost:8000/v1, got {redact(url)!r}"
        )
    return url.rstrip("/")


def _details(content: bytes, status: int) -> tuple[str, str | None]:
    """The message and code of an error body, whatever its server's shape."""
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        error = value.get("error", value)
        if isinstance(error, str):
            return error, None
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail")
            code = error.get("code")
            if message:
                return str(message), code if isinstance(code, str) else None
    text = content.decode("utf-8", "replace").strip()
    return (text[:300] if text else f"HTTP {status}"), None


def status_error(status: int, content: bytes, model: str, *, secret: str | None) -> BackendError:
    """The error for a non-2xx reply, carrying the server's message (key scrubbed)."""
    message, code = _details(content, status)
    message = scrub(message, secret)
    named = _MODEL_NAME.search(message)
    if code == "model_not_found" or (status == 404 and named):
        return ModelNotFound(named["name"] if named else model, message, status_code=status)
    if status in (401, 403):
        return AuthenticationError(message, status_code=status)
    if status == 408:
        return BackendTimeout(message, status_code=status)
    if status == 429 and code == "insufficient_quota":
        return BadRequest(message, status_code=status)
    if status == 429 or status >= 500:
        return BackendUnavailable(message, status_code=status)
    if status == 404:
        return BackendError(f"{message} (HTTP 404: does the base URL end in /v1?)", status_code=404)
    if 400 <= status < 500:
        return BadRequest(message, status_code=status)
    return BadResponse(f"unexpected HTTP {status}: {message}", status_code=status)


def is_retryable(error: BackendError) -> bool:
    """Refused connections, rate limits and server errors; never an answer in progress."""
    return connection_refused(error) or (
        isinstance(error, BackendUnavailable) and error.status_code in RETRY_STATUSES
    )
