"""The proxy's HTTP plumbing, in process: the ASGI app called through `httpx.ASGITransport`,
its upstream an `httpx.MockTransport` that records what reached it (the whole stack between
the two is the real one: the app, its pooled client and the cache transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from llmcache.proxy import ProxyConfig, ProxyMetrics, create_app
from llmcache.proxy._metrics import BUCKETS

Handler = Callable[[httpx.Request], httpx.Response]
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


class Upstream:
    """A MockTransport upstream that answers with `reply` and keeps every request."""

    def __init__(self, reply: Handler | None = None) -> None:
        self.seen: list[httpx.Request] = []
        self.reply = reply or (lambda request: httpx.Response(200, json={"ok": True}))
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.seen.append(request)
        return self.reply(request)


async def _client(
    upstream: Upstream, base: str = "http://up.test", **options: object
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        ProxyConfig(upstream=base, **options),  # type: ignore[arg-type]
        network=upstream.transport,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://proxy.test"
    ) as client:
        yield client


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
async def client(upstream: Upstream) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(upstream):
        yield c


async def test_path_and_query_go_after_the_upstream_path_as_received(upstream: Upstream) -> None:
    async for client in _client(upstream, "http://up.test/openai/"):
        await client.get("/v1/models/a%2Fb?api-version=2024-10-21&x=%20")
    assert (
        str(upstream.seen[0].url)
        == "http://up.test/openai/v1/models/a%2Fb?api-version=2024-10-21&x=%20"
    )


async def test_credentials_pass_untouched_and_hop_by_hop_headers_stay_here(
    client: httpx.AsyncClient, upstream: Upstream
) -> None:
    await client.post(
        "/v1/chat/completions",
        json=CHAT,
        headers={
            "Authorization": "Bearer sk-a",
            "x-api-key": "k-b",
            "api-key": "k-c",
            "Connection": "keep-alive",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic cHJveHk6cHc=",
            "Upgrade": "h2c",
            "X-Custom": "kept",
        },
    )
    sent = upstream.seen[0].headers
    assert (sent["authorization"], sent["x-api-key"], sent["api-key"]) == (
        "Bearer sk-a",
        "k-b",
        "k-c",
    )
    assert sent["x-custom"] == "kept"
    assert sent["host"] == "up.test"
    for name in ("connection", "keep-alive", "te", "proxy-authorization", "upgrade"):
        assert name not in sent, name


async def test_no_cookie_of_one_client_reaches_another(upstream: Upstream) -> None:
    upstream.reply = lambda request: httpx.Response(
        200, json={}, headers={"set-cookie": "session=alice; Path=/"}
    )
    async for client in _client(upstream):
        first = await client.get("/v1/models")
        assert first.headers["set-cookie"] == "session=alice; Path=/"  # passed on ...
        client.cookies.clear()  # ... to its client only: another client has no cookie
        await client.get("/v1/models")
    assert "cookie" not in upstream.seen[1].headers


async def test_hop_by_hop_headers_of_the_answer_stay_there(upstream: Upstream) -> None:
    upstream.reply = lambda request: httpx.Response(
        200,
        content=b"{}",
        headers={
            "content-type": "application/json",
            "connection": "close",
            "keep-alive": "timeout=1",
            "x-request-id": "r-1",
        },
    )
    async for client in _client(upstream):
        reply = await client.get("/v1/models")
    assert reply.headers["x-request-id"] == "r-1"
    assert "keep-alive" not in reply.headers and "connection" not in reply.headers


async def test_upstream_status_and_body_pass_through(upstream: Upstream) -> None:
    upstream.reply = lambda request: httpx.Response(
        429, json={"error": {"message": "slow down"}}, headers={"retry-after": "7"}
    )
    async for client in _client(upstream):
        reply = await client.post("/v1/chat/completions", json=CHAT)
    assert (reply.status_code, reply.headers["retry-after"]) == (429, "7")
    assert reply.json() == {"error": {"message": "slow down"}}


def test_metrics_text_format_is_cumulative_and_complete() -> None:
    metrics = ProxyMetrics(
        lambda: {"coalesced": 3, "errors": 1, "tokens_saved": 120, "time_saved_ms": 2500.0}
    )
    metrics.started()
    metrics.finished("miss", 0.2)
    metrics.started()
    metrics.finished("hit", 0.0007)
    metrics.upstream_error("cut")
    lines = metrics.render().splitlines()
    assert 'llmcache_proxy_requests_total{cache="miss"} 1' in lines
    assert 'llmcache_proxy_upstream_errors_total{reason="cut"} 1' in lines
    assert "llmcache_proxy_coalesced_total 3" in lines
    assert "llmcache_proxy_tokens_saved_total 120" in lines
    assert "llmcache_proxy_seconds_saved_total 2.5" in lines
    assert "llmcache_proxy_in_flight 0" in lines
    name = "llmcache_proxy_request_duration_seconds"
    buckets = [line for line in lines if line.startswith(f'{name}_bucket{{cache="hit"')]
    counts = [int(line.rsplit(" ", 1)[1]) for line in buckets]
    assert len(counts) == len(BUCKETS) + 1
    assert counts == sorted(counts) and counts[0] == 0 and counts[1] == 1 == counts[-1]
    for line in lines:  # every sample line is "name{labels} value" or "name value"
        assert line.startswith("# ") or len(line.rsplit(" ", 1)) == 2
