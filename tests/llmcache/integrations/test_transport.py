"""The caching transport (`llmcache.integrations.httpx` / `.httpx2`) with plain HTTP clients
against the project's test server on loopback: routes, replay, control, encoding, policy.
The official SDKs through it: test_transport_sdks.py."""

from __future__ import annotations

import gzip
import importlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import httpx2
import orjson
import pytest
from llmcache_testserver import Completion, EchoEngine, OllamaServer, Prompt

from llmcache import CachedResponse, MemoryStore, cache_control
from llmcache.policy import CachePolicy
from llmcache.vector import HashingEmbedder, SemanticCache

PACKAGES = ["httpx", "httpx2"]
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "two plus two"}]}


class KeepingStore(MemoryStore):
    """A real memory store that also keeps what it was asked to write, for inspection."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[tuple[str, CachedResponse, float | None]] = []

    def set(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        self.written.append((key, entry, ttl))
        super().set(key, entry, ttl)


def door(package: str) -> ModuleType:
    return importlib.import_module(f"llmcache.integrations.{package}")


def recording_transport(package: str) -> Any:
    """The package's real HTTP transport, keeping the requests it sends upstream."""
    pkg = importlib.import_module(package)

    class Recording(pkg.HTTPTransport):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.sent: list[Any] = []

        def handle_request(self, request: Any) -> Any:
            self.sent.append(request)
            return super().handle_request(request)

    return Recording()


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with OllamaServer(EchoEngine()) as s:
        yield s


@pytest.fixture(params=PACKAGES)
def package(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def client(package: str, server: OllamaServer, **options: Any) -> Any:
    pkg = importlib.import_module(package)
    transport = door(package).CacheTransport(**options)
    return pkg.Client(transport=transport, base_url=server.url, timeout=10)


# -- the package -------------------------------------------------------------------------------


def test_import_llmcache_imports_neither_http_package() -> None:
    code = (
        "import sys, llmcache, llmcache.integrations; "
        "print(sorted(m for m in ('httpx', 'httpx2') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_each_class_is_its_packages_transport() -> None:
    assert issubclass(door("httpx").CacheTransport, httpx.BaseTransport)
    assert issubclass(door("httpx").AsyncCacheTransport, httpx.AsyncBaseTransport)
    assert issubclass(door("httpx2").CacheTransport, httpx2.BaseTransport)
    assert issubclass(door("httpx2").AsyncCacheTransport, httpx2.AsyncBaseTransport)
    assert isinstance(door("httpx2").CacheTransport().transport, httpx2.HTTPTransport)
    assert isinstance(door("httpx").AsyncCacheTransport().transport, httpx.AsyncHTTPTransport)


def test_a_cache_that_is_not_a_store_is_refused() -> None:
    with pytest.raises(TypeError, match="llmcache store"):
        door("httpx").CacheTransport(cache={})  # type: ignore[arg-type]


# -- plain calls and streams -------------------------------------------------------------------


def test_a_plain_call_is_a_miss_then_a_hit_with_the_same_body(
    package: str, server: OllamaServer
) -> None:
    with client(package, server) as http:
        first = http.post("/v1/chat/completions", json=CHAT)
        second = http.post("/v1/chat/completions", json=CHAT)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.headers["x-llmcache"], second.headers["x-llmcache"]) == ("miss", "hit")
    assert second.content == first.content and server.calls["openai.chat"] == 1
    assert second.headers["content-type"] == first.headers["content-type"]
    assert int(second.headers["content-length"]) == len(second.content)
    assert "content-encoding" not in second.headers


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/chat/completions",
            {**CHAT, "stream": True, "stream_options": {"include_usage": True}},
        ),
        ("/v1/messages", {**CHAT, "max_tokens": 32, "stream": True}),
        ("/api/chat", CHAT),  # Ollama streams unless told not to
    ],
)
def test_a_stream_replays_the_same_events_in_the_same_order(
    package: str, server: OllamaServer, path: str, body: dict[str, Any]
) -> None:
    with client(package, server) as http:
        answers = []
        for _ in range(2):
            with http.stream("POST", path, json=body) as response:
                answers.append(
                    (
                        response.headers["x-llmcache"],
                        response.headers["content-type"],
                        list(response.iter_raw()),
                    )
                )
    (status1, type1, live), (status2, type2, replay) = answers
    assert (status1, status2) == ("miss", "hit") and type1 == type2
    assert b"".join(replay) == b"".join(live) and len(replay) > 2
    assert server.calls.total == 1


