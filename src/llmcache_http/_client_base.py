"""What every HTTP model client shares, sync or async: validated settings and the hooks its
transport calls.

`Transport` and `AsyncTransport` send through the hooks of `TransportHooks`:

    _http_options(headers)   keyword arguments for the httpx client (base URL, auth header ...)
    _clock()                 a fresh retry clock for one call (budget, backoff, retries left)
    _no_slot()               the error for "every connection stayed busy" (pool timeout)
    _log_retry(path, e, s)   the log line before a retry
    _errors(streaming=)      a context manager mapping httpx exceptions into our error tree
    _status_error(...)       the error for a non-2xx reply
    _retryable(error)        whether a failed attempt may be sent again

A plugin's client class derives from its own base on `HTTPClientBase`, which fills in the
protocol, and from `ModelClient` or `AsyncModelClient` (a transport with ``generate``,
``chat`` and their streams). `HTTPClientBase` implements the hooks that are the same for
every JSON-over-HTTP model API; the plugin's base sets ``_wire``, a `Wire` naming its
request builders, reply parser and retry rule (the hooks call them), implements

    _resolve_url(given)                     the base URL from the constructor's argument
    _status_error(status, content, model)   the error for a non-2xx reply

and, optionally, ``_auth_headers()`` (headers carrying a credential) and ``_secret()`` (a
string no log line may show).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypedDict, TypeVar

import httpx

from llmcache.backends.base import (
    AIResponse,
    check_messages,
    check_prompt,
    check_sampling,
)
from llmcache.backends.errors import BackendError, BackendTimeout
from llmcache_http._boundary import RetryClock, make_timeout, map_errors, redact, scrub
from llmcache_http._checks import check_settings

__all__ = ["Call", "Clock", "HTTPClientBase", "Settings", "TransportHooks", "Wire"]


class Call(Protocol):
    """One request a plugin's protocol built: where it goes, what it sends, which model."""

    @property
    def path(self) -> str: ...

    @property
    def body(self) -> dict[str, Any]: ...

    @property
    def model(self) -> str: ...


CallT = TypeVar("CallT", bound=Call)


@dataclass(frozen=True, slots=True)
class Wire(Generic[CallT]):
    """A plugin's protocol, as the shared clients call it: the functions of its
    ``_protocol`` and ``_boundary`` modules that build requests, parse a reply and say
    which failures may be retried."""

    generate_call: Callable[..., CallT]
    chat_call: Callable[..., CallT]
    to_response: Callable[[CallT, dict[str, Any], float], AIResponse]
    is_retryable: Callable[[BackendError], bool]


class Settings(TypedDict):
    """The settings `HTTPClientBase` takes besides the URL, for a plugin's base to pass on
    as ``**settings`` what it does not read itself."""

    model: str
    timeout: float | httpx.Timeout
    retries: int
    backoff: float
    max_connections: int


class Clock(Protocol):
    """Retry bookkeeping for one call (e.g. `RetryClock`)."""

    def timeout(self) -> httpx.Timeout: ...

    def next_delay(self) -> float | None: ...


class TransportHooks(ABC):
    """The settings and hooks `Transport` and `AsyncTransport` read (see the module
    docstring); `HTTPClientBase` implements them."""

    timeout: httpx.Timeout
    max_connections: int

    @abstractmethod
    def _http_options(self, headers: Mapping[str, str] | None) -> dict[str, Any]: ...

    @abstractmethod
    def _clock(self) -> Clock: ...

    @abstractmethod
    def _no_slot(self) -> BackendError: ...

    @abstractmethod
    def _log_retry(self, path: str, error: Exception, delay: float) -> None: ...

    @abstractmethod
    def _errors(self, *, streaming: bool = False) -> AbstractContextManager[object]: ...

    @abstractmethod
    def _status_error(self, status: int, content: bytes, model: str) -> BackendError: ...

    @abstractmethod
    def _retryable(self, error: BackendError) -> bool: ...


