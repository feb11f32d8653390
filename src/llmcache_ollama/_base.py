"""What `OllamaClient` and `AsyncOllamaClient` share: the host, the protocol, the errors."""

from __future__ import annotations

import logging
import os
from typing import ClassVar

from llmcache.backends.errors import BackendError
from llmcache_http import HTTPClientBase
from llmcache_http._client_base import Wire
from llmcache_ollama._boundary import is_retryable, resolve_host, status_error
from llmcache_ollama._protocol import Call, chat_call, generate_call, to_response

__all__ = ["ClientBase", "logger"]

logger = logging.getLogger("llmcache_ollama")


class ClientBase(HTTPClientBase[Call]):
    """Validated constructor arguments of both clients, bound to Ollama's protocol.

    ``default_temperature`` is what an Ollama server samples at when a request names no
    temperature (0.8); caches read it to decide whether such a request is deterministic.
    Ollama itself runs only a few requests at a time (``OLLAMA_NUM_PARALLEL``) and queues
    the rest, so a small ``max_connections`` costs nothing.
    """

    default_temperature: float = 0.8
    _logger: ClassVar[logging.Logger] = logger
    _wire = Wire(
        generate_call=generate_call,
        chat_call=chat_call,
        to_response=to_response,
        is_retryable=is_retryable,
    )
    _user_agent: ClassVar[str] = "llmcache-ollama/0.1.0"

    def _resolve_url(self, given: str | None) -> str:
        return resolve_host(given if given is not None else os.getenv("OLLAMA_HOST"))

    @property
    def host(self) -> str:
        """The server's base URL without credentials."""
        return self._where

    def _status_error(self, status: int, content: bytes, model: str) -> BackendError:
        return status_error(status, content, model)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, model={self.model!r})"
