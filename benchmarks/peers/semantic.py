"""Semantic quality on the labeled pairs: llmcache against GPTCache (and RedisVL if it runs).

Every contender judges each pair on its own, as ``llmcache.vector.eval`` does: ``a`` is
cached, ``b`` is looked up. A should-hit pair is *served* when ``b`` gets ``a``'s answer; a
trap served is a *wrong answer*. llmcache is scored by ``llmcache.vector.eval`` itself;
GPTCache's similarities are turned into the same `Scored` records and summarised by the same
``summarize``, so both sides are counted by one function.

GPTCache's default semantic setup embeds with ``Onnx()`` (GPTCache/paraphrase-albert-onnx),
which is downloaded from the Hugging Face hub at run time: no hub is reachable here. Its
pipeline (sqlite + faiss data manager, ``SearchDistanceEvaluation``, similarity threshold
0.8) is therefore run with the embedder llmcache bundles (WordLlama), so the comparison is
of the cache logic at one embedder. Each pair also goes through GPTCache's real ``get``, and
the count of pairs where that disagrees with the recorded similarity is reported.

Run in a subprocess by ``run.py`` (GPTCache registers an exit hook per cache, which would
flush hundreds of indexes at exit): ``python -m benchmarks.peers.semantic [REDIS_URL]``.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

__all__ = ["DATASETS", "evaluate_all", "gptcache_threshold_for"]

#: Label -> pairs file; the holdout set was not used to tune llmcache's guards or threshold.
DATASETS = {"pairs": "semantic_pairs.jsonl", "holdout": "semantic_pairs_holdout.jsonl"}

GPTCACHE_DEFAULT_THRESHOLD = 0.8  # gptcache.Config().similarity_threshold
BUDGET = 0.02  # wrong-answer budget for the "best threshold" column (eval.py's default)


def gptcache_threshold_for(cosine: float) -> float:
    """The GPTCache ``similarity_threshold`` that serves exactly at ``cosine``.

    With unit vectors faiss's L2 distance is ``d = 2 - 2 cos``; ``SearchDistanceEvaluation``
    scores ``4 - d`` and serves when the score reaches ``4 * threshold``, so it serves when
    ``cos >= 2 * threshold - 1``.
    """
    return (1.0 + cosine) / 2.0


def _gptcache_cosine(threshold: float) -> float:
    return 2.0 * threshold - 1.0


def _pairs_dir() -> Path:
    import llmcache.vector.eval as ev

    return Path(ev.BUNDLED_PAIRS).parent


def _gptcache_pairs(
    pairs: Sequence[Any], embedder: Any, thresholds: Sequence[float]
) -> tuple[list[Any], dict[float, list[bool]]]:
    """GPTCache's pipeline per pair: `Scored` records and what its real ``get`` served at
    each GPTCache threshold."""
    from benchmarks.peers.contenders import quiet_gptcache
    from gptcache import Cache
    from gptcache.adapter.api import get, put
    from gptcache.manager import CacheBase, VectorBase, get_data_manager
    from gptcache.processor.pre import get_prompt
    from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

    from llmcache.vector.eval import Scored

    quiet_gptcache()

    def to_embeddings(data: str, **_: Any) -> Any:
        return embedder.embed([data])[0]

    scored: list[Any] = []
    served: dict[float, list[bool]] = {t: [] for t in thresholds}
    # One scalar store (SQLite) for all pairs, a new faiss index per pair: each lookup
    # sees only its own pair's vector, as in llmcache's per-pair partitions, without paying
    # SQLAlchemy's engine set-up (most of a second per pair on this machine) each time.
    scalar = CacheBase("sqlite", sql_url="sqlite:///:memory:")
    with tempfile.TemporaryDirectory() as tmp:
        for i, pair in enumerate(pairs):
            cache = Cache()
            manager = get_data_manager(
                scalar,
                VectorBase(
                    "faiss", dimension=embedder.dim, index_path=os.path.join(tmp, f"{i}.index")
                ),
                max_size=len(pairs) + 10,
            )
            cache.init(
                pre_embedding_func=get_prompt,
                embedding_func=to_embeddings,
                data_manager=manager,
                similarity_evaluation=SearchDistanceEvaluation(),
            )
            put(pair.a, "answer-a", cache_obj=cache)
            for t in thresholds:
                cache.config.similarity_threshold = t
                served[t].append(get(pair.b, cache_obj=cache) == "answer-a")
            found = manager.search(to_embeddings(pair.b), top_k=1)
            if found:
                distance = float(found[0][0])
                scored.append(Scored(pair, 1.0 - distance / 2.0, None))
            else:
                scored.append(Scored(pair, -math.inf, ("embedding", "no vector")))
    return scored, served


def _redisvl(url: str | None, pairs: Sequence[Any], embedder: Any) -> dict[str, Any]:
    """RedisVL's SemanticCache on the local Redis, or why it cannot run there."""
    if url is None:
        return {"error": "no local redis-server"}
    if importlib.util.find_spec("redisvl") is None:
        return {"error": "redisvl is not installed"}
    try:
        from redisvl.extensions.cache.llm import SemanticCache as RedisVLCache
        from redisvl.utils.vectorize import CustomVectorizer

        vectorizer = CustomVectorizer(embed=lambda text: embedder.embed([text])[0].tolist())
        cache = RedisVLCache(
            name="llmcache-bench", redis_url=url, vectorizer=vectorizer, overwrite=True
        )
    except Exception as exc:  # the point is to record why, whatever it is
        return {"error": f"{type(exc).__name__}: {str(exc).strip()[:240]}"}
    hits = traps = served = wrong = 0
    try:
        for pair in pairs:
            cache.clear()
            cache.store(pair.a, "answer-a")
            got = bool(cache.check(pair.b))
            if pair.same_answer:
                hits, served = hits + 1, served + got
            else:
                traps, wrong = traps + 1, wrong + got
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {str(exc).strip()[:240]}"}
    finally:
        cache.delete()
    return {
        "served": served / hits if hits else 0.0,
        "wrong": wrong / traps if traps else 0.0,
        "threshold_used": 1.0 - 0.1,
    }


