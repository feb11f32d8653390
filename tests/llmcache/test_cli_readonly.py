"""`llmcache stats`, `keys` and `inspect` never change the cache; `llmcache doctor` checks it
and, with ``--repair``, repairs it and says what it did.

"Never change" is checked on the bytes: every file and folder of the cache directory, names
and contents, is the same before and after each command, on a sound cache, on a corrupt
database, on a cache holding damaged entries and on one whose statistics are damaged.
"""

from __future__ import annotations

import pathlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diskcache
import pytest
from typer.testing import CliRunner, Result

from llmcache.cli import app
from llmcache.entry import CachedResponse
from llmcache.stores.disk import DiskStore

KEY = "v3:0123456789abcdef0123456789abcdef"
BIG = "v3:0123ffffffffffffffffffffffffffff"  # its value lives in a file of its own


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"}).invoke(app, list(args), input=input)


def snapshot(path: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under `path`, by relative name."""
    return {
        str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(path.rglob("*"))
    }


def _sound(path: Path) -> Path:
    with DiskStore(path) as store:
        store.set(
            KEY, CachedResponse(content="The answer is 42", model="llama3.2", fingerprint="fp")
        )
        store.set(BIG, CachedResponse(content="x" * 50_000, model="llama3.2"))
        for _ in range(3):
            store.get(KEY)
        store.get("v3:missing")
    return path


def _corrupt_pages(db: Path) -> None:
    """Random bytes over every page from the Cache table's root on: the database opens, and
    every read of an entry fails."""
    with db.open("r+b") as f:
        f.seek(4 * 4096)
        f.write(random.Random(13).randbytes(db.stat().st_size - 4 * 4096))


class _Planted:
    """Pickles to a call that creates `marker` when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (pathlib.Path.write_text, (self.marker, "pwned"))


def _with_damaged_entries(path: Path) -> Path:
    _sound(path)
    with diskcache.Cache(str(path)) as plain:  # another client writing into the directory
        plain.set("v3:pickled", _Planted(path.parent / "pwned"))
        plain.set("v3:foreign", b"not an llmcache entry")
        plain.set(_Planted(path.parent / "pwned"), b"a pickled key")
        plain.set("v3:nofile", b"y" * 50_000)
    [value_file] = [p for p in path.rglob("*.val") if p.read_bytes().startswith(b"y")]
    value_file.unlink()
    return path


def _with_a_corrupt_database(path: Path) -> Path:
    with DiskStore(path) as store:
        for i in range(20):
            store.set(f"v3:k{i}", CachedResponse(content=f"v{i}" * 200))
        store.get("v3:k1")
    _corrupt_pages(path / "cache.db")
    return path


def _with_corrupt_statistics(path: Path) -> Path:
    _sound(path)
    with DiskStore(path) as store:  # enough counters to fill the side database's pages
        for i in range(300):
            store.get(f"v3:nothing-{i}")
            store.set(f"v3:e{i}", CachedResponse(content="e"))
            store.get(f"v3:e{i}")
    _corrupt_pages(path / ".llmcache-stats" / "cache.db")
    return path


CACHES: dict[str, Callable[[Path], Path]] = {
    "sound": _sound,
    "damaged entries": _with_damaged_entries,
    "corrupt database": _with_a_corrupt_database,
    "corrupt statistics": _with_corrupt_statistics,
}

COMMANDS = {
    "stats": ["stats"],
    "stats --json": ["stats", "--json"],
    "keys": ["keys"],
    "inspect": ["inspect", KEY],
    "inspect --json": ["inspect", KEY, "--json"],
    "inspect by prefix": ["inspect", KEY[:10]],
    "inspect a file-backed entry": ["inspect", BIG],
    "inspect a missing key": ["inspect", "v3:nothere"],
    "inspect a damaged entry": ["inspect", "v3:pickled"],
    "doctor": ["doctor"],
}

# What each command answers on each cache: 0 done, 1 not found / problems found, 3 could
# not do its job.
EXPECTED = {
    "sound": {
        "stats": 0,
        "stats --json": 0,
        "keys": 0,
        "inspect": 0,
        "inspect --json": 0,
        "inspect by prefix": 0,
        "inspect a file-backed entry": 0,
        "inspect a missing key": 1,
        "inspect a damaged entry": 1,
        "doctor": 0,
    },
    "damaged entries": {
        "stats": 0,
        "stats --json": 0,
        "keys": 0,
        "inspect": 0,
        "inspect --json": 0,
        "inspect by prefix": 0,
        "inspect a file-backed entry": 0,
        "inspect a missing key": 1,
        "inspect a damaged entry": 3,
        "doctor": 1,
    },
    "corrupt database": dict.fromkeys(COMMANDS, 3) | {"doctor": 1},
    "corrupt statistics": {
        "stats": 3,
        "stats --json": 3,
        "keys": 0,
        "inspect": 0,
        "inspect --json": 0,
        "inspect by prefix": 0,
        "inspect a file-backed entry": 0,
        "inspect a missing key": 1,
        "inspect a damaged entry": 1,
        "doctor": 1,
    },
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("cache", CACHES)
def test_read_only_commands_leave_every_byte_as_it_was(
    tmp_path: Path, cache: str, command: str
) -> None:
    path = CACHES[cache](tmp_path / "cache")
    before = snapshot(path)
    result = run(COMMANDS[command][0], "--path", str(path), *COMMANDS[command][1:])
    assert snapshot(path) == before
    assert result.exit_code == EXPECTED[cache][command], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "pwned").exists()


def test_reading_while_an_application_has_the_cache_open(tmp_path: Path) -> None:
    """An application's writes still in the write-ahead log are seen, and neither the
    database nor the log is written to."""
    path = _sound(tmp_path / "cache")
    with DiskStore(path) as app_store:
        app_store.set("v3:fresh", CachedResponse(content="just written"))
        db, wal = (path / "cache.db").read_bytes(), (path / "cache.db-wal").read_bytes()
        listed = run("keys", "--path", str(path))
        shown = run("inspect", "--path", str(path), "v3:fresh")
        assert ((path / "cache.db").read_bytes(), (path / "cache.db-wal").read_bytes()) == (db, wal)
        assert app_store.get("v3:fresh") is not None
    assert listed.exit_code == 0 and "v3:fresh" in listed.stdout.split()
    assert shown.exit_code == 0 and "just written" in shown.stdout


def test_inspect_does_not_count_a_hit_or_a_miss(tmp_path: Path) -> None:
    path = _sound(tmp_path / "cache")
    before = run("stats", "--path", str(path), "--json").stdout
    for key in (KEY, "v3:nothere", KEY[:8]):
        run("inspect", "--path", str(path), key)
    assert run("stats", "--path", str(path), "--json").stdout == before


def test_inspect_names_a_damaged_entry_and_the_repair(tmp_path: Path) -> None:
    path = _with_damaged_entries(tmp_path / "cache")
    result = run("inspect", "--path", str(path), "v3:foreign")
    assert result.exit_code == 3
    assert "v3:foreign" in result.stderr and "llmcache doctor" in result.stderr
    assert "v3:foreign" in run("keys", "--path", str(path)).stdout.split()  # still there


@pytest.mark.parametrize("command", [["stats"], ["keys"], ["inspect", "v3:k1"]])
def test_a_corrupt_database_is_reported_with_the_repair_command(
    tmp_path: Path, command: list[str]
) -> None:
    path = _with_a_corrupt_database(tmp_path / "cache")
    result = run(command[0], "--path", str(path), *command[1:])
    assert result.exit_code == 3
    assert "corrupt" in result.stderr and "llmcache doctor" in result.stderr
    assert "--repair" in result.stderr
    assert list(path.glob("cache.db.corrupt-*")) == []  # nothing moved aside


# -- doctor ----------------------------------------------------------------------------------


def test_doctor_on_a_sound_cache(tmp_path: Path) -> None:
    path = _sound(tmp_path / "cache")
    result = run("doctor", "--path", str(path))
    assert result.exit_code == 0, result.output
    assert "no problems" in result.stdout.lower()
    repaired = run("doctor", "--path", str(path), "--repair")
    assert repaired.exit_code == 0 and "nothing to repair" in repaired.stdout.lower()


def test_doctor_repairs_a_corrupt_database_and_says_how(tmp_path: Path) -> None:
    path = _with_a_corrupt_database(tmp_path / "cache")
    checked = run("doctor", "--path", str(path))
    assert checked.exit_code == 1
    assert "corrupt" in checked.stdout and "--repair" in checked.stdout

    repaired = run("doctor", "--path", str(path), "--repair")
    assert repaired.exit_code == 0, repaired.output
    [copy] = [p for p in path.glob("cache.db.corrupt-*") if not p.name.endswith("-wal")]
    assert str(copy) in repaired.stdout and "empty" in repaired.stdout
    assert DiskStore.check_database(path) is None
    assert run("doctor", "--path", str(path)).exit_code == 0
    assert run("stats", "--path", str(path)).exit_code == 0


def test_doctor_lists_and_deletes_damaged_entries(tmp_path: Path) -> None:
    path = _with_damaged_entries(tmp_path / "cache")
    checked = run("doctor", "--path", str(path))
    assert checked.exit_code == 1
    for name in ("v3:pickled", "v3:foreign", "v3:nofile", "pickled key"):
        assert name in checked.stdout, checked.stdout

    repaired = run("doctor", "--path", str(path), "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "Deleted 4 damaged entries" in repaired.stdout
    assert not (tmp_path / "pwned").exists()
    assert sorted(run("keys", "--path", str(path)).stdout.split()) == sorted([KEY, BIG])
    with DiskStore(path) as store:
        entry = store.get(BIG)
        assert entry is not None and entry.content == "x" * 50_000
        assert len(store) == 2
    assert run("doctor", "--path", str(path)).exit_code == 0


def test_doctor_resets_corrupt_statistics(tmp_path: Path) -> None:
    path = _with_corrupt_statistics(tmp_path / "cache")
    checked = run("doctor", "--path", str(path))
    assert checked.exit_code == 1 and "statistics" in checked.stdout

    repaired = run("doctor", "--path", str(path), "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "statistics" in repaired.stdout
    assert run("doctor", "--path", str(path)).exit_code == 0
    stats = run("stats", "--path", str(path), "--json")
    assert stats.exit_code == 0, stats.output
    assert '"entries": 302' in stats.stdout  # the entries were not touched


def test_doctor_on_a_path_that_is_not_a_cache(tmp_path: Path) -> None:
    result = run("doctor", "--path", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert not (tmp_path / "nope").exists()


def test_clear_resets_damaged_statistics(tmp_path: Path) -> None:
    path = _with_corrupt_statistics(tmp_path / "cache")
    result = run("clear", "--path", str(path), "--yes")
    assert result.exit_code == 0, result.output
    assert "Cleared 302 entries" in result.stdout and "could not be read" in result.stdout
    assert run("doctor", "--path", str(path)).exit_code == 0


def test_doctor_repairs_a_corrupt_database_and_corrupt_statistics_at_once(tmp_path: Path) -> None:
    path = _with_corrupt_statistics(tmp_path / "cache")
    _corrupt_pages(path / "cache.db")
    assert run("doctor", "--path", str(path)).exit_code == 1
    repaired = run("doctor", "--path", str(path), "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "database was corrupt" in repaired.stdout
    assert "statistics database was corrupt" in repaired.stdout
    assert run("doctor", "--path", str(path)).exit_code == 0
    # One copy of each damaged database, for a post-mortem.
    for folder in (path, path / ".llmcache-stats"):
        assert (
            len(
                [
                    p
                    for p in folder.glob("cache.db.corrupt-*")
                    if not p.name.endswith(("-wal", "-shm"))
                ]
            )
            == 1
        )


def test_inspect_shows_an_expired_entry_as_expired_and_leaves_it(tmp_path: Path) -> None:
    with DiskStore(tmp_path, clock=lambda: 1000.0) as store:  # its clock: long ago
        store.set("v3:old", CachedResponse(content="stale"), ttl=1)
    before = snapshot(tmp_path)
    result = run("inspect", "--path", str(tmp_path), "v3:old")
    assert result.exit_code == 0, result.output
    assert "(expired)" in result.stdout and "stale" in result.stdout
    assert snapshot(tmp_path) == before
