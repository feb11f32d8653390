"""Fixtures for the ai_todo app: a real Ollama-compatible server on loopback with a scripted
engine, a fresh data folder, and a CliRunner bound to both.

- ``TaskEngine``: an `EchoEngine` that answers extraction requests with realistic task JSON
  derived from the note (or with replies queued in ``engine.replies``), counts its calls,
  and can be told to fail after N generations (``engine.fail_after``);
- ``engine`` / ``server``: one of those behind an `OllamaServer`, per test;
- ``home``: an empty data folder; ``env``: the environment pointing the app at both (hashing
  embedder for speed, a short database timeout);
- ``cli(*args)``: runs ``ai-todo`` in-process and returns the click result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ai_todo.cli import app
from ai_todo_fakes import TaskEngine
from click.testing import Result
from llmcache_testserver import OllamaServer
from typer.testing import CliRunner


@pytest.fixture
def engine() -> TaskEngine:
    return TaskEngine()


@pytest.fixture
def server(engine: TaskEngine) -> Iterator[OllamaServer]:
    with OllamaServer(engine) as running:
        yield running


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def env(server: OllamaServer, home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "AI_TODO_HOME": str(home),
        "OLLAMA_HOST": server.url,
        "AI_TODO_MODEL": "smollm2",
        "AI_TODO_BACKEND": "ollama",
        "AI_TODO_EMBEDDER": "hashing",
        "AI_TODO_DB_TIMEOUT": "0.2",
        "AI_TODO_TIMEOUT": "20",
        "COLUMNS": "200",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AI_TODO_EMBED_MODEL", raising=False)
    return values


@pytest.fixture
def cli(env: dict[str, str]) -> Callable[..., Result]:
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return run
