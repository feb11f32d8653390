"""Requests of the model APIs as the caching transport and proxy read them: routes, keys,
credential scope, policy inputs and the ``x-llmcache-*`` control headers.

The request bodies are the bytes the official SDKs send (captured through each SDK's own
``MockTransport``), so a field the SDKs add or rename shows up here first.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmcache.entry import JSONCodec
from llmcache.integrations import _http_routes
from llmcache.integrations._http_answers import ResponseRecorder, answer_entry
from llmcache.integrations._http_control import (
    CONTROL_HEADERS,
    CacheStatus,
    ControlHeaderError,
    HeaderControl,
    parse_control_headers,
    status_headers,
    upstream_headers,
)
from llmcache.integrations._http_routes import (
    ROUTES,
    HttpCall,
    Passthrough,
    credential_scope,
    find_route,
    header_items,
    parse_request,
)
from llmcache.policy import CacheControl, CachePolicy

OPENAI = "https://api.openai.com"
ANTHROPIC = "https://api.anthropic.com"
OLLAMA = "http://127.0.0.1:11434"
AUTH = {"authorization": "Bearer sk-test-0000"}

# One body per route, in the shape the SDKs send (see test_sdk_requests_are_understood).
BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "openai.chat": (
        OPENAI + "/v1/chat/completions",
        {
            "model": "gpt-4o-mini",
            "temperature": 0,
            "seed": 7,
            "max_completion_tokens": 64,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this image?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                    ],
                },
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "add",
                        "parameters": {"type": "object", "properties": {"a": {"type": "number"}}},
                    },
                }
            ],
            "tool_choice": "auto",
            "response_format": {"type": "text"},
            "user": "alice",
            "metadata": {"run": "1"},
            "store": False,
        },
    ),
    "openai.responses": (
        OPENAI + "/v1/responses",
        {
            "model": "gpt-4o-mini",
            "input": [{"role": "user", "content": "hi"}],
            "instructions": "Be brief.",
            "temperature": 0.2,
            "max_output_tokens": 32,
            "text": {"format": {"type": "text"}},
            "reasoning": {"effort": "low"},
            "user": "alice",
        },
    ),
    "openai.embeddings": (
        OPENAI + "/v1/embeddings",
        {
            "model": "text-embedding-3-small",
            "input": ["a", "b"],
            "dimensions": 256,
            "encoding_format": "float",
            "user": "alice",
        },
    ),
    "openai.completions": (
        OPENAI + "/v1/completions",
        {
            "model": "gpt-3.5-turbo-instruct",
            "prompt": "Say this is a test",
            "max_tokens": 7,
            "temperature": 0,
            "best_of": 2,
            "n": 1,
            "echo": False,
            "user": "alice",
        },
    ),
    "anthropic.messages": (
        ANTHROPIC + "/v1/messages",
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "thinking": {"type": "enabled", "budget_tokens": 512},
            "tools": [
                {"name": "get_weather", "description": "w", "input_schema": {"type": "object"}}
            ],
            "metadata": {"user_id": "u-1"},
        },
    ),
    "ollama.generate": (
        OLLAMA + "/api/generate",
        {
            "model": "llama3",
            "prompt": "Why is the sky blue?",
            "system": "Be brief.",
            "options": {"temperature": 0, "seed": 1, "num_predict": 64},
            "format": "json",
            "stream": False,
            "keep_alive": "5m",
        },
    ),
    "ollama.chat": (
        OLLAMA + "/api/chat",
        {
            "model": "llama3",
            "messages": [{"role": "user", "content": "hi", "images": ["AA=="]}],
            "tools": [],
            "options": {"temperature": 0},
            "think": False,
            "keep_alive": 0,
        },
    ),
    "ollama.embed": (
        OLLAMA + "/api/embed",
        {"model": "all-minilm", "input": ["a", "b"], "truncate": True, "keep_alive": "1m"},
    ),
}

# A changed value of an answer-changing field, per route (the field must be in the body).
CHANGES: dict[str, list[tuple[str, Any]]] = {
    "openai.chat": [
        ("model", "gpt-4o"),
        ("temperature", 0.1),
        ("seed", 8),
        ("max_completion_tokens", 65),
        ("tool_choice", "none"),
        ("response_format", {"type": "json_object"}),
        ("n", 2),
        ("stream_options", {"include_usage": True}),
        ("logprobs", True),
        ("reasoning_effort", "high"),
        ("web_search_options", {}),
    ],
    "openai.responses": [
        ("input", "hello"),
        ("instructions", "Be long."),
        ("max_output_tokens", 33),
        ("store", False),
        ("reasoning", {"effort": "high"}),
        ("truncation", "auto"),
    ],
    "openai.embeddings": [("input", ["a"]), ("dimensions", 512), ("encoding_format", "base64")],
    "openai.completions": [("prompt", "Say that"), ("best_of", 3), ("echo", True), ("suffix", "!")],
    "anthropic.messages": [
        ("max_tokens", 1023),
        ("system", "Be long."),
        ("thinking", {"type": "disabled"}),
        ("top_k", 5),
        ("stop_sequences", ["x"]),
        ("output_config", {"effort": "low"}),
        ("container", None),
    ],
    "ollama.generate": [
        ("prompt", "Why not?"),
        ("options", {"temperature": 0, "seed": 2}),
        ("format", {"type": "object"}),
        ("raw", True),
        ("suffix", "s"),
        ("template", "{{ .Prompt }}"),
        ("images", ["AA=="]),
        ("context", [1, 2]),
    ],
    "ollama.chat": [
        ("messages", [{"role": "user", "content": "hello"}]),
        ("tools", [{"type": "function", "function": {"name": "f"}}]),
        ("think", True),
        ("format", "json"),
    ],
    "ollama.embed": [
        ("input", "a"),
        ("truncate", False),
        ("dimensions", 64),
        ("options", {"num_ctx": 512}),
    ],
}

# Fields each route leaves out of the key (with some value to set them to).
LABELS: dict[str, list[str]] = {
    "openai.chat": [
        "user",
        "metadata",
        "store",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
    ],
    "openai.responses": [
        "user",
        "metadata",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
    ],
    "openai.embeddings": ["user"],
    "openai.completions": ["user"],
    "anthropic.messages": ["metadata"],
    "ollama.generate": ["keep_alive"],
    "ollama.chat": ["keep_alive"],
    "ollama.embed": ["keep_alive"],
}


def call(
    route: str,
    body: dict[str, Any] | None = None,
    headers: Any = None,
    url: str | None = None,
    **kwargs: Any,
) -> HttpCall:
    default_url, default_body = BODIES[route]
    result = parse_request(
        "POST",
        url or default_url,
        AUTH if headers is None else headers,
        orjson.dumps(default_body if body is None else body),
        **kwargs,
    )
    assert isinstance(result, HttpCall), result
    return result


def with_field(route: str, name: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(BODIES[route][1])
    body[name] = value
    return body


# -- routes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("route", sorted(BODIES))
def test_every_route_is_understood(route: str) -> None:
    parsed = call(route)
    assert parsed.route.name == route
    assert parsed.method == "POST" and parsed.key.startswith("v")
    assert parsed.model == BODIES[route][1]["model"]


def test_the_route_table_is_the_issues() -> None:
    assert {r.suffix for r in ROUTES} == {
        "/v1/chat/completions",
        "/v1/responses",
        "/v1/embeddings",
        "/v1/completions",
        "/v1/messages",
        "/api/generate",
        "/api/chat",
        "/api/embed",
    }
    # No suffix ends another, so the order of the table decides nothing.
    for a in ROUTES:
        assert not any(b is not a and a.suffix.endswith(b.suffix) for b in ROUTES)


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v1/models"),
        ("GET", "/v1/chat/completions"),
        ("PUT", "/api/chat"),
        ("POST", "/v1/chat/completions/"),
        ("POST", "/api/embeddings"),
        ("POST", "/v1/threads/t_1/messages"),
        ("POST", "/v1/messages/count_tokens"),
        ("POST", "/v1/messages/batches"),
        ("POST", "/v1/responses/resp_1/cancel"),
        ("POST", "/api/pull"),
        ("POST", "/v1/files"),
        ("DELETE", "/v1/responses"),
    ],
)
def test_other_routes_pass_through(method: str, path: str) -> None:
    result = parse_request(method, OLLAMA + path, AUTH, b'{"model": "m", "prompt": "p"}')
    assert isinstance(result, Passthrough) and result.reason == "route"


def test_a_path_prefix_is_kept_in_the_key() -> None:
    assert find_route("POST", "/openai/v1/chat/completions") is ROUTES[0]
    plain = call("openai.chat")
    prefixed = call("openai.chat", url="https://gw.example/openai/v1/chat/completions")
    assert prefixed.path == "/openai/v1/chat/completions" and prefixed.key != plain.key


@pytest.mark.parametrize(
    "route, body, expected",
    [
        ("openai.chat", b"", "not JSON"),
        ("openai.chat", b"{not json", "not JSON"),
        ("openai.chat", b"\xff\xfe{}", "not JSON"),
        ("openai.chat", b'{"model": "m", "messages": [{"content": "\\ud800"}]}', "not JSON"),
        ("openai.chat", b"[]", "not an object"),
        ("openai.chat", b'{"messages": []}', "model"),
        ("openai.chat", b'{"model": "", "messages": []}', "model"),
        ("openai.chat", b'{"model": 3, "messages": []}', "model"),
        ("openai.chat", b'{"model": "m"}', "messages is missing"),
        ("openai.chat", b'{"model": "m", "messages": {}}', "messages is an object"),
        ("openai.chat", b'{"model": "m", "messages": [], "temperature": "0"}', "temperature"),
        ("openai.chat", b'{"model": "m", "messages": [], "temperature": true}', "temperature"),
        ("openai.chat", b'{"model": "m", "messages": [], "stream": "yes"}', "stream"),
        ("openai.chat", b'{"model": "m", "messages": [], "seed": 1.5}', "seed"),
        ("openai.chat", b'{"model": "m", "messages": [], "n": "2"}', "n is"),
        ("openai.chat", b'{"model": "m", "messages": [], "tools": {}}', "tools"),
        ("openai.embeddings", b'{"model": "m"}', "input is missing"),
        ("anthropic.messages", b'{"model": "m", "max_tokens": 1}', "messages is missing"),
        ("ollama.chat", b'{"model": "m", "options": []}', "options is a list"),
        (
            "ollama.generate",
            b'{"model": "m", "options": {"temperature": "hot"}}',
            "options.temperature",
        ),
        ("ollama.generate", b'{"model": "m", "options": {"seed": 1.5}}', "options.seed"),
    ],
)
def test_malformed_bodies_are_not_understood(route: str, body: bytes, expected: str) -> None:
    result = parse_request("POST", BODIES[route][0], AUTH, body)
    assert isinstance(result, Passthrough) and result.reason == "body", result
    assert expected in result.detail


def test_a_body_too_deep_to_key_is_not_understood() -> None:
    # orjson reads 1024 levels but writes 255: such a body cannot be keyed, only forwarded.
    body = b'{"model": "m", "messages": [], "x": ' + b"[" * 300 + b"]" * 300 + b"}"
    result = parse_request("POST", BODIES["openai.chat"][0], AUTH, body)
    assert isinstance(result, Passthrough) and result.reason == "body"


def test_a_passthrough_names_fields_never_their_values() -> None:
    result = parse_request(
        "POST",
        BODIES["openai.chat"][0],
        AUTH,
        b'{"model": "m", "messages": [], "temperature": "very-secret"}',
    )
    assert isinstance(result, Passthrough) and "very-secret" not in result.detail


def test_bad_urls_pass_through() -> None:
    for url in ("http://h:99999/v1/chat/completions", "/v1/chat/completions", "not a url"):
        assert isinstance(parse_request("POST", url, {}, b"{}"), Passthrough)


# -- what the official SDKs send ------------------------------------------------------------


def captured(send: Callable[[Any], None], package: Any) -> tuple[str, dict[str, str], bytes]:
    """What an SDK sends for one call, through its HTTP package's own MockTransport."""
    seen: list[Any] = []

    def handler(request: Any) -> Any:
        seen.append(request)
        return package.Response(418, json={"error": {"message": "captured"}})

    client = package.Client(transport=package.MockTransport(handler))
    with pytest.raises(Exception):  # noqa: B017 - each SDK raises its own error type
        send(client)
    (request,) = seen
    return str(request.url), dict(request.headers), request.content


