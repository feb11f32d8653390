"""``llmcache eval``: the semantic cache measured on labeled pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from llmcache.cli import app
from llmcache.vector.eval import BUNDLED_HOLDOUT, BUNDLED_PAIRS, load_pairs

PAIRS = [
    {"a": "How do I reverse a list in Python?", "b": "how do i reverse a list in python",
     "same_answer": True, "category": "near_repeat"},
    {"a": "Where is order 48213?", "b": "Where is order 48231?", "same_answer": False,
     "category": "number"},
    {"a": "Is it safe to eat raw eggs?", "b": "Is it not safe to eat raw eggs?",
     "same_answer": False, "category": "negation"},
]


def run(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"}).invoke(app, list(args))


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PAIRS) + "\n")
    return path


def test_json_report(pairs: Path) -> None:
    result = run("eval", str(pairs), "--embedder", "hashing", "--threshold", "0.6", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"served", "wrong", "per_category", "threshold"} <= report.keys()
    assert report["served"] == 1.0 and report["wrong"] == 0.0
    assert report["per_category"]["number"] == {"pairs": 1, "should_hit": 0, "traps": 1,
                                                "served": 0.0, "wrong": 0.0}
    assert report["threshold_used"] == 0.6 and report["embedder"] == "hashing-v1-256"
    assert report["vetoes"]["traps"] == {"numbers": 1, "negation": 1}


def test_guards_off_shows_what_they_buy(pairs: Path) -> None:
    result = run("eval", str(pairs), "--embedder", "hashing", "--threshold", "0.6",
                 "--no-guards", "--json")
    report = json.loads(result.stdout)
    assert report["guards"] == [] and report["wrong"] == 1.0
    assert report["best"]["wrong"] <= report["budget"] == 0.02


def test_table_output(pairs: Path) -> None:
    result = run("eval", str(pairs), "--embedder", "hashing")
    assert result.exit_code == 0, result.output
    assert "should-hit pairs served" in result.stdout and "near_repeat" in result.stdout
    assert "traps served a wrong answer" in result.stdout


@pytest.mark.parametrize(("content", "message"), [
    ("not json\n", ":1: not JSON"),
    ('{"a": "x", "b": "y"}\n', ":1: expected"),
    ("\n", "no pairs"),
])
def test_bad_pairs_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    result = run("eval", str(path), "--embedder", "hashing")
    assert result.exit_code == 2 and message in result.stderr


def test_missing_file_and_unknown_embedder(pairs: Path, tmp_path: Path) -> None:
    assert run("eval", str(tmp_path / "nope.jsonl")).exit_code == 2
    result = run("eval", str(pairs), "--embedder", "word2vec")
    assert result.exit_code == 2 and "unknown embedder" in result.stderr


def test_bundled_sets_are_well_formed() -> None:
    main, holdout = load_pairs(BUNDLED_PAIRS), load_pairs(BUNDLED_HOLDOUT)
    assert len(main) >= 300 and len(holdout) >= 50
    share = sum(p.same_answer for p in main) / len(main)
    assert 0.4 <= share <= 0.5
    assert not {(p.a, p.b) for p in main} & {(p.a, p.b) for p in holdout}


def test_bundled_embedder_keeps_wrong_answers_within_budget() -> None:
    pytest.importorskip("wordllama")
    for path in (BUNDLED_PAIRS, BUNDLED_HOLDOUT):
        result = run("eval", str(path), "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["wrong"] <= 0.02, report["wrong_pairs"]
        assert report["served"] >= 0.45


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1.5", "-1.01", "1e999"])
def test_threshold_out_of_range_is_a_usage_error(pairs: Path, value: str) -> None:
    result = run("eval", str(pairs), "--embedder", "hashing", "--threshold", value, "--json")
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.replace("│", " ").split())
    assert "--threshold" in message and "[-1, 1]" in message, message
    assert result.stdout == ""


@pytest.mark.parametrize("value", ["nan", "inf", "-0.1", "1.01"])
def test_budget_out_of_range_is_a_usage_error(pairs: Path, value: str) -> None:
    result = run("eval", str(pairs), "--embedder", "hashing", "--budget", value, "--json")
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.replace("│", " ").split())
    assert "--budget" in message and "[0, 1]" in message, message


def test_range_ends_are_accepted(pairs: Path) -> None:
    for args in (["--threshold", "-1"], ["--threshold", "1"], ["--budget", "0"],
                 ["--budget", "1"]):
        result = run("eval", str(pairs), "--embedder", "hashing", *args, "--json")
        assert result.exit_code == 0, result.output