class HTTPClientBase(TransportHooks, Generic[CallT]):
    """Validated constructor arguments and the transport's hooks (see the module docstring).

    ``max_connections`` bounds the requests in flight with a semaphore, not only httpx's
    pool: once requests queue inside httpcore's pool, each pool event costs CPU in
    proportion to the queue times the pool (1000 gathered requests over one connection
    measured 76 s, against 1.4 s waiting on a semaphore instead). httpcore 1.0's pool also
    does O(pool²) work per event, so the default (16) is small.

    Headers live only inside the httpx client: nothing here prints or logs them, since they
    may carry an API key (the same goes for credentials in the URL, see `redact`).
    """

    #: The logger of the plugin's retries.
    _logger: ClassVar[logging.Logger]
    #: The ``User-Agent`` the plugin sends.
    _user_agent: ClassVar[str]

    def __init__(
        self,
        base_url: str | None,
        *,
        model: str,
        timeout: float | httpx.Timeout,
        retries: int,
        backoff: float,
        max_connections: int,
    ) -> None:
        base_url = self._resolve_url(base_url)
        check_settings(
            model=model, retries=retries, backoff=backoff, max_connections=max_connections
        )
        self._base_url = base_url
        #: The server's URL without credentials, for messages.
        self._where = redact(base_url)
        #: The default model; each call may name another with ``model=``.
        self.model = model
        self.timeout, self._budget = make_timeout(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.max_connections = max_connections

    # -- the plugin's protocol (and its `_status_error`) -------------------------------------

    #: The plugin's request builders, parser and retry rule.
    _wire: Wire[CallT]

    @abstractmethod
    def _resolve_url(self, given: str | None) -> str:
        """The server's base URL from what the caller gave (None: the plugin's default,
        e.g. from its environment variable), validated."""

    def _retryable(self, error: BackendError) -> bool:
        return self._wire.is_retryable(error)

    def _auth_headers(self) -> dict[str, str]:
        return {}

    def _secret(self) -> str | None:
        return None

    # -- the hooks the transport calls -------------------------------------------------------

    def _http_options(self, headers: Mapping[str, str] | None) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient``."""
        merged = {
            "Accept": "application/json",
            "User-Agent": self._user_agent,
            **self._auth_headers(),
            **(headers or {}),
        }
        limits = httpx.Limits(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        # Redirects are not followed: a redirected POST would silently turn into a GET, and
        # an Authorization header must not follow a redirect to another host.
        return {
            "base_url": self._base_url,
            "timeout": self.timeout,
            "headers": merged,
            "follow_redirects": False,
            "limits": limits,
        }

    def _clock(self) -> RetryClock:
        return RetryClock(self.timeout, self._budget, self.retries, self.backoff)

    def _no_slot(self) -> BackendTimeout:
        return BackendTimeout(
            f"all {self.max_connections} connections to {self._where} "
            f"stayed busy for {self.timeout.pool} s (pool timeout)"
        )

    def _errors(self, *, streaming: bool = False) -> AbstractContextManager[None]:
        return map_errors(self._where, streaming=streaming)

    def _log_retry(self, path: str, error: Exception, delay: float) -> None:
        self._logger.info(
            "retrying %s%s in %.2f s after: %s",
            self._where,
            path,
            delay,
            scrub(str(error), self._secret()),
        )

    # -- requests ----------------------------------------------------------------------------

    def _model(self, model: str | None) -> str:
        return model or self.model

    def _call(self, method: str, fields: dict[str, Any], extra: dict[str, Any]) -> CallT:
        """The request for `method` (the backend interface's hook: `fields` are the
        arguments the method names, `extra` the caller's other keywords).

        It is built after checking what the caller passed: a wrong type gets an error naming
        the method, the argument and the fix, and nothing is sent.
        """
        where = f"{type(self).__name__}.{method}"
        stream = method.endswith("_stream")
        if method.startswith("generate"):
            check_prompt(fields["prompt"], where)
            self._check_sampling(where, fields)
            return self._wire.generate_call(fields, stream=stream, extra=extra)
        check_messages(fields["messages"], where)
        self._check_sampling(where, fields, tools=True)
        return self._wire.chat_call(fields, stream=stream, extra=extra)

    @staticmethod
    def _check_sampling(where: str, fields: Mapping[str, Any], *, tools: bool = False) -> None:
        # Only chat has a tools argument; a generate call's extra fields go out unchecked.
        check_sampling(
            where,
            temperature=fields.get("temperature"),
            max_tokens=fields.get("max_tokens"),
            options=fields.get("options"),
            tools=fields.get("tools") if tools else None,
        )
