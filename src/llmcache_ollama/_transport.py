"""The HTTP transport the backend plugins share (`llmcache_ollama`, `llmcache_openai`).

Private to the plugins, and kept out of the core package so that the core imports no HTTP
library; it lives here beside `_boundary`, which the OpenAI plugin already shares. A
plugin's blocking client mixes in `SyncTransport`, its asyncio twin `AsyncTransport`; both
leave the protocol to the plugin, which supplies the hooks of `Transport` (its
``ClientBase`` holds them):

    _http_options(headers)   keyword arguments for the httpx client (base URL, auth header ...)
    _clock()                 a fresh retry clock for one call (budget, backoff, retries left)
    _no_slot()               the error for "every connection stayed busy" (pool timeout)
    _log_retry(path, e, s)   the log line before a retry (the plugin decides what it shows)
    _errors(streaming=)      a context manager mapping httpx exceptions into our error tree
    _status_error(...)       the error for a non-2xx reply
    _retryable(error)        whether a failed attempt may be sent again

What the transport owns is the same for every JSON-over-HTTP model API: at most
``max_connections`` requests in flight (a semaphore in front of httpx's pool), the retry loop,
error replies read and closed before they are mapped, streams that hold their connection
slot until exhausted or closed, and ``close`` / ``aclose``. Each twin keeps only the I/O that
must differ (``send`` vs ``await send``, ``sleep`` vs ``await asyncio.sleep``). Below them are
the protocol-free checks both plugins make on a request (`refuse_reserved`, `input_texts`) and
on a reply's JSON (`decode_object`, `int_field`, `str_field`).

>>> int_field({"eval_count": 3}, "eval_count"), int_field(None, "eval_count")
(3, 0)
"""

from __future__ import annotations

import asyncio
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from typing import Any, Protocol

import httpx
import orjson

from llmcache.backends.errors import BackendError, BackendUnavailable, BadResponse

__all__ = [
    "AsyncTransport",
    "Clock",
    "SyncTransport",
    "Transport",
    "check_settings",
    "decode_object",
    "input_texts",
    "int_field",
    "refuse_reserved",
    "str_field",
]

_JSON = {"Content-Type": "application/json"}


class Clock(Protocol):
    """Retry bookkeeping for one call (e.g. ``llmcache_ollama._boundary.RetryClock``)."""

    def timeout(self) -> httpx.Timeout: ...

    def next_delay(self) -> float | None: ...


class Transport(ABC):
    """The settings and hooks both transports read; see the module docstring."""

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

    def _closed(self) -> BackendUnavailable:
        return BackendUnavailable(f"{type(self).__name__} is closed")

    @staticmethod
    def _encode(body: dict[str, Any] | None) -> tuple[bytes | None, dict[str, str] | None]:
        """The request content and its headers (None for a request without a body)."""
        return (orjson.dumps(body), _JSON) if body is not None else (None, None)


class SyncTransport(Transport):
    """The blocking transport: an ``httpx.Client`` behind a thread semaphore."""

    _http: httpx.Client
    _slots: threading.BoundedSemaphore

    def _connect(self, transport: httpx.BaseTransport | None,
                 headers: Mapping[str, str] | None) -> None:
        self._http = httpx.Client(transport=transport, **self._http_options(headers))
        self._slots = threading.BoundedSemaphore(self.max_connections)

    @contextmanager
    def _slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self.timeout.pool):
            raise self._no_slot()
        try:
            yield
        finally:
            self._slots.release()

    def _attempt(self, request: httpx.Request, model: str, stream: bool) -> httpx.Response:
        if self._http.is_closed:
            raise self._closed()
        with self._errors():
            response = self._http.send(request, stream=stream)
            if response.is_success:
                return response
            try:
                response.read()
            finally:
                response.close()
        raise self._status_error(response.status_code, response.content, model)

    def _send(self, method: str, path: str, body: dict[str, Any] | None, model: str, *,
              stream: bool = False) -> httpx.Response:
        clock = self._clock()
        content, headers = self._encode(body)
        while True:
            request = self._http.build_request(method, path, content=content, headers=headers,
                                               timeout=clock.timeout())
            try:
                return self._attempt(request, model, stream)
            except BackendUnavailable as error:
                delay = clock.next_delay() if self._retryable(error) else None
                if delay is None:
                    raise
                self._log_retry(path, error, delay)
                time.sleep(delay)

    def _json(self, method: str, path: str, body: dict[str, Any] | None,
              model: str) -> tuple[dict[str, Any], float]:
        """The reply's JSON object and the call's wall time in milliseconds."""
        started = time.perf_counter()
        with self._slot():
            response = self._send(method, path, body, model)
        return decode_object(response.content), (time.perf_counter() - started) * 1000

    @contextmanager
    def _streaming(self, path: str, body: dict[str, Any],
                   model: str) -> Iterator[httpx.Response]:
        """A streamed ``POST``: the response holds its slot until the block ends, and a
        transport error inside the block means an incomplete answer."""
        with self._slot():
            response = self._send("POST", path, body, model, stream=True)
            try:
                with self._errors(streaming=True):
                    yield response
            finally:
                response.close()

    def close(self) -> None:
        """Close the connection pool. Idempotent."""
        self._http.close()