def _openai(client: Any) -> Any:
    openai = pytest.importorskip("openai")
    return openai.OpenAI(
        api_key="sk-test-openai-1",
        base_url="http://127.0.0.1:9/v1",
        max_retries=0,
        http_client=client,
    )


def _anthropic(client: Any) -> Any:
    anthropic = pytest.importorskip("anthropic")
    return anthropic.Anthropic(
        api_key="sk-ant-test-1", base_url="http://127.0.0.1:9", max_retries=0, http_client=client
    )


def _ollama(client: Any) -> Any:
    ollama = pytest.importorskip("ollama")
    return ollama.Client(host="http://127.0.0.1:9", transport=client._transport)


USER = [{"role": "user", "content": "hi"}]
SDK_CALLS: dict[str, tuple[str, Callable[[Any], Any], bool]] = {
    "openai.chat": (
        "httpx",
        lambda c: _openai(c).chat.completions.create(
            model="gpt-4o-mini", messages=USER, temperature=0
        ),
        False,
    ),
    "openai.chat stream": (
        "httpx",
        lambda c: _openai(c).chat.completions.create(
            model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True}
        ),
        True,
    ),
    "openai.responses": (
        "httpx2",
        lambda c: _openai(c).responses.create(model="gpt-4o-mini", input="hi", stream=True),
        True,
    ),
    "openai.embeddings": (
        "httpx2",
        lambda c: _openai(c).embeddings.create(model="text-embedding-3-small", input="hi"),
        False,
    ),
    "openai.completions": (
        "httpx",
        lambda c: _openai(c).completions.create(
            model="gpt-3.5-turbo-instruct", prompt="hi", seed=3
        ),
        False,
    ),
    "anthropic.messages": (
        "httpx2",
        lambda c: _anthropic(c).messages.create(model="claude-x", max_tokens=10, messages=USER),
        False,
    ),
    "anthropic.messages stream": (
        "httpx2",
        lambda c: _anthropic(c).messages.create(
            model="claude-x", max_tokens=10, messages=USER, stream=True
        ),
        True,
    ),
    "ollama.generate": (
        "httpx",
        lambda c: _ollama(c).generate(model="llama3", prompt="hi", options={"temperature": 0}),
        False,
    ),
    "ollama.chat": (
        "httpx",
        lambda c: next(iter(_ollama(c).chat(model="llama3", messages=USER, stream=True))),
        True,
    ),
    "ollama.embed": ("httpx", lambda c: _ollama(c).embed(model="all-minilm", input="hi"), False),
}


