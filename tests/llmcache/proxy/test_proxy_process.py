"""``llmcache proxy`` as a process: its startup line, /healthz, 502s and 413s, SIGTERM, and
what it never writes down (credentials), with the test server as its upstream."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from llmcache_testserver import EchoEngine, OllamaServer
from proxy_process import ProxyProcess
from typer.testing import CliRunner

from llmcache.cli import app

Start = Callable[..., ProxyProcess]
SECRET = "sk-proxy-secret-4f1d2a"


def test_import_llmcache_imports_no_web_stack() -> None:
    code = (
        "import sys, llmcache, llmcache.cli; "
        "bad = [m for m in ('starlette', 'uvicorn', 'httpx', 'anyio', 'httpx2') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_startup_line_names_the_url_the_upstream_and_the_cache(
    proxy: ProxyProcess, upstream: OllamaServer
) -> None:
    assert proxy.line.startswith("llmcache proxy: listening on http://127.0.0.1:")
    assert f"forwarding to {upstream.url}" in proxy.line
    assert "(cache: memory" in proxy.line
    reply = httpx.get(f"{proxy.url}/healthz")
    assert (reply.status_code, reply.json()) == (200, {"status": "ok"})


def test_a_request_the_cache_does_not_handle_passes_through(
    proxy: ProxyProcess, upstream: OllamaServer
) -> None:
    before = upstream.calls["version"]
    reply = httpx.get(f"{proxy.url}/api/version?x=1")
    assert reply.status_code == 200 and "version" in reply.json()
    assert upstream.calls["version"] == before + 1


@pytest.fixture
def paced_upstream() -> Iterator[OllamaServer]:
    # 60 ms a token: a stream of a dozen words takes most of a second.
    with OllamaServer(EchoEngine(per_item_ms=60)) as server:
        yield server


def test_sigterm_lets_the_stream_in_flight_finish_then_exits_0(
    start_proxy: Start, paced_upstream: OllamaServer
) -> None:
    p = start_proxy(paced_upstream.url)
    body = {"model": "llama3.2", "prompt": "one two three four five six seven eight nine ten"}
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{p.url}/api/generate", json=body) as reply,
    ):
        lines = reply.iter_lines()
        first = json.loads(next(lines))
        assert first["done"] is False
        p.process.send_signal(15)
        rest = [json.loads(line) for line in lines if line]
    assert rest[-1]["done"] is True
    assert "".join(x["response"] for x in [first, *rest]).startswith("echo: one two")
    assert p.process.wait(15) == 0
    assert "llmcache proxy: stopped" in p.stdout_rest()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{p.url}/healthz")


def test_an_upstream_that_cannot_be_reached_is_a_502_that_says_so(
    start_proxy: Start, closed_port: int
) -> None:
    down = f"http://127.0.0.1:{closed_port}"
    p = start_proxy(down)
    client = openai.OpenAI(base_url=f"{p.url}/v1", api_key=SECRET, max_retries=0)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 502
    assert f"the upstream {down} cannot be reached (ConnectError" in caught.value.message
    # An Ollama path gets Ollama's error shape.
    reply = httpx.post(f"{p.url}/api/chat", json={"model": "m", "messages": []})
    assert reply.status_code == 502
    assert "cannot be reached" in reply.json()["error"]
    figures = p.metrics()
    assert figures['llmcache_proxy_upstream_errors_total{reason="connect"}'] == 2
    assert figures['llmcache_proxy_requests_total{cache="error"}'] == 2
    assert p.stop() == 0
    assert "cannot be reached" in p.stderr()  # logged ...
    assert SECRET not in p.stderr()  # ... without the credential


def test_a_body_over_the_limit_is_a_413_and_nothing_goes_upstream(
    start_proxy: Start, upstream: OllamaServer
) -> None:
    p = start_proxy(upstream.url, "--max-body", "1000")
    before = upstream.calls.total
    big = {"model": "llama3.2", "messages": [{"role": "user", "content": "x" * 2000}]}
    reply = httpx.post(f"{p.url}/v1/chat/completions", json=big)
    assert reply.status_code == 413
    assert "larger than 1000 bytes" in reply.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds as it streams in
        yield b'{"model": "llama3.2", "prompt": "'
        for _ in range(20):
            yield b"y" * 100
        yield b'"}'

    reply = httpx.post(f"{p.url}/api/generate", content=chunks())
    assert reply.status_code == 413 and "larger than" in reply.json()["error"]
    small = httpx.post(
        f"{p.url}/api/generate", json={"model": "llama3.2", "prompt": "small", "stream": False}
    )
    assert small.status_code == 200
    assert upstream.calls.total == before + 1
    assert p.metrics()['llmcache_proxy_requests_total{cache="refused"}'] == 2


def test_credentials_reach_the_upstream_and_no_file_or_line_holds_them(
    start_proxy: Start, upstream: OllamaServer, tmp_path: Path, fresh: str
) -> None:
    p = start_proxy(upstream.url, "--path", str(tmp_path / "cache"))
    upstream.openai.api_key = SECRET
    try:
        good = openai.OpenAI(base_url=f"{p.url}/v1", api_key=SECRET, max_retries=0)
        answer = good.chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": fresh}]
        )
        assert answer.choices[0].message.content == f"echo: {fresh}"
        wrong = openai.OpenAI(base_url=f"{p.url}/v1", api_key="sk-wrong-key-000", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(
                model="llama3.2", messages=[{"role": "user", "content": fresh}]
            )
    finally:
        upstream.openai.api_key = None
    assert p.stop() == 0
    for file in (tmp_path / "cache").rglob("*"):
        if file.is_file():
            assert SECRET.encode() not in file.read_bytes(), file
    assert SECRET not in p.stderr()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--upstream", "ftp://example.org"], "expected an http:// or https:// URL"),
        (
            ["--upstream", "http://127.0.0.1:1", "--path", "x", "--redis", "redis://h"],
            "--path and --redis: choose one cache",
        ),
        (["--upstream", "http://127.0.0.1:1", "--ttl", "0"], "--ttl: expected a positive"),
        (["--upstream", "http://user:pw@127.0.0.1:1"], "leave credentials out of the URL"),
    ],
)
def test_bad_options_are_usage_errors(options: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["proxy", *options])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_sigterm_while_the_cache_opens_stops_the_proxy_cleanly() -> None:
    # The signal comes while the app is built (where --semantic loads its model): the
    # proxy must not die of it half-started, nor serve on; it stops and says so.
    code = (
        "import os, signal, sys\n"
        "from llmcache.proxy import _serve\n"
        "real = _serve.create_app\n"
        "def slow(config, **kw):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return real(config, **kw)\n"
        "_serve.create_app = slow\n"
        "sys.exit(_serve.serve(_serve.ProxyConfig(upstream='http://127.0.0.1:9', port=0)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "llmcache proxy: stopped\n"


def test_a_port_in_use_is_reported(proxy: ProxyProcess) -> None:
    port = proxy.url.rsplit(":", 1)[1]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from llmcache.cli import main; main()",
            "proxy",
            "--upstream",
            "http://127.0.0.1:9",
            "--port",
            port,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "the proxy could not start" in done.stderr and "in use" in done.stderr
