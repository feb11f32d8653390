"""Measure a semantic cache with a judge and a stated error bound on labeled pairs.

Used by ``llmcache eval`` (``--judge-accuracy``, ``--verifier``, ``--max-error``,
``--curve``) beside the plain measurement of `llmcache.vector.eval`. Every figure comes
from the real `SemanticCache` lookup path, each pair in its own namespace (``a`` cached,
``b`` looked up):

- `simulated_judge`: a `Verifier` over the public `MockBackend` that answers from the
  labels and is right with probability ``accuracy``. Its mistakes are fixed per pair (a
  seeded hash of the pair decides), as a real judge's are: asking again gives the same
  answer, so a mistake cannot be averaged away.
- `serve_learned`: the cache with ``max_error``, warm-started on calibration pairs
  (`SemanticCache.observe_pairs`), then each scored pair looked up once and, when that
  was a miss, once more after the background verifications ran (a judge's approval is
  an alias: the same request again is an exact hit). A pair counts as *served* when
  either lookup returned ``a``'s answer, *served at once* when the first did.
- `learned_splits`: calibrate on one half, score the other (halves drawn per category),
  several splits; mean and spread. `curve`: the same per bound.

Wrong answers are reported three ways: traps served among traps (the figure of ``llmcache
eval``, which depends on how many traps a set holds), among all lookups (the error rate
the bound speaks of: a lookup the model answers is never wrong), and among served hits.

>>> from llmcache.vector.embedders import HashingEmbedder
>>> from llmcache.vector.eval import Pair
>>> pairs = [Pair("Where is order 48213?", "where is order 48213 now", True),
...          Pair("How do I exit vim?", "How do I exit emacs?", False)]
>>> judge = simulated_judge(pairs, accuracy=1.0)
>>> judge.verify("Where is order 48213?", "where is order 48213 now")
True
>>> [o.served for o in serve_learned([], pairs, HashingEmbedder(), max_error=0.01,
...                                   judge=judge)]
[True, False]
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

import xxhash

from llmcache.backends.base import AsyncBackend, Backend
from llmcache.backends.mock import MockBackend, MockCall
from llmcache.keys import Request
from llmcache.vector.bound import check_max_error
from llmcache.vector.embedders import Embedder
from llmcache.vector.eval import request_for
from llmcache.vector.guards import Guard
from llmcache.vector.semantic import (
    DEFAULT_THRESHOLD,
    LEARNED_FLOOR,
    SemanticCache,
    split_request,
)
from llmcache.vector.verifier import Verifier

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's from Python 3.11

__all__ = [
    "DEFAULT_BOUNDS",
    "LabeledPair",
    "Outcome",
    "SplitOptions",
    "curve",
    "judge_view",
    "judged_once",
    "learned_splits",
    "make_verifier",
    "render_learned",
    "serve_learned",
    "simulated_judge",
    "summarize_outcomes",
]

#: The bounds `curve` measures by default.
DEFAULT_BOUNDS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
_SEPARATOR = "\x1e"  # between the two texts in the simulated judge's "prompt"


class LabeledPair(Protocol):
    """A labeled pair: ``a`` and ``b`` are questions or chats (lists of messages)."""

    @property
    def a(self) -> Any: ...
    @property
    def b(self) -> Any: ...
    @property
    def same_answer(self) -> bool: ...
    @property
    def category(self) -> str: ...


def judge_view(side: Any) -> str:
    """A pair's side as the cache shows it to a judge: the text it matches (a question, or
    a chat's transcript)."""
    split = split_request(_request(side, 0).to_canonical())
    return split[1] if split is not None else ""


def _request(side: Any, i: int) -> Request:
    return request_for(side, f"pair-{i}")


def _fraction(seed: int, first: str, second: str) -> float:
    digest = xxhash.xxh3_64_intdigest(f"{first}{_SEPARATOR}{second}".encode(), seed=seed)
    return digest / 2.0**64


