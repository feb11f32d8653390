"""Measure a semantic cache on labeled pairs: how many repeats it serves, how many traps.

A pairs file has one JSON object a line: ``{"a": ..., "b": ..., "same_answer": bool,
"category": ...}``, where ``a`` and ``b`` are both questions (strings) or both chats (lists
of ``{"role", "content"}`` messages, the last one the user's). Each pair is judged on its
own (its own namespace, so its own partition): ``a`` is cached, ``b`` is looked up, a chat
as the ``messages`` of its request. A pair with ``same_answer`` true is
*served* when the lookup returns ``a``'s answer; a trap (``same_answer`` false) served is
a *wrong answer*. The similarity and the guards' verdict are taken once per pair, so any
threshold can be scored without embedding again, and the sweep finds the threshold with
the most pairs served while wrong answers stay within a budget.

`serve_pairs` runs each pair through `SemanticCache.get` itself instead, so a `Verifier`
and its grey zone take part (``benchmarks/verifier_eval.py``); `tally` sums what it served.

Used by ``llmcache eval`` and ``benchmarks/semantic_eval.py``.

>>> from llmcache.vector.embedders import HashingEmbedder
>>> pairs = [Pair("Where is order 48213?", "where is order 48213", True, "near_repeat"),
...          Pair("Where is order 48213?", "Where is order 48231?", False, "number")]
>>> report = evaluate(pairs, HashingEmbedder(), threshold=0.5)
>>> report["served"], report["wrong"], report["per_category"]["number"]["wrong"]
(1.0, 0.0, 0.0)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmcache.keys import Request
from llmcache.vector._arguments import check_real
from llmcache.vector._json_lines import json_lines
from llmcache.vector.embedders import Embedder, HashingEmbedder, WordLlamaEmbedder
from llmcache.vector.guards import Guard, default_guards
from llmcache.vector.semantic import DEFAULT_THRESHOLD, SemanticCache
from llmcache.vector.verifier import Verifier

__all__ = [
    "EMBEDDERS",
    "Chat",
    "Pair",
    "Scored",
    "best_threshold",
    "evaluate",
    "load_pairs",
    "make_embedder",
    "render",
    "request_for",
    "score_pairs",
    "serve_pairs",
    "summarize",
    "tally",
]

EMBEDDERS = ("wordllama", "hashing")
#: The labeled set shipped with the package (written by hand for llmcache).
BUNDLED_PAIRS = Path(__file__).parent / "data" / "semantic_pairs.jsonl"
BUNDLED_HOLDOUT = Path(__file__).parent / "data" / "semantic_pairs_holdout.jsonl"

#: A chat: its messages, each ``{"role": ..., "content": ...}`` with string values.
Chat = list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class Pair:
    a: str | Chat
    b: str | Chat
    same_answer: bool
    category: str = "uncategorised"


def _chat(value: object) -> Chat | None:
    """``value`` as a chat: a non-empty list of role/content string messages."""
    if not isinstance(value, list) or not value:
        return None
    chat: Chat = []
    for message in value:
        if (
            not isinstance(message, dict)
            or set(message) != {"role", "content"}
            or not all(isinstance(v, str) for v in message.values())
        ):
            return None
        chat.append(dict(message))
    return chat


def _side(value: object) -> str | Chat | None:
    return value if isinstance(value, str) else _chat(value)


def request_for(side: str | Chat, namespace: str) -> Request:
    """The request a pair's side stands for: a prompt, or a chat's messages."""
    if isinstance(side, str):
        return Request(model="eval", prompt=side, namespace=namespace)
    return Request(model="eval", messages=side, namespace=namespace)


@dataclass(frozen=True, slots=True)
class Scored:
    """A pair with the similarity of ``b`` to ``a`` and the first guard veto, if any."""

    pair: Pair
    similarity: float
    veto: tuple[str, str] | None

    def served(self, threshold: float) -> bool:
        return self.veto is None and self.similarity >= threshold


def load_pairs(path: str | os.PathLike[str]) -> list[Pair]:
    """Read a pairs file; ``ValueError`` naming the line for anything malformed."""
    pairs = []
    for n, obj in json_lines(path):
        if not isinstance(obj, dict):
            raise ValueError(f"{path}:{n}: expected an object")
        a, b = _side(obj.get("a")), _side(obj.get("b"))
        same = obj.get("same_answer")
        category = obj.get("category", "uncategorised")
        if (
            a is None
            or b is None
            or isinstance(a, str) != isinstance(b, str)
            or not isinstance(same, bool)
            or not isinstance(category, str)
        ):
            raise ValueError(
                f'{path}:{n}: expected "a" and "b" both strings or both '
                'chats (lists of {"role", "content"} strings), "same_answer" '
                'true or false, and an optional "category" string'
            )
        pairs.append(Pair(a, b, same, category))
    if not pairs:
        raise ValueError(f"{path}: no pairs")
    return pairs


def make_embedder(name: str) -> Embedder:
    """``"wordllama"`` (the bundled model, extra ``semantic``) or ``"hashing"``."""
    if name == "wordllama":
        return WordLlamaEmbedder()
    if name == "hashing":
        return HashingEmbedder()
    raise ValueError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}")


def score_pairs(
    pairs: Sequence[Pair], embedder: Embedder, guards: Sequence[Guard] | None = None
) -> list[Scored]:
    """Cache every ``a`` (each in its own namespace) and score its ``b`` against it."""
    cache = SemanticCache(embedder, guards=guards, max_entries=max(1, len(pairs)))
    try:
        for i, pair in enumerate(pairs):
            cache.set(request_for(pair.a, f"pair-{i}"), "answer")
        out = []
        for i, pair in enumerate(pairs):
            found = cache.explain(request_for(pair.b, f"pair-{i}"))
            if found:
                out.append(Scored(pair, found[0].similarity, found[0].veto))
            else:  # a text without meaning to the embedder (or without words): never served
                out.append(Scored(pair, -math.inf, ("embedding", "no vector")))
        return out
    finally:
        cache.close()


def serve_pairs(
    pairs: Sequence[Pair],
    embedder: Embedder,
    *,
    threshold: float | None = None,
    guards: Sequence[Guard] | None = None,
    verifier: Verifier | None = None,
    grey_zone: tuple[float, float] | None = None,
) -> list[bool]:
    """Whether `SemanticCache.get` serves each ``b`` the answer cached for its ``a`` (each
    pair in its own namespace), with ``verifier`` asked as the cache asks it (one pair at a
    time, so each question is about that pair alone).

    >>> from llmcache.backends.mock import MockBackend
    >>> pairs = [Pair("Where is order 48213?", "where is order 48213", True)]
    >>> no = Verifier(MockBackend(lambda call: "No"))
    >>> serve_pairs(pairs, HashingEmbedder(), threshold=0.5), serve_pairs(
    ...     pairs, HashingEmbedder(), threshold=0.5, verifier=no)   # asked about every hit
    ([True], [False])
    """
    cache = SemanticCache(
        embedder,
        threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
        guards=guards,
        verifier=verifier,
        grey_zone=grey_zone,
        max_entries=max(1, len(pairs)),
    )
    try:
        served = []
        for i, pair in enumerate(pairs):
            cache.set(request_for(pair.a, f"pair-{i}"), i)
            hit = cache.get(request_for(pair.b, f"pair-{i}"))
            served.append(hit is not None and hit.content == i)
        return served
    finally:
        cache.close()


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _per_category(rows: Sequence[tuple[Pair, bool]]) -> dict[str, Any]:
    """Pairs, should-hit pairs, traps and the share served per category (and the share of
    traps served, where there are traps); ``rows`` are (pair, served)."""
    categories: dict[str, list[tuple[Pair, bool]]] = {}
    for row in rows:
        categories.setdefault(row[0].category, []).append(row)
    per_category: dict[str, Any] = {}
    for name, members in sorted(categories.items()):
        should = sum(pair.same_answer for pair, _ in members)
        out: dict[str, Any] = {
            "pairs": len(members),
            "should_hit": should,
            "traps": len(members) - should,
            "served": _share(sum(s for _, s in members), len(members)),
        }
        if should < len(members):
            out["wrong"] = _share(
                sum(s for pair, s in members if not pair.same_answer), len(members) - should
            )
        per_category[name] = out
    return per_category


def tally(pairs: Sequence[Pair], served: Sequence[bool]) -> dict[str, Any]:
    """Shares of should-hit pairs served and of traps served (wrong), overall and per
    category, for ``served`` as `serve_pairs` returns it."""
    if len(pairs) != len(served):
        raise ValueError(f"{len(pairs)} pairs but {len(served)} verdicts")
    hits = [s for p, s in zip(pairs, served, strict=True) if p.same_answer]
    traps = [s for p, s in zip(pairs, served, strict=True) if not p.same_answer]
    return {
        "pairs": len(pairs),
        "should_hit": len(hits),
        "traps": len(traps),
        "served": _share(sum(hits), len(hits)),
        "wrong": _share(sum(traps), len(traps)),
        "per_category": _per_category(list(zip(pairs, served, strict=True))),
    }


def best_threshold(scored: Sequence[Scored], budget: float) -> dict[str, Any]:
    """The threshold serving the most should-hit pairs with wrong answers <= ``budget``
    (the highest such threshold on ties), from a sweep over the observed similarities."""
    hits = [s for s in scored if s.pair.same_answer]
    traps = [s for s in scored if not s.pair.same_answer]
    candidates = sorted(
        {s.similarity for s in scored if s.veto is None and math.isfinite(s.similarity)} | {1.0}
    )
    best: dict[str, Any] = {"threshold": 1.0, "served": 0.0, "wrong": 0.0, "budget": budget}
    best_served = -1
    for threshold in candidates:
        served = sum(s.served(threshold) for s in hits)
        wrong = _share(sum(s.served(threshold) for s in traps), len(traps))
        if wrong <= budget and served >= best_served:
            best_served = served
            best = {
                "threshold": round(float(threshold), 4),
                "served": _share(served, len(hits)),
                "wrong": wrong,
                "budget": budget,
            }
    return best


def summarize(scored: Sequence[Scored], threshold: float, budget: float) -> dict[str, Any]:
    """The figures at ``threshold``: shares served and wrong, per category, the vetoes, the
    best threshold under ``budget``, and the traps that were served."""
    hits = [s for s in scored if s.pair.same_answer]
    traps = [s for s in scored if not s.pair.same_answer]
    per_category = _per_category([(s.pair, s.served(threshold)) for s in scored])
    vetoes: dict[str, dict[str, int]] = {"should_hit": {}, "traps": {}}
    for s in scored:
        if s.veto is not None:
            side = vetoes["should_hit" if s.pair.same_answer else "traps"]
            side[s.veto[0]] = side.get(s.veto[0], 0) + 1
    best = best_threshold(scored, budget)
    return {
        "pairs": len(scored),
        "should_hit": len(hits),
        "traps": len(traps),
        "served": _share(sum(s.served(threshold) for s in hits), len(hits)),
        "wrong": _share(sum(s.served(threshold) for s in traps), len(traps)),
        "threshold": best["threshold"],
        "threshold_used": threshold,
        "budget": budget,
        "best": best,
        "per_category": per_category,
        "vetoes": vetoes,
        "wrong_pairs": [
            {
                "a": s.pair.a,
                "b": s.pair.b,
                "category": s.pair.category,
                "similarity": round(s.similarity, 4),
            }
            for s in traps
            if s.served(threshold)
        ],
    }


def evaluate(
    pairs: Sequence[Pair],
    embedder: Embedder,
    *,
    threshold: float | None = None,
    guards: Sequence[Guard] | None = None,
    budget: float = 0.02,
) -> dict[str, Any]:
    """Score ``pairs`` and summarise them at ``threshold`` (default: the cache's)."""
    used = (
        DEFAULT_THRESHOLD
        if threshold is None
        else check_real("threshold", threshold, "a cosine in [-1, 1]", lambda x: -1.0 <= x <= 1.0)
    )
    budget = check_real("budget", budget, "a share in [0, 1]", lambda x: 0.0 <= x <= 1.0)
    report = summarize(score_pairs(pairs, embedder, guards), used, budget)
    report["embedder"] = embedder.name
    report["guards"] = [g.name for g in (default_guards() if guards is None else guards)]
    return report


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def render(reports: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Print reports as rich tables, one column per report (e.g. guards on and off)."""
    from rich.console import Console
    from rich.table import Table

    reports = list(reports)
    console = Console(highlight=False)
    summary = Table(title="semantic cache evaluation", title_justify="left")
    summary.add_column("figure")
    for label, _ in reports:
        summary.add_column(label, justify="right")
    first = reports[0][1]
    rows = [
        (
            "pairs (should hit / traps)",
            [f"{r['pairs']} ({r['should_hit']} / {r['traps']})" for _, r in reports],
        ),
        ("embedder", [r["embedder"] for _, r in reports]),
        ("guards", [", ".join(r["guards"]) or "none" for _, r in reports]),
        ("threshold used", [f"{r['threshold_used']:.3f}" for _, r in reports]),
        ("should-hit pairs served", [_pct(r["served"]) for _, r in reports]),
        ("traps served a wrong answer", [_pct(r["wrong"]) for _, r in reports]),
        (
            f"best threshold (wrong <= {_pct(first['budget'])})",
            [f"{r['best']['threshold']:.3f}" for _, r in reports],
        ),
        (
            "  served / wrong there",
            [f"{_pct(r['best']['served'])} / {_pct(r['best']['wrong'])}" for _, r in reports],
        ),
    ]
    for name, values in rows:
        summary.add_row(name, *values)
    console.print(summary)
    table = Table(title="per category (at the threshold used)", title_justify="left")
    table.add_column("category")
    table.add_column("pairs", justify="right")
    for label, _ in reports:
        table.add_column(f"{label}: served", justify="right")
    for name, row in first["per_category"].items():
        kind = "wrong " if row["traps"] and not row["should_hit"] else ""
        cells = [f"{kind}{_pct(r['per_category'][name]['served'])}" for _, r in reports]
        table.add_row(name, str(row["pairs"]), *cells)
    console.print(table)
