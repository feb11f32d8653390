"""The API key is sent, and nowhere else: not in reprs, error messages, DEBUG logs, cache
keys, or anything a cache stores (issue 9)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from llmcache_testserver import OllamaServer

from llmcache import AuthenticationError, BadRequest, CachedClient, DiskStore
from llmcache.keys import Request
from llmcache_openai import AsyncOpenAIClient, OpenAIClient

KEY = "sk-test-Zq81u2VvKx0d9LmNa7"


@pytest.fixture
def guarded(server: OllamaServer) -> OllamaServer:
    server.openai.api_key = KEY
    return server


def test_the_key_is_sent(guarded: OllamaServer) -> None:
    with OpenAIClient(guarded.openai_url, model="llama3.2", api_key=KEY, timeout=5) as client:
        assert client.generate("hi").content == "echo: hi"
        assert client.has_api_key


def test_the_key_comes_from_the_environment(
    guarded: OllamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", guarded.openai_url)
    with OpenAIClient(model="llama3.2", timeout=5) as client:
        assert client.generate("hi").content == "echo: hi"


@pytest.mark.parametrize("key", [None, "sk-wrong-key-0000"])
def test_a_missing_or_wrong_key_is_an_authentication_error(
    guarded: OllamaServer, key: str | None
) -> None:
    with (
        OpenAIClient(
            guarded.openai_url, model="llama3.2", api_key=key, timeout=5, retries=3
        ) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.generate("hi")
    assert isinstance(caught.value, BadRequest) and caught.value.status_code == 401
    assert guarded.calls["openai.chat"] == 1  # a refused key is not retried
    assert key is None or key not in str(caught.value)


def test_no_repr_or_attribute_dump_shows_the_key() -> None:
    with OpenAIClient("http://127.0.0.1:1/v1", api_key=KEY) as client:
        shown = [repr(client), str(client), repr(vars(client)), repr(client._http.headers)]
        assert not [text for text in shown if KEY in text]


def _capture_canonical(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record the canonical bytes of every request llmcache builds a key from."""
    seen: list[bytes] = []
    original: Callable[[Request], dict[str, Any]] = Request.to_canonical

    def recording(self: Request) -> dict[str, Any]:
        data = original(self)
        seen.append(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
        return data

    monkeypatch.setattr(Request, "to_canonical", recording)
    return seen


def _files_holding(directory: Path, needle: bytes) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_cached_requests_never_hold_the_key(
    guarded: OllamaServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx's and httpcore's included
    seen = _capture_canonical(monkeypatch)
    guarded.openai.rate_limited = 1  # one retry, so the retry log line is written too
    backend = OpenAIClient(
        guarded.openai_url, model="llama3.2", api_key=KEY, timeout=5, backoff=0.01
    )
    with CachedClient(backend, DiskStore(tmp_path / "cache")) as cached:
        for _ in range(2):
            assert cached.generate("hi", temperature=0).content == "echo: hi"
            assert (
                cached.chat([{"role": "user", "content": "yo"}], temperature=0).content
                == "echo: yo"
            )
            assert (
                "".join(c.content for c in cached.generate_stream("a b", temperature=0, seed=1))
                == "echo: a b"
            )
        assert cached.hits == 3
    assert guarded.calls["openai.chat"] == 4  # three misses and the retried 429
    assert seen and not [data for data in seen if KEY.encode() in data]
    assert not _files_holding(tmp_path, KEY.encode())
    _assert_logs_clean(caplog)


async def test_async_calls_never_log_the_key(
    guarded: OllamaServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    guarded.openai.rate_limited = 1
    async with AsyncOpenAIClient(
        guarded.openai_url, model="llama3.2", api_key=KEY, timeout=5, backoff=0.01
    ) as client:
        assert (await client.generate("hi")).content == "echo: hi"
        assert [c.content async for c in client.chat_stream([{"role": "user", "content": "x"}])][
            -1
        ] == ""
    async with AsyncOpenAIClient(
        guarded.openai_url, model="llama3.2", api_key=KEY[:-1], timeout=5
    ) as wrong:
        with pytest.raises(AuthenticationError):
            await wrong.generate("hi")
    _assert_logs_clean(caplog)


def _assert_logs_clean(caplog: pytest.LogCaptureFixture) -> None:
    loggers = {record.name.split(".")[0] for record in caplog.records}
    assert {"httpcore", "llmcache_openai"} <= loggers  # DEBUG capture did see the traffic
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert KEY not in text and KEY[:-1] not in text, record.name
