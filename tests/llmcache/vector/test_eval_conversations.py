"""`llmcache eval` on chats: pairs of message lists load and are served through
`SemanticCache.get` itself; and the bundled parts (WordLlama, the default guards, no judge)
keep the quality targets on the bundled sets: every figure below is deterministic, so a
change that makes the defaults less safe fails here."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from llmcache.vector.embedders import HashingEmbedder
from llmcache.vector.eval import (
    BUNDLED_PAIRS,
    Pair,
    load_pairs,
    score_pairs,
    serve_pairs,
    tally,
)

DATA = BUNDLED_PAIRS.parent


def u(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


def a(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


HISTORY = [u("I'm repotting a fiddle leaf fig."), a("Nice, spring is a good time.")]
CHATS = [
    Pair(
        [*HISTORY, u("What soil should I use?")],
        [
            u("hi!"),
            a("Hello!"),
            *HISTORY,
            u("cool"),
            a("Glad to help."),
            u("What soil should I use?"),
        ],
        True,
        "extra_chatter",
    ),
    Pair(
        [*HISTORY, u("What soil should I use?")],
        [u("I'm repotting an orchid."), HISTORY[1], u("What soil should I use?")],
        False,
        "context_swap",
    ),
]


def _write(tmp_path: Path, rows: list[object]) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def test_chat_pairs_load(tmp_path: Path) -> None:
    rows = [
        {"a": p.a, "b": p.b, "same_answer": p.same_answer, "category": p.category} for p in CHATS
    ]
    assert load_pairs(_write(tmp_path, rows)) == CHATS


@pytest.mark.parametrize(
    "row",
    [
        {"a": "How do I repot a fig?", "b": [u("How do I repot a fig?")], "same_answer": True},
        {"a": [], "b": [u("x")], "same_answer": True},
        {"a": [{"role": "user"}], "b": [u("x")], "same_answer": True},
        {"a": [{"role": "user", "content": 3}], "b": [u("x")], "same_answer": True},
    ],
)
def test_malformed_chat_pairs_name_the_line(tmp_path: Path, row: object) -> None:
    with pytest.raises(ValueError, match=r"pairs\.jsonl:1: expected"):
        load_pairs(_write(tmp_path, [row]))


def test_chat_pairs_are_served_through_the_cache() -> None:
    served = serve_pairs(CHATS, HashingEmbedder(), threshold=-1.0)
    assert served == [True, False]
    assert [s.served(-1.0) for s in score_pairs(CHATS, HashingEmbedder())] == served
    report = tally(CHATS, served)
    assert (report["served"], report["wrong"]) == (1.0, 0.0)


# ------------------------------------------------- the bundled parts, no judge: floors


@pytest.fixture(scope="module")
def wordllama() -> object:
    pytest.importorskip("wordllama")
    from llmcache.vector.embedders import WordLlamaEmbedder

    return WordLlamaEmbedder()


def _report(name: str, embedder: object) -> dict[str, object]:
    pairs = load_pairs(DATA / name)
    return tally(pairs, serve_pairs(pairs, embedder))  # type: ignore[arg-type]


def test_question_pairs_half_served_within_one_percent_wrong(wordllama: object) -> None:
    report = _report("semantic_pairs.jsonl", wordllama)
    assert report["served"] >= 0.50  # type: ignore[operator]
    assert report["wrong"] <= 0.005  # 0.5% before the guards changed: never less safe


def test_adversarial_traps_at_most_one_percent_wrong(wordllama: object) -> None:
    report = _report("adversarial_pairs.jsonl", wordllama)
    assert report["wrong"] <= 0.01  # type: ignore[operator]
    per_category = report["per_category"]
    assert per_category["hard_paraphrase"]["served"] >= 0.30  # type: ignore[index]


def test_conversations_at_most_one_percent_wrong(wordllama: object) -> None:
    report = _report("conversation_pairs.jsonl", wordllama)
    assert report["wrong"] <= 0.01  # type: ignore[operator]
    per_category = report["per_category"]
    assert per_category["extra_chatter"]["served"] >= 0.9  # type: ignore[index]
    assert per_category["irrelevant_history"]["served"] >= 0.4  # type: ignore[index]
