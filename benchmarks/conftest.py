"""Report every benchmark as a ratio against the baseline measured in the same run.

A benchmark declares its role with ``benchmark.extra_info``: ``role="baseline"`` for the
floor of its group (raw diskcache, raw cachetools ...), ``role="candidate"`` with an optional
``target`` ratio for ours. After the run a table gives median(candidate) / median(baseline)
per group: these machines are noisy, absolute times are not comparable between runs, ratios
within one run are. Nothing here fails a run on timing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest


def _median(bench: Any) -> float:
    return float(bench.stats.stats.median if hasattr(bench.stats, "stats") else bench.stats.median)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, dict[str, list[Any]]] = {}
    for bench in session.benchmarks:
        role = bench.extra_info.get("role")
        if role not in ("baseline", "candidate"):
            continue
        groups.setdefault(bench.group or bench.name, {}).setdefault(role, []).append(bench)
    if not groups:
        return
    tr = terminalreporter
    tr.write_sep("=", "ratios against baselines measured in this run (median / median)")
    tr.write_line(f"{'group':<36} {'candidate':<42} {'ratio':>7} {'target':>7}  verdict")
    for group, roles in sorted(groups.items()):
        baselines = roles.get("baseline", [])
        if not baselines:
            continue
        base = _median(baselines[0])
        for cand in roles.get("candidate", []):
            ratio = _median(cand) / base if base else float("inf")
            target = cand.extra_info.get("target")
            if target is None:
                verdict, shown = "", "-"
            else:
                verdict, shown = ("ok" if ratio <= target else "over"), f"{target:.2f}"
            tr.write_line(f"{group:<36} {cand.name[:42]:<42} {ratio:>7.2f} {shown:>7}  {verdict}")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server (no persistence) on a free loopback port, for the Redis
    benchmarks; fails, naming the package, when ``redis-server`` is not installed."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("redis-server is not installed: apt-get install redis-server", pytrace=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    directory = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [
            executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)
