"""The semantic tier on Postgres + pgvector against the in-process one, in one run.

1. Search: latency and recall@1 of a partition's top-8 search at 10k and 100k rows of
   dim 384 (one partition: the HNSW path, and the exact path the tier takes for partitions
   of at most ``exact_below`` rows), against `VectorIndex` (one numpy product, exact: the
   ground truth), and a whole `PostgresSemanticCache.get` (exact lookup, search, decode,
   checks) against the index search. Queries are stored vectors plus noise (cosine about
   0.9), as near-duplicate questions are.
2. Exact hit: `PostgresStore.get` against a raw psycopg ``SELECT`` of the same bytes on one
   connection, interleaved, medians of many reads (the pytest-benchmark twin is
   ``benchmarks/test_bench_postgres.py``).
3. Sharing: 4 worker processes run one repeated workload (the same questions, asked in
   different words, in a different order by each worker), either each with its own
   in-process `SemanticCache` or all on one `PostgresSemanticCache`; the hit rates (and
   wrong answers: none expected) side by side.

    python benchmarks/postgres_semantic.py                     # a private pgserver
    python benchmarks/postgres_semantic.py --sizes 10000 --queries 100
    python benchmarks/postgres_semantic.py --url postgresql://... --json
    python benchmarks/postgres_semantic.py --write-doc         # + a section of docs/benchmarks.md

1M rows is left out by default: on these 2-core machines loading and indexing it takes
tens of minutes (pass ``--sizes 1000000`` to run it anyway).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from llmcache.entry import JSONCodec
from llmcache.keys import Request
from llmcache.vector._scope import make_record
from llmcache.vector.embedders import HashingEmbedder
from llmcache.vector.index import VectorIndex
from llmcache.vector.pgvector import PostgresSemanticCache
from llmcache.vector.semantic import SemanticCache

DIM = 384


@contextmanager
def private_server() -> Iterator[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    base = Path(tempfile.mkdtemp(prefix="llmcache-bench-pg-"))
    server = pgserver.get_server(base / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


class TableEmbedder:
    """Texts to fixed vectors: ``stored <i>`` and ``query <j>`` map to precomputed rows."""

    def __init__(self, stored: np.ndarray, queries: np.ndarray) -> None:
        self.name = f"bench-{DIM}"
        self.dim = DIM
        self._stored, self._queries = stored, queries

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), np.float32)
        for row, text in enumerate(texts):
            kind, _, number = text.partition(" ")
            out[row] = (self._stored if kind == "stored" else self._queries)[int(number)]
        return out


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 3)


def _drop(url: str, table: str) -> None:
    """Start from no table (and no registry row) named `table`."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_ns")
        row = conn.execute("SELECT to_regclass('llmcache_schema')").fetchone()
        if row is not None and row[0] is not None:
            conn.execute("DELETE FROM llmcache_schema WHERE name = %s", (table,))


