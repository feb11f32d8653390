"""``llmcache eval``: the semantic cache measured on labeled pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from llmcache.cli import app
from llmcache.vector.eval import BUNDLED_HOLDOUT, BUNDLED_PAIRS, load_pairs

PAIRS = [
    {
        "a": "How do I reverse a list in Python?",
        "b": "how do i reverse a list in python",
        "same_answer": True,
        "category": "near_repeat",
    },
    {
        "a": "Where is order 48213?",
        "b": "Where is order 48231?",
        "same_answer": False,
        "category": "number",
    },
    {
        "a": "Is it safe to eat raw eggs?",
        "b": "Is it not safe to eat raw eggs?",
        "same_answer": False,
        "category": "negation",
    },
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
    assert report["per_category"]["number"] == {
        "pairs": 1,
        "should_hit": 0,
        "traps": 1,
        "served": 0.0,
        "wrong": 0.0,
    }
    assert report["threshold_used"] == 0.6 and report["embedder"] == "hashing-v1-256"
    assert report["vetoes"]["traps"] == {"numbers": 1, "negation": 1}


def test_guards_off_shows_what_they_buy(pairs: Path) -> None:
    result = run(
        "eval", str(pairs), "--embedder", "hashing", "--threshold", "0.6", "--no-guards", "--json"
    )
    report = json.loads(result.stdout)
    assert report["guards"] == [] and report["wrong"] == 1.0
    assert report["best"]["wrong"] <= report["budget"] == 0.02


def test_table_output(pairs: Path) -> None:
    result = run("eval", str(pairs), "--embedder", "hashing")
    assert result.exit_code == 0, result.output
    assert "should-hit pairs served" in result.stdout and "near_repeat" in result.stdout
    assert "traps served a wrong answer" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", ":1: not JSON"),
        ('{"a": "x", "b": "y"}\n', ":1: expected"),
        ("\n", "no pairs"),
    ],
)
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
    for args in (["--threshold", "-1"], ["--threshold", "1"], ["--budget", "0"], ["--budget", "1"]):
        result = run("eval", str(pairs), "--embedder", "hashing", *args, "--json")
        assert result.exit_code == 0, result.output


# ------------------------------------------------------------------ judges and a stated bound

JUDGED = [
    *(
        {
            "a": f"How do I cook {food} rice?",
            "b": f"how do i cook {food} rice",
            "same_answer": True,
            "category": "near_repeat",
        }
        for food in ("basmati", "jasmine", "brown", "sushi", "wild", "arborio", "black", "red")
    ),
    *(
        {
            "a": f"Where is order {n}?",
            "b": f"Where is order {n + 1}?",
            "same_answer": False,
            "category": "number",
        }
        for n in (48213, 51220, 60001, 70010)
    ),
    *(
        {
            "a": f"How do I cook {food} rice?",
            "b": f"How do I store {food} rice?",
            "same_answer": False,
            "category": "scope",
        }
        for food in ("basmati", "jasmine", "wild")
    ),
]


@pytest.fixture
def judged(tmp_path: Path) -> Path:
    path = tmp_path / "judged.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in JUDGED))
    return path


def run_json(*args: str) -> dict[str, Any]:
    result = run("eval", *args, "--embedder", "hashing", "--json")
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_a_right_judge_under_a_bound_serves_the_repeats_and_no_trap(judged: Path) -> None:
    report = run_json(str(judged), "--judge-accuracy", "1", "--max-error", "0.01", "--splits", "2")
    figures = report["figures"]
    assert figures["served"]["mean"] > 0.5 and figures["wrong"]["max"] == 0.0
    assert figures["served_at_once"]["mean"] == 0.0  # judged in the background
    assert report["judge"] == "simulated judge right 100%" and report["splits"] == 2
    assert report["per_category"]["number"]["wrong"] == 0.0
    assert set(report["basis"]) <= {"alias", "judge", "learned"}
    inline = run_json(
        str(judged), "--judge-accuracy", "1", "--max-error", "0.01", "--splits", "2", "--inline"
    )
    assert inline["figures"]["served_at_once"] == inline["figures"]["served"]


def test_a_judge_always_wrong_serves_traps_only_on_its_word(judged: Path) -> None:
    report = run_json(str(judged), "--judge-accuracy", "0", "--max-error", "0.01", "--splits", "2")
    assert report["figures"]["served"]["max"] == 0.0  # it rejects every repeat
    assert report["figures"]["wrong"]["mean"] > 0.0  # and approves the scope traps
    assert report["per_category"]["number"]["wrong"] == 0.0  # hard vetoes: never asked
    assert set(report["basis"]) == {"alias"}  # nothing learned within a 1% bound


def test_a_simulated_judge_without_a_bound_is_asked_inline(judged: Path) -> None:
    report = run_json(str(judged), "--judge-accuracy", "1", "--threshold", "0.99")
    assert report["max_error"] is None
    assert report["figures"]["served"]["mean"] == 1.0
    assert report["figures"]["wrong"]["mean"] == 0.0


def test_a_real_backend_as_the_judge(judged: Path) -> None:
    # The public mock echoes the question: no clear yes, so no judged hit.
    report = run_json(str(judged), "--verifier", "mock:echo-judge", "--threshold", "0.99")
    assert report["judge"] == "judge mock:echo-judge"
    assert report["verifier"]["unparsed"] > 0 and report["figures"]["wrong"]["max"] == 0.0


def test_curve_and_holdout_measurement(judged: Path, tmp_path: Path) -> None:
    result = run(
        "eval",
        str(judged),
        "--embedder",
        "hashing",
        "--judge-accuracy",
        "0.95",
        "--curve",
        "--splits",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "served share against the bound" in result.stdout and "20.0%" in result.stdout
    report = run_json(
        str(judged),
        "--judge-accuracy",
        "0.95",
        "--max-error",
        "0.05",
        "--calibrate-on",
        str(judged),
        "--splits",
        "1",
    )
    assert report["pairs"] == len(JUDGED)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--judge-accuracy", "0.9", "--verifier", "mock:x"], "choose one judge"),
        (["--calibrate-on", "x.jsonl"], "needs --max-error"),
        (["--max-error", "0", "--judge-accuracy", "1"], "max_error"),
        (["--verifier", "mock"], "BACKEND:MODEL"),
        (["--verifier", "no-such-backend:m"], "no-such-backend"),
        (["--judge-accuracy", "1.5"], "--judge-accuracy"),
    ],
)
def test_judged_usage_errors(judged: Path, args: list[str], message: str) -> None:
    result = run("eval", str(judged), "--embedder", "hashing", *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.replace("│", " ").split())
