"""The cache behind ``llmcache proxy``: ``--path`` (a disk cache that outlives the process),
``--redis`` (one cache for several proxies, on a real redis-server), ``--semantic``, and
``--ttl``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from llmcache_testserver import OllamaServer

from llmcache.stores.disk import DiskReader

CHAT = "/v1/chat/completions"


def _ask(url: str, text: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{url}{CHAT}",
        timeout=10,
        json={"model": "llama3.2", "messages": [{"role": "user", "content": text}], **extra},
    )


def test_a_disk_cache_answers_after_a_restart(
    start_proxy: Any, upstream: OllamaServer, tmp_path: Path, fresh: str
) -> None:
    before = upstream.calls["openai.chat"]
    first = start_proxy(upstream.url, "--path", str(tmp_path / "cache"))
    assert "(cache: disk " in first.line
    assert _ask(first.url, fresh).headers["x-llmcache"] == "miss"
    assert first.stop() == 0
    second = start_proxy(upstream.url, "--path", str(tmp_path / "cache"))
    reply = _ask(second.url, fresh)
    assert reply.headers["x-llmcache"] == "hit"
    assert reply.json()["choices"][0]["message"]["content"] == f"echo: {fresh}"
    assert upstream.calls["openai.chat"] == before + 1


def test_two_proxies_share_one_redis_cache(
    start_proxy: Any, upstream: OllamaServer, redis_url: str, fresh: str
) -> None:
    a = start_proxy(upstream.url, "--redis", redis_url)
    b = start_proxy(upstream.url, "--redis", redis_url)
    assert "(cache: redis redis://127.0.0.1:" in a.line
    before = upstream.calls["openai.chat"]
    assert _ask(a.url, fresh).headers["x-llmcache"] == "miss"
    assert _ask(b.url, fresh).headers["x-llmcache"] == "hit"
    assert upstream.calls["openai.chat"] == before + 1


def test_a_redis_password_is_not_printed(
    start_proxy: Any, upstream: OllamaServer, redis_url: str
) -> None:
    with_password = redis_url.replace("redis://", "redis://:hunter2-secret@")
    p = start_proxy(upstream.url, "--redis", with_password)
    assert "hunter2-secret" not in p.line


def test_semantic_answers_a_rephrased_question(
    start_proxy: Any, upstream: OllamaServer, fresh: str
) -> None:
    p = start_proxy(upstream.url, "--semantic")
    assert p.line.rstrip().endswith(", semantic)")
    before = upstream.calls["openai.chat"]
    assert (
        _ask(p.url, f"How do I reverse a list in Python? {fresh}").headers["x-llmcache"] == "miss"
    )
    reply = _ask(p.url, f"how do i reverse a list in python {fresh}")
    assert reply.headers["x-llmcache"] == "hit"
    assert 0 < float(reply.headers["x-llmcache-similarity"]) <= 1
    assert upstream.calls["openai.chat"] == before + 1


def test_ttl_and_control_headers_reach_the_cache(
    start_proxy: Any, upstream: OllamaServer, tmp_path: Path, fresh: str
) -> None:
    p = start_proxy(upstream.url, "--ttl", "3600", "--path", str(tmp_path / "cache"))
    refused = httpx.post(
        f"{p.url}{CHAT}",
        headers={"x-llmcache-bypas": "1"},
        json={"model": "llama3.2", "messages": []},
    )
    assert refused.status_code == 400  # a mistyped control header is refused, not ignored
    assert "x-llmcache-bypas" in refused.json()["error"]["message"]
    before = upstream.calls["openai.chat"]
    statuses = [_ask(p.url, fresh).headers["x-llmcache"] for _ in range(2)]
    bypassed = httpx.post(
        f"{p.url}{CHAT}",
        headers={"x-llmcache-bypass": "true"},
        json={"model": "llama3.2", "messages": [{"role": "user", "content": fresh}]},
    )
    assert statuses + [bypassed.headers["x-llmcache"]] == ["miss", "hit", "bypass"]
    assert upstream.calls["openai.chat"] == before + 2
    assert p.stop() == 0
    with DiskReader(tmp_path / "cache") as reader:
        entries = [reader.peek(key) for key in reader.iterkeys()]
    assert len(entries) == 1 and entries[0] is not None
    assert entries[0].expires_at is not None
    assert 3500 < entries[0].expires_at - time.time() <= 3600
