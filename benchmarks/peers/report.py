"""``docs/benchmarks.md`` and its plots, from the figures of one run.

Every table gives each contender's figure and its ratio against the raw floor of its group
measured in the same run (``cachetools`` for memory, ``diskcache`` for disk, ``redis-py``
for Redis). The text that compares contenders is written from the numbers, so a run where
a peer wins says so without anyone editing the report.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks.doc_sections import kept_sections
from benchmarks.peers.plots import make_plots
from benchmarks.peers.vectors import FLOOR, FLOOR_1, floor_for

__all__ = ["FLOORS", "floor_of", "write"]

FLOORS = {"memory": "cachetools", "disk": "diskcache", "redis": "redis-py"}
GROUP_TITLES = {
    "memory": "in-memory (floor: cachetools TTLCache under a lock)",
    "disk": "on disk (floor: raw diskcache)",
    "redis": "Redis (floor: raw redis-py GET/SET)",
}
# A peer is listed as faster when it beats llmcache by more than this: smaller gaps are
# inside what this shared machine moves between two identical measurements.
MARGIN = 1.10

Row = list[str]


def floor_of(results: dict[str, Any], group: str) -> str:
    """The id of ``group``'s floor."""
    return FLOORS[group]


# ------------------------------------------------------------------------------ format


