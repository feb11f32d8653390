"""Where Ollama's HTTP API meets llmcache: its host syntax, its error replies, its retries.

httpx exceptions are mapped by the shared `llmcache_http.map_errors`; the non-2xx replies of
an Ollama server (``{"error": "..."}`` bodies) map here, so callers only ever see
`llmcache.backends.errors`::

    HTTP 503                                -> BackendUnavailable  (retried)
    HTTP 429                                -> BackendUnavailable
    HTTP 404 "model 'x' not found"          -> ModelNotFound
    other HTTP 4xx                          -> BadRequest (with the server's message)
    other HTTP 5xx                          -> BackendError (with status_code)

Refused connections are retried too (`llmcache_http.connection_refused`).

>>> resolve_host("0.0.0.0:8080"), resolve_host("https://example.com")
('http://127.0.0.1:8080', 'https://example.com:443')
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse

import orjson

from llmcache.backends.errors import (
    BackendError,
    BackendUnavailable,
    BadRequest,
    BadResponse,
    ModelNotFound,
)
from llmcache_http import connection_refused

__all__ = ["DEFAULT_HOST", "is_retryable", "resolve_host", "status_error"]

DEFAULT_HOST = "http://127.0.0.1:11434"
_DEFAULT_PORT = 11434
# Ollama's own client connects to loopback when told the server's wildcard bind address.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}
_MODEL_NOT_FOUND = re.compile(r"model ['\"]?(?P<name>[^'\"]*?)['\"]? not found")


def resolve_host(host: str | None) -> str:
    """The base URL for `host` (``OLLAMA_HOST`` syntax: scheme and port optional)."""
    host = (host or "").strip()
    if not host:
        return DEFAULT_HOST
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = "http", host
    port = {"http": 80, "https": 443}.get(scheme, _DEFAULT_PORT) if sep else _DEFAULT_PORT
    split = urllib.parse.urlsplit(f"{scheme}://{rest}")
    name = split.hostname or "127.0.0.1"
    name = _WILDCARDS.get(name, name)
    try:
        if ipaddress.ip_address(name).version == 6:
            name = f"[{name}]"
    except ValueError:
        pass  # a DNS name
    userinfo = split.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{name}" if userinfo else name
    path = split.path.strip("/")
    return f"{scheme}://{netloc}:{split.port or port}" + (f"/{path}" if path else "")


def is_retryable(error: BackendError) -> bool:
    """Only failures where the server certainly did no work: refused connections and 503."""
    return connection_refused(error) or (
        isinstance(error, BackendUnavailable) and error.status_code == 503
    )


def _message(content: bytes, status: int) -> str:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("error"), str):
        return str(value["error"])
    text = content.decode("utf-8", "replace").strip()
    return text[:300] if text else f"HTTP {status}"


def status_error(status: int, content: bytes, model: str) -> BackendError:
    """The error for a non-2xx reply, carrying the server's ``{"error": ...}`` message."""
    message = _message(content, status)
    if status == 404:
        found = _MODEL_NOT_FOUND.search(message)
        if found:
            return ModelNotFound(found["name"] or model, message, status_code=404)
        return BackendError(message, status_code=404)
    if status in (429, 503):
        return BackendUnavailable(message, status_code=status)
    if 400 <= status < 500:
        return BadRequest(message, status_code=status)
    if status >= 500:
        return BackendError(message, status_code=status)
    return BadResponse(f"unexpected HTTP {status}: {message}", status_code=status)
