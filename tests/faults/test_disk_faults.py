"""DiskStore when the disk fails, tried as a user would: a real diskcache directory behind a
`CachedClient` or ``@cached_generate``, a real small tmpfs that is full or read-only, a path
that is a file, and planted files (pickles in the Cache table, rows and value files swapped,
value files and the database truncated, random bytes in the middle of the database).

Each test checks one item of the fault list in `llmcache.stores.disk`: every call gets the
model's answer to its own prompt and never another's, nothing raises, the fault is counted,
and caching resumes once the fault is gone (or recovered from). The model is the public
`MockBackend`, numbering its answers so that a stale or foreign answer would show.
"""

from __future__ import annotations

import multiprocessing
import pathlib
import random
import sqlite3
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache
import pytest

from llmcache import CachedClient, cached_generate
from llmcache.backends.base import AIResponse
from llmcache.backends.mock import MockBackend, MockCall
from llmcache.errors import StoreError
from llmcache.stores import DiskStore

BIG = 40_000  # characters: above diskcache's 32 KB, so the value lives in its own file


class Model:
    """A MockBackend whose answers are numbered ("answer 3 to <prompt>"), remembering every
    answer it gave to each prompt: a served answer must be one of its own prompt's."""

    def __init__(self, padding: int = 0) -> None:
        self.padding = padding
        self.given: dict[str, list[str]] = defaultdict(list)
        self._lock = threading.Lock()
        self.backend = MockBackend(self._answer)

    def _answer(self, call: MockCall) -> str:
        text = f"answer {call.index} to {call.prompt}" + "." * self.padding
        with self._lock:
            self.given[str(call.prompt)].append(text)
        return text

    @property
    def calls(self) -> int:
        return self.backend.call_count


def ask(client: CachedClient, model: Model, prompt: str) -> AIResponse:
    """One call through the cache; fails the test if the answer is not the model's answer
    to this very prompt."""
    response = client.generate(prompt, temperature=0)
    assert response.content in model.given[prompt], (prompt, response.content[:60])
    return response


def caches_again(client: CachedClient, model: Model, prompt: str = "fresh prompt") -> bool:
    """True if a new answer is stored and served from the cache on the next call."""
    first = ask(client, model, prompt)
    again = ask(client, model, prompt)
    return not first.cached and again.cached and again.content == first.content


def filled(path: Path, model: Model, prompts: list[str]) -> DiskStore:
    """A store at `path` holding the model's answers to `prompts` (asked through a client)."""
    store = DiskStore(path)
    client = CachedClient(model.backend, store)
    for prompt in prompts:
        ask(client, model, prompt)
    return store


PROMPTS = [f"question {i}" for i in range(20)]


# --- a real small tmpfs -----------------------------------------------------------------


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 512 KiB tmpfs at a fresh directory; mounting needs root (CI runs as root), so
    the test is skipped, with the reason, where the mount is refused."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = _mount("-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mountpoint))
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'refused'}): "
            "the full-disk and read-only faults need root"
        )
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full (ENOSPC); returns it, to be deleted later."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f, pytest.raises(OSError):
        while True:
            f.write(b"x" * 4096)
    return filler


def read_only(disk: Path, on: bool) -> None:
    remounted = _mount("-o", f"remount,{'ro' if on else 'rw'}", str(disk))
    if remounted.returncode != 0:
        pytest.skip(
            f"cannot remount the tmpfs {'read-only' if on else 'read-write'} "
            f"({remounted.stderr.strip()})"
        )


# --- a directory that cannot be opened ----------------------------------------------------


def test_a_full_disk_from_the_start_is_a_miss_only_tier_until_space_returns(tmpfs: Path) -> None:
    filler = fill(tmpfs)
    model = Model()
    store = DiskStore(tmpfs / "cache", retry_after=0.05)  # does not raise
    with store:
        assert store.available is False
        client = CachedClient(model.backend, store)
        for _ in range(2):
            assert not ask(client, model, "q").cached  # the model answers every time
        assert model.calls == 2 and store.stats()["errors"] >= 2
        filler.unlink()
        time.sleep(0.1)  # past retry_after: the next get or set opens the directory
        assert caches_again(client, model)
        assert store.available is True
    fill(tmpfs)
    with pytest.raises(StoreError) as raised:
        DiskStore(tmpfs / "other", strict=True)
    assert isinstance(raised.value.__cause__, (sqlite3.Error, OSError))