@pytest.mark.parametrize("name", sorted(SDK_CALLS))
def test_sdk_requests_are_understood(name: str) -> None:
    package_name, send, streams = SDK_CALLS[name]
    package = pytest.importorskip(package_name)
    url, headers, body = captured(send, package)
    parsed = parse_request("POST", url, headers, body)
    assert isinstance(parsed, HttpCall), parsed
    assert parsed.route.name == name.split()[0] and parsed.stream is streams
    secrets = ("sk-test-openai-1", "sk-ant-test-1")
    assert not any(s in repr(parsed) or s in parsed.key for s in secrets)
    if name.startswith("openai") or name.startswith("anthropic"):
        assert parsed.scope.startswith("cred:")


def test_anthropic_version_from_the_sdk_is_in_the_key() -> None:
    pytest.importorskip("httpx2")
    import httpx2

    url, headers, body = captured(SDK_CALLS["anthropic.messages"][1], httpx2)
    assert headers["anthropic-version"]
    first = parse_request("POST", url, headers, body)
    headers["anthropic-version"] = "2023-06-01"
    second = parse_request("POST", url, headers, body)
    assert isinstance(first, HttpCall) and isinstance(second, HttpCall)
    assert first.key != second.key


# -- keys -----------------------------------------------------------------------------------


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's keys in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


