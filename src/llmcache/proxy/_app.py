"""The proxy's ASGI app: ``/healthz``, ``/metrics``, and every other request forwarded.

A forwarded request goes to the upstream through ONE pooled `httpx.AsyncClient` whose
transport is the cache (`llmcache.integrations.httpx.AsyncCacheTransport` around a real
`httpx.AsyncHTTPTransport`): the proxy keys nothing, reads no store and decides no policy
itself; it is the transport's door to the network. What the proxy adds is HTTP plumbing:

- the request: method, path and query as received (after the upstream URL's own path),
  headers without the hop-by-hop ones (credentials pass through untouched, and are never
  logged), the body read whole up to ``max_body`` bytes (larger: 413, nothing sent);
- the answer: status and headers as the transport gave them (minus hop-by-hop ones), the
  body relayed chunk by chunk as it arrives (a stream is never buffered); a hit (in memory
  already) goes out in one write with its length;
- a client that goes away mid-answer: the upstream response is closed at once, so the
  transport sees a cancelled stream and stores nothing;
- failures: no answer from the upstream is a 502 (504 for a timeout) whose body says what
  happened, in the shape of the API the path belongs to; a body that breaks off after the
  status went out ends the client's connection without the last chunk, so the client sees
  an incomplete answer rather than a short one that looks complete. The transport stores
  neither.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from llmcache.proxy._metrics import CONTENT_TYPE, ProxyMetrics

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_TIMEOUT",
    "HOP_BY_HOP",
    "Forwarder",
    "ProxyApp",
    "UpstreamClient",
    "build_app",
]

logger = logging.getLogger("llmcache.proxy")

#: Largest request body forwarded, in bytes (a chat with a few large images fits).
DEFAULT_MAX_BODY = 32 * 1024 * 1024

#: Upstream timeouts: a model may think for minutes before its first byte.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=60.0)

#: Headers that describe one connection, not the message (RFC 9110 7.6.1): never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
        "transfer-encoding",
    }
)
# Set again by httpx (host, length) or by the server (date) for the hop they belong to.
_REQUEST_DROPPED = frozenset(
    name.encode() for name in HOP_BY_HOP | {"host", "content-length", "expect"}
)
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_URLS_KEPT = 256
_RESPONSE_DROPPED = frozenset(name.encode() for name in HOP_BY_HOP | {"date"})


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


_NO_COOKIES = _NoCookies()


class UpstreamClient(httpx.AsyncClient):
    """The proxy's pooled upstream client: an `httpx.AsyncClient` without a cookie jar.

    A reverse proxy serves many clients over one upstream client; a ``Set-Cookie`` of one
    client's answer must not be kept, let alone sent with another client's request (and
    reading it costs a third of a cache hit's time here)."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        pass


class _ClientGone(Exception):
    """The client disconnected before its request body ended."""


def error_body(path: str, message: str, kind: str) -> bytes:
    """An error in the shape the path's API uses: Ollama's ``{"error": "..."}`` under
    ``/api/``, otherwise one object both OpenAI's and Anthropic's SDKs read."""
    if "/api/" in path:
        return orjson.dumps({"error": message})
    return orjson.dumps(
        {"type": "error", "error": {"type": kind, "message": message, "param": None, "code": None}}
    )


class Forwarder:
    """The ASGI app that forwards every request it gets to `upstream` through `client`
    (see the module docstring), counting in `metrics`."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        upstream: httpx.URL,
        metrics: ProxyMetrics,
        *,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.metrics = metrics
        self.max_body = max_body
        self._prefix = upstream.raw_path.split(b"?")[0].rstrip(b"/")
        self._urls: dict[bytes, httpx.URL] = {}  # a client's few paths, parsed once
        self._host = upstream.netloc
        self._shown = str(upstream.copy_with(username=None, password=None, query=None))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        self.metrics.started()
        try:
            status = await self._forward(scope, receive, send)
        except _ClientGone:
            self.metrics.abandoned()
            return
        except BaseException:
            self.metrics.finished("error", time.perf_counter() - start)
            raise
        self.metrics.finished(status, time.perf_counter() - start)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> str:
        body = await self._body(scope, receive)
        path = scope["path"]
        if body is None:
            await _answer(
                send,
                413,
                error_body(
                    path,
                    f"llmcache proxy: the request body is larger than {self.max_body} "
                    "bytes (--max-body)",
                    "request_too_large",
                ),
                close=True,
            )
            return "refused"
        headers = [(k, v) for k, v in scope["headers"] if k not in _REQUEST_DROPPED]
        headers.append((b"host", self._host))
        if body or scope["method"] in _WITH_BODY:
            headers.append((b"content-length", b"%d" % len(body)))
        # `stream=` rather than `content=`: the same request, without httpx re-deriving
        # the two headers above (a tenth of a cache hit's time).
        request = httpx.Request(
            scope["method"], self._url(scope), headers=headers, stream=httpx.ByteStream(body)
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            return await self._no_answer(send, scope, exc)
        status: str = response.headers.get("x-llmcache", "bypass")
        code = response.status_code
        if code == 429 or code >= 500:
            self.metrics.upstream_error("http_429" if code == 429 else "http_5xx")
        if status == "hit" or response.is_stream_consumed:
            # A replay from the cache, or an answer read whole: in memory already, one
            # write with its length (decoded: `aread` undoes a content-encoding).
            try:
                content = await response.aread()
            finally:
                await response.aclose()
            try:
                await send(
                    {
                        "type": "http.response.start",
                        "status": code,
                        "headers": _headers(response, len(content)),
                    }
                )
                await send({"type": "http.response.body", "body": content})
            except OSError:  # ASGI 2.4 servers raise it on a send to a closed connection
                self.metrics.disconnects += 1
            return status
        try:
            await _Relay(response, self.metrics).run(receive, send)
        finally:
            with anyio.CancelScope(shield=True):  # closed even when the client left
                await response.aclose()
        return status

    async def _body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole request body, or None when it is larger than `max_body`."""
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                return None
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    def _url(self, scope: Scope) -> httpx.URL:
        raw = scope.get("raw_path") or scope["path"].encode("utf-8")
        query = scope.get("query_string", b"")
        target = self._prefix + raw + (b"?" + query if query else b"")
        url = self._urls.get(target)
        if url is None:
            if len(self._urls) >= _URLS_KEPT:
                self._urls.clear()
            url = self._urls[target] = self.upstream.copy_with(raw_path=target)
        return url

    async def _no_answer(self, send: Send, scope: Scope, exc: httpx.TransportError) -> str:
        if isinstance(exc, httpx.TimeoutException):
            status, reason, what = 504, "timeout", "did not answer in time"
        elif isinstance(exc, httpx.ConnectError):
            status, reason, what = 502, "connect", "cannot be reached"
        else:
            status, reason, what = 502, "protocol", "gave no valid answer"
        self.metrics.upstream_error(reason)
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        message = f"llmcache proxy: the upstream {self._shown} {what} ({detail})"
        # The path only: a query string may carry a key (some APIs take one there).
        logger.warning("%s %s: %s", scope["method"], scope["path"], message)
        await _answer(send, status, error_body(scope["path"], message, f"upstream_{reason}"))
        return "error"


class _Relay:
    """Sends an upstream answer to the client as its chunks arrive, and closes the
    upstream side the moment the client goes away."""

    def __init__(self, response: httpx.Response, metrics: ProxyMetrics) -> None:
        self.response = response
        self.metrics = metrics
        self.ended = False

    async def run(self, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch, receive, group.cancel_scope)
            try:
                await self._pump(send)
            except OSError:  # ASGI 2.4 servers raise it on a send to a closed connection
                self._gone()
            group.cancel_scope.cancel()

    async def _watch(self, receive: Receive, scope: anyio.CancelScope) -> None:
        # The request body was read whole: the next message is the disconnect, which the
        # server also sends once the answer ended.
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self.ended:
            self._gone()
        scope.cancel()

    def _gone(self) -> None:
        if not self.ended:
            self.ended = True
            self.metrics.disconnects += 1

    async def _pump(self, send: Send) -> None:
        response = self.response
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": _headers(response, None),
            }
        )
        try:
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.TransportError as exc:
            # The status went out: all that is left is to end the connection without the
            # last chunk, so the client sees a broken answer, not a complete one.
            self.ended = True
            self.metrics.upstream_error("cut")
            logger.warning(
                "llmcache proxy: the upstream answer broke off (%s: %s); the "
                "client's connection is closed",
                type(exc).__name__,
                exc,
            )
            return
        self.ended = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _headers(response: httpx.Response, length: int | None) -> list[tuple[bytes, bytes]]:
    out = []
    for name, value in response.headers.raw:
        lower = name.lower()
        if lower in _RESPONSE_DROPPED:
            continue
        if length is not None and lower in (b"content-length", b"content-encoding"):
            continue
        out.append((lower, value))
    if length is not None:
        out.append((b"content-length", str(length).encode("ascii")))
    return out


