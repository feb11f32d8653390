"""Run llmcache side by side with its peers and write ``docs/benchmarks.md`` with plots.

    .venv/bin/python benchmarks/peers/run.py                  # what `make bench` runs
    .venv/bin/python benchmarks/peers/run.py --quick          # a smoke run, small counts
    .venv/bin/python benchmarks/peers/run.py --only llmcache-memory,cachetools,gptcache

Everything is measured in this one run: the exact-match contenders in this process on the
same requests, memory and cold start in a fresh subprocess per contender, semantic quality
in a subprocess, then semantic lookup latency against index size. A peer that cannot be
imported, or a Redis that cannot be started, removes only its own rows, and the report
says why.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: make `benchmarks.peers` importable from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.peers import measure, report, vectors  # noqa: E402
from benchmarks.peers.contenders import (  # noqa: E402
    CONTENDERS,
    REDIS_DB,
    Contender,
    OpenContext,
    version_of,
)
from benchmarks.peers.machine import describe  # noqa: E402
from benchmarks.peers.server import local_redis  # noqa: E402
from benchmarks.peers.workload import answer_for, make_requests  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
THREADS = (1, 2, 8)

console = Console(highlight=False)


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="the markdown report to write (default: docs/benchmarks.md)",
    )
    p.add_argument(
        "--img-dir",
        type=Path,
        default=ROOT / "docs" / "img",
        help="where the PNG plots go (default: docs/img)",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=ROOT / ".benchmarks" / "peers.json",
        help="raw figures of the run (default: .benchmarks/peers.json)",
    )
    p.add_argument(
        "--only",
        default="",
        help="comma-separated contender ids "
        f"({', '.join(c.id for c in CONTENDERS)}); floors are always kept",
    )
    p.add_argument(
        "--entries", type=int, default=10_000, help="cached requests per contender (default 10000)"
    )
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per figure")
    p.add_argument(
        "--per-round", type=int, default=2_000, help="timed hits per contender per round"
    )
    p.add_argument("--fresh", type=int, default=500, help="miss-then-store calls per contender")
    p.add_argument(
        "--seconds", type=float, default=0.5, help="duration of one throughput measurement"
    )
    p.add_argument("--cold-repeats", type=int, default=3, help="cold starts per contender")
    p.add_argument("--vector-sizes", default="1000,10000,100000")
    p.add_argument("--vector-queries", type=int, default=200)
    p.add_argument(
        "--ann",
        action="store_true",
        help="also time llmcache's approximate index (minutes to build at 100k)",
    )
    p.add_argument("--skip-probes", action="store_true", help="no memory / cold start")
    p.add_argument("--skip-semantic", action="store_true")
    p.add_argument("--skip-vectors", action="store_true")
    p.add_argument(
        "--quick",
        action="store_true",
        help="small counts everywhere: checks the pipeline, not the numbers",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.entries, args.rounds, args.per_round, args.fresh = 1_000, 2, 300, 60
        args.seconds, args.cold_repeats = 0.1, 1
        args.vector_sizes, args.vector_queries = "1000,10000", 40
    return args


def _selected(only: str) -> list[type[Contender]]:
    if not only:
        return list(CONTENDERS)
    wanted = {s.strip() for s in only.split(",") if s.strip()}
    unknown = wanted - {c.id for c in CONTENDERS}
    if unknown:
        raise SystemExit(f"unknown contender(s): {', '.join(sorted(unknown))}")
    return [c for c in CONTENDERS if c.id in wanted or c.role == "floor"]


def _url(base: str | None, contender: Contender) -> str | None:
    if base is None or not contender.needs_redis:
        return None
    return f"{base}/{REDIS_DB[contender.id]}"


def _summary(samples: measure.Samples) -> dict[str, Any]:
    ordered = sorted(samples.ns)
    return {
        "p50": measure.percentile(ordered, 50) / 1e3,
        "p95": measure.percentile(ordered, 95) / 1e3,
        "p99": measure.percentile(ordered, 99) / 1e3,
        "n": len(ordered),
        "wrong": samples.wrong,
    }


def _probe(
    kind: str, contender: Contender, directory: Path, url: str | None, count: int
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.peers.probe",
        kind,
        contender.id,
        str(directory),
        url or "-",
        str(count),
    ]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    wall = (time.perf_counter() - t0) * 1e3
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"probe exited {done.returncode}: {tail[:200]}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_ms"] = wall
    return result


def _open_all(
    classes: list[type[Contender]],
    workdir: Path,
    redis_base: str | None,
    redis_why: str,
    results: dict[str, Any],
) -> list[Contender]:
    opened = []
    for cls in classes:
        contender = cls()
        results["contenders"][contender.id] = {
            "name": contender.name,
            "group": contender.group,
            "role": contender.role,
            "notes": contender.notes,
            "api": contender.api,
            "versions": {d: version_of(d) for d in contender.dists},
        }
        if contender.needs_redis and redis_base is None:
            results["skipped"][contender.id] = redis_why
            continue
        try:
            contender.prepare()
            contender.open(
                OpenContext(workdir / "main" / contender.id, _url(redis_base, contender))
            )
        except Exception as exc:  # a peer that does not import or open: recorded, skipped
            results["skipped"][contender.id] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        opened.append(contender)
    return opened


def _fill(
    contenders: list[Contender], requests: list[Any], answers: list[str], progress: Progress
) -> dict[str, float]:
    task = progress.add_task("fill caches", total=len(contenders))
    seconds: dict[str, float] = {}
    items = list(zip(requests, answers, strict=True))
    for c in contenders:
        t0 = time.perf_counter()
        c.preload(items)
        seconds[c.id] = time.perf_counter() - t0
        progress.advance(task)
    return seconds


def _throughput(
    contenders: list[Contender],
    requests: list[Any],
    rounds: int,
    seconds: float,
    progress: Progress,
) -> dict[str, dict[str, Any]]:
    task = progress.add_task(
        "hits/s at 1, 2, 8 threads", total=len(THREADS) * rounds * len(contenders)
    )
    rates: dict[str, dict[int, list[float]]] = {c.id: {t: [] for t in THREADS} for c in contenders}
    errors = {c.id: 0 for c in contenders}
    rng = random.Random(4)
    for _ in range(rounds):
        # Thread counts are interleaved with the contenders, so a change of load on the
        # machine during the run lands on every (contender, threads) cell alike.
        order = [(c, t) for c in contenders for t in THREADS]
        rng.shuffle(order)
        for c, threads in order:
            rate, bad = measure.throughput(c, requests, threads=threads, seconds=seconds)
            rates[c.id][threads].append(rate)
            errors[c.id] += bad
            progress.advance(task)
    return {
        cid: {**{str(t): statistics.median(v) for t, v in by.items()}, "errors": errors[cid]}
        for cid, by in rates.items()
    }


def _probes(
    contenders: list[Contender],
    workdir: Path,
    redis_base: str | None,
    args: argparse.Namespace,
    progress: Progress,
) -> tuple[dict[str, Any], dict[str, Any]]:
    task = progress.add_task(
        "memory and cold start (subprocesses)", total=len(contenders) * (2 + args.cold_repeats)
    )
    memory: dict[str, Any] = {}
    cold: dict[str, Any] = {}
    for c in contenders:
        directory = workdir / "probe" / c.id
        url = _url(redis_base, c)
        mem: dict[str, Any] = {}
        # RSS first, then tracemalloc: each refills from empty; the second leaves the
        # 10k-entry cache that the cold starts open.
        for kind in ("rss", "tracemalloc"):
            mem.update(_probe(kind, c, directory, url, args.entries))
            progress.advance(task)
        memory[c.id] = mem
        runs = []
        for _ in range(args.cold_repeats):
            runs.append(_probe("cold", c, directory, url, args.entries))
            progress.advance(task)
        good = [r for r in runs if "error" not in r]
        if good:
            for r in good:  # the three parts a user waits for; interpreter start-up is not
                r["total_ms"] = r["import_ms"] + r["open_ms"] + r["first_lookup_ms"]
            cold[c.id] = {
                k: statistics.median(r[k] for r in good)
                for k in ("import_ms", "open_ms", "first_lookup_ms", "total_ms", "wall_ms")
            }
            cold[c.id]["hit"] = all(r["hit"] for r in good)
        else:
            cold[c.id] = runs[0]
    return memory, cold


def _semantic(redis_base: str | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.peers.semantic"]
    if redis_base is not None:
        cmd.append(f"{redis_base}/5")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    if done.returncode != 0 or not done.stdout.strip():
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"semantic evaluation exited {done.returncode}: {tail[:300]}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _print_tables(results: dict[str, Any]) -> None:
    table = Table(
        title="exact-match figures (µs, hits/s); the report has the rest", title_justify="left"
    )
    for col in ("contender", "p50", "p95", "×floor", "miss+store", "hits/s 1t", "hits/s 8t"):
        table.add_column(col, justify="left" if col == "contender" else "right")
    for cid, hit in results["hit"].items():
        floor = report.floor_of(results, results["contenders"][cid]["group"])
        base = results["hit"].get(floor, {}).get("p50")
        tp = results["throughput"].get(cid, {})
        ms = results["miss_store"].get(cid, {})
        table.add_row(
            cid,
            f"{hit['p50']:.1f}",
            f"{hit['p95']:.1f}",
            f"{hit['p50'] / base:.2f}" if base else "-",
            f"{ms.get('p50', 0):.1f}",
            f"{tp.get('1', 0):,.0f}",
            f"{tp.get('8', 0):,.0f}",
        )
    console.print(table)
    for cid, why in results["skipped"].items():
        console.print(f"[yellow]skipped[/] {cid}: {why}")
    for note in results["notes"]:
        console.print(f"[yellow]note[/] {note}")


def main(argv: list[str] | None = None) -> int:
    """Run everything, print the tables, write the report, the plots and the raw JSON."""
    args = _args(argv)
    warnings.simplefilter("ignore")  # peers' deprecation chatter is not a finding
    started = time.time()
    results: dict[str, Any] = {
        "machine": describe(),
        "contenders": {},
        "skipped": {},
        "hit": {},
        "miss_store": {},
        "throughput": {},
        "memory": {},
        "cold": {},
        "fill_seconds": {},
        "notes": [],
        "config": {
            k: getattr(args, k)
            for k in ("entries", "rounds", "per_round", "fresh", "seconds", "cold_repeats", "quick")
        },
    }
    requests = make_requests(args.entries)
    answers = [answer_for(r) for r in requests]
    fresh_requests = make_requests(args.fresh, start=args.entries)
    fresh = [(r, answer_for(r)) for r in fresh_requests]
    samples: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="llmcache-peers-") as tmp,
        local_redis(Path(tmp) / "redis") as (redis_base, redis_why),
    ):
        workdir = Path(tmp)
        if redis_base is None:
            results["notes"].append(f"Redis contenders skipped: {redis_why}")
        columns = (
            TextColumn("{task.description:<40}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            contenders = _open_all(_selected(args.only), workdir, redis_base, redis_why, results)
            warnings.simplefilter("ignore")  # again: importing LangChain re-arms its own
            results["fill_seconds"] = _fill(contenders, requests, answers, progress)
            task = progress.add_task("hit latency", total=args.rounds * len(contenders))
            hit = measure.hit_latency(
                contenders,
                requests,
                answers,
                per_round=args.per_round,
                rounds=args.rounds,
                warmup=min(1_000, args.entries),
                tick=lambda: progress.advance(task),
            )
            samples["hit"] = {cid: s.ns for cid, s in hit.items()}
            results["hit"] = {cid: _summary(s) for cid, s in hit.items()}
            task = progress.add_task("miss then store", total=args.rounds * len(contenders))
            ms = measure.miss_then_store(
                contenders,
                {c.id: fresh for c in contenders},
                rounds=args.rounds,
                tick=lambda: progress.advance(task),
            )
            results["miss_store"] = {cid: _summary(s) for cid, s in ms.items()}
            results["throughput"] = _throughput(contenders, requests, 3, args.seconds, progress)
            for c in contenders:
                c.close()
            if not args.skip_probes:
                results["memory"], results["cold"] = _probes(
                    contenders, workdir, redis_base, args, progress
                )
            if not args.skip_semantic:
                task = progress.add_task("semantic quality (subprocess)", total=1)
                results["semantic"] = _semantic(redis_base)
                progress.advance(task)
        if not args.skip_vectors:
            sizes = [int(s) for s in args.vector_sizes.split(",") if s]
            try:
                with Progress(*columns, console=console) as progress:
                    task = progress.add_task("semantic lookup vs index size", total=len(sizes))
                    vec = vectors.lookup_latency(
                        sizes,
                        queries=args.vector_queries,
                        rounds=3,
                        ann=args.ann,
                        tick=lambda: progress.advance(task),
                    )
            except ImportError as exc:  # llmcache.vector missing: the rest still reports
                results["notes"].append(f"semantic lookup latency not measured: {exc}")
            else:
                samples["vectors"] = {n: {m: s.ns for m, s in by.items()} for n, by in vec.items()}
                results["vectors"] = {
                    str(n): {m: _summary(s) for m, s in by.items()} for n, by in vec.items()
                }
    results["duration_s"] = time.time() - started
    _print_tables(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, default=str))
    report.write(results, samples, args.output, args.img_dir)
    console.print(
        f"wrote {args.output} and plots in {args.img_dir} ({results['duration_s']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
