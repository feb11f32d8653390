"""The task services: `TaskService` (one note at a time) and `OptimizedTaskService` (the batch
path: parallel extraction, one transaction, batched indexing).

The user's text is never lost:

- the model gives no valid task (after its one retry) -> the text is saved as a task flagged
  ``needs_review`` (and ``ai-todo add`` exits non-zero with the reason);
- the model server is down -> the same, for `create_task` (a benchmark asks to fail instead);
- the database refuses the write (locked, read-only) -> the texts are appended to
  ``pending.jsonl`` in the data folder and `TaskNotSaved` says so; the next successful
  ``add`` saves them (`flush_pending`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ai_todo.extraction import ExtractionError, TaskExtractor
from ai_todo.models import Task, TaskInput, utcnow
from ai_todo.repository import RepositoryError, TaskRepository
from ai_todo.search import TaskSearch
from llmcache import parallel_map
from llmcache.backends.errors import BackendError
from llmcache.metrics import MetricsCollector

__all__ = ["CreateResult", "OptimizedTaskService", "PendingInputs", "TaskNotSaved", "TaskService"]

logger = logging.getLogger(__name__)

OnBackendError = Literal["keep", "raise"]


@dataclass(frozen=True)
class CreateResult:
    """A created task; ``error`` says why it needs review (None when the model's answer
    was used), ``backend_failed`` whether that was the model server failing rather than its
    answers. ``cached`` is True when the answer used came from the cache."""

    task: Task
    cached: bool = False
    attempts: int = 0
    error: str | None = None
    duration_ms: float = 0.0
    backend_failed: bool = False

    @property
    def needs_review(self) -> bool:
        return self.task.needs_review


class TaskNotSaved(RepositoryError):
    """The database refused the write. ``texts`` are the inputs that were not saved and
    ``kept_in`` the file they were appended to (None if even that failed)."""

    def __init__(
        self, message: str, *, texts: Sequence[str], kept_in: Path | None, path: Path | None = None
    ) -> None:
        super().__init__(message, path=path)
        self.texts = list(texts)
        self.kept_in = kept_in


class PendingInputs:
    """Inputs that could not be saved, one JSON object per line (append-only)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, texts: Sequence[str], reason: str) -> None:
        stamp = utcnow().isoformat()
        with self.path.open("a", encoding="utf-8") as fh:
            for text in texts:
                fh.write(json.dumps({"raw_input": text, "reason": reason, "at": stamp}) + "\n")

    def read(self) -> list[str]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(str(json.loads(line)["raw_input"]))
            except (ValueError, KeyError, TypeError):
                logger.warning("skipping a damaged line of %s", self.path)
        return out

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class TaskService:
    """Create, list, complete, delete and search tasks."""

    def __init__(
        self,
        extractor: TaskExtractor,
        repo: TaskRepository,
        search: TaskSearch | None = None,
        *,
        metrics: MetricsCollector | None = None,
        pending: PendingInputs | None = None,
    ) -> None:
        self.extractor = extractor
        self.repo = repo
        self.search = search
        self.metrics = metrics if metrics is not None else MetricsCollector()
        self.pending = pending

    # -- creating -----------------------------------------------------------------------------

    async def _extract_single(
        self, task_input: TaskInput, *, on_backend_error: OnBackendError = "keep"
    ) -> CreateResult:
        """The task for one input, not saved yet (runs concurrently in a batch)."""
        started = time.perf_counter()
        try:
            with self.metrics.measure("ai_extraction") as measured:
                extraction = await self.extractor.extract(task_input)
                measured.cached = extraction.cached
        except ExtractionError as exc:
            note = f"no valid answer in {exc.attempts} attempts: {exc.problem}"
            return CreateResult(
                Task.from_raw(task_input, note),
                cached=exc.cached,
                attempts=exc.attempts,
                error=str(exc),
                duration_ms=_ms(started),
            )
        except BackendError as exc:
            if on_backend_error == "raise":
                raise
            note = f"the model could not be reached: {exc}"
            return CreateResult(
                Task.from_raw(task_input, note),
                error=note,
                duration_ms=_ms(started),
                backend_failed=True,
            )
        task = Task.from_proposal(extraction.proposal, task_input)
        return CreateResult(
            task, cached=extraction.cached, attempts=extraction.attempts, duration_ms=_ms(started)
        )

    def _save(self, tasks: Sequence[Task]) -> None:
        """Save in one transaction; on failure keep the raw texts and say where."""
        try:
            with self.metrics.measure("db_save" if len(tasks) == 1 else "db_save_batch"):
                self.repo.save_many(tasks)
        except RepositoryError as exc:
            texts = [t.raw_input or t.title for t in tasks]
            kept: Path | None = None
            if self.pending is not None:
                try:
                    self.pending.add(texts, str(exc))
                    kept = self.pending.path
                except OSError as journal_error:
                    logger.error(
                        "could not keep the input in %s: %s", self.pending.path, journal_error
                    )
            where = f"; your text was kept in {kept}" if kept else ""
            raise TaskNotSaved(f"{exc}{where}", texts=texts, kept_in=kept, path=exc.path) from exc

    async def _index(self, tasks: Sequence[Task]) -> None:
        if self.search is None or not tasks:
            return
        try:
            with self.metrics.measure("index_tasks"):
                await self.ensure_search()
                await self.search.index_tasks(tasks)
        except (BackendError, OSError, ValueError) as exc:
            # The tasks are saved; the index catches up when it is next connected.
            logger.warning("tasks saved but not indexed for search yet: %s", exc)

    async def create_task(
        self,
        task_input: TaskInput,
        *,
        on_backend_error: OnBackendError = "keep",
        on_saved: Callable[[Sequence[Task]], None] | None = None,
    ) -> CreateResult:
        """Extract, save and index one task. ``ValueError`` for empty text comes from
        `TaskInput` itself, before any model call. ``on_saved`` is called right after the
        commit (a caller tracking what it created misses nothing)."""
        with self.metrics.measure("create_task"):
            result = await self._extract_single(task_input, on_backend_error=on_backend_error)
            self._save([result.task])
            if on_saved is not None:
                on_saved([result.task])
            await self._index([result.task])
        return result

    async def flush_pending(self) -> list[CreateResult]:
        """Save the inputs an earlier failed write kept aside; returns what was created."""
        if self.pending is None:
            return []
        texts = self.pending.read()
        if not texts:
            return []
        inputs = [TaskInput(t) for t in texts if t.strip()]
        results = [await self._extract_single(i) for i in inputs]
        tasks = [r.task for r in results]
        self.repo.save_many(tasks)  # raises RepositoryError: the file stays for next time
        self.pending.clear()
        await self._index(tasks)
        return results

    # -- the rest -----------------------------------------------------------------------------

    def list_tasks(
        self,
        *,
        status: str | None = None,
        priority: str | None = None,
        tag: str | None = None,
        needs_review: bool | None = None,
        limit: int | None = None,
    ) -> list[Task]:
        with self.metrics.measure("db_list"):
            return self.repo.list(
                status=status, priority=priority, tag=tag, needs_review=needs_review, limit=limit
            )

    def complete_task(self, task_id: str) -> Task:
        """Mark a task done (by id or unique id prefix)."""
        task = self.repo.resolve(task_id).with_status("done")
        self.repo.update(task)
        return task

    async def delete_task(self, task_id: str) -> Task:
        """Delete a task (by id or unique id prefix) and drop it from the index."""
        task = self.repo.resolve(task_id)
        await self.delete_tasks([task.id])
        return task

    async def delete_tasks(self, task_ids: Sequence[str]) -> int:
        """Delete tasks by full id in one transaction; returns how many existed."""
        removed = self.repo.delete_many(task_ids)
        if self.search is not None:
            self.search.remove(list(task_ids))
        return removed

    async def ensure_search(self) -> None:
        """Connect the search index (choose the embedder, load, reconcile)."""
        if self.search is not None and not self.search.connected:
            await self.search.connect(lambda: self.repo.list())

    async def search_tasks(self, query: str, limit: int = 5) -> list[tuple[Task, float | None]]:
        """Tasks by meaning (with scores); by title when there is no index."""
        if not query.strip():
            raise ValueError("the search query is empty")
        with self.metrics.measure("search"):
            if self.search is None:
                return [(t, None) for t in self.repo.search_by_title(query, limit=limit)]
            await self.ensure_search()
            hits = await self.search.search(query, k=limit)
            found = self.repo.get_many([h.id for h in hits])
            return [(found[h.id], h.score) for h in hits if h.id in found]

    async def aclose(self) -> None:
        if self.search is not None:
            await self.search.aclose()


