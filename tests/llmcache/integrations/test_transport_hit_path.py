"""The caching transport's per-request shortcuts key exactly what `parse_request` keys.

A door reads the URL httpx parsed already (no second parse of its text) and remembers the
credential scopes of the keys it saw; neither may change a key. Real transports over an
in-memory upstream (``MockTransport``), real memory stores.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import orjson
import pytest

from llmcache import CachedResponse, MemoryStore
from llmcache.integrations._http_routes import HttpCall, parse_request

PACKAGES = ["httpx", "httpx2"]
BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "2+2?"}]})
ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "4"}}
        ],
    }
)

# Each spelled as a client may send it; the key must read it as `parse_request` does.
URLS = [
    "http://api.test/v1/chat/completions",
    "HTTPS://API.Example.COM:443/v1/chat/completions",
    "https://api.example.com:8443/v1/chat/completions",
    "http://api.test:80/openai/v1/chat/completions?api-version=2024-10-21",
    "http://api.test/v1/chat/completions?",
    "http://api.test/v1/chat/completions#fragment",
    "http://user:pw@api.test/v1/chat/completions",
    "http://[::1]:8080/v1/chat/completions",
    "http://[2001:DB8::1]/v1/chat/completions?x=1&y=%20z",
    "http://bücher.example/v1/chat/completions",
    "http://api.test/a%20b/v1/chat/completions",
    "http://127.0.0.1:11434/v1/chat/completions?a=%C3%A9",
]


class KeepingStore(MemoryStore):
    """A real memory store that also keeps the keys it was asked to write."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    def set(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        self.written.append(key)
        super().set(key, entry, ttl)  # (the coroutine face writes through it too)


def _upstream(pkg: Any) -> Any:
    return pkg.MockTransport(
        lambda request: pkg.Response(
            200, content=ANSWER, headers={"content-type": "application/json"}
        )
    )


def _transport(package: str, store: MemoryStore, **options: Any) -> Any:
    pkg = importlib.import_module(package)
    door = importlib.import_module(f"llmcache.integrations.{package}")
    return door.CacheTransport(cache=store, transport=_upstream(pkg), **options)


def _send(package: str, transport: Any, url: str, headers: dict[str, str]) -> Any:
    pkg = importlib.import_module(package)
    response = transport.handle_request(pkg.Request("POST", url, content=BODY, headers=headers))
    response.read()
    return response


@pytest.mark.parametrize("package", PACKAGES)
@pytest.mark.parametrize("url", URLS)
def test_the_transport_keys_a_url_as_parse_request_does(package: str, url: str) -> None:
    store = KeepingStore()
    transport = _transport(package, store)
    headers = {"authorization": "Bearer sk-a", "anthropic-beta": "b, a"}
    first = _send(package, transport, url, headers)
    second = _send(package, transport, url, headers)
    assert (first.headers["x-llmcache"], second.headers["x-llmcache"]) == ("miss", "hit")
    sent = str(importlib.import_module(package).Request("POST", url).url)
    expected = parse_request("POST", sent, headers, BODY)
    assert store.written == [expected.key]  # type: ignore[union-attr]


def test_the_async_transport_keys_as_parse_request_does() -> None:
    import httpx2

    from llmcache.integrations.httpx2 import AsyncCacheTransport

    store = KeepingStore()
    transport = AsyncCacheTransport(cache=store, transport=_upstream(httpx2))
    url = "HTTP://[2001:DB8::1]:80/openai/v1/chat/completions?api-version=1"

    async def send() -> str:
        request = httpx2.Request("POST", url, content=BODY, headers={"x-api-key": "k"})
        response = await transport.handle_async_request(request)
        await response.aread()
        return str(response.headers["x-llmcache"])

    async def both() -> list[str]:
        return [await send(), await send()]

    assert asyncio.run(both()) == ["miss", "hit"]
    sent = str(httpx2.Request("POST", url).url)
    assert store.written == [parse_request("POST", sent, {"x-api-key": "k"}, BODY).key]  # type: ignore[union-attr]


@pytest.mark.parametrize("package", PACKAGES)
def test_a_percent_escaped_route_is_keyed_as_sent_so_it_is_not_cached(package: str) -> None:
    # The decoded path names a route; the path as sent (what the key holds) does not.
    store = KeepingStore()
    transport = _transport(package, store)
    url = "http://api.test/v1/chat/complet%69ons"
    answers = [_send(package, transport, url, {}).headers["x-llmcache"] for _ in range(2)]
    assert answers == ["uncacheable", "uncacheable"] and store.written == []


@pytest.mark.parametrize("share", [False, True])
def test_remembered_credential_scopes_keep_every_key_apart(share: bool) -> None:
    # More distinct keys than a door remembers, then the first ones again: each call is
    # keyed as parse_request keys it, whether its scope was remembered or hashed again.
    store = KeepingStore()
    transport = _transport("httpx2", store, share_credentials=share, scope_secret=b"s")
    url = "http://api.test/v1/chat/completions"
    keys = [f"sk-{i}" for i in range(300)] + ["sk-0", "sk-299", " sk-1 "]
    for n, key in enumerate(keys):
        headers = {"authorization": key, "openai-project": "p"}
        said = _send("httpx2", transport, url, headers).headers["x-llmcache"]
        expected = parse_request(
            "POST", url, headers, BODY, share_credentials=share, scope_secret=b"s"
        )
        assert isinstance(expected, HttpCall)
        if n < 300 and not (share and n):  # a new scope: written under the expected key
            assert (said, store.written[-1]) == ("miss", expected.key)
        else:  # a scope seen before: read under the expected key
            assert said == "hit" and store.get(expected.key) is not None
    distinct = {k.strip() for k in keys}
    assert len(set(store.written)) == (1 if share else len(distinct))
    assert not any(key in repr(vars(transport)) for key in ("sk-0", "sk-299"))


def test_a_call_repr_shows_neither_the_body_nor_a_credential() -> None:
    call = parse_request(
        "POST", "http://api.test/v1/chat/completions", {"authorization": "Bearer sk-x"}, BODY
    )
    shown = repr(call)
    assert shown.startswith("HttpCall(route=") and "key=" in shown
    assert "2+2?" not in shown and "sk-x" not in shown
