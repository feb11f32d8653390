"""The caching transport in several processes sharing a Redis tier: concurrent identical
calls, plain or streamed, make one upstream call between them (the runner's cross-process
single-flight, through the tier's locks)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from llmcache_testserver import EchoEngine, OllamaServer

# Each process: a transport over the shared tier; it waits for "go" on its standard input,
# asks (streamed when its third argument says so), and prints what the cache did and a
# digest of the answer.
CHILD = textwrap.dedent("""
    import hashlib, sys
    import httpx2
    from llmcache import RedisStore
    from llmcache.integrations.httpx2 import CacheTransport

    url, redis_url, streamed = sys.argv[1], sys.argv[2], sys.argv[3] == "stream"
    body = {"model": "llama3.2", "stream": streamed,
            "messages": [{"role": "user", "content": "shared"}]}
    store = RedisStore(redis_url)
    with httpx2.Client(transport=CacheTransport(cache=store), base_url=url) as http:
        print("ready", flush=True)
        sys.stdin.readline()
        with http.stream("POST", "/v1/chat/completions", json=body) as answer:
            digest = hashlib.sha256(answer.read()).hexdigest()
        print(answer.headers["x-llmcache"], digest, flush=True)
    store.close()
""")


def run_children(server: OllamaServer, redis_url: str, mode: str) -> list[list[str]]:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, server.url, redis_url, mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        return [child.communicate(timeout=30)[0].split() for child in children]
    finally:
        for child in children:
            child.kill()


@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_processes_sharing_a_redis_tier_make_one_upstream_call(redis_url: str, mode: str) -> None:
    # The upstream takes a while, so the other processes ask while the first one's call is
    # in flight: they wait on the tier's lock (held, for a stream, until it is stored),
    # then replay what the first one stored.
    with OllamaServer(EchoEngine(latency_ms=400)) as server:
        outputs = run_children(server, redis_url, mode)
    assert sorted(status for status, _ in outputs) == ["hit", "hit", "miss"]
    assert len({digest for _, digest in outputs}) == 1
    assert server.calls["openai.chat"] == 1