def test_a_disk_that_fills_up_later_keeps_serving_what_it_holds(tmpfs: Path) -> None:
    model = Model()
    with filled(tmpfs / "cache", model, PROMPTS[:5]) as store:
        client = CachedClient(model.backend, store)
        filler = fill(tmpfs)
        assert all(ask(client, model, p).cached for p in PROMPTS[:5])
        before = model.calls
        assert not ask(client, model, "new").cached
        assert not ask(client, model, "new").cached  # could not be stored: asked again
        assert model.calls == before + 2 and store.stats()["errors"] >= 1
        filler.unlink()
        assert caches_again(client, model)


def test_a_read_only_folder_is_a_miss_only_tier(tmpfs: Path) -> None:
    model = Model()
    filled(tmpfs / "cache", model, PROMPTS[:3]).close()
    read_only(tmpfs, True)
    try:
        with DiskStore(tmpfs / "cache", retry_after=0.05) as store:
            assert store.available is False
            client = CachedClient(model.backend, store)
            assert not any(ask(client, model, p).cached for p in PROMPTS[:3])
            with pytest.raises(StoreError):
                DiskStore(tmpfs / "cache", strict=True)
            read_only(tmpfs, False)
            time.sleep(0.1)  # past retry_after
            assert caches_again(client, model)
            assert ask(client, model, PROMPTS[0]).cached  # the old entries are back too
    finally:
        read_only(tmpfs, False)


