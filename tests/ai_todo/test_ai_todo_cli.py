"""The ``ai-todo`` command end to end, in-process, against a real server on loopback."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ai_todo.repository import TaskRepository
from ai_todo_fakes import TaskEngine, cached_answers
from click.testing import Result

from llmcache.vector import VectorIndex

Cli = Callable[..., Result]


def _tasks(home: Path) -> list[dict[str, object]]:
    with TaskRepository(home / "tasks.db") as repo:
        return [
            {
                "id": t.id,
                "title": t.title,
                "status": t.status,
                "review": t.needs_review,
                "due": t.due_date,
                "raw": t.raw_input,
            }
            for t in repo.list()
        ]


def test_add_list_done_delete(cli: Cli, home: Path, engine: TaskEngine) -> None:
    added = cli("add", "buy", "groceries", "tomorrow")
    assert added.exit_code == 0, added.output
    assert "Added" in added.output and "Buy groceries" in added.output
    assert engine.calls == 1
    cli("add", "review pull request urgent")
    listed = cli("list")
    assert "Buy groceries" in listed.output and "urgent" in listed.output
    tasks = _tasks(home)
    groceries = next(t for t in tasks if t["title"] == "Buy groceries")
    assert groceries["due"] is not None and groceries["raw"] == "buy groceries tomorrow"

    done = cli("done", str(groceries["id"])[:6])
    assert done.exit_code == 0 and "Done" in done.output
    assert "Buy groceries" not in cli("list").output  # open tasks only by default
    assert "✓ done" in cli("list", "--all").output

    deleted = cli("delete", str(groceries["id"]))
    assert deleted.exit_code == 0
    assert [t["title"] for t in _tasks(home)] == ["Review pull request urgent"]


def test_same_note_again_is_answered_from_the_cache(cli: Cli, engine: TaskEngine) -> None:
    cli("add", "call mom in the afternoon")
    again = cli("add", "call mom in the afternoon")
    assert "from cache" in again.output
    assert engine.calls == 1  # the second `add` (a new process would be the same: on disk)


def test_empty_text_is_refused_before_any_model_call(
    cli: Cli, engine: TaskEngine, home: Path
) -> None:
    result = cli("add", "   ")
    assert result.exit_code == 2
    assert "empty" in result.stderr
    assert engine.calls == 0


def test_unknown_id_is_a_clear_error(cli: Cli) -> None:
    cli("add", "water the plants")
    result = cli("done", "ffff0000")
    assert result.exit_code == 2 and "no task with id" in result.stderr


def test_search_finds_tasks_by_words_and_survives_restarts(cli: Cli, home: Path) -> None:
    for note in ("buy groceries tomorrow", "finish report by Friday", "call mom"):
        assert cli("add", note).exit_code == 0
    assert (home / "tasks.index").exists()  # saved when each command ended
    found = cli("search", "groceries")
    assert found.exit_code == 0
    first_row = next(line for line in found.output.splitlines() if "│" in line and "0." in line)
    assert "Buy groceries" in first_row
    gone = _tasks(home)[0]
    cli("delete", str(gone["id"]))
    assert str(gone["id"])[:8] not in cli("search", str(gone["title"])).output
    index = VectorIndex.load(home / "tasks.index")
    assert len(index) == 2 and str(gone["id"]) not in index


def test_schema_breaking_answer_is_retried_then_refused_with_a_reason(
    cli: Cli, home: Path, engine: TaskEngine
) -> None:
    engine.replies = ["not json at all", '{"title": "", "priority": "someday"}']
    result = cli("add", "plan the offsite")
    assert result.exit_code == 4
    assert "no valid task for 'plan the offsite' in 2 attempts" in result.stderr
    assert "title must be a non-empty string" in result.stderr
    assert engine.calls == 2  # exactly one retry
    assert cached_answers(home) == 0  # neither invalid answer was stored
    [task] = _tasks(home)  # the note is kept, flagged
    assert task["review"] is True and task["raw"] == "plan the offsite"
    assert str(task["id"])[:8] in result.stderr and "ai-todo list --review" in result.stderr
    assert "review" in cli("list", "--review").output
    again = cli("add", "plan the offsite")  # asked again, not answered from a cached refusal
    assert again.exit_code == 0 and engine.calls == 3


def test_a_locked_database_loses_nothing(cli: Cli, home: Path) -> None:
    assert cli("add", "water the plants").exit_code == 0
    holder = sqlite3.connect(home / "tasks.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = cli("add", "pay the electricity bill")
        assert result.exit_code == 2
        assert "tasks.db is locked by another process" in result.stderr
        assert "pending.jsonl" in result.stderr
        assert "Water the plants" in cli("list").output  # reads still work in WAL mode
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    kept = (home / "pending.jsonl").read_text()
    assert "pay the electricity bill" in kept
    assert cli("add", "call the plumber").exit_code == 0  # also saves the kept input
    titles = {t["title"] for t in _tasks(home)}
    assert {"Pay the electricity bill", "Call the plumber", "Water the plants"} <= titles
    assert not (home / "pending.jsonl").exists()


def test_stats_in_a_fresh_process_shows_persisted_metrics(
    cli: Cli, home: Path, env: dict[str, str]
) -> None:
    cli("add", "buy groceries tomorrow")
    cli("add", "buy groceries tomorrow")
    metrics = json.loads((home / "metrics.json").read_text())
    assert metrics["operations"]["ai_extraction"]["count"] == 2
    fresh = subprocess.run(
        [sys.executable, "-m", "ai_todo", "stats"],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "COLUMNS": "160"},
        timeout=60,
        check=False,
    )
    assert fresh.returncode == 0, fresh.stderr
    assert "ai_extraction" in fresh.stdout and "create_task" in fresh.stdout
    assert "1 of 2 (50%)" in fresh.stdout  # the second extraction was a cache hit
    entries = next(line for line in fresh.stdout.splitlines() if "entries (on disk)" in line)
    assert entries.split()[-2] == "1"
    hits_row = next(line for line in fresh.stdout.splitlines() if "Disk-tier hits" in line)
    assert hits_row.split()[-4] == "1"  # the second `add` read the first one's answer


def test_benchmark_removes_only_its_own_tasks(
    cli: Cli, home: Path, tmp_path: Path, engine: TaskEngine
) -> None:
    cli("add", "water the plants")
    report_file = tmp_path / "report.json"
    result = cli("benchmark", "--count", "7", "--report", str(report_file))
    assert result.exit_code == 0, result.output
    assert "Throughput" in result.output and "Removed the 7 tasks" in result.output
    report = json.loads(report_file.read_text())
    assert report["created"] == 7 and report["cache_hits"] == 2 and engine.calls == 6
    assert [t["title"] for t in _tasks(home)] == ["Water the plants"]
    parallel = cli("benchmark", "--count", "10", "--parallel")
    assert parallel.exit_code == 0, parallel.output
    assert engine.calls == 6  # every note is cached by now
    assert [t["title"] for t in _tasks(home)] == ["Water the plants"]


def test_benchmark_failing_half_way_still_removes_only_its_tasks(
    cli: Cli, home: Path, engine: TaskEngine
) -> None:
    cli("add", "water the plants")
    engine.fail_after = 3  # the plants, then two benchmark notes, then the server fails
    result = cli("benchmark", "--count", "5")
    assert result.exit_code == 3
    assert "injected engine failure" in result.stderr
    assert [t["title"] for t in _tasks(home)] == ["Water the plants"]
    failed_parallel = cli("benchmark", "--count", "8", "--parallel")
    assert failed_parallel.exit_code == 3
    assert [t["title"] for t in _tasks(home)] == ["Water the plants"]


def test_server_down_keeps_the_note_as_a_task_to_review(
    cli: Cli, home: Path, monkeypatch: object
) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")  # nothing listens on the discard port
    result = cli("add", "renew passport")
    assert result.exit_code == 3
    assert "could not be reached" in result.stderr and "for review" in result.stderr
    assert "--engine demo" in result.stderr  # what to start instead
    assert [t["raw"] for t in _tasks(home)] == ["renew passport"]


def test_backend_option_and_unknown_backend(cli: Cli, home: Path) -> None:
    unknown = cli("--backend", "no-such-backend", "add", "buy milk")
    assert (
        unknown.exit_code == 2 and "no llmcache backend named 'no-such-backend'" in unknown.stderr
    )
    # The public mock backend echoes instead of answering JSON: refused, kept for review.
    mocked = cli("--backend", "mock", "add", "buy milk")
    assert mocked.exit_code == 4 and "not valid JSON" in mocked.stderr
    assert [t["raw"] for t in _tasks(home)] == ["buy milk"]
    assert cached_answers(home) == 0
