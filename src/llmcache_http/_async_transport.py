"""`AsyncTransport`: how an HTTP model client sends, on ``httpx.AsyncClient``.

What a transport owns is the same for every JSON-over-HTTP model API: at most
``max_connections`` requests in flight (a semaphore in front of httpx's pool), the retry
loop, error replies read and closed before they are mapped, streams that hold their
connection slot until exhausted or closed, and ``aclose``. The protocol is the plugin's: it
reaches the transport through the hooks of `TransportHooks`.

Both faces come from one source: the asyncio transport is written by hand and its blocking
twin generated from it by ``scripts/unasync.py`` (they differ in their semaphore only).
"""

from __future__ import annotations

import asyncio  # unasync: async-only

# unasync: sync import threading
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson

from llmcache.backends.errors import BackendUnavailable
from llmcache_http._checks import decode_object
from llmcache_http._client_base import TransportHooks

__all__ = ["AsyncTransport"]

_JSON = {"Content-Type": "application/json"}


class AsyncTransport(TransportHooks):
    """Sends a client's requests through one ``httpx.AsyncClient``, at most
    ``max_connections`` at a time, retrying what the client's hooks allow."""

    _http: httpx.AsyncClient
    _slots: asyncio.BoundedSemaphore

    def _connect(
        self, transport: httpx.AsyncBaseTransport | None, headers: Mapping[str, str] | None
    ) -> None:
        self._http = httpx.AsyncClient(transport=transport, **self._http_options(headers))
        self._slots = asyncio.BoundedSemaphore(self.max_connections)

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        # unasync: sync if not self._slots.acquire(timeout=self.timeout.pool):
        # unasync: sync     raise self._no_slot()
        # unasync: begin async-only
        if self._slots.locked():  # only a contended acquire pays for a timer
            try:
                await asyncio.wait_for(self._slots.acquire(), self.timeout.pool)
            except asyncio.TimeoutError:
                raise self._no_slot() from None
        else:
            await self._slots.acquire()
        # unasync: end
        try:
            yield
        finally:
            self._slots.release()

    async def _attempt(self, request: httpx.Request, model: str, stream: bool) -> httpx.Response:
        if self._http.is_closed:
            raise BackendUnavailable(f"{type(self).__name__} is closed")
        with self._errors():
            response = await self._http.send(request, stream=stream)
            if response.is_success:
                return response
            try:
                await response.aread()
            finally:
                await response.aclose()
        raise self._status_error(response.status_code, response.content, model)

    async def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        model: str,
        *,
        stream: bool = False,
    ) -> httpx.Response:
        clock = self._clock()
        content, headers = (orjson.dumps(body), _JSON) if body is not None else (None, None)
        while True:
            request = self._http.build_request(
                method, path, content=content, headers=headers, timeout=clock.timeout()
            )
            try:
                return await self._attempt(request, model, stream)
            except BackendUnavailable as error:
                delay = clock.next_delay() if self._retryable(error) else None
                if delay is None:
                    raise
                self._log_retry(path, error, delay)
                await asyncio.sleep(delay)

    async def _json(
        self, method: str, path: str, body: dict[str, Any] | None, model: str
    ) -> tuple[dict[str, Any], float]:
        """The reply's JSON object and the call's wall time in milliseconds."""
        started = time.perf_counter()
        async with self._slot():
            response = await self._send(method, path, body, model)
        return decode_object(response.content), (time.perf_counter() - started) * 1000

    @asynccontextmanager
    async def _streaming(
        self, path: str, body: dict[str, Any], model: str
    ) -> AsyncIterator[httpx.Response]:
        """A streamed ``POST``: the response holds its slot until the block ends, and a
        transport error inside the block means an incomplete answer."""
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