def test_a_path_that_is_a_file_is_a_miss_only_tier(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    path.write_text("not a directory")
    model = Model()
    _MODELS.append(model)
    try:
        with DiskStore(path) as store:  # does not raise
            generate = cached_generate(cache=store)(_generate)
            answers = [generate("q"), generate("q")]
            assert model.calls == 2  # both calls reached the model; neither raised
            assert all(answer in model.given["q"] for answer in answers)
            assert store.stats()["errors"] >= 1
    finally:
        _MODELS.remove(model)
    assert path.read_text() == "not a directory"


_MODELS: list[Model] = []


def _generate(prompt: str) -> str:
    """A plain module-level function around the model, for ``@cached_generate``."""
    return _MODELS[-1].backend.generate(prompt).content


# --- planted files ----------------------------------------------------------------------


class _Planted:
    """Pickles to a call that creates `marker` when unpickled (the attack under test)."""

    def __init__(self, marker: Path, size: int) -> None:
        self.marker, self.size = marker, size

    def __reduce__(self) -> Any:
        return (pathlib.Path.write_text, (self.marker, "pwned" * self.size))


@pytest.mark.parametrize("size", [10, 20_000], ids=["inline", "in-a-file"])
def test_pickles_planted_in_the_cache_table_are_never_unpickled(tmp_path: Path, size: int) -> None:
    model = Model()
    filled(tmp_path, model, PROMPTS[:5]).close()
    marker = tmp_path / "pwned"
    with diskcache.Cache(str(tmp_path)) as plain:  # another client, pickling as diskcache does
        for key in list(plain.iterkeys()):
            plain.set(key, _Planted(marker, size))
    with DiskStore(tmp_path) as store:
        client = CachedClient(model.backend, store)
        for prompt in PROMPTS[:5]:
            assert not ask(client, model, prompt).cached  # the model answers again
            assert ask(client, model, prompt).cached  # and the fresh answer is kept
        assert store.stats()["errors"] == 5
    assert not marker.exists()


def test_rows_swapped_between_two_requests_are_never_served(tmp_path: Path) -> None:
    model = Model()
    filled(tmp_path, model, ["red", "blue"]).close()
    with diskcache.Cache(str(tmp_path)) as plain:
        first, second = plain.iterkeys()
        plain._sql("UPDATE Cache SET key = 'swap' WHERE key = ?", (first,))
        plain._sql("UPDATE Cache SET key = ? WHERE key = ?", (first, second))
        plain._sql("UPDATE Cache SET key = ? WHERE key = 'swap'", (second,))
    with DiskStore(tmp_path) as store:
        client = CachedClient(model.backend, store)
        for prompt in ("red", "blue"):  # each read lands on the other's answer: refused
            assert not ask(client, model, prompt).cached
            assert ask(client, model, prompt).cached


def test_value_files_swapped_or_truncated_are_misses(tmp_path: Path) -> None:
    model = Model(padding=BIG)
    filled(tmp_path, model, ["red", "blue", "green"]).close()
    files = {}
    with diskcache.Cache(str(tmp_path)) as plain:
        for key, name in plain._sql("SELECT key, filename FROM Cache").fetchall():
            files[key] = tmp_path / name
    red, blue, green = files.values()
    swap = red.with_suffix(".tmp")
    red.rename(swap)
    blue.rename(red)
    swap.rename(blue)
    with green.open("r+b") as f:
        f.truncate(green.stat().st_size // 2)
    with DiskStore(tmp_path) as store:
        client = CachedClient(model.backend, store)
        for prompt in ("red", "blue", "green"):
            assert not ask(client, model, prompt).cached
            assert ask(client, model, prompt).cached


def test_a_row_pointing_outside_the_directory_is_neither_read_nor_deleted(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    model = Model()
    filled(tmp_path / "cache", model, ["red"]).close()
    with diskcache.Cache(str(tmp_path / "cache")) as plain:
        plain._sql("UPDATE Cache SET mode = 2, filename = '../victim.txt', value = NULL")
    with DiskStore(tmp_path / "cache") as store:
        client = CachedClient(model.backend, store)
        assert not ask(client, model, "red").cached
        assert ask(client, model, "red").cached
        store.clear()
    assert victim.read_text() == "keep me"


def test_a_write_lock_held_by_another_process(tmp_path: Path) -> None:
    model = Model()
    filled(tmp_path, model, ["red"]).close()
    with DiskStore(tmp_path, timeout=0.05) as store:
        client = CachedClient(model.backend, store)
        holder = sqlite3.connect(tmp_path / "cache.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process, stuck in a write
        try:
            assert ask(client, model, "red").cached  # reads need no lock
            assert not ask(client, model, "blue").cached
            assert not ask(client, model, "blue").cached  # its set was dropped
            errors = store.stats()["errors"]
            assert errors >= 1
            with pytest.raises(StoreError, match="delete"):
                store.delete(next(iter(store.keys())))
            with pytest.raises(StoreError, match="clear"):
                store.clear()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert caches_again(client, model, "blue")
        assert ask(client, model, "red").cached  # the failed clear removed nothing


# --- a corrupt database -----------------------------------------------------------------


def _copies(directory: Path) -> list[Path]:
    """The copies (or renamed files) of recovered databases, without their -wal/-shm."""
    return [
        p for p in directory.glob("cache.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))
    ]


def _random_bytes_in_the_middle(db: Path) -> None:
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.seek(size // 3)
        f.write(random.Random(13).randbytes(size // 3))


def _random_bytes_after_the_schema(db: Path) -> None:
    size = db.stat().st_size  # pages 1-4 (header, schema, Settings) are read at open
    with db.open("r+b") as f:
        f.seek(4 * 4096)
        f.write(random.Random(13).randbytes(size - 4 * 4096))


def _truncated(db: Path) -> None:
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size // 2)


def _garbage_header(db: Path) -> None:
    with db.open("r+b") as f:
        f.write(random.Random(13).randbytes(4096))


@pytest.mark.parametrize(
    "damage",
    [_random_bytes_in_the_middle, _random_bytes_after_the_schema, _truncated, _garbage_header],
    ids=["random-middle", "random-after-schema", "truncated", "header"],
)
def test_a_corrupt_database_is_recovered_and_caches_again(tmp_path: Path, damage: Any) -> None:
    model = Model()
    filled(tmp_path, model, PROMPTS).close()
    damage(tmp_path / "cache.db")
    with DiskStore(tmp_path) as store:
        client = CachedClient(model.backend, store)
        for prompt in PROMPTS:
            ask(client, model, prompt)  # right answers, from the cache or the model
        assert caches_again(client, model)
        recoveries = store.stats()["recoveries"]
    copies = _copies(tmp_path)
    # Random bytes in the middle may spare every page the calls read: then nothing to do.
    expected = {0, 1} if damage is _random_bytes_in_the_middle else {1}
    assert recoveries in expected and len(copies) == recoveries
    if recoveries:
        assert DiskStore.check_database(tmp_path) is None


def _ask_from_a_process(path: str, offset: int) -> list[str]:
    """Four threads asking the same prompts through one client; the wrong answers seen."""
    model = Model()
    wrong: list[str] = []
    with DiskStore(path) as store:
        client = CachedClient(model.backend, store)

        def work(n: int) -> None:
            for i in range(30):
                prompt = PROMPTS[(offset + n + i) % len(PROMPTS)]
                response = client.generate(prompt, temperature=0)
                if response.content not in model.given[prompt] and not (
                    response.cached and response.content.endswith(f" to {prompt}")
                ):
                    wrong.append(f"{prompt}: {response.content}")

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return wrong


def test_processes_meeting_one_corrupt_database_recover_it_once(tmp_path: Path) -> None:
    model = Model()
    filled(tmp_path, model, PROMPTS).close()
    _random_bytes_after_the_schema(tmp_path / "cache.db")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_ask_from_a_process, [(str(tmp_path), 0), (str(tmp_path), 7)])
    assert results == [[], []]
    assert len(_copies(tmp_path)) == 1
    with DiskStore(tmp_path) as store:
        assert store.stats()["recoveries"] == 1
        client = CachedClient(model.backend, store)
        assert caches_again(client, model)
