"""Tasks in SQLite, on a real file in WAL mode.

Every failure becomes a `RepositoryError` that names the file and says what to do: a
database locked by another process past the busy timeout, a read-only file, a folder that
cannot be written, a file that is not a database. Writes are transactions, so a failed write
leaves the file as it was; the service keeps the user's input when a save fails.

>>> import tempfile, pathlib
>>> from ai_todo.models import Task
>>> repo = TaskRepository(pathlib.Path(tempfile.mkdtemp()) / "tasks.db")
>>> repo.save_many([Task(id="a1", title="Buy milk"), Task(id="b2", title="Call mom")])
>>> [t.title for t in repo.search_by_title("milk")], repo.count()
(['Buy milk'], 2)
>>> repo.close()
"""

from __future__ import annotations

import builtins
import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ai_todo.models import PRIORITIES, Task

__all__ = ["AmbiguousId", "RepositoryError", "TaskNotFound", "TaskRepository"]

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT,
    due_date TEXT,
    priority TEXT NOT NULL CHECK (priority IN ({", ".join(f"'{p}'" for p in PRIORITIES)})),
    tags TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL CHECK (status IN ('todo', 'done')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    needs_review INTEGER NOT NULL DEFAULT 0,
    raw_input TEXT NOT NULL DEFAULT '',
    review_note TEXT
);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status, due_date);
"""
_COLUMNS = (
    "id",
    "title",
    "description",
    "due_date",
    "priority",
    "tags",
    "status",
    "created_at",
    "updated_at",
    "needs_review",
    "raw_input",
    "review_note",
)
_INSERT = f"INSERT INTO tasks ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_UPDATE = f"UPDATE tasks SET {', '.join(f'{c} = ?' for c in _COLUMNS[1:])} WHERE id = ?"
_PRIORITY_RANK = (
    "CASE priority "
    + " ".join(f"WHEN '{p}' THEN {i}" for i, p in enumerate(reversed(PRIORITIES)))
    + " END"
)
_ORDER = f"ORDER BY status DESC, due_date IS NULL, due_date, {_PRIORITY_RANK}, created_at"


class RepositoryError(Exception):
    """The task database cannot do what was asked; the message names the file and the fix."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class TaskNotFound(RepositoryError, LookupError):
    """No task has that id (or id prefix)."""


class AmbiguousId(RepositoryError, LookupError):
    """An id prefix matches more than one task."""


def _explain(exc: sqlite3.Error, path: Path, timeout: float) -> RepositoryError:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        message = (
            f"the task database {path} is locked by another process (waited "
            f"{timeout:g} s). Close the other program using it (another ai-todo?) "
            "and try again, or raise AI_TODO_DB_TIMEOUT."
        )
    elif "readonly" in text or "read-only" in text:
        message = (
            f"the task database {path} is read-only. Make it and its folder "
            f"writable (chmod u+w {path} {path.parent}) or use another --home."
        )
    elif "unable to open" in text:
        message = (
            f"cannot open the task database {path}. Check that its folder exists "
            "and is writable, or use another --home."
        )
    elif "not a database" in text or "malformed" in text:
        message = (
            f"{path} is not a valid task database (damaged?). Move it aside and "
            "ai-todo will start a new one."
        )
    else:
        message = f"database error on {path}: {exc}"
    return RepositoryError(message, path=path)


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _row(task: Task) -> tuple[Any, ...]:
    return (
        task.id,
        task.title,
        task.description,
        _iso(task.due_date),
        task.priority,
        json.dumps(list(task.tags)),
        task.status,
        task.created_at.isoformat(),
        task.updated_at.isoformat(),
        int(task.needs_review),
        task.raw_input,
        task.review_note,
    )