@given(route=st.sampled_from(sorted(BODIES)), seed=st.integers())
def test_reordered_json_objects_give_one_key(route: str, seed: int) -> None:
    body = shuffled(BODIES[route][1], random.Random(seed))
    headers = list(AUTH.items()) + [("anthropic-beta", "b1, a2"), ("user-agent", "x")]
    reordered = [("anthropic-beta", "a2,b1")] + list(reversed(headers[:1]))
    assert call(route, body, headers).key == call(route, None, reordered).key


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=8,
)


@given(route=st.sampled_from(sorted(BODIES)), name=st.text(min_size=1, max_size=12), value=JSON)
def test_any_other_field_changes_the_key(route: str, name: str, value: Any) -> None:
    # Fields this module has never heard of go into the key: a miss, never a wrong answer.
    body = BODIES[route][1]
    if name in body or name in LABELS[route] or name == "stream":
        return
    url = BODIES[route][0]
    result = parse_request("POST", url, AUTH, orjson.dumps(with_field(route, name, value)))
    if isinstance(result, Passthrough):
        # A known field of the wrong type (``n: []``): passed through untouched, never keyed,
        # so it cannot be served another request's answer either.
        assert result.reason == "body"
        return
    assert result.key != call(route).key


@pytest.mark.parametrize(
    "route, name, value", [(r, n, v) for r, changes in sorted(CHANGES.items()) for n, v in changes]
)
def test_each_answer_changing_field_changes_the_key(route: str, name: str, value: Any) -> None:
    assert call(route, with_field(route, name, value)).key != call(route).key


