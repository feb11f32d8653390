"""How right is the semantic cache? Guards on and off, on the labeled set and its holdout.

Each pair caches ``a`` and looks up ``b`` in its own partition; should-hit pairs served and
traps served a wrong answer are reported at the threshold used, with the best threshold
under a wrong-answer budget. The holdout was written after the guards were frozen.

    python benchmarks/semantic_eval.py                   # bundled set + holdout, wordllama
    python benchmarks/semantic_eval.py --embedder hashing --threshold 0.6
    python benchmarks/semantic_eval.py --pairs my_pairs.jsonl --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from llmcache.vector.eval import (
    BUNDLED_HOLDOUT,
    BUNDLED_PAIRS,
    EMBEDDERS,
    load_pairs,
    make_embedder,
    render,
    score_pairs,
    summarize,
)
from llmcache.vector.semantic import DEFAULT_THRESHOLD


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs",
        type=Path,
        action="append",
        help="pairs file (repeatable; default: the bundled set and holdout)",
    )
    parser.add_argument("--embedder", choices=EMBEDDERS, default="wordllama")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument(
        "--budget",
        type=float,
        default=0.02,
        help="share of traps allowed a wrong answer (threshold sweep)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    paths = args.pairs or [BUNDLED_PAIRS, BUNDLED_HOLDOUT]
    embedder = make_embedder(args.embedder)
    results: dict[str, dict[str, dict[str, object]]] = {}
    for path in paths:
        pairs = load_pairs(path)
        results[path.name] = {}
        for label, guards in (("guards on", None), ("guards off", ())):
            started = time.perf_counter()
            report = summarize(score_pairs(pairs, embedder, guards), args.threshold, args.budget)
            report["seconds"] = round(time.perf_counter() - started, 3)
            report["embedder"] = embedder.name
            report["guards"] = [] if guards == () else ["default"]
            results[path.name][label] = report
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from rich.console import Console

    for name, reports in results.items():
        Console().rule(name)
        render(reports.items())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
