"""The caching transport's door, written once for both HTTP packages and both faces.

`AsyncCacheDoor` holds the logic of ``AsyncCacheTransport`` in `llmcache.integrations.httpx`
and in `llmcache.integrations.httpx2`. It is written by hand for coroutines; its twin for
plain calls is generated from it by ``scripts/unasync.py``. The two packages differ in
name, not in the transport API, so the package is injected: each public class names its
module object in ``_package`` (for ``Response`` and the default upstream transport) and its
byte-stream class in ``_stream_class``; this module imports neither package.

A request goes through these steps (each one a function of the HTTP layer modules or of
the pipeline; the door only wires them):

1. ``x-llmcache-*`` control headers are read (`parse_control_headers`; a bad one is
   answered 400 here, nothing goes upstream) and removed from the request;
2. a method and path no route understands goes upstream untouched (``x-llmcache:
   bypass``); an understood route's body is read and parsed (`read_call`: what
   `parse_request` does, from the URL the HTTP package parsed and with the credential
   scopes the door remembers), and a body not understood goes upstream untouched
   (``uncacheable``);
3. the plan: `decide` (``cache_control()``, ``x-llmcache-bypass``, the temperature rule on
   the temperature *sent*), then server-held state, then the header's refresh, no-store,
   TTL; a plan that skips the cache goes upstream untouched (``bypass`` / ``uncacheable``);
4. otherwise the upstream is asked for an unencoded answer (``accept-encoding:
   identity``; an answer encoded anyway is decoded before it is recorded) and the runner
   does the rest: a plain call through `AsyncRunner.call` (single-flight across tasks, and
   across processes with a shared tier holding locks; the semantic tier), a stream through
   `AsyncRunner.stream` with ``read_ahead`` (its head and bytes pass through as they
   arrive; concurrent identical streams wait for the first one's upstream to end and
   replay its recording, across processes too).

Every answer says what the cache did in ``x-llmcache`` (and ``x-llmcache-similarity`` on a
semantic hit).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from types import ModuleType
from typing import Any, ClassVar, cast

import orjson

from llmcache._pipeline import AsyncRunner, Counters, Plan, SemanticTier, decide, keyed
from llmcache._pipeline.steps import BYPASS, UNCACHEABLE
from llmcache.integrations._http_codec import (
    HTTP_ANSWERS,
    Head,
    HttpAnswer,
    answer_of,
    passed_headers,
    semantic_request,
)
from llmcache.integrations._http_control import (
    CONTROL_PREFIX,
    STATUS_HEADER,
    CacheStatus,
    ControlHeaderError,
    HeaderControl,
    parse_control_headers,
    status_headers,
)
from llmcache.integrations._http_routes import (
    CREDENTIAL_HEADERS,
    KEY_HEADERS,
    CredentialScopes,
    HttpCall,
    Passthrough,
    Route,
    find_route,
    read_call,
    url_target,
)
from llmcache.policy import CachePolicy
from llmcache.stores.base import AsyncStore, check_ttl
from llmcache.stores.memory import MemoryStore

__all__ = ["AsyncBody", "AsyncCacheDoor"]

_NO_CONTROL = HeaderControl()
_CONTROL_B = CONTROL_PREFIX.encode()
# The status header of a plain answer, made once (a semantic hit's similarity varies).
_SAID_HIT: Sequence[tuple[str, str]] = tuple(status_headers(CacheStatus.HIT))
_SAID_MISS: Sequence[tuple[str, str]] = tuple(status_headers(CacheStatus.MISS))
# The request headers the cache reads (the rest go upstream unread).
_READ_B = frozenset(n.encode() for n in (*CREDENTIAL_HEADERS, *KEY_HEADERS))


def _read_headers(raw: list[tuple[bytes, bytes]]) -> tuple[list[tuple[str, str]], list[str]]:
    """The headers the cache reads (credentials, the key's, its own control headers), as
    (lowercase name, value) text, and the names of the control headers among them; only
    those are decoded: this runs on every request."""
    out: list[tuple[str, str]] = []
    control: list[str] = []
    for name, value in raw:  # a plain loop: a nested generator costs more per header
        n = name.lower()
        if n in _READ_B:
            out.append((n.decode("latin-1"), value.decode("latin-1")))
        elif n.startswith(_CONTROL_B):
            text = n.decode("latin-1")
            out.append((text, value.decode("latin-1")))
            control.append(text)
    return out, control


class AsyncBody:
    """The body of a streamed answer: the runner's chunks after the head, as they come.
    Closing it early (a client that stops reading) ends the runner's stream: nothing is
    stored, and the upstream's answer is closed."""

    def __init__(self, chunks: AsyncIterator[Any]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:  # noqa: UP028 (the sync twin's for loop)
            yield chunk

    async def aclose(self) -> None:
        await cast(Any, self._chunks).aclose()


class AsyncCacheDoor:
    """The logic of ``AsyncCacheTransport`` (see the module docstring and the public
    classes' docstrings for the options)."""

    _package: ClassVar[ModuleType]
    _stream_class: ClassVar[type[AsyncBody]]

    def __init__(
        self,
        *,
        transport: Any = None,
        cache: AsyncStore | None = None,
        policy: CachePolicy | None = None,
        semantic: SemanticTier | None = None,
        ttl: float | None = None,
        namespace: str = "",
        share_credentials: bool = False,
        scope_secret: bytes | None = None,
    ) -> None:
        if cache is not None and not isinstance(cache, AsyncStore):
            raise TypeError(f"cache: expected an llmcache store, got {type(cache).__name__}")
        if not isinstance(namespace, str):
            raise TypeError(f"namespace: expected str, got {type(namespace).__name__}")
        self.transport = transport if transport is not None else self._package.AsyncHTTPTransport()
        self.cache: AsyncStore = cache if cache is not None else MemoryStore()
        self.policy = policy if policy is not None else CachePolicy()
        self.semantic = semantic
        self.ttl = check_ttl(ttl) if ttl is not None else self.policy.ttl
        self.namespace = namespace
        self.share_credentials = share_credentials
        self._scopes = CredentialScopes(share=share_credentials, secret=scope_secret)
        self._counters = Counters(type(self).__name__)
        self._runner: AsyncRunner[HttpAnswer] = AsyncRunner(
            self.cache, HTTP_ANSWERS, self._counters, policy=self.policy, semantic=semantic
        )

    # -- the transport API ------------------------------------------------------------------

    async def handle_async_request(self, request: Any) -> Any:
        """Answer `request` from the cache, or through the wrapped transport."""
        headers = request.headers
        items, control_names = _read_headers(headers.raw)
        control = _NO_CONTROL
        if control_names:
            try:
                control = parse_control_headers(items)
            except ControlHeaderError as exc:
                return self._refused(exc)
            for name in set(control_names):
                del headers[name]  # the upstream never sees them
        url = request.url
        path = url.path
        route = find_route(request.method, path)
        if route is None:
            return await self._forward(request, CacheStatus.BYPASS)
        body = await request.aread()
        call = self._read_call(url, path, route, items, body, control)
        if isinstance(call, Passthrough):
            self._counters.uncacheable += 1
            return await self._forward(request, CacheStatus.UNCACHEABLE)
        plan = self._plan(call, control)
        if plan.skip is not None:
            status = CacheStatus.UNCACHEABLE if plan.skip == UNCACHEABLE else CacheStatus.BYPASS
            return await self._forward(request, status)
        if call.stream:
            return await self._stream(plan, call, request)
        answer = await self._runner.call(plan, self._fetch, (call, request), {})
        cached = answer.cached or answer.shared
        if answer.similarity is None:
            said = _SAID_HIT if cached else _SAID_MISS
        else:
            said = status_headers(
                CacheStatus.HIT if cached else CacheStatus.MISS, answer.similarity
            )
        return self._package.Response(
            answer.status, content=answer.body, headers=[*answer.headers, *said]
        )

    async def aclose(self) -> None:
        """Close the wrapped transport (the cache is the caller's: it stays open)."""
        await self.transport.aclose()

    # -- counts -----------------------------------------------------------------------------

    def counters(self) -> dict[str, int | float]:
        """Hits (exact and semantic), coalesced, misses, bypasses, uncacheable, errors,
        semantic_hits, tokens_saved, time_saved_ms (see `llmcache._pipeline.counters`)."""
        return self._counters.as_dict()

    # -- steps ------------------------------------------------------------------------------

    def _read_call(
        self,
        url: Any,
        path: str,
        route: Route,
        items: list[tuple[str, str]],
        body: bytes,
        control: HeaderControl,
    ) -> HttpCall | Passthrough:
        """`parse_read_request` of a request whose URL the HTTP package parsed already:
        the key holds the host and the path as sent (IDNA- and percent-encoded)."""
        target = url.raw_path.decode("ascii")
        sent = target.partition("?")[0]
        if sent != path:  # percent-escapes: `path` is decoded, the key's route reads it as sent
            found = find_route("POST", sent)
            if found is None:
                return Passthrough("route", f"POST {sent} is not an understood route")
            route = found
        host = url.raw_host.decode("ascii")
        if not host:
            return Passthrough("route", f"POST {sent} has no host")
        origin, key_path = url_target(url.scheme, host, url.port, target)
        return read_call(
            route,
            origin,
            key_path,
            items,
            body,
            namespace=control.namespace or self.namespace,
            scopes=self._scopes,
        )

    def _plan(self, call: HttpCall, control: HeaderControl) -> Plan:
        temperature = call.temperature if call.temperature_set else None
        base = decide(self.policy, temperature, call.seed, bypass=control.bypass)
        if isinstance(base, Plan):
            plan = base
        elif call.uncacheable:
            self._counters.uncacheable += 1  # state held by the server: not the policy's
            return Plan("", "", False, False, None, UNCACHEABLE, call.uncacheable)
        else:
            # No control header (the usual request): the door's control as it is.
            wanted = base if control is _NO_CONTROL else control.apply(base)
            if wanted.read or wanted.write:
                request = (
                    semantic_request(call)
                    if self.semantic is not None and not call.stream
                    else None
                )
                return keyed(call.key, call.fingerprint, wanted, self.ttl, request)
            plan = Plan("", "", False, False, None, BYPASS)
        self._counters.skipped(plan)
        return plan

    async def _forward(self, request: Any, status: CacheStatus) -> Any:
        response = await self.transport.handle_async_request(request)
        response.headers[STATUS_HEADER] = status.value
        return response

    def _refused(self, exc: ControlHeaderError) -> Any:
        error = {"type": "invalid_request_error", "message": str(exc), "param": exc.header}
        return self._package.Response(
            400,
            content=orjson.dumps({"type": "error", "error": error}),
            headers=[("content-type", "application/json"), *status_headers(CacheStatus.BYPASS)],
        )

    async def _fetch(self, call: HttpCall, request: Any) -> HttpAnswer:
        """The upstream's whole answer to a plain call (what the runner calls on a miss)."""
        request.headers["accept-encoding"] = "identity"  # recorded bytes: the answer's own
        response = await self.transport.handle_async_request(request)
        try:
            body = b"".join([part async for part in response.aiter_bytes()])
        finally:
            await response.aclose()
        return answer_of(call.route, response.status_code, response.headers.multi_items(), body)

    async def _stream(self, plan: Plan, call: HttpCall, request: Any) -> Any:
        # Read ahead: a caller may open many streams before it reads any (the SDKs'
        # ``create(stream=True)`` under asyncio.gather), while the followers of a stream
        # wait for its upstream's end.
        chunks = self._runner.stream(
            plan, self._upstream_stream, (call, request), {}, read_ahead=True
        )
        head: Head = await anext(chunks)
        status = CacheStatus.HIT if head.cached else CacheStatus.MISS
        return self._package.Response(
            head.status,
            headers=[*head.headers, *status_headers(status)],
            stream=self._stream_class(chunks),
        )

    async def _upstream_stream(self, call: HttpCall, request: Any) -> AsyncIterator[Any]:
        """The upstream's streamed answer: its `Head`, then its decoded bytes as they come
        (what the runner streams on a miss)."""
        request.headers["accept-encoding"] = "identity"  # recorded bytes: the answer's own
        response = await self.transport.handle_async_request(request)
        try:
            yield Head(
                response.status_code, passed_headers(response.headers.multi_items()), call.route
            )
            async for part in response.aiter_bytes():  # noqa: UP028 (as above)
                yield part
        finally:
            await response.aclose()