@pytest.mark.parametrize(
    "route, name", [(r, n) for r, names in sorted(LABELS.items()) for n in names]
)
def test_labels_leave_the_key_alone(route: str, name: str) -> None:
    assert call(route, with_field(route, name, {"x": "another label"})).key == call(route).key


@given(a=st.floats(0, 2, allow_nan=False), b=st.floats(0, 2, allow_nan=False))
def test_temperatures_share_a_key_only_when_equal(a: float, b: float) -> None:
    ka = call("openai.chat", with_field("openai.chat", "temperature", a)).key
    kb = call("openai.chat", with_field("openai.chat", "temperature", b)).key
    assert (ka == kb) == (a == b)


def test_numbers_are_json_numbers() -> None:
    # JSON has one number type: 0 and 0.0 (and -0.0) are one request to the server.
    zero = [
        call("openai.chat", with_field("openai.chat", "temperature", t)).key for t in (0, 0.0, -0.0)
    ]
    assert len(set(zero)) == 1


@pytest.mark.parametrize(
    "route, absent, default, other",
    [
        ("openai.chat", None, False, True),
        ("openai.responses", None, False, True),
        ("openai.completions", None, False, True),
        ("anthropic.messages", None, False, True),
        ("ollama.generate", None, True, False),
        ("ollama.chat", None, True, False),
    ],
)
def test_stream_is_in_the_key_with_the_apis_default(
    route: str, absent: None, default: bool, other: bool
) -> None:
    body = {k: v for k, v in BODIES[route][1].items() if k != "stream"}
    unset = call(route, body)
    explicit = call(route, dict(body, stream=default))
    null = call(route, dict(body, stream=None))
    flipped = call(route, dict(body, stream=other))
    assert unset.key == explicit.key == null.key != flipped.key
    assert unset.stream is default and flipped.stream is other


def test_stream_options_stay_in_the_key() -> None:
    # include_usage adds a chunk to the stream the cache replays byte for byte.
    body = dict(BODIES["openai.chat"][1], stream=True)
    assert (
        call("openai.chat", dict(body, stream_options={"include_usage": True})).key
        != call("openai.chat", body).key
    )


@pytest.mark.parametrize(
    "url_a, url_b, same",
    [
        (
            "https://api.openai.com/v1/chat/completions",
            "https://API.OpenAI.com:443/v1/chat/completions",
            True,
        ),
        ("http://127.0.0.1:80/v1/chat/completions", "http://127.0.0.1/v1/chat/completions", True),
        (
            "https://api.openai.com/v1/chat/completions",
            "https://api.groq.com/v1/chat/completions",
            False,
        ),
        (
            "http://127.0.0.1:8000/v1/chat/completions",
            "http://127.0.0.1:8001/v1/chat/completions",
            False,
        ),
        ("http://h/v1/chat/completions", "https://h/v1/chat/completions", False),
        ("http://[::1]:8000/v1/chat/completions", "http://[::1]:8001/v1/chat/completions", False),
        (
            "https://h/openai/v1/chat/completions?api-version=1",
            "https://h/openai/v1/chat/completions?api-version=2",
            False,
        ),
    ],
)
def test_origin_and_path_are_in_the_key(url_a: str, url_b: str, same: bool) -> None:
    assert (call("openai.chat", url=url_a).key == call("openai.chat", url=url_b).key) is same


def test_answer_shaping_headers_are_in_the_key_others_not() -> None:
    base = call("anthropic.messages", headers=dict(AUTH, **{"anthropic-version": "2023-06-01"}))
    beta = call(
        "anthropic.messages",
        headers=dict(AUTH, **{"anthropic-version": "2023-06-01", "anthropic-beta": "x-2025"}),
    )
    noise = call(
        "anthropic.messages",
        headers=dict(
            AUTH,
            **{
                "anthropic-version": "2023-06-01",
                "user-agent": "other",
                "x-stainless-retry-count": "2",
                "accept-encoding": "br",
                "traceparent": "00-ab-cd-01",
            },
        ),
    )
    assert base.key != beta.key and base.key == noise.key
    # A repeated header is one list.
    repeated = parse_request(
        "POST",
        BODIES["anthropic.messages"][0],
        [
            ("authorization", AUTH["authorization"]),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "b"),
            ("anthropic-beta", "a"),
        ],
        orjson.dumps(BODIES["anthropic.messages"][1]),
    )
    one = call(
        "anthropic.messages",
        headers=dict(AUTH, **{"anthropic-version": "2023-06-01", "anthropic-beta": "a,b"}),
    )
    assert isinstance(repeated, HttpCall) and repeated.key == one.key


