"""Test doubles for the ai_todo tests (a module of its own: test files import it, and
``conftest`` is not importable by name when several test folders each have one)."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

from llmcache_testserver import Completion, EchoEngine, ModelSpec, Prompt

from llmcache import DiskStore

__all__ = ["MODELS", "TaskEngine", "cached_answers", "task_json"]

MODELS = (
    ModelSpec("smollm2:latest", ("completion",), family="llama", parameter_size="135M"),
    ModelSpec("embedder:latest", ("embedding",), family="bert"),
)

_DATE_WORDS = re.compile(
    r"\b(today|tomorrow|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday)\b",
    re.I,
)


def task_json(note: str) -> str:
    """What a good model would answer for `note`."""
    due = _DATE_WORDS.search(note)
    title = " ".join(_DATE_WORDS.sub(" ", note).replace(" by ", " ").split()) or note
    priority = "urgent" if "urgent" in note.lower() else "medium"
    tags = [w for w in ("groceries", "report", "mom", "dentist", "pull") if w in note.lower()]
    return json.dumps(
        {
            "title": title[:1].upper() + title[1:],
            "due_date": due.group(1) if due else None,
            "priority": priority,
            "tags": tags[:1],
        }
    )


class TaskEngine(EchoEngine):
    """Scripted answers for the extraction chat; echo behaviour for everything else."""

    def __init__(self) -> None:
        super().__init__(models=MODELS)
        self.replies: list[str] = []
        self.fail_after: int | None = None
        self.notes: list[str] = []
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.notes)

    def generate(self, prompt: Prompt) -> Completion:
        if prompt.messages is None or not isinstance(prompt.format, dict):
            return super().generate(prompt)
        # A retry quotes the note at the end of its corrective message.
        note = str(prompt.messages[-1].get("content", "")).rsplit("for the note: ", 1)[-1]
        with self._lock:
            if self.fail_after is not None and len(self.notes) >= self.fail_after:
                raise RuntimeError("injected engine failure")
            self.notes.append(note)
            reply = self.replies.pop(0) if self.replies else None
        if reply is None:
            reply = task_json(note)
        return Completion(reply, prompt_tokens=len(note.split()))


def cached_answers(home: Path) -> int:
    """How many answers the app's response cache holds on disk (0 when it was never made)."""
    if not (home / "cache").exists():
        return 0
    with DiskStore(home / "cache") as store:
        return len(store)
