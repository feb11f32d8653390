"""The SQLite repository: transactions, filters, and clear errors for locked/read-only files."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from ai_todo.models import Task
from ai_todo.repository import AmbiguousId, RepositoryError, TaskNotFound, TaskRepository


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[TaskRepository]:
    with TaskRepository(tmp_path / "tasks.db", timeout=0.2) as repository:
        yield repository


def test_save_many_is_one_transaction(repo: TaskRepository) -> None:
    repo.save(Task(id="aaaa0001", title="first"))
    batch = [Task(id="bbbb0001", title="new"), Task(id="aaaa0001", title="duplicate id")]
    with pytest.raises(RepositoryError):
        repo.save_many(batch)
    assert [t.title for t in repo.list()] == ["first"]  # nothing of the failed batch


def test_round_trip_and_filters(repo: TaskRepository) -> None:
    tasks = [
        Task(
            id="a0000001",
            title="Pay rent",
            due_date=date(2030, 1, 2),
            priority="high",
            tags=("Money",),
        ),
        Task(id="a0000002", title="Water plants", tags=("home",)),
        Task(
            id="b0000003",
            title="Email 100% done_",
            priority="urgent",
            status="done",
            needs_review=True,
            raw_input="email",
            review_note="why",
        ),
    ]
    repo.save_many(tasks)
    assert repo.get("a0000001") == tasks[0]
    assert repo.get("b0000003") == tasks[2]
    assert [t.id for t in repo.list(status="todo")] == ["a0000001", "a0000002"]
    assert [t.id for t in repo.list(tag="#money")] == ["a0000001"]
    assert [t.id for t in repo.list(needs_review=True)] == ["b0000003"]
    assert [t.id for t in repo.search_by_title("100%")] == ["b0000003"]
    assert repo.search_by_title("_") == [tasks[2]]  # LIKE wildcards are literal
    assert repo.resolve("b000").id == "b0000003"
    with pytest.raises(AmbiguousId):
        repo.resolve("a000")
    with pytest.raises(TaskNotFound):
        repo.resolve("zz")
    assert repo.update(tasks[1].with_status("done"))
    assert repo.get("a0000002").status == "done"  # type: ignore[union-attr]
    assert repo.delete_many(["a0000001", "nope"]) == 1 and repo.count() == 2


def test_locked_database_is_a_clear_error_and_keeps_the_data(repo: TaskRepository) -> None:
    repo.save(Task(id="c0000001", title="kept"))
    holder = sqlite3.connect(repo.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(RepositoryError, match="is locked by another process") as info:
            repo.save(Task(id="c0000002", title="blocked"))
        assert str(repo.path) in str(info.value)
        assert [t.title for t in repo.list()] == ["kept"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    repo.save(Task(id="c0000002", title="now it works"))
    assert repo.count() == 2


def _make_read_only(path: Path) -> bool:
    if os.geteuid() != 0:
        path.chmod(0o444)
        return True
    # root ignores permission bits; the immutable attribute stops even root.
    chattr = shutil.which("chattr")
    return (
        chattr is not None
        and subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode == 0
    )


def _make_writable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    path.chmod(0o644)


def test_read_only_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    with TaskRepository(path) as repo:
        repo.save(Task(id="d0000001", title="kept"))
    if not _make_read_only(path):
        pytest.skip("cannot make a file read-only here (root without chattr)")
    try:
        with TaskRepository(path, timeout=0.2) as repo:
            assert [t.title for t in repo.list()] == ["kept"]
            with pytest.raises(RepositoryError, match="is read-only") as info:
                repo.save(Task(id="d0000002", title="refused"))
            assert f"chmod u+w {path}" in str(info.value)
    finally:
        _make_writable(path)
    with TaskRepository(path) as repo:
        assert [t.title for t in repo.list()] == ["kept"]


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RepositoryError, match="not a valid task database"):
        TaskRepository(path)