def test_namespace_and_key_version_are_in_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = call("openai.chat")
    assert call("openai.chat", namespace="tenant-a").key != plain.key
    monkeypatch.setattr(_http_routes, "HTTP_KEY_VERSION", _http_routes.HTTP_KEY_VERSION + 1)
    assert call("openai.chat").key != plain.key


def test_key_and_fingerprint_come_from_the_same_bytes() -> None:
    a, b = call("openai.chat"), call("openai.chat", namespace="n")
    assert a.fingerprint != b.fingerprint and len(a.fingerprint) == 16


# -- credentials ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "authorization",
        "x-api-key",
        "api-key",
        "cookie",
        "proxy-authorization",
        "openai-organization",
        "openai-project",
    ],
)
def test_two_credentials_never_share_an_entry(header: str) -> None:
    a = call("openai.chat", headers={header: "value-a"})
    b = call("openai.chat", headers={header: "value-b"})
    assert a.scope != b.scope and a.key != b.key
    assert call("openai.chat", headers={header.upper(): " value-a "}).key == a.key


def test_sharing_across_credentials_is_an_option() -> None:
    a = call("openai.chat", headers={"authorization": "Bearer a"}, share_credentials=True)
    b = call("openai.chat", headers={"x-api-key": "b"}, share_credentials=True)
    assert a.key == b.key and a.scope == "shared"
    assert call("openai.chat", headers={}).scope == "anonymous"


def test_a_scope_secret_gives_other_scopes() -> None:
    headers = {"authorization": "Bearer a"}
    assert credential_scope(headers) != credential_scope(headers, secret=b"deployment-key")
    assert credential_scope(headers, secret=b"k") == credential_scope(headers, secret=b"k")


def test_pairs_of_credentials_cannot_be_confused() -> None:
    # Two headers must not hash like one header holding both values.
    a = credential_scope([("authorization", "ab"), ("x-api-key", "c")])
    b = credential_scope([("authorization", "a"), ("x-api-key", "bc")])
    assert a != b


def test_the_scope_is_the_same_in_every_process() -> None:
    # A constant key (no per-process salt): another process sharing a Redis tier agrees.
    import subprocess
    import sys

    code = (
        "from llmcache.integrations._http_routes import credential_scope as s; "
        "print(s({'authorization': 'Bearer sk-x'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == credential_scope({"authorization": "Bearer sk-x"})


@given(
    secret=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=12, max_size=40
    )
)
def test_a_credential_never_appears_in_a_key_an_entry_or_a_repr(secret: str) -> None:
    headers = {
        "authorization": f"Bearer {secret}",
        "x-api-key": secret,
        "cookie": secret,
        "openai-organization": secret,
    }
    parsed = call("openai.chat", headers=headers)
    recorder = ResponseRecorder(
        parsed.route,
        200,
        {
            "content-type": "application/json",
            "set-cookie": secret,
            "openai-organization": secret,
            "x-request-id": secret,
        },
    )
    recorder.feed(
        b'{"model": "m", "choices": [{"index": 0, "finish_reason": "stop", '
        b'"message": {"role": "assistant", "content": "4"}}]}'
    )
    entry = answer_entry(recorder.finish(), fingerprint=parsed.fingerprint)
    stored = JSONCodec().encode(entry)
    for text in (
        parsed.key,
        parsed.scope,
        parsed.fingerprint,
        repr(parsed),
        repr(entry),
        stored.decode(),
    ):
        assert secret not in text
    assert secret.encode() not in stored


# -- policy inputs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "route, default",
    [
        ("openai.chat", 1.0),
        ("openai.responses", 1.0),
        ("openai.completions", 1.0),
        ("anthropic.messages", 1.0),
        ("ollama.generate", 0.8),
        ("ollama.chat", 0.8),
        ("openai.embeddings", None),
        ("ollama.embed", None),
    ],
)
def test_an_absent_temperature_is_the_servers_default(route: str, default: float | None) -> None:
    body = {k: v for k, v in BODIES[route][1].items() if k != "temperature"}
    if route.startswith("ollama") and "options" in body:
        body["options"] = {k: v for k, v in body["options"].items() if k != "temperature"}
    parsed = call(route, body)
    assert parsed.temperature == default and parsed.temperature_set is False


