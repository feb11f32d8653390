"""Rich renderings for the command line: task tables, the stats tables, benchmark results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from ai_todo.models import Task
from ai_todo.services import CreateResult

__all__ = [
    "benchmark_table",
    "cache_table",
    "describe",
    "extracted_table",
    "metrics_table",
    "task_table",
]

_PRIORITY_STYLE = {"urgent": "bold red", "high": "red", "medium": "yellow", "low": "dim"}


def describe(task: Task) -> str:
    """One line: title, due date, priority, tags."""
    parts = [f"[bold]{task.title}[/bold]"]
    if task.due_date:
        parts.append(f"due {task.due_date.isoformat()}")
    parts.append(f"[{_PRIORITY_STYLE[task.priority]}]{task.priority}[/]")
    if task.tags:
        parts.append(" ".join(f"#{t}" for t in task.tags))
    return " · ".join(parts)


def task_table(
    tasks: Sequence[Task], *, title: str = "Tasks", scores: Sequence[float | None] | None = None
) -> Table:
    table = Table(title=title)
    table.add_column("ID", style="cyan", no_wrap=True)
    if scores is not None:
        table.add_column("Score", justify="right")
    table.add_column("Title")
    table.add_column("Due", no_wrap=True)
    table.add_column("Priority")
    table.add_column("Tags")
    table.add_column("Status")
    for i, task in enumerate(tasks):
        status = "✓ done" if task.status == "done" else "todo"
        if task.needs_review:
            status += " [yellow]⚠ review[/yellow]"
        row = [task.short_id]
        if scores is not None:
            score = scores[i]
            row.append("" if score is None else f"{score:.2f}")
        row += [
            task.title,
            task.due_date.isoformat() if task.due_date else "",
            f"[{_PRIORITY_STYLE[task.priority]}]{task.priority}[/]",
            " ".join(f"#{t}" for t in task.tags),
            status,
        ]
        table.add_row(*row)
    return table


def _ms(value: float) -> str:
    """Milliseconds with the precision that matters: 0.058, 7.25, 812, 18,459."""
    if value < 1:
        return f"{value:.3f}"
    if value < 100:
        return f"{value:.2f}"
    return f"{value:,.0f}"


def metrics_table(summary: Mapping[str, Mapping[str, Any]]) -> Table:
    table = Table(title="Operation Metrics (all runs)")
    table.add_column("Operation", no_wrap=True)
    for name in ("Count", "Avg ms", "p50 ms", "p95 ms", "Max ms", "Cache", "Err"):
        table.add_column(name, justify="right", no_wrap=True)
    for name, stats in sorted(summary.items()):
        decided = stats["cache_hits"] + stats["cache_misses"]
        cached = f"{stats['cache_hit_rate']:.0f}%" if decided and name == "ai_extraction" else "-"
        table.add_row(
            name,
            str(stats["count"]),
            _ms(stats["avg_ms"]),
            _ms(stats["p50_ms"]),
            _ms(stats["p95_ms"]),
            _ms(stats["max_ms"]),
            cached,
            str(stats["errors"]),
        )
    return table


def cache_table(stats: Mapping[str, Any], extractions: Mapping[str, Any] | None = None) -> Table:
    table = Table(title="Cache Statistics", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    if extractions:
        hits, total = extractions["cache_hits"], extractions["count"]
        table.add_row(
            "Extractions answered from the cache (all runs)",
            f"{hits} of {total} ({extractions['cache_hit_rate']:.0f}%)",
        )
    table.add_row("Response cache entries (on disk)", str(stats["disk_entries"]))
    table.add_row("Disk-tier hits / misses (all runs)", f"{stats['hits']} / {stats['misses']}")
    if stats.get("bytes_on_disk") is not None:
        table.add_row("Response cache size on disk", f"{stats['bytes_on_disk']:,} bytes")
    if "embedding_entries" in stats:
        table.add_row("Cached embeddings (on disk)", str(stats["embedding_entries"]))
    return table


def benchmark_table(report: Mapping[str, Any]) -> Table:
    table = Table(title="Benchmark Results", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("Mode", report["mode"])
    table.add_row("Tasks created", str(report["created"]))
    table.add_row("Answered by the model", str(report["model_answers"]))
    table.add_row("Answered from the cache", str(report["cache_hits"]))
    table.add_row("No valid answer: kept for review", str(report["needs_review"]))
    table.add_row("Total time", f"{report['total_s']:.3f} s")
    table.add_row("Average per task", f"{report['avg_ms']:.1f} ms")
    table.add_row("Throughput", f"{report['throughput']:.1f} tasks/s")
    return table


def extracted_table(results: Sequence[CreateResult]) -> Table:
    """One row per distinct input: what the model made of it."""
    table = Table(title="Extracted tasks (one per distinct input)")
    for column in ("Input", "Title", "Due", "Priority", "Tags", "Source"):
        table.add_column(column)
    seen: set[str] = set()
    for result in results:
        task = result.task
        if task.raw_input in seen:
            continue
        seen.add(task.raw_input)
        source = (
            "[yellow]review[/yellow]"
            if task.needs_review
            else "cache"
            if result.cached
            else "model"
        )
        table.add_row(
            task.raw_input,
            task.title,
            task.due_date.isoformat() if task.due_date else "",
            task.priority,
            " ".join(f"#{t}" for t in task.tags),
            source,
        )
    return table
