"""The app end to end on the real local model (SmolLM2-135M on llama.cpp). Run by
``make test-real``; deselected from ``make test``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ai_todo.cli import BENCHMARK_INPUTS, app
from typer.testing import CliRunner

pytestmark = pytest.mark.real_model


def test_cold_then_warm_benchmark_and_search_on_the_real_model(
    llama_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    for name, value in {
        "AI_TODO_HOME": str(home),
        "OLLAMA_HOST": llama_server,
        "AI_TODO_BACKEND": "ollama",
        "AI_TODO_MODEL": "smollm2",
        "AI_TODO_EMBEDDER": "auto",
        "COLUMNS": "200",
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    reports = []
    for run in ("cold", "warm"):
        report = tmp_path / f"{run}.json"
        result = runner.invoke(
            app, ["benchmark", "--count", "5", "--report", str(report)], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        reports.append(json.loads(report.read_text()))
    cold, warm = reports
    assert cold["cache_hits"] == 0 and warm["cache_hits"] == 5
    assert warm["total_s"] * 10 < cold["total_s"]
    extracted = [t for t in cold["tasks"] if not t["needs_review"]]
    assert extracted, f"the model extracted no valid task: {cold['tasks']}"
    assert [t["input"] for t in cold["tasks"]] == list(BENCHMARK_INPUTS)

    # The benchmark removed its tasks; add the notes for real (all answered from the cache)
    # and find one by meaning: the model cannot embed, so the local embedder does.
    for note in BENCHMARK_INPUTS:
        assert runner.invoke(app, ["add", note]).exit_code == 0
    found = runner.invoke(app, ["search", "food shopping", "--limit", "1"])
    assert found.exit_code == 0 and "buy groceries tomorrow" in _raw_inputs(home, found.output)
    assert "wordllama" in (home / "tasks.index.json").read_text()
    stats = runner.invoke(app, ["stats"])
    assert "ai_extraction" in stats.output and "answered from the cache" in stats.output


def _raw_inputs(home: Path, output: str) -> str:
    from ai_todo.repository import TaskRepository

    with TaskRepository(home / "tasks.db") as repo:
        return " ".join(t.raw_input for t in repo.list() if t.short_id in output)
