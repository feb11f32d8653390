"""What `OpenAIClient` and `AsyncOpenAIClient` share: the base URL, the API key, the protocol."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, ClassVar

from llmcache.backends.errors import BackendError
from llmcache_http import HTTPClientBase
from llmcache_http._client_base import Settings, Wire
from llmcache_openai._boundary import is_retryable, resolve_base_url, status_error
from llmcache_openai._protocol import Call, chat_call, generate_call, to_response

__all__ = ["ClientBase", "logger"]

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's from Python 3.11

logger = logging.getLogger("llmcache_openai")


class _Secret:
    """Holds the API key so that no repr, ``vars()`` dump or log line can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or None

    def reveal(self) -> str | None:
        return self._value

    def __repr__(self) -> str:
        return "_Secret('***')" if self._value else "_Secret(None)"


class ClientBase(HTTPClientBase[Call]):
    """Validated constructor arguments of both clients, bound to the OpenAI protocol.

    ``default_temperature`` is what the OpenAI API samples at when a request names none
    (1.0); caches read it to decide whether such a request is deterministic (it is not).

    The API key goes into the httpx client's ``Authorization`` header and nowhere else that
    is printed: not into reprs, log lines, error messages (a server echoing it gets it
    replaced), nor into anything a cache keys on (requests are keyed on what is asked, and
    the key is not part of that).
    """

    default_temperature: float = 1.0
    _logger: ClassVar[logging.Logger] = logger
    _wire = Wire(
        generate_call=generate_call,
        chat_call=chat_call,
        to_response=to_response,
        is_retryable=is_retryable,
    )
    _user_agent: ClassVar[str] = "llmcache-openai/0.1.0"

    def __init__(
        self,
        base_url: str | None,
        *,
        api_key: str | None,
        embed_model: str | None,
        **settings: Unpack[Settings],
    ) -> None:
        if embed_model is not None and (not isinstance(embed_model, str) or not embed_model):
            raise ValueError(f"embed_model must be a model name or None, got {embed_model!r}")
        super().__init__(base_url, **settings)
        #: The API's base URL without credentials.
        self.base_url = self._where
        self._key = _Secret(api_key if api_key is not None else os.getenv("OPENAI_API_KEY"))
        #: The model `embed` uses when the call names none (default: `model`).
        self.embed_model = embed_model or settings["model"]

    def _resolve_url(self, given: str | None) -> str:
        return resolve_base_url(given if given is not None else os.getenv("OPENAI_BASE_URL"))

    @property
    def has_api_key(self) -> bool:
        """Whether requests carry an API key (the key itself is never exposed)."""
        return self._key.reveal() is not None

    def _auth_headers(self) -> dict[str, str]:
        key = self._key.reveal()
        return {} if key is None else {"Authorization": f"Bearer {key}"}

    def _secret(self) -> str | None:
        return self._key.reveal()

    def _status_error(self, status: int, content: bytes, model: str) -> BackendError:
        return status_error(status, content, model, secret=self._key.reveal())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r})"