class AsyncTransport(Transport):
    """The asyncio transport: an ``httpx.AsyncClient`` behind an asyncio semaphore."""

    _http: httpx.AsyncClient
    _slots: asyncio.BoundedSemaphore

    def _connect(self, transport: httpx.AsyncBaseTransport | None,
                 headers: Mapping[str, str] | None) -> None:
        self._http = httpx.AsyncClient(transport=transport, **self._http_options(headers))
        self._slots = asyncio.BoundedSemaphore(self.max_connections)

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self._slots.locked():  # only a contended acquire pays for a timer
            try:
                await asyncio.wait_for(self._slots.acquire(), self.timeout.pool)
            except asyncio.TimeoutError:
                raise self._no_slot() from None
        else:
            await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()

    async def _attempt(self, request: httpx.Request, model: str,
                       stream: bool) -> httpx.Response:
        if self._http.is_closed:
            raise self._closed()
        with self._errors():
            response = await self._http.send(request, stream=stream)
            if response.is_success:
                return response
            try:
                await response.aread()
            finally:
                await response.aclose()
        raise self._status_error(response.status_code, response.content, model)

    async def _send(self, method: str, path: str, body: dict[str, Any] | None, model: str, *,
                    stream: bool = False) -> httpx.Response:
        clock = self._clock()
        content, headers = self._encode(body)
        while True:
            request = self._http.build_request(method, path, content=content, headers=headers,
                                               timeout=clock.timeout())
            try:
                return await self._attempt(request, model, stream)
            except BackendUnavailable as error:
                delay = clock.next_delay() if self._retryable(error) else None
                if delay is None:
                    raise
                self._log_retry(path, error, delay)
                await asyncio.sleep(delay)

    async def _json(self, method: str, path: str, body: dict[str, Any] | None,
                    model: str) -> tuple[dict[str, Any], float]:
        """The reply's JSON object and the call's wall time in milliseconds."""
        started = time.perf_counter()
        async with self._slot():
            response = await self._send(method, path, body, model)
        return decode_object(response.content), (time.perf_counter() - started) * 1000

    @asynccontextmanager
    async def _streaming(self, path: str, body: dict[str, Any],
                         model: str) -> AsyncIterator[httpx.Response]:
        """See `SyncTransport._streaming`."""
        async with self._slot():
            response = await self._send("POST", path, body, model, stream=True)
            try:
                with self._errors(streaming=True):
                    yield response
            finally:
                await response.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent."""
        await self._http.aclose()


# -- requests ---------------------------------------------------------------------------------

def check_settings(*, model: object, retries: object, backoff: object,
                   max_connections: object) -> None:
    """The constructor checks every HTTP client makes, each naming its argument."""
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty model name, got {model!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0, got {retries!r}")
    if not isinstance(backoff, (int, float)) or not 0 <= backoff < float("inf"):
        raise ValueError(f"backoff must be finite seconds >= 0, got {backoff!r}")
    if isinstance(max_connections, bool) or not isinstance(max_connections, int) or (
            max_connections < 1):
        raise ValueError(f"max_connections must be an int >= 1, got {max_connections!r}")


def refuse_reserved(reserved: frozenset[str], *given: Iterable[str]) -> None:
    """Raise `TypeError` if a caller's fields name one the client sets itself: letting them
    override it would send a request whose shape the parser does not expect."""
    clash: set[str] = set()
    for fields in given:
        clash.update(reserved.intersection(fields))
    if clash:
        raise TypeError(f"unexpected keyword argument(s) {sorted(clash)}: the client sets "
                        "these itself (use the *_stream methods to stream)")


def input_texts(texts: Sequence[str]) -> list[str]:
    """The texts of an embedding call; a bare string is refused, not embedded per letter."""
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts; wrap a single string in a list")
    return list(texts)


# -- replies ----------------------------------------------------------------------------------

def decode_object(content: bytes | str) -> dict[str, Any]:
    """Parse one JSON object, or raise `BadResponse`."""
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise BadResponse(f"server sent invalid JSON: {exc}; body starts "
                          f"{content[:80]!r}") from exc
    if not isinstance(value, dict):
        raise BadResponse(f"server sent JSON {type(value).__name__}, expected an object")
    return value


def int_field(obj: Mapping[str, Any] | None, key: str) -> int:
    """``obj[key]`` as an int (0 when absent or null), or raise `BadResponse`."""
    value = obj.get(key) if obj else None
    if value is None:
        return 0
    if type(value) is not int:
        raise BadResponse(f"field {key!r} should be an integer, got {value!r}")
    return value


def str_field(obj: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    """``obj[key]`` as a string (`default` when absent), or raise `BadResponse`."""
    value = obj.get(key, default)
    if value is not None and not isinstance(value, str):
        raise BadResponse(f"field {key!r} should be a string, got {type(value).__name__}")
    return value
