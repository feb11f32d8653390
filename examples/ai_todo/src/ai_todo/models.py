"""The task app's data: what the user typed (`TaskInput`), what the model proposed
(`TaskProposal`) and what is stored (`Task`). Plain dataclasses that validate themselves, so
an invalid value is refused where it is made, not where it is stored.

>>> proposal = TaskProposal(title="Buy groceries", priority="high", tags=("Shopping",))
>>> task = Task.from_proposal(proposal, TaskInput("buy groceries tomorrow"))
>>> task.title, task.priority, task.tags, task.status, task.needs_review
('Buy groceries', 'high', ('shopping',), 'todo', False)
>>> TaskInput("   ")
Traceback (most recent call last):
...
ValueError: the task text is empty: describe the task, e.g. ai-todo add "buy milk tomorrow"
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from typing import Literal, get_args

__all__ = [
    "MAX_INPUT_CHARS",
    "MAX_TAGS",
    "MAX_TITLE_CHARS",
    "PRIORITIES",
    "STATUSES",
    "Priority",
    "Status",
    "Task",
    "TaskInput",
    "TaskProposal",
    "normalize_tags",
    "utcnow",
]

Priority = Literal["low", "medium", "high", "urgent"]
Status = Literal["todo", "done"]
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
STATUSES: tuple[Status, ...] = get_args(Status)

MAX_INPUT_CHARS = 2000  # a note, not a document: longer text is refused before any model call
MAX_TITLE_CHARS = 200
MAX_TAGS = 5
_MAX_TAG_CHARS = 30


def utcnow() -> datetime:
    """Now, timezone-aware (UTC), to the microsecond."""
    return datetime.now(timezone.utc)


def normalize_tags(tags: object) -> tuple[str, ...]:
    """Lower-case, ``#``-less, de-duplicated, non-empty tags, at most `MAX_TAGS`.

    >>> normalize_tags(["Work", "#work", " home ", ""])
    ('work', 'home')
    """
    if isinstance(tags, str) or not isinstance(tags, (list, tuple)):
        raise ValueError(f"tags must be a list of strings, got {type(tags).__name__}")
    out: dict[str, None] = {}
    for tag in tags:
        if not isinstance(tag, str):
            raise ValueError(f"each tag must be a string, got {type(tag).__name__}")
        clean = " ".join(tag.strip().lstrip("#").lower().split())
        if clean:
            out.setdefault(clean[:_MAX_TAG_CHARS], None)
    return tuple(out)[:MAX_TAGS]


@dataclass(frozen=True)
class TaskInput:
    """What the user typed. Refuses empty or whitespace-only text (before any model call)."""

    raw_input: str

    def __post_init__(self) -> None:
        if not isinstance(self.raw_input, str):
            raise TypeError(f"raw_input must be str, got {type(self.raw_input).__name__}")
        if not self.raw_input.strip():
            raise ValueError(
                'the task text is empty: describe the task, e.g. ai-todo add "buy milk tomorrow"'
            )
        if len(self.raw_input) > MAX_INPUT_CHARS:
            raise ValueError(
                f"the task text is {len(self.raw_input)} characters; the limit is {MAX_INPUT_CHARS}"
            )

    @property
    def text(self) -> str:
        """The text without surrounding whitespace (what the model sees)."""
        return self.raw_input.strip()


@dataclass(frozen=True)
class TaskProposal:
    """A task as the model proposed it, after validation."""

    title: str
    description: str | None = None
    due_date: date | None = None
    priority: Priority = "medium"
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        title = " ".join(self.title.split()) if isinstance(self.title, str) else ""
        if not title:
            raise ValueError("title must be a non-empty string")
        if len(title) > MAX_TITLE_CHARS:
            raise ValueError(f"title is {len(title)} characters; at most {MAX_TITLE_CHARS}")
        if self.priority not in PRIORITIES:
            raise ValueError(
                f"priority must be one of {', '.join(PRIORITIES)}; got {self.priority!r}"
            )
        if self.due_date is not None and not isinstance(self.due_date, date):
            raise ValueError("due_date must be a date or None")
        description = self.description.strip() if isinstance(self.description, str) else None
        object.__setattr__(self, "title", title)
        object.__setattr__(self, "description", description or None)
        object.__setattr__(self, "tags", normalize_tags(list(self.tags)))


@dataclass
class Task:
    """A stored task. ``needs_review`` marks a task saved from the raw text because the model
    gave no usable answer; ``raw_input`` always keeps what the user typed."""

    id: str
    title: str
    description: str | None = None
    due_date: date | None = None
    priority: Priority = "medium"
    tags: tuple[str, ...] = ()
    status: Status = "todo"
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    needs_review: bool = False
    raw_input: str = ""
    review_note: str | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("id must be non-empty")
        if not self.title.strip():
            raise ValueError("title must be non-empty")
        if self.priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        self.tags = normalize_tags(list(self.tags))

    @staticmethod
    def new_id() -> str:
        """A fresh random id (32 hex digits; commands accept any unique prefix)."""
        return uuid.uuid4().hex

    @classmethod
    def from_proposal(
        cls, proposal: TaskProposal, task_input: TaskInput, *, now: datetime | None = None
    ) -> Task:
        """A new to-do task from a validated proposal."""
        stamp = now or utcnow()
        return cls(
            id=cls.new_id(),
            title=proposal.title,
            description=proposal.description,
            due_date=proposal.due_date,
            priority=proposal.priority,
            tags=proposal.tags,
            created_at=stamp,
            updated_at=stamp,
            raw_input=task_input.raw_input,
        )

    @classmethod
    def from_raw(cls, task_input: TaskInput, reason: str, *, now: datetime | None = None) -> Task:
        """A task holding the user's text as typed, flagged for review, when extraction
        failed: the text is never lost."""
        stamp = now or utcnow()
        first_line = " ".join(task_input.text.splitlines()[0].split())
        title = (
            first_line
            if len(first_line) <= MAX_TITLE_CHARS
            else first_line[: MAX_TITLE_CHARS - 1] + "…"
        )
        return cls(
            id=cls.new_id(),
            title=title,
            created_at=stamp,
            updated_at=stamp,
            needs_review=True,
            raw_input=task_input.raw_input,
            review_note=reason,
        )

    def with_status(self, status: Status, *, now: datetime | None = None) -> Task:
        """A copy with ``status`` changed and ``updated_at`` set."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        return replace(self, status=status, updated_at=now or utcnow())

    @property
    def short_id(self) -> str:
        """The first 8 hex digits, as the command line shows them."""
        return self.id[:8]

    def search_text(self) -> str:
        """What semantic search embeds for this task."""
        parts = [self.title, self.description or "", " ".join(self.tags)]
        if self.needs_review and self.raw_input.strip() != self.title:
            parts.append(self.raw_input)
        return " ".join(p for p in parts if p).strip()