class OptimizedTaskService(TaskService):
    """The optimised service: extractions in parallel (bounded), ONE transaction for the
    batch, one batched embedding request for the index."""

    async def create_tasks_batch(
        self,
        inputs: Sequence[TaskInput],
        *,
        max_concurrent: int = 3,
        on_backend_error: OnBackendError = "keep",
        on_result: Callable[[CreateResult], None] | None = None,
        on_saved: Callable[[Sequence[Task]], None] | None = None,
    ) -> list[CreateResult]:
        """Create tasks for `inputs` (results in input order).

        ``on_result`` is called as each extraction finishes (progress); ``on_saved`` right
        after the batch is committed (so a caller can track exactly what it created).
        """

        async def extract(task_input: TaskInput) -> CreateResult:
            result = await self._extract_single(task_input, on_backend_error=on_backend_error)
            if on_result is not None:
                on_result(result)
            return result

        with self.metrics.measure("create_tasks_batch"):
            results = await parallel_map(list(inputs), extract, max_concurrent=max_concurrent)
            tasks = [r.task for r in results]
            self._save(tasks)  # one transaction, not one INSERT per task
            if on_saved is not None:
                on_saved(tasks)
            await self._index(tasks)
        return results

    async def search_with_cache(self, query: str, limit: int = 10) -> list[Task]:
        """Semantic search whose query embeddings come from the on-disk embedding cache; the
        hits are fetched in one query."""
        return [task for task, _ in await self.search_tasks(query, limit)]


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