async def test_the_async_transport_caches_plain_calls_and_streams(
    package: str, server: OllamaServer
) -> None:
    pkg = importlib.import_module(package)
    transport = door(package).AsyncCacheTransport()
    async with pkg.AsyncClient(transport=transport, base_url=server.url) as http:
        plain = [await http.post("/v1/chat/completions", json=CHAT) for _ in range(2)]
        streamed = []
        for _ in range(2):
            async with http.stream(
                "POST", "/api/generate", json={"model": "llama3.2", "prompt": "a b c"}
            ) as r:
                streamed.append((r.headers["x-llmcache"], [c async for c in r.aiter_raw()]))
    assert [r.headers["x-llmcache"] for r in plain] == ["miss", "hit"]
    assert plain[0].content == plain[1].content
    assert [s for s, _ in streamed] == ["miss", "hit"] and streamed[0][1] == streamed[1][1]
    assert server.calls.total == 2 and transport.counters()["hits"] == 2


class GatedEngine(EchoEngine):
    """Sends its first token, then waits for the test to open the gate (or 10 s)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.opened_in_time: bool | None = None

    def generate(self, prompt: Prompt) -> Completion:
        completion = super().generate(prompt)
        tokens = list(completion.pieces())

        def gated() -> Iterator[str]:
            yield tokens[0]
            self.opened_in_time = self.gate.wait(10)
            yield from tokens[1:]

        completion.text = gated()
        return completion


def test_a_streams_first_bytes_reach_the_client_before_the_upstream_ends(package: str) -> None:
    engine = GatedEngine()
    with OllamaServer(engine) as server, client(package, server) as http:
        with http.stream(
            "POST", "/api/generate", json={"model": "llama3.2", "prompt": "one two three"}
        ) as response:
            lines = response.iter_lines()
            first = orjson.loads(next(lines))
            engine.gate.set()  # the upstream is still inside the answer until now
            rest = list(lines)
    assert first["response"] == "echo: " and engine.opened_in_time is True
    assert orjson.loads(rest[-1])["done"] is True


# -- what passes through -----------------------------------------------------------------------


def test_a_route_the_cache_does_not_handle_passes_through(
    package: str, server: OllamaServer
) -> None:
    store = MemoryStore()
    with client(package, server, cache=store) as http:
        tags = http.get("/api/tags")
        models = http.get("/v1/models")
    assert tags.headers["x-llmcache"] == models.headers["x-llmcache"] == "bypass"
    assert tags.json()["models"] and models.json()["data"] and len(store) == 0


def test_a_malformed_body_goes_upstream_untouched(package: str, server: OllamaServer) -> None:
    store = MemoryStore()
    with client(package, server, cache=store) as http:
        answers = [
            http.post("/v1/chat/completions", content=b'{"model": "llama3.2", "mess')
            for _ in range(2)
        ]
    assert [a.status_code for a in answers] == [400, 400]
    assert [a.headers["x-llmcache"] for a in answers] == ["uncacheable"] * 2
    assert "could not parse" in answers[0].json()["error"]["message"]
    assert server.calls["openai.chat"] == 2 and len(store) == 0


@pytest.mark.parametrize("fault", ["server_error", "rate_limited"])
def test_error_answers_pass_through_and_are_never_stored(
    package: str, server: OllamaServer, fault: str
) -> None:
    store = MemoryStore()
    if fault == "server_error":
        server.faults.server_error = True
    else:
        server.openai.rate_limited = 2
    with client(package, server, cache=store) as http:
        answers = [http.post("/v1/chat/completions", json=CHAT) for _ in range(2)]
    assert {a.status_code for a in answers} == {500 if fault == "server_error" else 429}
    assert [a.headers["x-llmcache"] for a in answers] == ["miss", "miss"]
    assert "error" in answers[0].json() and len(store) == 0
    assert server.calls["openai.chat"] == 2


@pytest.mark.parametrize("fault", ["truncate_after", "fail_after"])
def test_a_stream_cut_short_or_ending_in_an_error_is_not_stored(
    package: str, server: OllamaServer, fault: str
) -> None:
    setattr(server.faults, fault, 1)
    store = MemoryStore()
    with client(package, server, cache=store) as http:
        for _ in range(2):
            with http.stream(
                "POST", "/v1/chat/completions", json={**CHAT, "stream": True}
            ) as response:
                body = response.read()
                assert response.headers["x-llmcache"] == "miss"
            assert b"[DONE]" not in body
    assert len(store) == 0 and server.calls["openai.chat"] == 2


# -- control -----------------------------------------------------------------------------------


def test_control_headers_are_honoured_and_never_sent_upstream(
    package: str, server: OllamaServer
) -> None:
    upstream = recording_transport(package)
    store = KeepingStore()
    with client(package, server, cache=store, transport=upstream) as http:

        def post(**headers: str) -> str:
            return str(
                http.post("/v1/chat/completions", json=CHAT, headers=headers).headers["x-llmcache"]
            )

        assert post(**{"x-llmcache-no-store": "1"}) == "miss" and len(store) == 0
        assert post(**{"x-llmcache-bypass": "true"}) == "bypass" and len(store) == 0
        assert post(**{"x-llmcache-ttl": "60"}) == "miss" and len(store) == 1
        assert post() == "hit"
        assert post(**{"x-llmcache-refresh": "yes"}) == "miss"
        assert post(**{"x-llmcache-namespace": "tenant-b"}) == "miss"
        assert post(**{"x-llmcache-namespace": "tenant-b"}) == "hit"
    assert server.calls["openai.chat"] == 5
    assert all(not n.lower().startswith("x-llmcache") for r in upstream.sent for n in r.headers)
    # A bypassed request goes upstream as sent; the others ask for an unencoded answer.
    assert [r.headers.get("accept-encoding") == "identity" for r in upstream.sent] == [
        True,
        False,
        True,
        True,
        True,
    ]
    assert [ttl for _, _, ttl in store.written] == [60.0, None, None]


def test_a_bad_control_header_is_answered_400_and_nothing_goes_upstream(
    package: str, server: OllamaServer
) -> None:
    with client(package, server) as http:
        answer = http.post("/v1/chat/completions", json=CHAT, headers={"x-llmcache-bypas": "1"})
    assert answer.status_code == 400 and answer.headers["x-llmcache"] == "bypass"
    assert "x-llmcache-bypas" in answer.json()["error"]["message"]
    assert server.calls.total == 0


def test_cache_control_around_a_call_is_honoured(package: str, server: OllamaServer) -> None:
    store = MemoryStore()
    with client(package, server, cache=store) as http:
        with cache_control(bypass=True):
            bypassed = http.post("/v1/chat/completions", json=CHAT)
        with cache_control(no_store=True):
            unstored = http.post("/v1/chat/completions", json=CHAT)
        stored = http.post("/v1/chat/completions", json=CHAT)
        with cache_control(refresh=True):
            refreshed = http.post("/v1/chat/completions", json=CHAT)
    assert [a.headers["x-llmcache"] for a in (bypassed, unstored, stored, refreshed)] == [
        "bypass",
        "miss",
        "miss",
        "miss",
    ]
    assert server.calls["openai.chat"] == 4 and len(store) == 1


@pytest.mark.parametrize(
    ("sampling", "expected"),
    [
        ({}, ["miss", "hit"]),  # no temperature: the server's default, cacheable
        ({"temperature": 0}, ["miss", "hit"]),
        ({"temperature": 0.9}, ["uncacheable", "uncacheable"]),
        ({"temperature": 0.9, "seed": 7}, ["miss", "hit"]),
    ],
)
def test_the_temperature_rule_is_every_doors(
    package: str, server: OllamaServer, sampling: dict[str, Any], expected: list[str]
) -> None:
    with client(package, server) as http:
        answers = [http.post("/v1/chat/completions", json={**CHAT, **sampling}) for _ in range(2)]
    assert [a.headers["x-llmcache"] for a in answers] == expected
    assert all(a.status_code == 200 for a in answers)


def test_state_held_by_the_server_is_uncacheable(package: str, server: OllamaServer) -> None:
    with client(package, server) as http:
        answers = [
            http.post("/api/generate", json={"model": "llama3.2", "prompt": "", "stream": False})
            for _ in range(2)
        ]
    assert [a.headers["x-llmcache"] for a in answers] == ["uncacheable"] * 2
    assert server.calls["generate"] == 2


def test_the_policy_keeps_an_answer_cut_by_the_token_limit_out(
    package: str, server: OllamaServer
) -> None:
    body = {**CHAT, "max_tokens": 1}
    with client(package, server) as http:
        answers = [http.post("/v1/chat/completions", json=body) for _ in range(2)]
    assert answers[0].json()["choices"][0]["finish_reason"] == "length"
    assert [a.headers["x-llmcache"] for a in answers] == ["miss", "miss"]
    with client(package, server, policy=CachePolicy(store_length_limited=True)) as http:
        answers = [http.post("/v1/chat/completions", json=body) for _ in range(2)]
    assert [a.headers["x-llmcache"] for a in answers] == ["miss", "hit"]


# -- encodings ---------------------------------------------------------------------------------


def gzip_upstream(package: str, seen: list[Any]) -> Any:
    """An upstream that compresses its answers whatever the request accepts."""
    pkg = importlib.import_module(package)
    answer = orjson.dumps(
        {
            "id": "c",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "4"},
                }
            ],
        }
    )

    def handle(request: Any) -> Any:
        seen.append(request)
        return pkg.Response(
            200,
            content=gzip.compress(answer),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )

    return pkg.MockTransport(handle), answer


def test_an_encoded_answer_is_recorded_decoded_and_replayed_without_its_encoding(
    package: str,
) -> None:
    seen: list[Any] = []
    upstream, answer = gzip_upstream(package, seen)
    pkg = importlib.import_module(package)
    transport = door(package).CacheTransport(transport=upstream)
    with pkg.Client(transport=transport, base_url="http://models.test") as http:
        miss, hit = (http.post("/v1/chat/completions", json=CHAT) for _ in range(2))
    assert seen[0].headers["accept-encoding"] == "identity" and len(seen) == 1
    assert miss.content == hit.content == answer
    for response in (miss, hit):
        assert "content-encoding" not in response.headers
        assert int(response.headers["content-length"]) == len(answer)
    assert hit.headers["x-llmcache"] == "hit"


# -- credentials, semantic tier ------------------------------------------------------------------


def test_two_credentials_never_share_unless_asked(package: str, server: OllamaServer) -> None:
    store = KeepingStore()
    for share, calls in ((False, 2), (True, 1)):
        server.calls.reset()
        with client(package, server, cache=MemoryStore(), share_credentials=share) as http:
            for key in ("sk-a", "sk-b"):
                http.post(
                    "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}
                )
        assert server.calls["openai.chat"] == calls
    with client(package, server, cache=store) as http:
        http.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer sk-x"})
    ((key, entry, _),) = store.written
    assert b"sk-x" not in orjson.dumps(entry.to_dict()) and "sk-x" not in key


def test_a_semantic_hit_says_how_similar_it_was(package: str, server: OllamaServer) -> None:
    semantic = SemanticCache(HashingEmbedder(), threshold=0.6)
    with client(package, server, semantic=semantic) as http:
        first = http.post(
            "/v1/chat/completions",
            json={
                **CHAT,
                "messages": [{"role": "user", "content": "what is the capital of france"}],
            },
        )
        second = http.post(
            "/v1/chat/completions",
            json={
                **CHAT,
                "messages": [{"role": "user", "content": "what is the capital of france?"}],
            },
        )
    assert first.headers["x-llmcache"] == "miss"
    assert second.headers["x-llmcache"] == "hit", second.headers
    assert 0.6 <= float(second.headers["x-llmcache-similarity"]) <= 1.0
    assert second.content == first.content and server.calls["openai.chat"] == 1
