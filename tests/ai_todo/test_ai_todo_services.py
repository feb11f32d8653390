"""The services and the wiring under them: batching, caching, search, the echo engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ai_todo.app import ThreadedBackend, TodoApp, make_backend
from ai_todo.config import Settings
from ai_todo.extraction import TaskExtractor
from ai_todo.models import TaskInput
from ai_todo.repository import TaskRepository
from ai_todo_fakes import TaskEngine
from llmcache_testserver import EchoEngine, OllamaServer

from llmcache import register_backend
from llmcache.backends.mock import MockBackend
from llmcache.backends.registry import unregister_backend

NOTES = [
    "buy groceries tomorrow",
    "finish report by Friday",
    "call mom in the afternoon",
    "schedule dentist appointment",
    "review pull request urgent",
]


def _settings(home: Path, server: OllamaServer, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home,
        "host": server.url,
        "embedder": "hashing",
        "db_timeout": 0.2,
        "request_timeout": 20.0,
    }
    values.update(changes)
    return Settings(**values)


async def test_batch_saves_in_one_transaction_and_embeds_in_one_request(
    home: Path, server: OllamaServer, engine: TaskEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    todo = TodoApp(_settings(home, server, embedder="backend", embed_model="embedder"))
    service = todo.tasks
    await service.ensure_search()
    saves: list[int] = []
    original = TaskRepository.save_many

    def spy(repo: TaskRepository, tasks: Any) -> None:
        saves.append(len(tasks))
        original(repo, tasks)

    monkeypatch.setattr(TaskRepository, "save_many", spy)
    server.calls.reset()
    try:
        results = await service.create_tasks_batch(
            [TaskInput(n) for n in NOTES * 2], max_concurrent=3
        )
        assert [r.task.raw_input for r in results] == NOTES * 2  # input order
        assert saves == [10]  # one transaction, not one INSERT per task
        assert engine.calls == 5  # each distinct note once; the repeats share the answer
        assert server.calls["embed"] == 1  # five distinct texts, one batched request
        hits = await service.search_with_cache("Buy groceries", limit=3)
        assert hits[0].title == "Buy groceries"
        assert server.calls["embed"] == 2  # the query; it is cached from now on
        await service.search_with_cache("Buy groceries", limit=3)
        assert server.calls["embed"] == 2
    finally:
        await todo.aclose()


async def test_a_warm_run_in_a_new_app_is_served_from_disk(
    home: Path, server: OllamaServer, engine: TaskEngine
) -> None:
    for expected_calls in (5, 5):
        todo = TodoApp(_settings(home, server))
        try:
            results = await todo.tasks.create_tasks_batch([TaskInput(n) for n in NOTES])
        finally:
            await todo.aclose()
        assert engine.calls == expected_calls
    assert all(r.cached for r in results)


async def test_auto_embedder_falls_back_to_a_local_one_when_the_model_cannot_embed(
    home: Path, server: OllamaServer
) -> None:
    todo = TodoApp(_settings(home, server, embedder="auto"))
    try:
        await todo.tasks.create_task(TaskInput("buy groceries tomorrow"))
        search = todo.tasks.search
        assert search is not None
        assert search.embedder_name is not None
        assert not search.embedder_name.startswith("backend:")  # smollm2 does not embed
        hits = await todo.tasks.search_tasks("shopping for food", limit=1)
        assert hits and hits[0][0].title == "Buy groceries"
    finally:
        await todo.aclose()
    assert "wordllama" in (home / "tasks.index.json").read_text()


async def test_echo_engine_answer_breaks_the_rules_so_the_text_is_kept(home: Path) -> None:
    # EchoEngine answers a schema with its minimal instance, its title being the whole echoed
    # prompt: valid JSON, but no acceptable task. Retry once, then keep the note for review.
    with OllamaServer(
        EchoEngine(models=[*EchoEngine().models(), *TaskEngine().models()])
    ) as server:
        todo = TodoApp(_settings(home, server))
        try:
            result = await todo.tasks.create_task(TaskInput("book flights to Lisbon"))
        finally:
            await todo.aclose()
        assert server.calls["chat"] == 2
    assert result.needs_review and result.attempts == 2
    assert result.task.raw_input == "book flights to Lisbon"
    assert "title is" in (result.task.review_note or "")


async def test_invalid_answers_are_never_cached(
    home: Path, server: OllamaServer, engine: TaskEngine
) -> None:
    todo = TodoApp(_settings(home, server))

    def entries() -> int:
        return int(todo.response_cache.stats()["disk_entries"])

    try:
        # Valid JSON that breaks a rule (no title): refused, retried; only the retry's valid
        # answer is stored.
        engine.replies = ['{"title": "", "due_date": null, "priority": "low", "tags": []}']
        first = await todo.tasks.create_task(TaskInput("call the bank"))
        assert not first.needs_review and first.attempts == 2 and engine.calls == 2
        assert entries() == 1
        # The refused request was not cached: asked again (valid this time), then stored.
        again = await todo.tasks.create_task(TaskInput("call the bank"))
        assert again.attempts == 1 and not again.cached and engine.calls == 3
        assert entries() == 2
        third = await todo.tasks.create_task(TaskInput("call the bank"))
        assert third.cached and engine.calls == 3
        # Two invalid answers: the note is kept for review and nothing is stored.
        engine.replies = ["{broken", "[]"]
        refused = await todo.tasks.create_task(TaskInput("call the plumber"))
        assert refused.needs_review and not refused.cached and engine.calls == 5
        assert entries() == 2
    finally:
        await todo.aclose()


def test_temperature_above_the_cache_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="temperature"):
        TaskExtractor(object(), temperature=0.7)  # type: ignore[arg-type]


async def test_a_blocking_backend_is_used_through_threads(home: Path) -> None:
    register_backend("ai-todo-sync-only", lambda **kw: MockBackend(**kw))
    try:
        backend = make_backend(Settings(home=home, backend="ai-todo-sync-only", model="m"))
        assert isinstance(backend, ThreadedBackend)
        reply = await backend.chat([{"role": "user", "content": "hi"}])
        assert reply.content == "echo: hi"
        assert len((await backend.embed(["a", "b"])).embeddings) == 2
        await backend.aclose()
    finally:
        unregister_backend("ai-todo-sync-only")


def test_an_async_twin_is_preferred(home: Path) -> None:
    backend = make_backend(Settings(home=home, backend="mock", model="m"))
    assert type(backend).__name__ == "AsyncMockBackend"
