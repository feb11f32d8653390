"""Cache hits through ``llmcache proxy`` beside LiteLLM's proxy and a bare HTTP endpoint.

Three servers answer the same request (one OpenAI chat completion, temperature 0) from
their cache, on 127.0.0.1, in front of the same upstream (the project's test server, in
this process: it is called only to fill the caches, and the script checks that it was not
called while the hits were measured):

(a) ``llmcache proxy`` (its in-memory cache), as ``llmcache proxy`` runs it;
(b) LiteLLM's proxy with its in-memory cache on (``cache_params: {type: local}``), from its
    own venv (``/tmp/litellm-venv``; skipped, saying so, when that venv is missing);
(c) a bare Starlette endpoint on uvicorn returning the bytes (a) returns: the floor of an
    HTTP hop on this machine.

Each server is loaded in turn by ``--threads`` client threads (plain ``http.client``, one
keep-alive connection a thread) for ``--seconds`` after a warm-up; the script prints hit
p50 and p99 (ms), hits per second, and the ratios against (c) and (b), as a markdown
section for docs/benchmarks.md. ``--rounds`` repeats the three runs and reports each
figure's median. Run it on an otherwise idle machine::

    python3 -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install -q 'litellm[proxy]'
    .venv/bin/python benchmarks/proxy_peers.py            # --json for the raw figures
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

LITELLM_VENV = Path(os.environ.get("LITELLM_VENV", "/tmp/litellm-venv"))
MODEL = "llama3.2"
BODY = json.dumps(
    {
        "model": MODEL,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": "You answer in one short sentence."},
            {"role": "user", "content": "What is the capital of France? Answer briefly."},
        ],
    }
).encode()
PATH = "/v1/chat/completions"
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-unused"}
_URL = re.compile(r"(http://127\.0\.0\.1:\d+)")


@dataclass
class Figures:
    name: str
    requests: int
    p50_ms: float
    p99_ms: float
    per_second: float
    solo_p50_ms: float = 0.0  # one client alone: the hop's own latency, no queueing


# -- the load --------------------------------------------------------------------------------


def _one(conn: http.client.HTTPConnection) -> tuple[float, bytes, dict[str, str]]:
    start = time.perf_counter()
    conn.request("POST", PATH, body=BODY, headers=HEADERS)
    reply = conn.getresponse()
    data = reply.read()
    elapsed = time.perf_counter() - start
    if reply.status != 200:
        raise RuntimeError(f"HTTP {reply.status}: {data[:300]!r}")
    return elapsed, data, {k.lower(): v for k, v in reply.getheaders()}


def _connect(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)


def load(name: str, url: str, *, threads: int, seconds: float) -> Figures:
    """`threads` threads send the request back to back for `seconds`."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    go = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def worker(mine: list[float]) -> None:
        conn = _connect(url)
        try:
            _one(conn)  # the connection is open before the clock starts
            go.wait()
            while time.perf_counter() < stop_at[0]:
                mine.append(_one(conn)[0])
        except BaseException as exc:  # reported after the run
            errors.append(exc)
        finally:
            conn.close()

    pool = [threading.Thread(target=worker, args=(mine,)) for mine in latencies]
    for t in pool:
        t.start()
    stop_at[0] = time.perf_counter() + 3600  # until the barrier releases everyone
    go.wait()
    start = time.perf_counter()
    stop_at[0] = start + seconds
    for t in pool:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{name}: {errors[0]!r}")
    every = sorted(x for mine in latencies for x in mine)
    return Figures(
        name,
        len(every),
        1000 * every[len(every) // 2],
        1000 * every[min(len(every) - 1, int(len(every) * 0.99))],
        len(every) / wall,
    )


def warm(url: str, seconds: float = 1.0) -> tuple[bytes, dict[str, str]]:
    """Fill the cache (the first request) and run it hot for `seconds`; the last answer."""
    conn = _connect(url)
    try:
        data, headers = _one(conn)[1:]
        until = time.perf_counter() + seconds
        while time.perf_counter() < until:
            data, headers = _one(conn)[1:]
        return data, headers
    finally:
        conn.close()


# -- the servers -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _process(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    base: str | None = None,
    ready_path: str = "/",
    timeout: float = 120,
) -> Iterator[str]:
    """Run `command`; yield the first http://127.0.0.1:PORT its stdout prints, or `base`
    once GET `base` + `ready_path` answers 200."""
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE if base is None else log,
        stderr=log,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        if base is None:
            assert process.stdout is not None
            match = _URL.search(process.stdout.readline())
            if match is None:
                raise RuntimeError(f"{command[0]} did not start: {_tail(log)}")
            yield match.group(1)
        else:
            _wait_for(base + ready_path, process, log, timeout)
            yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _tail(log: IO[str]) -> str:
    log.seek(0)
    return log.read()[-2000:]