def search_run(
    url: str, n: int, n_queries: int, seed: int = 0, ef_sweep: Sequence[int] = ()
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    stored = _unit(rng.standard_normal((n, DIM)))
    targets = rng.integers(0, n, n_queries)
    queries = _unit(stored[targets] + 0.028 * rng.standard_normal((n_queries, DIM)))
    embedder = TableEmbedder(stored, queries)
    table = f"bench_semantic_{n}"
    _drop(url, table)
    cache = PostgresSemanticCache(
        embedder,
        url,
        table=table,
        guards=(),
        threshold=0.5,
        max_entries=None,
        statement_timeout=60.0,
        ef_search=200,
    )
    len(cache)  # creates the table
    codec = JSONCodec()
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        conn.execute(f"DROP INDEX {table}_hnsw")
        with (
            conn.cursor() as cur,
            cur.copy(
                f"COPY {table} (namespace, key, partition, text, fingerprint, value, "
                f"accessed_at, embedding) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["text", "text", "text", "text", "text", "bytea", "float8", "vector"])
            for i in range(n):
                record, entry = make_record(
                    Request(model="m", prompt=f"stored {i}"), f"answer {i}", cache._partition, None
                )
                copy.write_row(
                    [
                        cache.namespace,
                        record.key,
                        record.partition,
                        record.text,
                        record.fingerprint,
                        codec.encode(entry),
                        0.0,
                        stored[i],
                    ]
                )
        loaded = time.perf_counter()
        # The graph is built in memory while it fits (about 2 KiB a row at dim 384); once
        # it spills, pgvector inserts row by row and a million rows take hours, not minutes.
        conn.execute(f"SET maintenance_work_mem = '{max(512, n * 3 // 1000)}MB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        conn.execute(
            f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding vector_cosine_ops)"
        )
        conn.execute(f"ANALYZE {table}")
        indexed = time.perf_counter()
    index = VectorIndex(DIM, capacity=n)
    index.add([f"stored {i}" for i in range(n)], stored)
    plan = cache._plan(Request(model="m", prompt="query 0"))
    truth = [index.search(q, k=1)[0].id for q in queries]
    times: dict[str, list[float]] = {"index": [], "hnsw": [], "exact": [], "get": []}
    right = {"hnsw": 0, "exact": 0, "get": 0}
    exact_every = max(1, n_queries // 40) if n > 20_000 else 1  # exact at 100k is slow
    for j, q in enumerate(queries):
        t = time.perf_counter()
        index.search(q, k=8)
        times["index"].append(time.perf_counter() - t)
        for kind in ("hnsw", "exact"):
            if kind == "exact" and j % exact_every:
                continue
            sql, params = cache._search_sql(kind == "hnsw", q, plan, 0.5, 8)
            t = time.perf_counter()
            rows = cache._sync_query(sql, params, "all")
            times[kind].append(time.perf_counter() - t)
            right[kind] += bool(rows) and rows[0][1] == truth[j]
        t = time.perf_counter()
        hit = cache.get(Request(model="m", prompt=f"query {j}"))
        times["get"].append(time.perf_counter() - t)
        right["get"] += hit is not None and hit.matched_prompt == truth[j]
    sweep = [_hnsw_at(url, cache, plan, queries, truth, ef) for ef in ef_sweep]
    cache.close()
    base = statistics.median(times["index"])
    exact_n = len(times["exact"])
    return {
        "rows": n,
        "queries": n_queries,
        "load_s": round(loaded - started, 1),
        "hnsw_build_s": round(indexed - loaded, 1),
        "index_ms": _ms(times["index"]),
        "pg_hnsw_ms": _ms(times["hnsw"]),
        "pg_hnsw_ratio": round(statistics.median(times["hnsw"]) / base, 1),
        "pg_hnsw_recall1": round(right["hnsw"] / n_queries, 3),
        "pg_exact_ms": _ms(times["exact"]),
        "pg_exact_recall1": round(right["exact"] / exact_n, 3),
        "pg_get_ms": _ms(times["get"]),
        "pg_get_ratio": round(statistics.median(times["get"]) / base, 1),
        "pg_get_recall1": round(right["get"] / n_queries, 3),
        "ef_sweep": sweep,
    }


def _hnsw_at(
    url: str,
    cache: PostgresSemanticCache,
    plan: Any,
    queries: np.ndarray,
    truth: list[str],
    ef: int,
) -> dict[str, Any]:
    """The HNSW search's latency and recall@1 at another ``hnsw.ef_search`` (the tier's
    `ef_search` argument), on a connection of its own."""
    from pgvector.psycopg import register_vector

    times, right = [], 0
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        conn.execute(f"SET hnsw.ef_search = {int(ef)}")
        for j, q in enumerate(queries):
            sql, params = cache._search_sql(True, q, plan, 0.5, 8)
            t = time.perf_counter()
            rows = conn.execute(sql, params).fetchall()
            times.append(time.perf_counter() - t)
            right += bool(rows) and rows[0][1] == truth[j]
    return {"ef_search": ef, "ms": _ms(times), "recall1": round(right / len(queries), 3)}


# -- sharing: 4 workers, one workload ----------------------------------------------------------

_TOPICS = [
    "reverse a list",
    "sort a dict by value",
    "read a file line by line",
    "merge two dicts",
    "remove duplicates from a list",
    "parse a JSON string",
    "format a date",
    "count words in a string",
    "flatten a nested list",
    "check if a key exists",
    "split a string on commas",
    "get the current time",
    "make an HTTP request",
    "write a CSV file",
    "copy a directory",
    "find the largest number",
    "join a list of strings",
    "round a float",
    "convert a string to an int",
    "create a virtual environment",
]
_LANGS = ["Python", "Rust", "Go"]


def _questions() -> list[tuple[str, str]]:
    """(question, answer) pairs: 60 distinct questions."""
    return [
        (f"How do I {topic} in {lang}?", f"{lang}: {topic}") for topic in _TOPICS for lang in _LANGS
    ]


def _variants(question: str) -> list[str]:
    bare = question.rstrip("?")
    return [question, bare.lower(), f"{bare}, please?", f"Quick question: {bare}?"]


def _worker(
    mode: str, url: str, table: str, worker: int, requests: int, barrier: Any, out: Any
) -> None:
    rng = random.Random(worker)
    questions = _questions()
    embedder = HashingEmbedder(dim=DIM)
    cache: Any = (
        PostgresSemanticCache(embedder, url, table=table, threshold=0.75)
        if mode == "shared"
        else SemanticCache(embedder, threshold=0.75)
    )
    hits = wrong = 0
    barrier.wait(60)
    for _ in range(requests):
        question, answer = rng.choice(questions)
        request = Request(model="m", prompt=rng.choice(_variants(question)))
        hit = cache.get(request)
        if hit is None:
            cache.set(request, answer)
        else:
            hits += 1
            wrong += hit.content != answer
    cache.close()
    out.put((hits, wrong))


def sharing_run(url: str, workers: int, requests: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    result: dict[str, Any] = {
        "workers": workers,
        "requests_per_worker": requests,
        "distinct_questions": len(_questions()),
    }
    table = "bench_semantic_shared"
    _drop(url, table)
    for mode in ("own", "shared"):
        barrier, out = ctx.Barrier(workers), ctx.Queue()
        procs = [
            ctx.Process(target=_worker, args=(mode, url, table, w, requests, barrier, out))
            for w in range(workers)
        ]
        for p in procs:
            p.start()
        counts = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join(60)
        hits = sum(h for h, _ in counts)
        result[f"{mode}_hit_rate"] = round(hits / (workers * requests), 3)
        result[f"{mode}_wrong"] = sum(w for _, w in counts)
    own = result["own_hit_rate"]
    result["shared_over_own"] = round(result["shared_hit_rate"] / own, 2) if own else None
    return result


def exact_hit_run(url: str, reads: int = 3000) -> dict[str, Any]:
    """Median µs of a `PostgresStore` hit and of a raw SELECT of the same row, interleaved."""
    from llmcache.entry import CachedResponse
    from llmcache.stores.postgres import PostgresStore

    table = "bench_exact"
    _drop(url, table)
    store = PostgresStore(url, namespace="bench", table=table)
    try:
        store.set("k", CachedResponse(content="x" * 1024, fingerprint="f"))
        assert store.get("k") is not None
        raw_sql = f"SELECT value FROM {table} WHERE namespace = %s AND key = %s"
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(raw_sql, ("bench", "k")).fetchone()
            if row is None:  # the store's own layout: fall back to any row of the table
                raw_sql = f"SELECT value FROM {table} LIMIT 1"
            ours, raw = [], []
            for _ in range(reads):
                t0 = time.perf_counter()
                store.get("k")
                t1 = time.perf_counter()
                conn.execute(raw_sql, ("bench", "k") if "%s" in raw_sql else None).fetchone()
                t2 = time.perf_counter()
                ours.append(t1 - t0)
                raw.append(t2 - t1)
        hit, floor = statistics.median(ours) * 1e6, statistics.median(raw) * 1e6
        return {
            "hit_us": round(hit, 1),
            "raw_select_us": round(floor, 1),
            "ratio": round(hit / floor, 2),
        }
    finally:
        store.close()
        _drop(url, table)


_APART = ("rows", "ef_sweep")  # the first column, and a list told below the table


def markdown(report: dict[str, Any]) -> str:
    """The report as a section of docs/benchmarks.md."""
    hit = report["exact"]
    lines = [
        "Exact tier: a `PostgresStore` hit (1 KB value) "
        f"{hit['hit_us']} µs against a raw psycopg SELECT of the same row "
        f"{hit['raw_select_us']} µs: **{hit['ratio']}x** (target at most 1.3x; the "
        "pytest-benchmark twin in `benchmarks/test_bench_postgres.py` also compares "
        "`RedisStore`).",
        "",
        "Semantic search, dim 384, top-8 of one partition (queries: stored vectors plus noise):",
        "",
        "| rows | " + " | ".join(k for k in report["search"][0] if k not in _APART) + " |",
        "|---:|" + "---:|" * (len(report["search"][0]) - len(_APART)),
    ]
    for row in report["search"]:
        cells = (str(v) for k, v in row.items() if k not in _APART)
        lines.append(f"| {row['rows']} | " + " | ".join(cells) + " |")
    for row in report["search"]:
        if row["ef_sweep"]:
            at = ", ".join(
                f"ef_search {s['ef_search']}: {s['ms']} ms, recall@1 {s['recall1']}"
                for s in row["ef_sweep"]
            )
            lines += ["", f"HNSW at other `ef_search` values, {row['rows']} rows: {at}."]
    share = report["sharing"]
    lines += [
        "",
        f"Sharing: {share['workers']} worker processes on one repeated workload: hit rate "
        f"{share['own_hit_rate']} with a cache each, {share['shared_hit_rate']} sharing "
        f"the Postgres semantic tier ({share['shared_over_own']}x); wrong answers "
        f"{share['own_wrong']} / {share['shared_wrong']}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a Postgres with pgvector (default: a private pgserver)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=150)
    parser.add_argument(
        "--ef-sweep",
        type=int,
        nargs="*",
        default=[],
        help="also measure the HNSW search at these hnsw.ef_search values (up to 1000)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--write-doc", action="store_true", help="also write the figures into docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    with private_server() if args.url is None else _given(args.url) as url:
        report = {
            "exact": exact_hit_run(url),
            "search": [
                search_run(url, n, args.queries, ef_sweep=args.ef_sweep) for n in args.sizes
            ],
            "sharing": sharing_run(url, args.workers, args.requests),
        }
    if args.write_doc:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from benchmarks.doc_sections import write_section

        write_section(
            "postgres",
            "Postgres + pgvector tier",
            markdown(report),
            "python benchmarks/postgres_semantic.py --write-doc",
        )
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        for row in report["search"]:
            print(" ".join(f"{k}={v}" for k, v in row.items()))
        print(" ".join(f"{k}={v}" for k, v in report["sharing"].items()))
        print(" ".join(f"{k}={v}" for k, v in report["exact"].items()))
    return 0


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    raise SystemExit(main())