def test_the_temperature_and_seed_sent_are_read() -> None:
    chat = call("openai.chat")
    assert (chat.temperature, chat.temperature_set, chat.seed) == (0, True, 7)
    gen = call("ollama.generate")
    assert (gen.temperature, gen.temperature_set, gen.seed) == (0, True, 1)
    assert (
        call("anthropic.messages", with_field("anthropic.messages", "temperature", 0.5)).temperature
        == 0.5
    )


def test_the_policy_decides_as_at_every_other_door() -> None:
    policy = CachePolicy()
    unset = {k: v for k, v in BODIES["openai.chat"][1].items() if k not in ("temperature", "seed")}
    sampled = call("openai.chat", unset)  # the server samples at 1.0: not cached
    assert not policy.cacheable(temperature=sampled.temperature, seed=sampled.seed)
    seeded = call("openai.chat", dict(unset, seed=3))
    assert policy.cacheable(temperature=seeded.temperature, seed=seeded.seed)
    greedy = call("openai.chat", dict(unset, temperature=0))
    assert policy.cacheable(temperature=greedy.temperature, seed=greedy.seed)
    embed = call("openai.embeddings")
    assert policy.cacheable(temperature=embed.temperature, seed=embed.seed)


def test_samples_and_tools_are_reported() -> None:
    assert call("openai.completions").samples == 2  # best_of
    assert call("openai.chat", with_field("openai.chat", "n", 3)).samples == 3
    assert call("openai.chat").has_tools and call("anthropic.messages").has_tools
    assert not call("ollama.chat").has_tools  # the ollama client sends "tools": []


@pytest.mark.parametrize(
    "route, name, value, why",
    [
        ("openai.responses", "previous_response_id", "resp_1", "previous_response_id"),
        ("openai.responses", "conversation", "conv_1", "conversation"),
        ("openai.responses", "background", True, "background"),
        ("openai.responses", "prompt", {"id": "pmpt_1"}, "pinned version"),
        ("anthropic.messages", "container", "cntr_1", "container"),
        ("ollama.generate", "prompt", "", "loads or unloads"),
        ("ollama.chat", "messages", [], "loads or unloads"),
    ],
)
def test_server_held_state_is_uncacheable(route: str, name: str, value: Any, why: str) -> None:
    assert call(route).uncacheable == ""
    assert why in call(route, with_field(route, name, value)).uncacheable


def test_a_pinned_prompt_template_is_cacheable() -> None:
    body = with_field("openai.responses", "prompt", {"id": "pmpt_1", "version": "3"})
    assert call("openai.responses", body).uncacheable == ""


# -- control headers ------------------------------------------------------------------------


def test_control_headers_are_read_in_any_case() -> None:
    control = parse_control_headers(
        [
            (b"X-LLMCache-Bypass", b"TRUE"),
            ("x-llmcache-namespace", " tenant-a "),
            ("X-Llmcache-Ttl", "1.5"),
        ]
    )
    assert control == HeaderControl(bypass=True, ttl=1.5, namespace="tenant-a")
    assert parse_control_headers(
        {"x-llmcache-refresh": "on", "x-llmcache-no-store": "no"}
    ) == HeaderControl(refresh=True)
    assert parse_control_headers({"authorization": "x"}) == HeaderControl()


@pytest.mark.parametrize(
    "headers, header, fix",
    [
        ({"x-llmcache-ttl": "abc"}, "x-llmcache-ttl", "send a positive number"),
        ({"x-llmcache-ttl": "0"}, "x-llmcache-ttl", "positive, finite"),
        ({"x-llmcache-ttl": "-5"}, "x-llmcache-ttl", "positive, finite"),
        ({"x-llmcache-ttl": "inf"}, "x-llmcache-ttl", "positive, finite"),
        ({"x-llmcache-ttl": "nan"}, "x-llmcache-ttl", "positive, finite"),
        ({"x-llmcache-bypass": "maybe"}, "x-llmcache-bypass", "send true or false"),
        ({"x-llmcache-no-store": ""}, "x-llmcache-no-store", "send true or false"),
        ({"x-llmcache-namespace": "  "}, "x-llmcache-namespace", "printable"),
        ({"x-llmcache-namespace": "x" * 201}, "x-llmcache-namespace", "1 to 200"),
        ({"x-llmcache-bypas": "1"}, "x-llmcache-bypas", "x-llmcache-bypass"),
        ({"x-llmcache-bypass": "1", "x-llmcache-refresh": "1"}, "x-llmcache-refresh", "send one"),
        ([("x-llmcache-ttl", "1"), ("x-llmcache-ttl", "2")], "x-llmcache-ttl", "send it once"),
    ],
)
def test_bad_control_headers_name_the_header_and_the_fix(
    headers: Any, header: str, fix: str
) -> None:
    with pytest.raises(ControlHeaderError) as info:
        parse_control_headers(headers)
    assert info.value.header == header and str(info.value).startswith(header + ":")
    assert fix in str(info.value)
    assert isinstance(info.value, ValueError)