def simulated_judge(pairs: Iterable[LabeledPair], *, accuracy: float, seed: int = 0) -> Verifier:
    """A judge that knows the labels of ``pairs`` and answers right with probability
    ``accuracy``, the same way every time for a pair (in either order); "no" about pairs
    it does not know."""
    if not 0.0 <= accuracy <= 1.0 or math.isnan(accuracy):
        raise ValueError(f"accuracy: expected a probability in [0, 1], got {accuracy!r}")
    labels: dict[tuple[str, str], bool] = {}
    for pair in pairs:
        first, second = sorted((judge_view(pair.a), judge_view(pair.b)))
        labels.setdefault((first, second), pair.same_answer)

    def answer(call: MockCall) -> str:
        first, _, second = (call.prompt or "").partition(_SEPARATOR)
        key = (first, second) if first <= second else (second, first)
        label = labels.get(key)
        if label is None:
            return "no"
        right = _fraction(seed, *key) < accuracy
        return "yes" if label == right else "no"

    backend = MockBackend(answer, model=f"simulated-judge-{accuracy:g}")
    return Verifier(backend, prompt="{a}" + _SEPARATOR + "{b}", max_tokens=None)


def make_verifier(spec: str) -> Verifier:
    """A judge from ``BACKEND:MODEL`` (``ollama:qwen2.5:0.5b``; the backend's own settings,
    such as ``OLLAMA_HOST``, come from the environment)."""
    from llmcache.backends.registry import get_backend

    name, sep, model = spec.partition(":")
    if not sep or not name or not model:
        raise ValueError(f"--verifier: expected BACKEND:MODEL, got {spec!r}")
    backend: Backend | AsyncBackend = get_backend(name, model=model)
    return Verifier(backend, model=model)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the cache did with one scored pair; ``basis`` is why a hit was served."""

    pair: LabeledPair
    served: bool
    at_once: bool
    basis: str | None


def serve_learned(
    calibrate: Sequence[LabeledPair],
    score: Sequence[LabeledPair],
    embedder: Embedder,
    *,
    max_error: float,
    judge: Verifier | None,
    guards: Sequence[Guard] | None = None,
    floor: float = LEARNED_FLOOR,
    verify: str = "background",
    seed: int = 0,
) -> list[Outcome]:
    """Warm-start a cache with ``max_error`` on ``calibrate``, then look up each pair of
    ``score`` (see the module docstring)."""
    cache = SemanticCache(
        embedder,
        guards=guards,
        verifier=judge,
        max_error=max_error,
        grey_zone=(floor, 1.0),
        verify=verify,
        seed=seed,
        max_entries=max(1, len(score)),
        approximate_above=None,
    )
    try:
        if calibrate:
            cache.observe_pairs((p.a, p.b, p.same_answer) for p in calibrate)
        outcomes = []
        for i, pair in enumerate(score):
            cache.set(_request(pair.a, i), i)
            hit = cache.get(_request(pair.b, i))
            at_once = hit is not None and hit.content == i and not hit.exact
            if hit is None:
                cache.wait_verified()
                hit = cache.get(_request(pair.b, i))
            served = hit is not None and hit.content == i and not hit.exact
            basis = hit.entry.metadata["semantic"].get("basis") if hit is not None else None
            outcomes.append(Outcome(pair, served, at_once, basis if served else None))
        return outcomes
    finally:
        cache.close()


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def summarize_outcomes(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Served shares (should-hit pairs), wrong shares (three ways), the basis of the hits,
    and per category the share served (and, for traps, wrong)."""
    hits = [o for o in outcomes if o.pair.same_answer]
    traps = [o for o in outcomes if not o.pair.same_answer]
    wrong = sum(o.served for o in traps)
    served = sum(o.served for o in hits)
    per_category: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        row = per_category.setdefault(
            o.pair.category, {"pairs": 0, "should_hit": 0, "served": 0, "wrong": 0}
        )
        row["pairs"] += 1
        row["should_hit"] += o.pair.same_answer
        row["served"] += o.served
        row["wrong"] += o.served and not o.pair.same_answer
    for row in per_category.values():
        trapped = row["pairs"] - row["should_hit"]
        row["served"] = _share(row["served"], row["pairs"])
        if trapped:
            row["wrong"] = _share(row["wrong"], trapped)
        else:
            del row["wrong"]
    basis: dict[str, int] = {}
    for o in outcomes:
        if o.basis is not None:
            basis[o.basis] = basis.get(o.basis, 0) + 1
    return {
        "pairs": len(outcomes),
        "should_hit": len(hits),
        "traps": len(traps),
        "served": _share(served, len(hits)),
        "served_at_once": _share(sum(o.at_once for o in hits), len(hits)),
        "wrong": _share(wrong, len(traps)),
        "wrong_per_lookup": _share(wrong, len(outcomes)),
        "wrong_per_served": _share(wrong, served + wrong),
        "basis": basis,
        "per_category": dict(sorted(per_category.items())),
    }