def _us(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    if x < 10:
        return f"{x:.2f}"
    if x < 1000:
        return f"{x:.1f}"
    return f"{x:,.0f}"


def _ratio(x: float | None, floor: float | None) -> str:
    if x is None or floor is None or not floor or not math.isfinite(x):
        return "-"
    return f"{x / floor:.2f}×"


def _mb(x: float | None) -> str:
    return "-" if x is None else f"{x / 2**20:.1f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _table(header: Row, rows: Iterable[Row], align: str = "") -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


# ------------------------------------------------------------------------------ data


class _Run:
    """Read access to one run's figures."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.r = results
        self.info: dict[str, Any] = results["contenders"]

    def name(self, cid: str) -> str:
        return str(self.info[cid]["name"])

    def role(self, cid: str) -> str:
        return str(self.info[cid]["role"])

    def measured(self, figure: str) -> list[str]:
        """Contender ids with ``figure``, in table order (floor first in each group)."""
        data = self.r.get(figure, {})
        return [cid for cid in self.info if cid in data and "error" not in data[cid]]

    def groups(self, figure: str) -> list[tuple[str, list[str]]]:
        ids = self.measured(figure)
        return [
            (g, [c for c in ids if self.info[c]["group"] == g])
            for g in FLOORS
            if any(self.info[c]["group"] == g for c in ids)
        ]

    def value(self, figure: str, cid: str, key: str) -> float | None:
        entry = self.r.get(figure, {}).get(cid)
        if not entry or key not in entry or entry[key] is None:
            return None
        return float(entry[key])

    def floor_value(self, figure: str, cid: str, key: str) -> float | None:
        return self.value(figure, FLOORS[self.info[cid]["group"]], key)

    def ratio(self, figure: str, cid: str, key: str) -> float | None:
        v, f = self.value(figure, cid, key), self.floor_value(figure, cid, key)
        return None if v is None or not f else v / f


def _group_rows(run: _Run, figure: str, cells: Callable[[str], Row], width: int) -> list[Row]:
    rows: list[Row] = []
    for group, ids in run.groups(figure):
        rows.append([f"*{GROUP_TITLES[group]}*"] + [""] * (width - 1))
        for cid in ids:
            label = run.name(cid)
            if run.role(cid) == "ours":
                label = f"**{label}**"
            elif run.role(cid) == "floor":
                label = f"{label} (floor)"
            rows.append([label] + cells(cid))
    return rows


# ------------------------------------------------------------------------------ sections


def _machine(r: dict[str, Any]) -> list[str]:
    m = r["machine"]
    lines = ["## Machine and versions", ""]
    rows = [
        ["CPU", m["cpu"]],
        ["cores", str(m["cores"])],
        ["memory", f"{m['memory_gib']} GiB"],
        ["load average at start", " / ".join(str(x) for x in m["load_average"])],
        ["OS", m["os"]],
        ["Python", m["python"]],
        ["redis-server", m["redis_server"]],
    ]
    if m.get("openblas_env"):
        rows.append(
            ["OpenBLAS environment", ", ".join(f"`{k}={v}`" for k, v in m["openblas_env"].items())]
        )
    rows += [[f"`{name}`", version] for name, version in m["packages"].items()]
    lines += _table(["", ""], rows, "ll")
    return lines


def _setup(run: _Run) -> list[str]:
    c = run.r["config"]
    lines = [
        "## What was measured",
        "",
        f"- **Requests**: {c['entries']:,} distinct requests, each a model name, a prompt of "
        "about 200 bytes and two options (`temperature`, `num_predict`); every answer is "
        "exactly 1,024 bytes of text. All contenders get the same requests and answers and "
        "key on the same fields, each its own way (LangChain on `(prompt, llm_string)`, "
        "GPTCache on one text holding all the fields, since it keys on the prompt only). "
        "Deriving the key is part of every timed call.",
        "- **Hit latency**: single lookups of random cached requests, each timed alone with "
        f"`time.perf_counter_ns`, after {min(1000, c['entries'])} untimed warm-up reads; "
        f"{c['rounds']} rounds × {c['per_round']:,} calls per contender. In each round "
        "every contender runs one batch, in a shuffled order, so load from elsewhere on this "
        "shared machine lands on all of them alike.",
        f"- **Miss then store**: {c['fresh']:,} requests no contender has seen: a lookup "
        "that misses, then the store of the answer (the model call itself is free here).",
        f"- **Hits per second**: 1, 2 and 8 threads reading cached requests for "
        f"{c['seconds']} s, median of the rounds. Python's GIL serialises pure-Python work; "
        "libraries that release it around I/O (SQLite, sockets) can gain from threads.",
        f"- **Memory per {c['entries']:,} answers**: a fresh subprocess per contender fills "
        "an empty cache; *RSS growth* from `/proc/self/statm`, *Python heap* from "
        "`tracemalloc` in a second subprocess (blind to what SQLite allocates itself), "
        "*Redis server* from `INFO memory`, *on disk* the files' sizes.",
        "- **Cold start**: a fresh subprocess imports the library, opens the cache (the "
        "persistent ones open the 10k-entry cache the memory probe left; in-memory ones "
        "start empty) and does one lookup; median of "
        f"{c['cold_repeats']} runs. Interpreter start-up is the same for all and left out.",
        "",
        "| cache | group | what a hit calls | caveats |",
        "|:--|:--|:--|:--|",
    ]
    for info in run.info.values():
        cls_api = info.get("api") or ""
        lines.append(
            f"| {info['name']} | {info['group']} | {cls_api} | {info.get('notes') or ''} |"
        )
    return lines + [""]


def _hit_section(run: _Run, plots: dict[str, str]) -> list[str]:
    lines = [
        "## Exact-match hits",
        "",
        "Latency of one hit, in µs. *× floor* is the contender's figure divided by "
        "its group's floor (lower is better).",
        "",
    ]

    def cells(cid: str) -> Row:
        wrong = int(run.value("hit", cid, "wrong") or 0)
        return [
            _us(run.value("hit", cid, "p50")),
            _us(run.value("hit", cid, "p95")),
            _ratio(run.value("hit", cid, "p50"), run.floor_value("hit", cid, "p50")),
            _ratio(run.value("hit", cid, "p95"), run.floor_value("hit", cid, "p95")),
            str(wrong),
        ]

    lines += _table(
        ["cache", "p50 µs", "p95 µs", "p50 × floor", "p95 × floor", "misses or wrong"],
        _group_rows(run, "hit", cells, 6),
    )
    if "hit" in plots:
        lines += [f"![hit latency per contender]({plots['hit']})", ""]
    lines += [
        "### Miss then store",
        "",
        "A lookup that misses followed by the store of the answer, in µs.",
        "",
    ]

    def ms_cells(cid: str) -> Row:
        return [
            _us(run.value("miss_store", cid, "p50")),
            _us(run.value("miss_store", cid, "p95")),
            _ratio(run.value("miss_store", cid, "p50"), run.floor_value("miss_store", cid, "p50")),
        ]

    lines += _table(
        ["cache", "p50 µs", "p95 µs", "p50 × floor"], _group_rows(run, "miss_store", ms_cells, 4)
    )
    lines += [
        "### Hits per second",
        "",
        "All threads together. *× floor* compares the contender's rate with its "
        "floor's at the same thread count (higher is better).",
        "",
    ]

    def tp_cells(cid: str) -> Row:
        row = []
        for t in ("1", "2", "8"):
            v = run.value("throughput", cid, t)
            row.append("-" if v is None else f"{v:,.0f}")
        for t in ("1", "8"):
            row.append(
                _ratio(run.value("throughput", cid, t), run.floor_value("throughput", cid, t))
            )
        return row

    lines += _table(
        ["cache", "1 thread", "2 threads", "8 threads", "1 thread × floor", "8 threads × floor"],
        _group_rows(run, "throughput", tp_cells, 6),
    )
    errors = {cid: run.value("throughput", cid, "errors") for cid in run.measured("throughput")}
    bad = {cid: int(e) for cid, e in errors.items() if e}
    if bad:
        lines += [
            "Calls that raised or missed under threads: "
            + ", ".join(f"{run.name(c)} {n:,}" for c, n in bad.items())
            + ".",
            "",
        ]
    if "throughput" in plots:
        lines += [f"![hits per second by thread count]({plots['throughput']})", ""]
    return lines


def _memory_section(run: _Run) -> list[str]:
    if not run.measured("memory"):
        return []
    n = run.r["config"]["entries"]
    lines = [
        f"## Memory per {n:,} cached 1 KB answers",
        "",
        f"In MB for {n:,} answers ({n:,} KB of answer text); *× floor* on RSS growth "
        "(on the server's memory for Redis).",
        "",
    ]

    def cells(cid: str) -> Row:
        key = "server" if run.info[cid]["group"] == "redis" else "rss"
        return [
            _mb(run.value("memory", cid, "rss")),
            _mb(run.value("memory", cid, "python_heap")),
            _mb(run.value("memory", cid, "server")),
            _mb(run.value("memory", cid, "disk")),
            _ratio(run.value("memory", cid, key), run.floor_value("memory", cid, key)),
        ]

    lines += _table(
        ["cache", "RSS growth", "Python heap", "Redis server", "on disk", "× floor"],
        _group_rows(run, "memory", cells, 6),
    )
    lines += [
        "diskcache (and so DiskStore and the disk tier of TieredStore) opens SQLite with "
        "a 64 MB `mmap_size` and an 8,192-page cache: the pages it touches count in its "
        "RSS (file-backed, reclaimable by the kernel), where LangChain's SQLiteCache "
        "keeps SQLite's 2 MB default cache. The Python heap column is blind to both.",
        "",
    ]
    if "langchain-sqlite" in run.measured("memory"):
        lines += [
            "LangChain's SQLiteCache is filled here (and before the hit benchmarks) with "
            "the rows its `update` writes, 50 per transaction: through `update` it "
            "commits once per answer, and 10k of those take minutes on this disk.",
            "",
        ]
    errors = [
        f"{run.name(c)}: {run.r['memory'][c]['error']}"
        for c in run.info
        if "error" in run.r.get("memory", {}).get(c, {})
    ]
    if errors:
        lines += ["Probes that failed: " + "; ".join(errors), ""]
    return lines


def _cold_section(run: _Run) -> list[str]:
    if not run.measured("cold"):
        return []
    lines = [
        "## Cold start",
        "",
        "Milliseconds in a fresh process: import, open, first lookup (a hit for the "
        "persistent caches).",
        "",
    ]

    def cells(cid: str) -> Row:
        return [
            f"{run.value('cold', cid, k) or 0:.1f}"
            for k in ("import_ms", "open_ms", "first_lookup_ms", "total_ms")
        ] + [_ratio(run.value("cold", cid, "total_ms"), run.floor_value("cold", cid, "total_ms"))]

    lines += _table(
        ["cache", "import", "open", "first lookup", "total", "× floor"],
        _group_rows(run, "cold", cells, 6),
    )
    return lines


def _categories(rows: dict[str, Any]) -> list[str]:
    """Share served per category (should-hit categories: higher is better; trap
    categories: every serve is a wrong answer)."""
    names = [
        n
        for n in rows
        if rows[n].get("per_category") and rows[n].get("gptcache_threshold", 0.8) == 0.8
    ]
    if not names:
        return []
    cats = rows[names[0]]["per_category"]
    table = []
    for cat, info in cats.items():
        kind = (
            "should hit"
            if info.get("should_hit") and not info.get("traps")
            else ("traps" if info.get("traps") and not info.get("should_hit") else "mixed")
        )
        table.append(
            [cat, kind, str(info["pairs"])]
            + [_pct(rows[n]["per_category"].get(cat, {}).get("served")) for n in names]
        )
    return [
        "Served per category (for trap categories every serve is a wrong answer):",
        "",
    ] + _table(["category", "kind", "pairs"] + names, table, "lll" + "r" * len(names))


def _semantic_section(r: dict[str, Any]) -> list[str]:
    sem = r.get("semantic")
    if not sem:
        return []
    lines = ["## Semantic quality on the labeled pairs", ""]
    if "error" in sem:
        return lines + [f"Could not run: {sem['error']}", ""]
    lines += [
        "Each pair is judged on its own (`llmcache.vector.eval`'s method): its first "
        "question is cached, its second looked up. *Should-hit served* is the share of "
        "same-answer pairs that got the cached answer; *traps served* is the share of "
        "different-answer pairs that got it, i.e. a wrong answer. All rows use the same "
        f"embedder (`{sem.get('embedder')}`) and are counted by the same `summarize` "
        "function; GPTCache's figures are what its own `get` served. *Best threshold* is the "
        "cosine threshold that serves the most should-hit pairs with at most 2% traps "
        "served (what threshold tuning alone could reach).",
        "",
    ]
    for label, data in sem.get("datasets", {}).items():
        rows = []
        first: dict[str, Any] = next(iter(data["rows"].values()), {})
        for name, row in data["rows"].items():
            best = row.get("best") or {}
            threshold = row.get("threshold_used")
            rows.append(
                [
                    f"**{name}**" if row.get("kind") == "ours" else name,
                    _pct(row.get("served")),
                    _pct(row.get("wrong")),
                    "-" if threshold is None else f"{threshold:.2f}",
                    "-" if not best else f"{best['threshold']:.2f} ({_pct(best['served'])} served)",
                ]
            )
        title = "bundled set" if label == "pairs" else "holdout set (never used to tune llmcache)"
        lines += [
            f"**{title}**: {first.get('pairs', '?')} pairs, "
            f"{first.get('should_hit', '?')} should hit, {first.get('traps', '?')} "
            "traps",
            "",
        ]
        lines += _table(
            [
                "cache",
                "should-hit served",
                "traps served (wrong)",
                "cosine threshold",
                "best threshold, ≤ 2% wrong",
            ],
            rows,
        )
        if label == "pairs":
            lines += _categories(data["rows"])
        off = data["rows"].get("llmcache (guards off)")
        same = [
            row
            for row in data["rows"].values()
            if "disagreements" in row and row.get("gptcache_threshold") != 0.8
        ]
        if off and same and (same[0]["served"], same[0]["wrong"]) == (off["served"], off["wrong"]):
            guards = ", ".join(sem.get("guards", [])) or "default"
            lines += [
                "At the same cosine threshold GPTCache serves exactly what llmcache "
                "serves with its guards off: on this embedder the gap between the two "
                f"is llmcache's guards ({guards}), not the vector search.",
                "",
            ]
    gpt = [
        row
        for d in sem.get("datasets", {}).values()
        for n, row in d["rows"].items()
        if "disagreements" in row
    ]
    if gpt:
        total = sum(int(row["disagreements"]) for row in gpt)
        lines += [
            f"GPTCache's `get` and the cosine recorded for the same pair disagreed on "
            f"{total} pair(s) (0 means the threshold mapping "
            "`cos >= 2 × similarity_threshold - 1` is exact).",
            "",
        ]
    for note in sem.get("notes", []):
        lines += [f"- {note}"]
    return lines + [""]


def _vector_section(r: dict[str, Any], plots: dict[str, str]) -> list[str]:
    vec = r.get("vectors")
    if not vec:
        return []
    lines = [
        "## Semantic lookup latency against index size",
        "",
        "One k=1 query over random unit vectors of dim 384 (queries are noisy copies of "
        "stored rows), p50 in µs. *× floor* is against `matrix @ q` + `argmax` over the "
        "same rows with the same BLAS threading: numpy and `VectorIndex` run once with "
        "OpenBLAS's default threads and once held to one thread (threadpoolctl); faiss "
        "is held to one OpenMP thread (with its default of one per core a single query "
        "took milliseconds on this loaded machine, its workers waiting for cores) and is "
        "compared with the one-thread floor.",
        "",
    ]
    sizes = sorted(vec, key=int)
    methods = list(vec[sizes[0]])
    header = ["method"] + [f"{int(n):,}" for n in sizes] + [f"× floor at {int(n):,}" for n in sizes]
    rows = []
    for m in methods:
        floor = floor_for(m)
        rows.append(
            [m]
            + [_us(vec[n].get(m, {}).get("p50")) for n in sizes]
            + [
                _ratio(vec[n].get(m, {}).get("p50"), vec[n].get(floor, {}).get("p50"))
                for n in sizes
            ]
        )
    lines += _table(header, rows)
    for n in sizes:
        default, single = vec[n].get(FLOOR, {}).get("p50"), vec[n].get(FLOOR_1, {}).get("p50")
        if default and single and default > 2 * single:
            lines += [
                f"At {int(n):,} vectors OpenBLAS's default threading made the same "
                f"product {default / single:.1f}× slower than one thread on this "
                "machine (a single query is too small to split across two busy cores).",
                "",
            ]
    if "vectors" in plots:
        lines += [f"![lookup latency against index size]({plots['vectors']})", ""]
    return lines


# ------------------------------------------------------------------------------ verdicts


def _family(run: _Run, cid: str) -> str:
    api = str(run.info[cid].get("api") or "")
    return "langchain" if "lookup(prompt, llm_string)" in api else "native"


def _better(
    run: _Run, figure: str, key: str, higher: bool, groups: tuple[str, ...], min_gap: float
) -> list[tuple[str, str, float]]:
    """(peer, ours, factor) where a peer beats an llmcache contender of its group by more
    than `MARGIN` and by more than ``min_gap`` in absolute terms. llmcache's LangChain
    adapter is held against LangChain's caches only: the same API, the same job."""
    found = []
    for group, ids in run.groups(figure):
        if group not in groups:
            continue
        ours = [c for c in ids if run.role(c) == "ours"]
        peers = [c for c in ids if run.role(c) == "peer"]
        for o in ours:
            vo = run.value(figure, o, key)
            for p in peers:
                if _family(run, o) == "langchain" and _family(run, p) != "langchain":
                    continue
                vp = run.value(figure, p, key)
                if vo is None or vp is None or vo <= 0 or vp <= 0 or abs(vo - vp) <= min_gap:
                    continue
                factor = vp / vo if higher else vo / vp
                if factor > MARGIN:
                    found.append((p, o, factor))
    return found


def _rate(v: float) -> str:
    return f"{v:,.0f}"


def _mib(v: float) -> str:
    return f"{v / 2**20:.1f}"


_ALL = ("memory", "disk", "redis")
# (figure, key, higher is better, label, format, unit, groups, smallest gap that counts).
# Memory gaps under 1 MiB per 10k answers (10% of the payload) are allocator noise, and a
# Redis client's own RSS says nothing: its data lives in the server.
_FIGURES: tuple[
    tuple[str, str, bool, str, Callable[[float], str], str, tuple[str, ...], float], ...
] = (
    ("hit", "p50", False, "hit latency p50", _us, " µs", _ALL, 0.0),
    ("hit", "p95", False, "hit latency p95", _us, " µs", _ALL, 0.0),
    ("miss_store", "p50", False, "miss-then-store p50", _us, " µs", _ALL, 0.0),
    ("throughput", "1", True, "hits/s at 1 thread", _rate, "/s", _ALL, 0.0),
    ("throughput", "2", True, "hits/s at 2 threads", _rate, "/s", _ALL, 0.0),
    ("throughput", "8", True, "hits/s at 8 threads", _rate, "/s", _ALL, 0.0),
    ("memory", "rss", False, "RSS growth", _mib, " MB", ("memory", "disk"), 2.0**20),
    ("memory", "server", False, "Redis server memory", _mib, " MB", ("redis",), 2.0**20),
    ("cold", "total_ms", False, "cold start", lambda v: f"{v:.0f}", " ms", _ALL, 0.0),
)


def _faster(run: _Run) -> tuple[list[str], list[str]]:
    """Every place a peer wins, grouped by (peer, llmcache contender): detailed lines with
    both figures, and one short closing-note line per pair."""
    wins: dict[tuple[str, str], list[tuple[str, str, float]]] = {}
    for figure, key, higher, label, fmt, unit, groups, gap in _FIGURES:
        for peer, ours, factor in _better(run, figure, key, higher, groups, gap):
            vp, vo = run.value(figure, peer, key), run.value(figure, ours, key)
            assert vp is not None and vo is not None
            wins.setdefault((peer, ours), []).append(
                (label, f"{fmt(vp)}{unit} against {fmt(vo)}{unit}", factor)
            )
    lines: list[str] = []
    short: list[str] = []
    for (peer, ours), items in wins.items():
        caveat = run.info[peer].get("notes")
        lines.append(
            f"- **{run.name(peer)}** over **{run.name(ours)}**"
            + (f" ({run.name(peer)}: {caveat})" if caveat else "")
            + ":"
        )
        lines += [
            f"  - {label}: {detail} ({factor:.2f}× better)" for label, detail, factor in items
        ]
        short.append(
            f"{run.name(peer)} over {run.name(ours)}: "
            + ", ".join(f"{label} {factor:.2f}×" for label, _, factor in items)
        )
    return lines, short


def _floors_paragraph(run: _Run) -> list[str]:
    parts = []
    for cid in run.measured("hit"):
        if run.role(cid) != "ours":
            continue
        ratio = run.ratio("hit", cid, "p50")
        if ratio is not None:
            floor = FLOORS[run.info[cid]["group"]]
            parts.append(f"{run.name(cid)} {ratio:.2f}× {run.name(floor)}")
    if not parts:
        return []
    return [
        "The raw floors do less than any cache built on them, and they are where the "
        "hit-latency ratios start: " + "; ".join(parts) + ". What llmcache adds on a hit "
        "is the canonical key of the bound arguments, the fingerprint check that turns a "
        "colliding or planted entry into a miss, the entry codec (disk, Redis) and its "
        "counters. For the tiered store the floor is diskcache while its warm hits come "
        "from the memory tier.",
        "",
    ]


def _semantic_better(r: dict[str, Any]) -> tuple[list[str], list[str]]:
    sem = r.get("semantic") or {}
    lines: list[str] = []
    short: list[str] = []
    for label, data in sem.get("datasets", {}).items():
        rows = data["rows"]
        ours = rows.get("llmcache (default guards)")
        if not ours:
            continue
        for name, row in rows.items():
            if row.get("kind") != "peer" or row.get("served") is None:
                continue
            if "disagreements" in row and row.get("gptcache_threshold") != 0.8:
                continue  # the same pipeline at llmcache's threshold: shown in the table
            if row["served"] > ours["served"]:
                lines.append(
                    f"- **semantic recall ({label})**: {name} served {_pct(row['served'])} "
                    f"of should-hit pairs against llmcache's {_pct(ours['served'])}, while "
                    f"serving a wrong answer to {_pct(row['wrong'])} of traps against "
                    f"llmcache's {_pct(ours['wrong'])}."
                )
                short.append(
                    f"semantic should-hit served ({label}): {name} "
                    f"{_pct(row['served'])} vs {_pct(ours['served'])}, at "
                    f"{_pct(row['wrong'])} wrong vs {_pct(ours['wrong'])}"
                )
    return lines, short


def _vector_better(r: dict[str, Any]) -> tuple[list[str], list[str]]:
    vec = r.get("vectors") or {}
    lines: list[str] = []
    short: list[str] = []
    for n, by in sorted(vec.items(), key=lambda kv: int(kv[0])):
        for m, s in by.items():
            if m.startswith("llmcache") or "floor" in m:
                continue
            # Compare like with like: a one-thread peer with the one-thread VectorIndex.
            mine = (
                "llmcache VectorIndex, 1 BLAS thread"
                if floor_for(m) != FLOOR
                else "llmcache VectorIndex"
            )
            ours = by.get(mine) or by.get("llmcache VectorIndex")
            if not ours or s["p50"] * MARGIN >= ours["p50"]:
                continue
            factor = ours["p50"] / s["p50"]
            lines.append(
                f"- **semantic lookup at {int(n):,} vectors**: {m} "
                f"{_us(s['p50'])} µs against {mine} {_us(ours['p50'])} µs "
                f"({factor:.2f}× faster)."
            )
            short.append(f"lookup at {int(n):,} vectors: {m} over {mine} ({factor:.2f}×)")
    return lines, short


def _headline(run: _Run) -> list[str]:
    lines = [
        "## Headline",
        "",
        "Ratios against the raw floor of each group, measured in this run (for latency "
        "and memory lower is better, for hits per second higher is better).",
        "",
    ]

    def r(figure: str, cid: str, key: str) -> str:
        return _ratio(run.value(figure, cid, key), run.floor_value(figure, cid, key))

    for group, ids in run.groups("hit"):
        floor = FLOORS[group]
        if floor not in ids:
            continue
        floor_name = run.name(floor)
        mem_key = "server" if group == "redis" else "rss"
        for cid in (c for c in ids if run.role(c) == "ours"):
            parts = [
                f"hit p50 {r('hit', cid, 'p50')}",
                f"miss then store {r('miss_store', cid, 'p50')}",
                f"hits/s at 1 thread {r('throughput', cid, '1')}",
            ]
            if run.value("memory", cid, mem_key) is not None:
                parts.append(f"memory {r('memory', cid, mem_key)}")
            lines.append(f"- **{run.name(cid)}** against {floor_name}: " + ", ".join(parts) + ".")
        peers = [c for c in ids if run.role(c) == "peer"]
        if peers:
            lines.append(
                f"- Peers' hit p50 against {floor_name}: "
                + ", ".join(f"{run.name(c)} {r('hit', c, 'p50')}" for c in peers)
                + "."
            )
    sem = (run.r.get("semantic") or {}).get("datasets", {})
    for label, data in sem.items():
        parts = [
            f"{name} {_pct(row.get('served'))} / {_pct(row.get('wrong'))}"
            for name, row in data["rows"].items()
            if "guards off" not in name and row.get("gptcache_threshold", 0.8) == 0.8
        ]
        lines.append(
            f"- Semantic, {label} set (should-hit served / traps served a wrong "
            "answer): " + "; ".join(parts) + "."
        )
    vec = run.r.get("vectors") or {}
    if vec:
        largest = max(vec, key=int)
        by = vec[largest]
        parts = [
            f"{m} {by[m]['p50'] / by[floor_for(m)]['p50']:.2f}×"
            for m in by
            if m.startswith("llmcache") and floor_for(m) in by
        ]
        if parts:
            lines.append(
                f"- Semantic lookup at {int(largest):,} vectors against the bare "
                "numpy matmul of the same threading: " + ", ".join(parts) + "."
            )
    return lines + [""]


def _could_not_run(r: dict[str, Any]) -> list[str]:
    items = []
    for cid, why in r.get("skipped", {}).items():
        items.append(f"- {r['contenders'].get(cid, {}).get('name', cid)}: {why}")
    for note in r.get("notes", []):
        items.append(f"- {note}")
    sem = r.get("semantic") or {}
    if "error" in sem:
        items.append(f"- Semantic evaluation: {sem['error']}")
    for note in sem.get("notes", []):
        items.append(f"- {note}")
    return items


# ------------------------------------------------------------------------------ write


def write(results: dict[str, Any], samples: dict[str, Any], out: Path, img_dir: Path) -> None:
    """Render the report to ``out`` and its plots into ``img_dir``."""
    run = _Run(results)
    plots = make_plots(run, samples, img_dir, out)
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    minutes = results.get("duration_s", 0) / 60
    lines = [
        "# Benchmarks: llmcache beside the caches users would pick instead",
        "",
        f"Generated by `make bench` (`benchmarks/peers/run.py`) on {when}, in "
        f"{minutes:.1f} minutes. Every number below comes from that one run, on one "
        "shared and noisy 2-core machine: absolute times move between runs, the ratios "
        "within a run are what count. Regenerate with `make bench`; the raw figures of the "
        "last run are in `.benchmarks/peers.json`.",
        "",
    ]
    if results["config"].get("quick"):
        lines += [
            "> **Quick run** (`--quick`): small counts, for checking the pipeline "
            "only; do not quote these numbers.",
            "",
        ]
    lines += _headline(run)
    lines += _machine(results)
    lines += _setup(run)
    lines += _hit_section(run, plots)
    lines += _memory_section(run)
    lines += _cold_section(run)
    lines += _semantic_section(results)
    lines += _vector_section(results, plots)

    detail, short = _faster(run)
    sem_detail, sem_short = _semantic_better(results)
    vec_detail, vec_short = _vector_better(results)
    lines += [
        "## Where others are faster",
        "",
        f"Every figure where a peer beats an llmcache contender of its group by more "
        f"than {100 * (MARGIN - 1):.0f}% (smaller gaps are within this machine's noise "
        "between two identical measurements), written from this run's numbers.",
        "",
    ]
    if detail or sem_detail or vec_detail:
        lines += detail + sem_detail + vec_detail + [""]
    else:
        lines += ["No peer beat llmcache by more than the margin in this run.", ""]
    lines += _floors_paragraph(run)
    blocked = _could_not_run(results)
    if blocked:
        lines += ["## What could not run", ""] + blocked + [""]
    lines += ["## Closing note", ""]
    places = short + sem_short + vec_short
    if places:
        lines += ["Places where a peer came out ahead in this run:", ""]
        lines += [f"- {p}" for p in places] + [""]
    else:
        lines += [
            "No peer came out ahead of llmcache by more than the margin in this run; "
            "the raw floors did, by the ratios above.",
            "",
        ]
    if blocked:
        lines += [f"Not measured: {len(blocked)} item(s), listed under *What could not run*.", ""]
    # Sections the separate scripts wrote (Postgres, proxy, transport) stay on the page.
    previous = out.read_text(encoding="utf-8") if out.exists() else ""
    for block in kept_sections(previous):
        lines += ["", block.rstrip("\n")]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
