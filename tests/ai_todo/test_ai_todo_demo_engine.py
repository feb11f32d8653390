"""The example app on the bundled server's demo engine, end to end, and the app's rules that
do not trust a model: priority and due date from the note, invalid answers never cached,
clear messages for id prefixes, read-only commands that create nothing.

The ``engine`` fixture is overridden here: ``server``, ``env`` and ``cli`` (from conftest)
run on a `DemoEngine` behind a real `OllamaServer` on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from ai_todo.repository import TaskRepository
from ai_todo_fakes import TaskEngine, cached_answers
from click.testing import Result
from llmcache_testserver import EchoEngine, OllamaServer, Prompt
from llmcache_testserver.demo_engine import DemoEngine, fit, task_for
from llmcache_testserver.process import spawn_server

Cli = Callable[..., Result]


@pytest.fixture
def engine() -> DemoEngine:
    return DemoEngine()


def _tasks(home: Path) -> dict[str, dict[str, Any]]:
    with TaskRepository(home / "tasks.db") as repo:
        return {
            t.raw_input: {
                "id": t.id,
                "title": t.title,
                "due": t.due_date,
                "priority": t.priority,
                "tags": t.tags,
                "status": t.status,
                "review": t.needs_review,
            }
            for t in repo.list(status=None)
        }


# -- the demo engine itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("note", "title", "due", "priority", "tags"),
    [
        ("buy groceries tomorrow", "Buy groceries", "tomorrow", "medium", ["shopping"]),
        ("finish report by Friday", "Finish report", "friday", "medium", ["work"]),
        ("call mom in the afternoon", "Call mom", "today", "medium", ["family"]),
        (
            "schedule dentist appointment",
            "Schedule dentist appointment",
            None,
            "medium",
            ["health"],
        ),
        ("review pull request urgent", "Review pull request", None, "urgent", ["work"]),
        ("pay rent on Monday, important", "Pay rent", "monday", "high", ["money"]),
        ("not urgent: clean the garage", "Clean the garage", None, "low", ["home"]),
        ("pay taxes on Dec 24th", "Pay taxes", "dec 24th", "medium", ["money"]),
        ("meet Ana 2026-01-05", "Meet Ana", "2026-01-05", "medium", ["general"]),
    ],
)
def test_demo_engine_derives_a_task_from_the_note(
    note: str, title: str, due: str | None, priority: str, tags: list[str]
) -> None:
    assert task_for(note) == {"title": title, "due_date": due, "priority": priority, "tags": tags}


def test_demo_engine_honours_the_schema_it_is_given() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "due_date", "priority", "tags", "estimate", "done"],
        "properties": {
            "title": {"type": "string", "maxLength": 8},
            # A retry schema: only null or the note's own words are allowed.
            "due_date": {"anyOf": [{"type": "null"}, {"enum": ["tomorrow"]}]},
            "priority": {"enum": ["LOW", "MEDIUM"]},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 0},
            "estimate": {"type": "integer"},
            "done": {"const": False},
        },
    }
    reply = DemoEngine().generate(
        Prompt(
            model="demo",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "finish report by Friday"},
            ],
            format=schema,
        )
    )
    assert isinstance(reply.text, str)
    answer = json.loads(reply.text)
    assert answer == {
        "title": "Finish r",
        "due_date": None,
        "priority": "MEDIUM",
        "tags": [],
        "estimate": 0,
        "done": False,
    }
    assert fit("friday", {"enum": ["tomorrow", "Friday"]}, "") == "Friday"
    assert fit(["a", "b"], {"type": "array", "minItems": 3, "items": {"type": "string"}}, "x") == [
        "a",
        "b",
        "x",
    ]


def test_demo_engine_cuts_at_num_predict_like_a_model() -> None:
    reply = DemoEngine().generate(
        Prompt(model="demo", prompt="buy milk", options={"num_predict": 2})
    )
    assert reply.text == '{"title": "Buy ' and reply.done_reason == "length"


# -- the app on the demo engine, end to end --------------------------------------------------


def test_add_list_done_on_the_demo_engine(cli: Cli, home: Path) -> None:
    today = date.today()
    for note in (
        "buy groceries tomorrow",
        "review pull request urgent",
        "schedule dentist appointment",
        "call mom in the afternoon",
    ):
        added = cli("add", note)
        assert added.exit_code == 0, added.output
        assert "Added" in added.output
    tasks = _tasks(home)
    groceries = tasks["buy groceries tomorrow"]
    assert groceries["title"] == "Buy groceries" and groceries["priority"] == "medium"
    assert groceries["due"] == today + timedelta(days=1) and groceries["tags"] == ("shopping",)
    assert tasks["review pull request urgent"]["priority"] == "urgent"
    assert tasks["review pull request urgent"]["due"] is None
    assert tasks["schedule dentist appointment"]["due"] is None
    assert tasks["call mom in the afternoon"]["due"] == today
    assert not any(t["review"] for t in tasks.values())

    listed = cli("list")
    assert listed.exit_code == 0
    assert all(t["title"] in listed.output for t in tasks.values())
    done = cli("done", groceries["id"][:5])
    assert done.exit_code == 0 and "Done" in done.output
    assert _tasks(home)["buy groceries tomorrow"]["status"] == "done"
    assert "Buy groceries" not in cli("list").output
    assert "✓ done" in cli("list", "--all").output
    again = cli("add", "buy groceries tomorrow")  # the same note: from the cache
    assert again.exit_code == 0 and "from cache" in again.output


def test_the_server_flag_and_the_command_in_processes_of_their_own(tmp_path: Path) -> None:
    # What the example's README shows: `python -m llmcache_testserver --engine demo`,
    # then `ai-todo add` in a process of its own.
    home = tmp_path / "home"
    with spawn_server(engine="demo") as url:
        env = {
            **os.environ,
            "OLLAMA_HOST": url,
            "AI_TODO_HOME": str(home),
            "AI_TODO_EMBEDDER": "hashing",
            "COLUMNS": "200",
        }
        env.pop("AI_TODO_MODEL", None)  # the app's default model, which the demo serves
        added = subprocess.run(
            [sys.executable, "-m", "ai_todo", "add", "finish report by Friday"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert added.returncode == 0, added.stderr
    assert "Finish report" in added.stdout and "due " in added.stdout
    assert _tasks(home)["finish report by Friday"]["due"] is not None


# -- answers the app must not trust ------------------------------------------------------------


def test_a_model_that_always_says_urgent_and_invents_dates_is_overruled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    always_urgent = TaskEngine()
    always_urgent.replies = [
        json.dumps({"title": t, "due_date": "tomorrow", "priority": "urgent", "tags": []})
        for t in ("Water the plants", "Fix the server")
    ]
    home = tmp_path / "home"
    with OllamaServer(always_urgent) as server:
        _point_at(monkeypatch, server, home)
        from ai_todo.cli import app
        from typer.testing import CliRunner

        runner = CliRunner()
        for note in ("water the plants", "fix the server immediately"):
            assert runner.invoke(app, ["add", note]).exit_code == 0
    tasks = _tasks(home)
    assert tasks["water the plants"]["priority"] == "medium"
    assert tasks["water the plants"]["due"] is None  # the note names no date
    assert tasks["fix the server immediately"]["priority"] == "urgent"


@pytest.mark.parametrize(
    ("model", "backend", "code", "reason"),
    [
        ("smollm2", "ollama", 3, "model 'smollm2' not found"),
        ("llama3.2", "ollama", 4, "characters; at most 200"),
        ("smollm2", "mock", 4, "not valid JSON"),
    ],
)
def test_the_echo_engines_answers_fail_loudly_and_are_not_cached(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    backend: str,
    code: int,
    reason: str,
) -> None:
    home = tmp_path / "home"
    with OllamaServer(EchoEngine()) as server:
        _point_at(monkeypatch, server, home)
        from ai_todo.cli import app
        from typer.testing import CliRunner

        result = CliRunner().invoke(
            app, ["--model", model, "--backend", backend, "add", "buy groceries tomorrow"]
        )
    assert result.exit_code == code, result.output
    assert reason in result.stderr and "flagged for review" in result.stderr
    assert cached_answers(home) == 0


def _point_at(monkeypatch: pytest.MonkeyPatch, server: OllamaServer, home: Path) -> None:
    for name, value in {
        "OLLAMA_HOST": server.url,
        "AI_TODO_HOME": str(home),
        "AI_TODO_EMBEDDER": "hashing",
        "AI_TODO_TIMEOUT": "20",
        "COLUMNS": "200",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AI_TODO_MODEL", "AI_TODO_BACKEND", "AI_TODO_EMBED_MODEL"):
        monkeypatch.delenv(name, raising=False)


# -- id prefixes and read-only commands --------------------------------------------------------


def test_an_id_prefix_gets_the_message_it_deserves(cli: Cli) -> None:
    assert cli("add", "water the plants").exit_code == 0
    not_hex = cli("done", "zzzz")
    assert not_hex.exit_code == 2
    assert "no task matches 'zzzz'" in not_hex.stderr and "at least" not in not_hex.stderr
    short = cli("done", "abc")
    assert short.exit_code == 2 and "at least the first 4 characters" in short.stderr


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("list",), 0, "No tasks"),
        (("list", "--all"), 0, "No tasks"),
        (("search", "groceries"), 0, "No task matches"),
        (("stats",), 0, "Nothing cached yet"),
        (("done", "3f2a"), 2, "holds no tasks yet"),
        (("delete", "3f2a"), 2, "holds no tasks yet"),
    ],
)
def test_reading_a_missing_data_folder_creates_nothing(
    cli: Cli, tmp_path: Path, args: tuple[str, ...], code: int, says: str
) -> None:
    missing = tmp_path / "nonexistent" / "x"
    result = cli("--home", str(missing), *args)
    assert result.exit_code == code, result.output
    assert says in result.output
    assert not (tmp_path / "nonexistent").exists()


def test_reading_an_empty_data_folder_leaves_it_empty(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (("list",), ("search", "milk"), ("stats",)):
        assert cli("--home", str(empty), *args).exit_code == 0
    assert list(empty.iterdir()) == []