def _judged_run(
    pairs: Sequence[LabeledPair],
    embedder: Embedder,
    judge: Verifier,
    limit: float,
    floor: float,
    guards: Sequence[Guard] | None,
) -> list[Outcome]:
    cache = SemanticCache(
        embedder,
        threshold=limit,
        guards=guards,
        verifier=judge,
        grey_zone=(min(floor, limit), limit),
        approximate_above=None,
        max_entries=max(1, len(pairs)),
    )
    outcomes = []
    try:
        for i, pair in enumerate(pairs):
            cache.set(_request(pair.a, i), i)
            hit = cache.get(_request(pair.b, i))
            served = hit is not None and hit.content == i and not hit.exact
            outcomes.append(Outcome(pair, served, served, None))
    finally:
        cache.close()
    return outcomes


def judged_once(
    pairs: Sequence[LabeledPair],
    embedder: Embedder,
    *,
    judge: Callable[[int], Verifier | None],
    runs: int = 1,
    threshold: float | None = None,
    floor: float = LEARNED_FLOOR,
    guards: Sequence[Guard] | None = None,
) -> dict[str, Any]:
    """The cache without a bound, asking the judge inline about the candidates it would
    otherwise refuse (similarity in ``[floor, threshold)``, or vetoed only by ``scope``),
    ``runs`` times with ``judge(k)`` (a simulated judge's seed per run): the figures of
    `learned_splits`."""
    limit = DEFAULT_THRESHOLD if threshold is None else threshold
    outcomes: list[list[Outcome]] = []
    for k in range(runs):
        verifier = judge(k)
        if verifier is None:
            raise ValueError("judged_once needs a judge")
        outcomes.append(_judged_run(pairs, embedder, verifier, limit, floor, guards))
    return _runs_report(None, pairs, outcomes)


def _halves(
    pairs: Sequence[LabeledPair],
    rng: random.Random,
) -> tuple[list[LabeledPair], list[LabeledPair]]:
    """Two halves with each category split evenly (an odd one out goes either way)."""
    by_category: dict[str, list[LabeledPair]] = {}
    for pair in pairs:
        by_category.setdefault(pair.category, []).append(pair)
    first: list[LabeledPair] = []
    second: list[LabeledPair] = []
    for name in sorted(by_category):
        members = list(by_category[name])
        rng.shuffle(members)
        cut = len(members) // 2 + (rng.random() < 0.5 if len(members) % 2 else 0)
        first.extend(members[:cut])
        second.extend(members[cut:])
    rng.shuffle(first)
    rng.shuffle(second)
    return first, second


_FIGURES = ("served", "served_at_once", "wrong", "wrong_per_lookup", "wrong_per_served")