async def _answer(send: Send, status: int, body: bytes, *, close: bool = False) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    if close:  # the rest of an unread body must not be taken for the next request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ProxyApp:
    """The ASGI app: lifespan, ``/healthz`` and ``/metrics`` through `starlette`, every
    other request straight to `forwarder` (Starlette's routing and middleware would add a
    tenth to a cache hit's time, for nothing a forwarded request uses)."""

    def __init__(self, starlette: Starlette, forwarder: Forwarder) -> None:
        self.starlette = starlette
        self.forwarder = forwarder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in _OWN_PATHS:
            await self.forwarder(scope, receive, send)
        else:
            await self.starlette(scope, receive, send)


_OWN_PATHS = frozenset({"/healthz", "/metrics"})


def build_app(
    client: httpx.AsyncClient,
    upstream: str | httpx.URL,
    *,
    metrics: ProxyMetrics | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    on_close: Callable[[], Awaitable[None]] | None = None,
) -> ProxyApp:
    """The proxy's ASGI app around a `Forwarder` to `upstream` through `client`; it closes
    `client` (then awaits `on_close`) when the server shuts down."""
    metrics = metrics if metrics is not None else ProxyMetrics()
    forwarder = Forwarder(client, httpx.URL(str(upstream)), metrics, max_body=max_body)

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def scrape(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()
            if on_close is not None:
                await on_close()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/metrics", scrape, methods=["GET", "HEAD"]),
            Route("/{path:path}", forwarder),
        ],
        lifespan=lifespan,
    )
    return ProxyApp(app, forwarder)
