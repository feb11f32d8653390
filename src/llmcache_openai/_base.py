"""What `OpenAIClient` and `AsyncOpenAIClient` share: settings, the API key, retry logging."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from llmcache.backends.base import Message, check_messages, check_prompt, check_sampling
from llmcache.backends.errors import BackendError, BackendTimeout
from llmcache_ollama._transport import check_settings
from llmcache_openai._boundary import (
    RetryClock,
    is_retryable,
    make_timeout,
    map_errors,
    redact,
    resolve_base_url,
    scrub,
    status_error,
)
from llmcache_openai._protocol import Call, chat_call, generate_call

__all__ = ["ClientBase", "logger"]

logger = logging.getLogger("llmcache_openai")

_USER_AGENT = "llmcache-openai/0.1.0"


class _Secret:
    """Holds the API key so that no repr, ``vars()`` dump or log line can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or None

    def reveal(self) -> str | None:
        return self._value

    def __repr__(self) -> str:
        return "_Secret('***')" if self._value else "_Secret(None)"


class ClientBase:
    """Validated constructor arguments of both clients.

    ``default_temperature`` is what the OpenAI API samples at when a request names none
    (1.0); caches read it to decide whether such a request is deterministic (it is not).

    The API key goes into the httpx client's ``Authorization`` header and nowhere else that
    is printed: not into reprs, log lines, error messages (a server echoing it gets it
    replaced), nor into anything a cache keys on (requests are keyed on what is asked, and
    the key is not part of that).
    """

    default_temperature: float = 1.0

    def __init__(self, base_url: str | None, *, model: str, api_key: str | None,
                 embed_model: str | None, timeout: float | httpx.Timeout, retries: int,
                 backoff: float, max_connections: int) -> None:
        check_settings(model=model, retries=retries, backoff=backoff,
                       max_connections=max_connections)
        if embed_model is not None and (not isinstance(embed_model, str) or not embed_model):
            raise ValueError(f"embed_model must be a model name or None, got {embed_model!r}")
        self._base_url = resolve_base_url(
            base_url if base_url is not None else os.getenv("OPENAI_BASE_URL"))
        #: The API's base URL without credentials.
        self.base_url = redact(self._base_url)
        self._key = _Secret(api_key if api_key is not None else os.getenv("OPENAI_API_KEY"))
        #: The default model; each call may name another with ``model=``.
        self.model = model
        #: The model `embed` uses when the call names none (default: `model`).
        self.embed_model = embed_model or model
        self.timeout, self._budget = make_timeout(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.max_connections = max_connections

    @property
    def has_api_key(self) -> bool:
        """Whether requests carry an API key (the key itself is never exposed)."""
        return self._key.reveal() is not None

    def _http_options(self, headers: Mapping[str, str] | None) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient``."""
        merged = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        key = self._key.reveal()
        if key is not None:
            merged["Authorization"] = f"Bearer {key}"
        merged.update(headers or {})
        limits = httpx.Limits(max_connections=self.max_connections,
                              max_keepalive_connections=self.max_connections)
        # Redirects are not followed: a redirected POST would silently turn into a GET, and
        # the Authorization header must not follow a redirect to another host.
        return {"base_url": self._base_url, "timeout": self.timeout, "headers": merged,
                "follow_redirects": False, "limits": limits}

    def _status_error(self, status: int, content: bytes, model: str) -> BackendError:
        return status_error(status, content, model, secret=self._key.reveal())

    def _errors(self, *, streaming: bool = False) -> map_errors:
        return map_errors(self.base_url, streaming=streaming)

    def _retryable(self, error: BackendError) -> bool:
        return is_retryable(error)

    def _no_slot(self) -> BackendTimeout:
        return BackendTimeout(f"all {self.max_connections} connections to {self.base_url} "
                              f"stayed busy for {self.timeout.pool} s (pool timeout)")

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
        logger.info("retrying %s%s in %.2f s after: %s", self.base_url, path, delay,
                    scrub(str(error), self._key.reveal()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r})"
