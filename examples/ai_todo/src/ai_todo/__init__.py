"""ai_todo: a to-do app that understands plain notes, assembled from llmcache's parts.

A note ("buy groceries tomorrow") becomes a task through a model asked for JSON matching a
schema; answers are cached on disk (`llmcache.ResponseCache` behind `CachedOllamaClient`);
tasks live in SQLite and are searchable by meaning (`llmcache.vector.VectorIndex`). The
``ai-todo`` command drives it; see `ai_todo.cli`.
"""

from __future__ import annotations

from ai_todo.extraction import ExtractionError, TaskExtractor
from ai_todo.models import Task, TaskInput, TaskProposal
from ai_todo.repository import RepositoryError, TaskRepository
from ai_todo.services import CreateResult, OptimizedTaskService, TaskNotSaved, TaskService

__all__ = [
    "CreateResult",
    "ExtractionError",
    "OptimizedTaskService",
    "RepositoryError",
    "Task",
    "TaskExtractor",
    "TaskInput",
    "TaskNotSaved",
    "TaskProposal",
    "TaskRepository",
    "TaskService",
]
__version__ = "0.1.0"