def _task(row: sqlite3.Row) -> Task:
    return Task(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        due_date=date.fromisoformat(row["due_date"]) if row["due_date"] else None,
        priority=row["priority"],
        tags=tuple(json.loads(row["tags"] or "[]")),
        status=row["status"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        needs_review=bool(row["needs_review"]),
        raw_input=row["raw_input"],
        review_note=row["review_note"],
    )


class TaskRepository:
    """CRUD over one SQLite file. ``timeout`` is how long a write waits for another
    process's lock before failing with a clear error. Safe to share between threads."""

    def __init__(self, path: str | Path, *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        with self._guard():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: we open transactions ourselves, so a batch is one BEGIN..COMMIT.
        db = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                # WAL lets `list` read while another process writes; switching needs a
                # writable file, and a read-only one is still readable without it.
                with contextlib.suppress(sqlite3.OperationalError):
                    db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; WAL's usual
            exists = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tasks'"
            ).fetchone()
            if not exists:
                db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _explain(exc, self.path, self.timeout) from exc
        except PermissionError as exc:  # creating the folder
            raise RepositoryError(
                f"cannot create {self.path.parent}: {exc.strerror}. Use another --home.",
                path=self.path,
            ) from exc

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._guard():
            if self._db is None:
                raise RepositoryError(f"the task database {self.path} is closed", path=self.path)
            yield self._db

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed on success, rolled back on any error."""
        with self._read() as db:
            # IMMEDIATE takes the write lock up front, so a busy database fails here, before
            # any statement ran, instead of half-way through a batch.
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise

    # -- writing ------------------------------------------------------------------------------

    def save(self, task: Task) -> None:
        """Insert one task."""
        self.save_many([task])

    def save_many(self, tasks: Sequence[Task]) -> None:
        """Insert all `tasks` in ONE transaction: all are saved or none is."""
        if not tasks:
            return
        with self._write() as db:
            db.executemany(_INSERT, [_row(t) for t in tasks])

    def update(self, task: Task) -> bool:
        """Replace a stored task's fields; False if it does not exist."""
        with self._write() as db:
            cursor = db.execute(_UPDATE, _row(task)[1:] + (task.id,))
            return cursor.rowcount > 0

    def delete(self, task_id: str) -> bool:
        """Delete one task by its full id; False if it does not exist."""
        return self.delete_many([task_id]) > 0

    def delete_many(self, task_ids: Iterable[str]) -> int:
        """Delete tasks by full id in one transaction; returns how many existed."""
        ids = list(dict.fromkeys(task_ids))
        if not ids:
            return 0
        with self._write() as db:
            return sum(db.execute("DELETE FROM tasks WHERE id = ?", (i,)).rowcount for i in ids)

    # -- reading ------------------------------------------------------------------------------

    def get(self, task_id: str) -> Task | None:
        """The task with this full id, or None."""
        with self._read() as db:
            row = db.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return _task(row) if row else None

    def get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        """Tasks by id (missing ids are absent), in one query."""
        if not task_ids:
            return {}
        marks = ", ".join("?" * len(task_ids))
        with self._read() as db:
            rows = db.execute(
                f"SELECT * FROM tasks WHERE id IN ({marks})", list(task_ids)
            ).fetchall()
        return {row["id"]: _task(row) for row in rows}

    def resolve(self, id_or_prefix: str) -> Task:
        """The one task whose id starts with `id_or_prefix` (at least 4 characters)."""
        key = id_or_prefix.strip().lower()
        if len(key) < 4:
            raise TaskNotFound(
                f"{id_or_prefix!r} is too short: give at least the first 4 "
                "characters of a task id shown by `ai-todo list`",
                path=self.path,
            )
        if not all(c in "0123456789abcdef" for c in key):
            raise TaskNotFound(
                f"no task matches {id_or_prefix!r}: task ids are hexadecimal "
                "(0-9, a-f), as `ai-todo list` shows them",
                path=self.path,
            )
        with self._read() as db:
            rows = db.execute(
                "SELECT * FROM tasks WHERE id >= ? AND id < ? LIMIT 2", (key, key + "g")
            ).fetchall()
        if not rows:
            raise TaskNotFound(f"no task with id {id_or_prefix!r}", path=self.path)
        if len(rows) > 1:
            raise AmbiguousId(
                f"{id_or_prefix!r} matches several tasks: give more characters", path=self.path
            )
        return _task(rows[0])

    def list(
        self,
        *,
        status: str | None = None,
        priority: str | None = None,
        tag: str | None = None,
        needs_review: bool | None = None,
        limit: int | None = None,
    ) -> list[Task]:
        """Tasks matching every filter given: open ones first, then by due date, priority."""
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if priority is not None:
            where.append("priority = ?")
            args.append(priority)
        if tag is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE value = ?)")
            args.append(tag.strip().lstrip("#").lower())
        if needs_review is not None:
            where.append("needs_review = ?")
            args.append(int(needs_review))
        sql = "SELECT * FROM tasks" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " " + _ORDER + (" LIMIT ?" if limit is not None else "")
        if limit is not None:
            args.append(limit)
        with self._read() as db:
            return [_task(row) for row in db.execute(sql, args).fetchall()]

    def search_by_title(self, query: str, *, limit: int = 10) -> builtins.list[Task]:
        """Tasks whose title contains `query` (case-insensitive, literal)."""
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._read() as db:
            rows = db.execute(
                f"SELECT * FROM tasks WHERE title LIKE ? ESCAPE '\\' {_ORDER} LIMIT ?",
                (pattern, limit),
            ).fetchall()
        return [_task(row) for row in rows]

    def ids(self) -> builtins.list[str]:
        """Every task id."""
        with self._read() as db:
            return [row[0] for row in db.execute("SELECT id FROM tasks").fetchall()]

    def count(self) -> int:
        """How many tasks there are."""
        with self._read() as db:
            return int(db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> TaskRepository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