def _spread(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIGURES:
        values = [r[name] for r in runs]
        out[name] = {
            "mean": round(statistics.fmean(values), 4),
            "stdev": round(statistics.pstdev(values), 4),
            "min": round(min(values), 4),
            "max": round(max(values), 4),
        }
    return out


def _runs_report(
    max_error: float | None, pairs: Sequence[LabeledPair], runs: Sequence[Sequence[Outcome]]
) -> dict[str, Any]:
    """The report of several runs over ``pairs``: each figure's mean and spread, the
    per-category figures and the hits' bases of every scored pair pooled, and each run."""
    reports = [summarize_outcomes(outcomes) for outcomes in runs]
    pooled = summarize_outcomes([o for outcomes in runs for o in outcomes])
    return {
        "max_error": max_error,
        "splits": len(runs),
        "figures": _spread(reports),
        "per_category": pooled["per_category"],
        "basis": pooled["basis"],  # empty without a bound: a judge's hits have no basis
        "pairs": len(pairs),
        "should_hit": sum(p.same_answer for p in pairs),
        "traps": sum(not p.same_answer for p in pairs),
        "runs": [{name: round(r[name], 4) for name in _FIGURES} for r in reports],
    }


class SplitOptions(TypedDict, total=False):
    """The options of `learned_splits` that `curve` passes on to it at each bound (see
    there for their meaning and defaults), for callers that measure both ways."""

    splits: int
    seed: int
    guards: Sequence[Guard] | None
    floor: float
    verify: str
    calibrate_on: Sequence[LabeledPair] | None


def learned_splits(
    pairs: Sequence[LabeledPair],
    embedder: Embedder,
    *,
    max_error: float,
    judge: Callable[[int], Verifier | None],
    splits: int = 5,
    seed: int = 0,
    guards: Sequence[Guard] | None = None,
    floor: float = LEARNED_FLOOR,
    verify: str = "background",
    calibrate_on: Sequence[LabeledPair] | None = None,
) -> dict[str, Any]:
    """Calibrate on one half and score the other, ``splits`` times; the mean and spread of
    each figure, the per-category figures of every scored pair pooled, and each split.
    ``judge(k)`` makes a fresh judge for split ``k`` (``None``: no judge): a simulated one
    with its own seed per split, so its luck averages out over the splits. With
    ``calibrate_on`` (a holdout's measurement), every run calibrates on those pairs and
    scores all of ``pairs``; runs differ by the judge's and the exploration's seeds."""
    max_error = check_max_error(max_error)
    if splits < 1:
        raise ValueError(f"splits: expected an int >= 1, got {splits!r}")
    outcomes: list[list[Outcome]] = []
    for k in range(splits):
        if calibrate_on is not None:
            calibrate, score = list(calibrate_on), list(pairs)
        else:
            calibrate, score = _halves(pairs, random.Random(seed * 1000 + k))
        outcomes.append(
            serve_learned(
                calibrate,
                score,
                embedder,
                max_error=max_error,
                judge=judge(k),
                guards=guards,
                floor=floor,
                verify=verify,
                seed=seed * 1000 + k,
            )
        )
    return _runs_report(max_error, pairs, outcomes)


def curve(
    pairs: Sequence[LabeledPair],
    embedder: Embedder,
    *,
    bounds: Sequence[float] = DEFAULT_BOUNDS,
    judge: Callable[[int], Verifier | None],
    **options: Unpack[SplitOptions],
) -> list[dict[str, Any]]:
    """`learned_splits` at each bound: how the served share grows with the bound."""
    rows = []
    for bound in bounds:
        report = learned_splits(pairs, embedder, max_error=bound, judge=judge, **options)
        rows.append(
            {
                "max_error": bound,
                **{name: report["figures"][name]["mean"] for name in _FIGURES},
                "learned": report["basis"].get("learned", 0),
            }
        )
    return rows


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def render_learned(report: dict[str, Any], curve_rows: Sequence[dict[str, Any]] = ()) -> None:
    """Print a learned-mode report (and a curve) as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    figures = report["figures"]
    bound = report["max_error"]
    title = (
        f"semantic cache {'without a bound' if bound is None else 'under a bound of '}"
        f"{'' if bound is None else _pct(bound)} ({report.get('judge', 'no judge')}; "
        f"{report['splits']} run(s))"
    )
    summary = Table(title=title, title_justify="left")
    for column in ("figure", "mean", "stdev", "min", "max"):
        summary.add_column(column, justify="left" if column == "figure" else "right")
    names = {
        "served": "should-hit pairs served (at once or on the repeat)",
        "served_at_once": "  served at once",
        "wrong": "traps served a wrong answer",
        "wrong_per_lookup": "  wrong answers per lookup",
        "wrong_per_served": "  wrong answers per hit served",
    }
    for key, label in names.items():
        f = figures[key]
        summary.add_row(label, *(_pct(f[k]) for k in ("mean", "stdev", "min", "max")))
    console.print(summary)
    table = Table(title="per category (scored pairs of every split)", title_justify="left")
    for column in ("category", "scored", "served"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for name, row in report["per_category"].items():
        kind = "wrong " if "wrong" in row and not row["should_hit"] else ""
        table.add_row(name, str(row["pairs"]), f"{kind}{_pct(row['served'])}")
    console.print(table)
    if curve_rows:
        table = Table(
            title="served share against the bound (means over the splits)", title_justify="left"
        )
        for column in (
            "bound",
            "served",
            "at once",
            "traps wrong",
            "wrong/lookup",
            "wrong/hit",
            "learned hits",
        ):
            table.add_column(column, justify="right")
        for row in curve_rows:
            table.add_row(
                _pct(row["max_error"]),
                _pct(row["served"]),
                _pct(row["served_at_once"]),
                _pct(row["wrong"]),
                _pct(row["wrong_per_lookup"]),
                _pct(row["wrong_per_served"]),
                str(row["learned"]),
            )
        console.print(table)