def _row(report: dict[str, Any], **extra: Any) -> dict[str, Any]:
    keep = (
        "pairs",
        "should_hit",
        "traps",
        "served",
        "wrong",
        "threshold_used",
        "best",
        "per_category",
    )
    row = {k: report[k] for k in keep if k in report}
    row.update(extra)
    return row


def evaluate_all(redis_url: str | None = None) -> dict[str, Any]:
    """Every contender on every dataset, plus what could not run and why."""
    from llmcache.vector.eval import load_pairs, score_pairs, summarize
    from llmcache.vector.semantic import DEFAULT_THRESHOLD

    out: dict[str, Any] = {"datasets": {}, "notes": []}
    try:
        from llmcache.vector.embedders import WordLlamaEmbedder

        embedder = WordLlamaEmbedder()
    except Exception as exc:
        out["error"] = f"the bundled WordLlama embedder is not available: {exc}"
        return out
    out["embedder"] = embedder.name
    from llmcache.vector.guards import default_guards

    out["guards"] = [g.name for g in default_guards()]
    out["llmcache_threshold"] = DEFAULT_THRESHOLD
    if importlib.util.find_spec("onnxruntime") is None:
        out["notes"].append(
            "GPTCache's default embedding, Onnx() (GPTCache/paraphrase-albert-onnx), needs "
            "onnxruntime and transformers and downloads its model from the Hugging Face hub "
            "at run time, which this machine cannot reach (GPTCache even tries to pip-install "
            "onnxruntime==1.14.1 from inside the process). Its default pipeline (sqlite + "
            "faiss, SearchDistanceEvaluation, threshold 0.8) ran with the WordLlama embedder "
            "llmcache bundles instead."
        )
    at_ours = gptcache_threshold_for(DEFAULT_THRESHOLD)
    thresholds = (GPTCACHE_DEFAULT_THRESHOLD, at_ours)
    directory = _pairs_dir()
    for label, filename in DATASETS.items():
        path = directory / filename
        if not path.exists():
            out["notes"].append(f"{path.name} not found; skipped")
            continue
        pairs = load_pairs(path)
        rows: dict[str, Any] = {}
        t0 = time.perf_counter()
        with_guards = score_pairs(pairs, embedder)
        rows["llmcache (default guards)"] = _row(
            summarize(with_guards, DEFAULT_THRESHOLD, BUDGET), kind="ours"
        )
        no_guards = score_pairs(pairs, embedder, guards=[])
        rows["llmcache (guards off)"] = _row(
            summarize(no_guards, DEFAULT_THRESHOLD, BUDGET), kind="ours"
        )
        t1 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scored, served = _gptcache_pairs(pairs, embedder, thresholds)
        except Exception as exc:
            out["notes"].append(
                f"GPTCache semantic pipeline failed on {label}: {type(exc).__name__}: {exc}"
            )
        else:
            for t in thresholds:
                cosine = _gptcache_cosine(t)
                summary = summarize(scored, cosine, BUDGET)
                pipeline = served[t]
                hits = [ok for ok, s in zip(pipeline, scored, strict=True) if s.pair.same_answer]
                traps = [
                    ok for ok, s in zip(pipeline, scored, strict=True) if not s.pair.same_answer
                ]
                disagree = sum(
                    ok != s.served(cosine) for ok, s in zip(pipeline, scored, strict=True)
                )
                name = (
                    "GPTCache (default: threshold 0.8)"
                    if t == GPTCACHE_DEFAULT_THRESHOLD
                    else f"GPTCache (threshold {t:.2f} = llmcache's cosine)"
                )
                # The figures are what GPTCache's own `get` served; summarize() supplies the
                # per-category split and the best-threshold sweep on the same records.
                summary["served"] = round(sum(hits) / len(hits), 4) if hits else 0.0
                summary["wrong"] = round(sum(traps) / len(traps), 4) if traps else 0.0
                rows[name] = _row(
                    summary, kind="peer", gptcache_threshold=t, disagreements=disagree
                )
        t2 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            redisvl = _redisvl(redis_url, pairs, embedder)
        if "error" in redisvl:
            if not any(n.startswith("RedisVL") for n in out["notes"]):
                why = redisvl["error"]
                if "FT." in why:
                    why += (
                        " -- RedisVL needs the Redis Query Engine with vector fields "
                        "(RediSearch >= 2.4: Redis Stack or Redis 8); this redis-server "
                        "has no FT.* commands, and Debian's redis-redisearch package "
                        "(1.2) predates vector search"
                    )
                out["notes"].append(
                    f"RedisVL SemanticCache could not run against the local redis-server: {why}"
                )
        else:
            rows["RedisVL SemanticCache (distance 0.1)"] = {
                "pairs": len(pairs),
                "should_hit": sum(p.same_answer for p in pairs),
                "traps": sum(not p.same_answer for p in pairs),
                "kind": "peer",
                **redisvl,
            }
        out["datasets"][label] = {
            "rows": rows,
            "seconds": {"llmcache": t1 - t0, "gptcache": t2 - t1},
        }
    return out


def main(argv: list[str]) -> int:
    """Print `evaluate_all` as JSON; ``argv``: an optional Redis URL."""
    result = evaluate_all(argv[0] if argv else None)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip GPTCache's exit hooks (one index flush per pair)


if __name__ == "__main__":
    main(sys.argv[1:])
