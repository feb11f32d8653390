"""What `OllamaClient` and `AsyncOllamaClient` share: settings, validation, retry logging."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from llmcache.backends.base import Message, check_messages, check_prompt, check_sampling
from llmcache.backends.errors import BackendError, BackendTimeout
from llmcache_ollama._boundary import (
    RetryClock,
    is_retryable,
    make_timeout,
    map_errors,
    redact,
    resolve_host,
    status_error,
)
from llmcache_ollama._protocol import Call, chat_call, generate_call
from llmcache_ollama._transport import check_settings

__all__ = ["ClientBase", "logger"]

logger = logging.getLogger("llmcache_ollama")

_USER_AGENT = "llmcache-ollama/0.1.0"


class ClientBase:
    """Validated constructor arguments of both clients.

    ``default_temperature`` is what an Ollama server samples at when a request names no
    temperature (0.8); caches read it to decide whether such a request is deterministic.

    ``max_connections`` bounds the requests in flight with a semaphore, not only httpx's
    pool: once requests queue inside httpcore's pool, each pool event costs CPU in
    proportion to the queue times the pool (1000 gathered requests over one connection
    measured 76 s, against 1.4 s waiting on a semaphore instead). httpcore 1.0's pool also
    does O(pool²) work per event, so the default (16) is small; Ollama itself runs only a
    few requests at a time (``OLLAMA_NUM_PARALLEL``) and queues the rest.

    Headers live only inside the httpx client: nothing here prints or logs them, since they
    may carry an API key (the same goes for credentials in the host URL, see ``host``).
    """

    default_temperature: float = 0.8

    def __init__(self, host: str | None, *, model: str, timeout: float | httpx.Timeout,
                 retries: int, backoff: float, max_connections: int) -> None:
        check_settings(model=model, retries=retries, backoff=backoff,
                       max_connections=max_connections)
        self._base_url = resolve_host(host if host is not None else os.getenv("OLLAMA_HOST"))
        #: The server's base URL without credentials.
        self.host = redact(self._base_url)
        #: The default model; each call may name another with ``model=``.
        self.model = model
        self.timeout, self._budget = make_timeout(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.max_connections = max_connections

    def _http_options(self, headers: Mapping[str, str] | None) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient``."""
        merged = {"Accept": "application/json", "User-Agent": _USER_AGENT, **(headers or {})}
        limits = httpx.Limits(max_connections=self.max_connections,
                              max_keepalive_connections=self.max_connections)
        # Redirects are not followed: a redirected POST would silently turn into a GET.
        return {"base_url": self._base_url, "timeout": self.timeout, "headers": merged,
                "follow_redirects": False, "limits": limits}

    def _no_slot(self) -> BackendTimeout:
        return BackendTimeout(f"all {self.max_connections} connections to {self.host} stayed "
                              f"busy for {self.timeout.pool} s (pool timeout)")

    def _clock(self) -> RetryClock:
        return RetryClock(self.timeout, self._budget, self.retries, self.backoff)

    def _model(self, model: str | None) -> str:
        return model or self.model

    # Both calls are built here, after checking what the caller passed: a wrong type gets an
    # error naming the method, the argument and the fix, and nothing is sent.

    def _generate_call(self, prompt: str, *, stream: bool, **fields: Any) -> Call:
        where = f"{type(self).__name__}.generate{'_stream' if stream else ''}"
        check_prompt(prompt, where)
        check_sampling(where, temperature=fields.get("temperature"),
                       max_tokens=fields.get("max_tokens"), options=fields.get("options"))
        return generate_call(prompt, stream=stream, **fields)

    def _chat_call(self, messages: Sequence[Message], *, stream: bool, **fields: Any) -> Call:
        where = f"{type(self).__name__}.chat{'_stream' if stream else ''}"
        check_messages(messages, where)
        check_sampling(where, temperature=fields.get("temperature"),
                       max_tokens=fields.get("max_tokens"), options=fields.get("options"),
                       tools=fields.get("tools"))
        return chat_call(messages, stream=stream, **fields)

    def _log_retry(self, path: str, error: Exception, delay: float) -> None:
        logger.info("retrying %s%s in %.2f s after: %s", self.host, path, delay, error)

    # The hooks the shared transport (`_transport`) calls, bound to this plugin's boundary.

    def _errors(self, *, streaming: bool = False) -> map_errors:
        return map_errors(self.host, streaming=streaming)

    def _status_error(self, status: int, content: bytes, model: str) -> BackendError:
        return status_error(status, content, model)

    def _retryable(self, error: BackendError) -> bool:
        return is_retryable(error)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, model={self.model!r})"
