"""The labeled evaluation sets under ``llmcache/vector/data`` stay well formed.

Every line parses, has the keys and types its kind needs, names a known category with that
category's label, and the sets keep their minimum sizes. No pair appears twice, within a file
or across files (the older ``semantic_pairs*.jsonl`` included), and a holdout shares no
sentence (no chat) with the sets it checks, so it measures something the rest did not tune;
the second adversarial holdout shares none with the first or with the guards' tests either.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmcache.vector.eval import BUNDLED_PAIRS, load_pairs

DATA = BUNDLED_PAIRS.parent

TRAP_KINDS = (
    "role_swap",
    "operator",
    "quantifier",
    "code_token",
    "scaled_number",
    "single_letter",
    "other_language",
    "unit",
    "negation_subtle",
    "direction",
    "comparative",
)
#: category -> same_answer, for the adversarial question sets.
QUESTION_LABELS = {"hard_paraphrase": True, **{kind: False for kind in TRAP_KINDS}}
#: category -> same_answer, for the conversation sets.
CONVERSATION_LABELS = {
    "reworded": True,
    "extra_chatter": True,
    "irrelevant_history": True,
    "context_swap": False,
    "detail_swap": False,
    "intent_flip": False,
}
ROLES = ("system", "user", "assistant")

#: file -> (category -> at least this many pairs, traps in total at least).
QUESTION_MINIMUMS = {
    "adversarial_pairs.jsonl": ({"hard_paraphrase": 120, **dict.fromkeys(TRAP_KINDS, 18)}, 240),
    "adversarial_pairs_holdout.jsonl": (
        {"hard_paraphrase": 30, **dict.fromkeys(TRAP_KINDS, 5)},
        60,
    ),
    "adversarial_pairs_holdout2.jsonl": (
        {"hard_paraphrase": 30, **dict.fromkeys(TRAP_KINDS, 6)},
        66,
    ),
}
CONVERSATION_MINIMUMS = {
    "conversation_pairs.jsonl": dict.fromkeys(CONVERSATION_LABELS, 40),
    "conversation_pairs_holdout.jsonl": dict.fromkeys(CONVERSATION_LABELS, 10),
}
OLDER_SETS = ("semantic_pairs.jsonl", "semantic_pairs_holdout.jsonl")


def _rows(name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every line; a blank or non-object line fails here."""
    text = (DATA / name).read_text(encoding="utf-8")
    assert text.endswith("\n"), f"{name}: no final newline"
    for n, line in enumerate(text.splitlines(), 1):
        obj = json.loads(line)
        assert isinstance(obj, dict), f"{name}:{n}: not an object"
        yield n, obj


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _chat_key(messages: list[dict[str, str]]) -> str:
    return json.dumps([(m["role"], _norm(m["content"])) for m in messages])


def _pair_key(obj: dict[str, Any]) -> tuple[str, str]:
    """The pair without order, case or spacing: (a, b) and (b, a) are one pair."""
    a, b = ((_norm(x) if isinstance(x, str) else _chat_key(x)) for x in (obj["a"], obj["b"]))
    return (a, b) if a <= b else (b, a)


def _check_label(name: str, n: int, obj: dict[str, Any], labels: dict[str, bool]) -> None:
    assert set(obj) == {"a", "b", "same_answer", "category"}, f"{name}:{n}: keys {sorted(obj)}"
    assert isinstance(obj["same_answer"], bool), f"{name}:{n}: same_answer not a bool"
    assert obj["category"] in labels, f"{name}:{n}: unknown category {obj['category']!r}"
    assert obj["same_answer"] is labels[obj["category"]], (
        f"{name}:{n}: {obj['category']} must have same_answer {labels[obj['category']]}"
    )


def _check_chat(where: str, messages: object) -> None:
    assert isinstance(messages, list) and 2 <= len(messages) <= 6, f"{where}: 2 to 6 turns"
    for i, message in enumerate(messages):
        assert isinstance(message, dict) and set(message) == {"role", "content"}, where
        assert message["role"] in ROLES, f"{where}: role {message['role']!r}"
        assert isinstance(message["content"], str) and message["content"].strip(), where
        assert message["role"] != "system" or i == 0, f"{where}: system turn not first"
    turns = [m["role"] for m in messages if m["role"] != "system"]
    assert turns[-1] == "user", f"{where}: does not end with a user turn"
    assert all(x != y for x, y in zip(turns, turns[1:], strict=False)), (
        f"{where}: user and assistant turns do not alternate"
    )