def _wait_for(url: str, process: subprocess.Popen[str], log: IO[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {_tail(log)}")
        try:
            conn = _connect(url)
            conn.request("GET", urlsplit(url).path)
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s: {_tail(log)}")


def llmcache_proxy(upstream: str) -> Iterator[str]:
    code = "import sys; from llmcache.cli import main; sys.argv[0] = 'llmcache'; main()"
    return _process([sys.executable, "-c", code, "proxy", "--upstream", upstream, "--port", "0"])


def bare_endpoint(body: bytes, content_type: str, workdir: Path) -> Iterator[str]:
    file = workdir / "answer.json"
    file.write_bytes(body)
    return _process([sys.executable, __file__, "--serve-bare", str(file), content_type])


def litellm_proxy(upstream: str, workdir: Path) -> Iterator[str]:
    port = _free_port()
    config = workdir / "config.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}:latest\n"
        f"      api_base: {upstream}/v1\n"
        "      api_key: sk-unused\n"
        "litellm_settings:\n"
        "  cache: true\n"
        "  cache_params:\n"
        "    type: local\n"
    )
    return _process(
        [
            str(LITELLM_VENV / "bin" / "litellm"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        env={
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
        },
        base=f"http://127.0.0.1:{port}",
        ready_path="/health/liveliness",
        timeout=180,
    )


def serve_bare(body_file: str, content_type: str) -> None:
    """(c): one Starlette route returning `body_file`'s bytes, on uvicorn as the proxy
    runs it (same loop and parser, no access log)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    body = Path(body_file).read_bytes()

    async def answer(request: Request) -> Response:
        await request.body()
        return Response(body, media_type=content_type)

    app = Starlette(routes=[Route(PATH, answer, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)

    Server(
        uvicorn.Config(
            app, access_log=False, server_header=False, log_config=None, log_level="warning"
        )
    ).run(sockets=[sock])


# -- the run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, object]:
    from llmcache_testserver import EchoEngine, OllamaServer

    rounds: dict[str, list[Figures]] = {}
    notes: list[str] = []
    have_litellm = (LITELLM_VENV / "bin" / "litellm").exists()
    if not have_litellm:
        notes.append(
            f"LiteLLM skipped: no venv at {LITELLM_VENV} (python3 -m venv "
            f"{LITELLM_VENV} && {LITELLM_VENV}/bin/pip install -q "
            "'litellm[proxy]')"
        )
        print(f"note: {notes[-1]}", file=sys.stderr)
    with (
        OllamaServer(EchoEngine()) as upstream,
        tempfile.TemporaryDirectory() as workdir,
        llmcache_proxy(upstream.url) as proxy,
    ):
        body, headers = warm(proxy)
        if headers.get("x-llmcache") != "hit":
            notes.append(
                f"llmcache proxy answered x-llmcache: {headers.get('x-llmcache')}"
                " after warm-up, not hit"
            )
        with bare_endpoint(
            body, headers.get("content-type", "application/json"), Path(workdir)
        ) as bare:
            servers = [("bare Starlette endpoint", bare), ("llmcache proxy", proxy)]
            with (
                litellm_proxy(upstream.url, Path(workdir)) if have_litellm else _nothing()
            ) as litellm:
                if litellm:
                    servers.append(("LiteLLM proxy (cache on)", litellm))
                for _, url in servers:
                    warm(url)
                for _ in range(args.rounds):
                    for name, url in servers:
                        before = upstream.calls.total
                        figures = load(name, url, threads=args.threads, seconds=args.seconds)
                        figures.solo_p50_ms = load(
                            name, url, threads=1, seconds=args.seconds / 2
                        ).p50_ms
                        if upstream.calls.total != before:
                            notes.append(
                                f"{name}: {upstream.calls.total - before} upstream "
                                "calls while measuring: not all hits"
                            )
                        rounds.setdefault(name, []).append(figures)
                        print(f"  {figures}", file=sys.stderr)
    results = {name: _median(runs) for name, runs in rounds.items()}
    return {
        "results": {k: asdict(v) for k, v in results.items()},
        "notes": notes,
        "threads": args.threads,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.machine()}",
        "versions": _versions(have_litellm),
    }


@contextmanager
def _nothing() -> Iterator[str]:
    yield ""


def _median(runs: list[Figures]) -> Figures:
    return Figures(
        runs[0].name,
        sum(r.requests for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        statistics.median(r.per_second for r in runs),
        statistics.median(r.solo_p50_ms for r in runs),
    )


def _versions(have_litellm: bool) -> dict[str, str]:
    from importlib.metadata import version

    out = {name: version(name) for name in ("llmcache", "starlette", "uvicorn", "httpx")}
    if have_litellm:
        done = subprocess.run(
            [
                str(LITELLM_VENV / "bin" / "python"),
                "-c",
                "from importlib.metadata import version; print(version('litellm'))",
            ],
            capture_output=True,
            text=True,
        )
        out["litellm"] = done.stdout.strip() or "?"
    return out


def markdown(report: dict[str, object]) -> str:
    results = report["results"]
    assert isinstance(results, dict)
    bare = results.get("bare Starlette endpoint")
    litellm = results.get("LiteLLM proxy (cache on)")
    lines = [
        "## Proxy hits: llmcache proxy, LiteLLM's proxy, a bare endpoint",
        "",
        f"`benchmarks/proxy_peers.py`: one OpenAI chat completion answered from each "
        f"server's cache on 127.0.0.1, {report['threads']} client threads (`http.client`, "
        f"keep-alive) for {report['seconds']} s, median of {report['rounds']} round(s); "
        f"{report['machine']}; versions {report['versions']}. The bare endpoint is a "
        "Starlette route on uvicorn returning the bytes the llmcache proxy returns: the "
        "floor of an HTTP hop here.",
        "",
        "| server | hit p50 (ms) | hit p99 (ms) | hits/s | p50 alone (ms) | p50 / bare "
        "| hits/s / bare | p50 / LiteLLM | hits/s / LiteLLM |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, f in results.items():

        def ratio(a: float, b: dict[str, float] | None, key: str) -> str:
            return f"{a / b[key]:.2f}x" if b else "-"

        lines.append(
            f"| {name} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {f['per_second']:.0f} | "
            f"{f['solo_p50_ms']:.2f} | {ratio(f['p50_ms'], bare, 'p50_ms')} | "
            f"{ratio(f['per_second'], bare, 'per_second')} | "
            f"{ratio(f['p50_ms'], litellm, 'p50_ms')} | "
            f"{ratio(f['per_second'], litellm, 'per_second')} |"
        )
    lines += [
        "",
        "p50 alone: one client thread by itself (the hop's latency without "
        "queueing); the other columns: the load of all client threads.",
    ]
    mine = results.get("llmcache proxy")
    if mine and bare:
        ok = mine["p50_ms"] <= 2 * bare["p50_ms"] and mine["per_second"] >= 0.5 * bare["per_second"]
        lines += [
            "",
            f"Target (hit p50 within 2x the bare endpoint's, at least half its "
            f"requests/s): {'met' if ok else 'NOT met'}.",
        ]
    notes = report["notes"]
    assert isinstance(notes, list)
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the raw figures")
    parser.add_argument(
        "--write-doc", action="store_true", help="also write the section into docs/benchmarks.md"
    )
    parser.add_argument(
        "--serve-bare", nargs=2, metavar=("BODY_FILE", "CONTENT_TYPE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(*args.serve_bare)
        return 0
    report = run(args)
    print(json.dumps(report, indent=2) if args.json else markdown(report))
    if args.write_doc:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from benchmarks.doc_sections import write_section

        body = markdown(report)
        if body.startswith("#"):  # the section brings its own title
            body = body.split("\n", 1)[1]
        write_section(
            "proxy",
            "The caching proxy beside LiteLLM's and a bare endpoint",
            body,
            "python benchmarks/proxy_peers.py --rounds 3 --write-doc",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