def test_header_control_narrows_the_callers_control() -> None:
    assert HeaderControl().apply(CacheControl(ttl=9.0)) == CacheControl(ttl=9.0)
    assert HeaderControl(bypass=True).apply(CacheControl()) == CacheControl(False, False)
    assert HeaderControl(refresh=True).apply(CacheControl()) == CacheControl(False, True)
    assert HeaderControl(no_store=True, ttl=5.0).apply(CacheControl()) == CacheControl(
        True, False, 5.0
    )
    # A header never turns back on what the caller's cache_control() turned off.
    assert HeaderControl(refresh=True).apply(CacheControl(write=False)) == CacheControl(
        False, False
    )


def test_control_headers_are_stripped_before_going_upstream() -> None:
    headers: list[tuple[str | bytes, str | bytes]] = [
        ("Authorization", "Bearer x"),
        ("X-LLMCache-TTL", "5"),
        (b"x-llmcache-namespace", b"n"),
        ("Content-Type", "application/json"),
    ]
    assert upstream_headers(headers) == [
        ("Authorization", "Bearer x"),
        ("Content-Type", "application/json"),
    ]
    assert upstream_headers({n: "1" for n in CONTROL_HEADERS}) == []


def test_the_namespace_header_separates_entries() -> None:
    ns = parse_control_headers({"x-llmcache-namespace": "a"}).namespace
    assert ns is not None
    assert call("openai.chat", namespace=ns).key != call("openai.chat").key


def test_status_headers() -> None:
    assert [status_headers(s) for s in CacheStatus] == [
        [("x-llmcache", "hit")],
        [("x-llmcache", "miss")],
        [("x-llmcache", "bypass")],
        [("x-llmcache", "uncacheable")],
    ]
    assert status_headers(CacheStatus.HIT, 1.0) == [
        ("x-llmcache", "hit"),
        ("x-llmcache-similarity", "1.0000"),
    ]
    with pytest.raises(ValueError):
        status_headers(CacheStatus.MISS, 0.9)
    with pytest.raises(ValueError):
        status_headers(CacheStatus.HIT, float("nan"))


def test_nothing_here_imports_an_http_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import llmcache.integrations._http_routes, "
        "llmcache.integrations._http_answers, llmcache.integrations._http_control; "
        "print([m for m in ('httpx', 'httpx2', 'starlette', 'openai', 'anthropic') "
        "if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


# -- the request path's shortcuts give the same call as the general path --------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "\x00int", "\x00x"]), inner, max_size=2)
    ),
    max_leaves=8,
)


@given(extra=_JSON, temperature=st.sampled_from([0, 0.0, 1.0, 0.5, -0.5]))
def test_the_no_copy_key_path_gives_the_normalised_key(extra: Any, temperature: float) -> None:
    # A parsed body that is already canonical is written without a copy; anything else
    # (whole floats, ints beyond 64 bits, NUL-keyed objects) must give the same key (or the
    # same refusal) as the normalising path.
    data = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "x": extra}
    data["temperature"] = temperature
    try:
        body = orjson.dumps(data)
    except orjson.JSONEncodeError:
        return  # not a body a client can send
    url = "https://api.openai.com/v1/chat/completions"
    fast = parse_request("POST", url, {"authorization": "Bearer k"}, body)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_http_routes, "_as_is", lambda value: False)
        slow = parse_request("POST", url, {"authorization": "Bearer k"}, body)
    assert fast == slow


def test_headers_read_once_give_the_same_call() -> None:
    headers = [(b"Authorization", b"Bearer k"), (b"OpenAI-Beta", b"b, a"), (b"Accept", b"*/*")]
    body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    url = "https://api.openai.com/v1/chat/completions"
    read = _http_routes.parse_read_request("POST", url, header_items(headers), body)
    assert read == parse_request("POST", url, headers, body)