@pytest.mark.parametrize("name", sorted(QUESTION_MINIMUMS))
def test_question_sets_are_well_formed_and_large_enough(name: str) -> None:
    counts: Counter[str] = Counter()
    for n, obj in _rows(name):
        _check_label(name, n, obj, QUESTION_LABELS)
        a, b = obj["a"], obj["b"]
        assert isinstance(a, str) and isinstance(b, str) and a.strip() and b.strip(), (
            f"{name}:{n}: a and b must be non-empty strings"
        )
        assert _norm(a) != _norm(b), f"{name}:{n}: a and b are the same text"
        counts[obj["category"]] += 1
    minimums, traps = QUESTION_MINIMUMS[name]
    short = {k: (counts[k], need) for k, need in minimums.items() if counts[k] < need}
    assert not short, f"{name}: categories under their minimum (have, need): {short}"
    assert sum(counts[k] for k in TRAP_KINDS) >= traps
    # the CLI's own reader takes the file as it is
    assert len(load_pairs(DATA / name)) == sum(counts.values())


@pytest.mark.parametrize("name", sorted(CONVERSATION_MINIMUMS))
def test_conversation_sets_are_well_formed_and_large_enough(name: str) -> None:
    counts: Counter[str] = Counter()
    for n, obj in _rows(name):
        _check_label(name, n, obj, CONVERSATION_LABELS)
        _check_chat(f"{name}:{n}: a", obj["a"])
        _check_chat(f"{name}:{n}: b", obj["b"])
        assert _chat_key(obj["a"]) != _chat_key(obj["b"]), f"{name}:{n}: a and b are one chat"
        if obj["category"] == "extra_chatter":
            assert len(obj["b"]) > len(obj["a"]), f"{name}:{n}: b has no extra turns"
        if obj["category"] == "context_swap":
            assert obj["a"][-1] == obj["b"][-1], f"{name}:{n}: the last messages differ"
        counts[obj["category"]] += 1
    minimums = CONVERSATION_MINIMUMS[name]
    short = {k: (counts[k], need) for k, need in minimums.items() if counts[k] < need}
    assert not short, f"{name}: categories under their minimum (have, need): {short}"


def test_no_pair_appears_twice_in_any_file_or_across_files() -> None:
    seen: dict[tuple[str, str], str] = {}
    names = (*OLDER_SETS, *QUESTION_MINIMUMS, *CONVERSATION_MINIMUMS)
    for name in names:
        for n, obj in _rows(name):
            key = _pair_key(obj)
            assert key not in seen, f"{name}:{n} repeats {seen.get(key)}"
            seen[key] = f"{name}:{n}"


def _sentences(*names: str) -> set[str]:
    return {_norm(obj[side]) for name in names for _, obj in _rows(name) for side in "ab"}


def _chats(name: str) -> set[str]:
    return {_chat_key(obj[side]) for _, obj in _rows(name) for side in "ab"}


def test_holdouts_share_no_sentence_or_chat_with_the_rest() -> None:
    tuned = _sentences("adversarial_pairs.jsonl", *OLDER_SETS)
    shared = _sentences("adversarial_pairs_holdout.jsonl") & tuned
    assert not shared, f"holdout sentences also in the other sets: {sorted(shared)[:5]}"
    # The second holdout was written after the guards were tuned on the first one too.
    tuned |= _sentences("adversarial_pairs_holdout.jsonl")
    shared = _sentences("adversarial_pairs_holdout2.jsonl") & tuned
    assert not shared, f"holdout2 sentences also in the other sets: {sorted(shared)[:5]}"
    shared_chats = _chats("conversation_pairs_holdout.jsonl") & _chats("conversation_pairs.jsonl")
    assert not shared_chats, f"holdout chats also in the main set: {sorted(shared_chats)[:2]}"


def test_the_second_holdout_shares_no_sentence_with_the_guard_tests() -> None:
    # The guards were written against their tests' sentences as well as the sets.
    tests = Path(__file__).parent
    text = _norm(" ".join(p.read_text(encoding="utf-8") for p in tests.glob("test_guards*.py")))
    shared = sorted(s for s in _sentences("adversarial_pairs_holdout2.jsonl") if s in text)
    assert not shared, f"holdout2 sentences also in the guard tests: {shared[:5]}"
