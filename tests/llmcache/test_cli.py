"""The ``llmcache`` command, through typer's CliRunner and as a real console script."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import llmcache
from llmcache.backends import registry as reg
from llmcache.cli import app
from llmcache.entry import CachedResponse
from llmcache.stores.disk import DiskStore

SCRIPT = Path(sys.executable).with_name("llmcache")
KEY = "v1:0123456789abcdef0123456789abcdef"
OTHER = "v1:0123ffffffffffffffffffffffffffff"


def run(*args: str, input: str | None = None) -> Result:
    # A wide terminal, so assertions do not depend on where rich wraps a table cell.
    return CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"}).invoke(app, list(args), input=input)


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    reg.refresh()
    yield
    reg.refresh()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A cache directory written (and closed) by another store, as an app would leave it."""
    path = tmp_path / "cache"
    with DiskStore(path) as store:
        # The door that made the calls below reports them, as the cache's doors do.
        store.count_calls_from(lambda: {"hits": 2, "misses": 1})
        store.set(
            KEY,
            CachedResponse(
                content="The [bold]answer[/bold] is 42",
                model="llama3",
                prompt_tokens=3,
                completion_tokens=6,
                tokens_used=9,
                fingerprint="f1ngerpr1nt",
                chunks=["The ", "answer"],
            ),
            ttl=3600,
        )
        store.set(OTHER, CachedResponse(content={"tasks": [1, 2]}, model="m"))
        store.get(KEY)
        store.get(KEY)
        store.get("v1:missing")
    return path


def stored_entries(path: Path) -> int:
    with DiskStore(path) as store:
        return len(store)


# -- top level -------------------------------------------------------------------------------


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"llmcache {llmcache.__version__}\n"


@pytest.mark.parametrize("command", ["stats", "clear", "inspect", "keys", "doctor", "backends"])
def test_every_command_has_help(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout


def test_no_arguments_shows_help() -> None:
    result = run()
    assert "Usage" in result.output and "stats" in result.output


# -- stats -----------------------------------------------------------------------------------


def test_stats_reads_the_persisted_counters(cache: Path) -> None:
    result = run("stats", "--path", str(cache))
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in result.stdout.splitlines()
        if line.count("│") == 3
    }
    assert rows["entries"] == "2"
    assert (rows["hits"], rows["misses"], rows["hit rate"]) == ("2", "1", "66.7%")
    assert rows["size on disk"].endswith("KiB")
    assert str(cache) in result.stdout


def test_stats_json(cache: Path) -> None:
    result = run("stats", "--path", str(cache), "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert (figures["entries"], figures["hits"], figures["misses"]) == (2, 2, 1)
    assert figures["store_reads"] == {"hits": 2, "misses": 1}
    assert figures["path"] == str(cache) and figures["size_on_disk"] > 0
    # How this process opened the store says nothing about the application's cache.
    assert not {"size_limit", "this_process", "default_ttl"} & set(figures)


def test_path_from_the_environment(cache: Path) -> None:
    result = CliRunner(env={"LLMCACHE_PATH": str(cache)}).invoke(app, ["stats", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["entries"] == 2


@pytest.mark.parametrize("command", [["stats"], ["clear", "--yes"], ["inspect", KEY], ["keys"]])
@pytest.mark.parametrize("kind", ["missing", "file", "empty dir"])
def test_a_path_that_is_not_a_cache_is_a_usage_error(
    tmp_path: Path, command: list[str], kind: str
) -> None:
    path = tmp_path / "nope"
    if kind == "file":
        path.write_text("not a cache")
    elif kind == "empty dir":
        path.mkdir()
    result = run(command[0], "--path", str(path), *command[1:])
    assert result.exit_code == 2
    assert str(path) in result.stderr and "error" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    if kind == "empty dir":
        assert list(path.iterdir()) == []  # no cache was created where the user mistyped
    elif kind == "missing":
        assert not path.exists()


# -- clear -----------------------------------------------------------------------------------


def test_clear_with_yes(cache: Path) -> None:
    result = run("clear", "--path", str(cache), "--yes")
    assert result.exit_code == 0, result.output
    assert "Cleared 2 entries" in result.stdout
    assert stored_entries(cache) == 0


def test_clear_asks_first(cache: Path) -> None:
    declined = run("clear", "--path", str(cache), input="n\n")
    assert declined.exit_code == 1
    assert "Delete all 2 entries" in declined.output
    assert stored_entries(cache) == 2

    accepted = run("clear", "--path", str(cache), input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert stored_entries(cache) == 0


# -- a damaged cache: stats and clear say so ------------------------------------------------


@pytest.fixture
def corrupt(tmp_path: Path) -> Path:
    """A cache of 20 entries with random bytes over every page from the Cache table's root
    on: it opens, and every read or write of an entry fails."""
    path = tmp_path / "cache"
    with DiskStore(path) as store:
        for i in range(20):
            store.set(f"k{i}", CachedResponse(content=f"v{i}" * 200))
    db = path / "cache.db"
    with db.open("r+b") as f:
        f.seek(4 * 4096)
        f.write(random.Random(13).randbytes(db.stat().st_size - 4 * 4096))
    return path


def copies(path: Path) -> list[Path]:
    return [p for p in path.glob("cache.db.corrupt-*") if not p.name.endswith("-wal")]


def test_stats_on_a_corrupt_database_fails_naming_the_problem_and_the_fix(corrupt: Path) -> None:
    before = (corrupt / "cache.db").read_bytes()
    for args in ([], ["--json"]):
        result = run("stats", "--path", str(corrupt), *args)
        assert result.exit_code == 3, result.output
        assert result.stdout == ""
        assert "corrupt" in result.stderr and "llmcache doctor" in result.stderr
    assert (corrupt / "cache.db").read_bytes() == before  # stats repairs nothing
    assert copies(corrupt) == []


def test_clear_on_a_corrupt_database_recovers_it_and_says_so(corrupt: Path) -> None:
    result = run("clear", "--path", str(corrupt), "--yes")
    assert result.exit_code == 0, result.output
    [copy] = copies(corrupt)
    assert "corrupt" in result.stdout and str(copy) in result.stdout
    assert "Cleared 20" not in result.stdout
    assert DiskStore.check_database(corrupt) is None
    assert "statistics are reset" in result.stdout
    assert json.loads(run("stats", "--path", str(corrupt), "--json").stdout)["sets"] == 0
    with DiskStore(corrupt) as store:  # an empty cache that works again
        assert len(store) == 0
        store.set("k", CachedResponse(content="v"))
        got = store.get("k")
        assert got is not None and got.content == "v"
    assert run("stats", "--path", str(corrupt)).exit_code == 0


def test_clear_asks_before_recovering_a_corrupt_database(corrupt: Path) -> None:
    before = (corrupt / "cache.db").read_bytes()
    declined = run("clear", "--path", str(corrupt), input="n\n")
    assert declined.exit_code == 1
    assert "corrupt" in declined.output
    assert (corrupt / "cache.db").read_bytes() == before and copies(corrupt) == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs (mounting needs root, as CI runs; skipped where refused)."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'refused'}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def test_a_clear_that_did_not_happen_exits_non_zero(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = small_disk / "cache"
    with DiskStore(path) as store:
        for i in range(20):
            store.set(f"k{i}", CachedResponse(content="v" * 300))

    def fill_the_disk_then_accept(*args: object, **kwargs: object) -> bool:
        with (small_disk / "filler").open("wb", buffering=0) as filler:
            with pytest.raises(OSError):  # ENOSPC: the disk filled up while clear asked
                while True:
                    filler.write(b"x" * 4096)
        return True

    monkeypatch.setattr("typer.confirm", fill_the_disk_then_accept)
    result = run("clear", "--path", str(path))
    assert result.exit_code == 3, result.output
    # It asked before it opened the cache to change it: opening on the full disk failed.
    assert "not cleared" in result.stderr and "OperationalError" in result.stderr
    assert "Cleared" not in result.stdout
    (small_disk / "filler").unlink()
    assert stored_entries(path) == 20


# -- inspect and keys ------------------------------------------------------------------------


def test_inspect_shows_the_entry(cache: Path) -> None:
    result = run("inspect", "--path", str(cache), KEY)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in (
        KEY,
        "llama3",
        "9 (prompt 3, completion 6)",
        "f1ngerpr1nt",
        "stream chunks",
        "The [bold]answer[/bold] is 42",
    ):
        assert expected in out  # markup in cached content is shown, not interpreted
    created = next(line for line in out.splitlines() if line.startswith("created"))
    expires = next(line for line in out.splitlines() if line.startswith("expires"))
    assert created.split()[1][:2] == "20" and "never" not in expires


def test_inspect_json_is_the_raw_entry(cache: Path) -> None:
    result = run("inspect", "--path", str(cache), OTHER, "--json")
    assert result.exit_code == 0, result.output
    with DiskStore(cache) as store:
        entry = store.get(OTHER)
    assert entry is not None
    assert json.loads(result.stdout) == entry.to_dict()


def test_inspect_accepts_a_unique_prefix(cache: Path) -> None:
    result = run("inspect", "--path", str(cache), KEY[:8])
    assert result.exit_code == 0, result.output
    assert KEY in result.stdout

    ambiguous = run("inspect", "--path", str(cache), "v1:0123")
    assert ambiguous.exit_code == 1
    assert "matches 2 keys" in ambiguous.stderr


def test_inspect_missing_key(cache: Path) -> None:
    result = run("inspect", "--path", str(cache), "v1:nothere")
    assert result.exit_code == 1
    assert "no entry with key 'v1:nothere'" in result.stderr
    assert str(cache) in result.stderr
    # Looking for a key that is not there is not a cache miss of the application's.
    assert json.loads(run("stats", "--path", str(cache), "--json").stdout)["misses"] == 1


def test_inspect_preview_truncates(tmp_path: Path) -> None:
    with DiskStore(tmp_path) as store:
        store.set("k", CachedResponse(content="x" * 1000))
    result = run("inspect", "--path", str(tmp_path), "k", "--preview", "10")
    assert "xxxxxxxxxx... (1000 characters)" in result.stdout
    assert "x" * 11 not in result.stdout


def test_keys(cache: Path) -> None:
    result = run("keys", "--path", str(cache))
    assert result.exit_code == 0, result.output
    assert sorted(result.stdout.split()) == sorted([KEY, OTHER])
    assert len(run("keys", "--path", str(cache), "--limit", "1").stdout.split()) == 1


# -- backends --------------------------------------------------------------------------------


def test_backends_lists_installed_plugins() -> None:
    result = run("backends")
    assert result.exit_code == 0, result.output
    lines = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:6]]
        for line in result.stdout.splitlines()
        if line.count("│") == 6
    }
    assert lines["echo-test"] == [
        "llmcache_test_plugins.good:EchoBackend",
        "llmcache-test-plugins",
        "0.0.1",
        "ok",
    ]
    assert lines["mock"][:3] == [
        "llmcache.backends.mock:MockBackend",
        "llmcache",
        llmcache.__version__,
    ]
    assert lines["broken-test"][3] == "ok"  # listing imports nothing, so cannot tell


def test_backends_check_reports_broken_plugins() -> None:
    result = run("backends", "--check")
    assert result.exit_code == 1
    broken = next(line for line in result.stdout.splitlines() if "broken-test" in line)
    assert "error: ImportError" in broken
    assert "Traceback" not in result.output and "WARNING" not in result.stderr


def test_backends_shows_conflicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for dist in ("fake-a", "fake-b"):
        info = tmp_path / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[llmcache.backends]\ndup = {dist}:X\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg.refresh()
    result = run("backends")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "dup" in line]
    assert len(rows) == 2
    assert "conflict (also fake-b)" in rows[0] and "conflict (also fake-a)" in rows[1]


# -- the installed console script ------------------------------------------------------------


def test_console_script(cache: Path) -> None:
    assert SCRIPT.exists(), f"{SCRIPT} missing: is llmcache installed in this venv?"
    helped = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert "backends" in helped.stdout

    listed = subprocess.run(
        [str(SCRIPT), "backends"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert listed.returncode == 0, listed.stderr
    assert "echo-test" in listed.stdout and "llmcache-test-plugins" in listed.stdout

    # A fresh process sees the counters that the fixture's process left behind.
    stats = subprocess.run(
        [str(SCRIPT), "stats", "--path", str(cache), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["hits"] == 2

    bad = subprocess.run(
        [str(SCRIPT), "stats", "--path", str(cache / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert str(cache / "nope") in bad.stderr and "Traceback" not in bad.stderr


# -- help texts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", ["stats", "clear", "inspect", "keys", "doctor", "backends", "eval"]
)
def test_help_names_the_environment_variable_once_and_shows_no_bool_metavar(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    assert result.stdout.count("LLMCACHE_PATH") == (0 if command in ("backends", "eval") else 1)


# -- true statistics, from a fresh process ---------------------------------------------------


def run_script(source: str, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", source, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def stats_json(path: Path) -> dict[str, object]:
    """`llmcache stats --json` from a process of its own, as a user would run it."""
    done = subprocess.run(
        [str(SCRIPT), "stats", "--path", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    figures: dict[str, object] = json.loads(done.stdout)
    return figures


def inspect_json(path: Path, key: str) -> dict[str, object]:
    result = run("inspect", "--path", str(path), key, "--json")
    assert result.exit_code == 0, result.output
    entry: dict[str, object] = json.loads(result.stdout)
    return entry


RESPONSE_CACHE_APP = """
import sys
from llmcache import ResponseCache
cache = ResponseCache(persist_path=sys.argv[1])
for i in range(30):  # 30 misses, each answered by the model and stored
    assert cache.get(f"question {i}", 0.0, "llama3.2") is None
    cache.set(f"question {i}", 0.0, "llama3.2", f"answer {i}", tokens_used=7)
for i in range(10):  # 10 hits
    assert cache.get(f"question {i}", 0.0, "llama3.2").content == f"answer {i}"
cache.close()
"""


def test_stats_of_a_response_cache_count_each_call_once(tmp_path: Path) -> None:
    run_script(RESPONSE_CACHE_APP, str(tmp_path))
    figures = stats_json(tmp_path)
    assert (figures["hits"], figures["misses"], figures["calls"]) == (10, 30, 40)
    assert figures["hit_rate"] == 0.25
    assert (figures["bypasses"], figures["uncacheable"]) == (0, 0)
    table = run("stats", "--path", str(tmp_path)).stdout
    assert "25.0%" in table


DOOR_APP = """
import sys
from llmcache.entry import CachedResponse
from llmcache.stores.disk import DiskStore

# A door reporting the outcome of every call it answers, as the cache's doors do.
counts = dict.fromkeys(["hits", "misses", "coalesced", "bypasses", "uncacheable",
                        "semantic_hits", "tokens_saved"], 0)
store = DiskStore(sys.argv[1])
def report():
    return counts
store.count_calls_from(report)
store.count_calls_from(report)  # registering twice counts once
for i in range(30):
    assert store.get(f"k{i}") is None and store.get(f"k{i}") is None  # read twice
    counts["misses"] += 1
    store.set(f"k{i}", CachedResponse(content="v", tokens_used=5))
for i in range(10):
    assert store.get(f"k{i}") is not None
    counts["hits"] += 1
    counts["tokens_saved"] += 5
counts["hits"] += 2; counts["semantic_hits"] += 2  # two answered by the semantic tier
counts["bypasses"] += 4; counts["uncacheable"] += 3; counts["coalesced"] += 5
"""


def test_call_outcomes_reported_by_the_doors_are_counted_once(tmp_path: Path) -> None:
    run_script(DOOR_APP, str(tmp_path))
    figures = stats_json(tmp_path)
    assert {
        name: figures[name]
        for name in (
            "hits",
            "misses",
            "semantic_hits",
            "coalesced",
            "bypasses",
            "uncacheable",
            "tokens_saved",
            "calls",
        )
    } == {
        "hits": 12,
        "misses": 30,
        "semantic_hits": 2,
        "coalesced": 5,
        "bypasses": 4,
        "uncacheable": 3,
        "tokens_saved": 50,
        "calls": 12 + 30 + 5 + 4 + 3,
    }
    assert figures["hit_rate"] == 12 / (12 + 30)
    # The store's own reads are a separate, labelled figure: each miss was read twice.
    assert figures["store_reads"] == {"hits": 10, "misses": 60}


DECORATED_APP = """
import sys
from llmcache import cached_generate
from llmcache.policy import cache_control
from llmcache.stores.disk import DiskStore

store = DiskStore(sys.argv[1])

@cached_generate(cache=store, namespace="app")
def generate(prompt: str, model: str = "llama3.2", temperature: float = 0.0) -> str:
    return prompt.upper()

for i in range(30):
    generate(f"note {i}", model="llama3.2")
for i in range(10):
    generate(f"note {i}", model="llama3.2")
with cache_control(bypass=True):
    for i in range(4):
        generate(f"note {i}", model="llama3.2")
for i in range(3):
    generate(f"note {i}", model="llama3.2", temperature=0.9)
store.close()
"""


def test_decorated_calls_into_a_disk_store_are_counted_once(tmp_path: Path) -> None:
    run_script(DECORATED_APP, str(tmp_path))
    figures = stats_json(tmp_path)
    assert (figures["hits"], figures["misses"]) == (10, 30)
    assert (figures["bypasses"], figures["uncacheable"]) == (4, 3)
    assert figures["hit_rate"] == 0.25


def test_a_decorator_entry_records_the_model_its_call_named(tmp_path: Path) -> None:
    run_script(DECORATED_APP, str(tmp_path))
    with DiskStore(tmp_path) as store:
        key = store.keys()[0]
    assert inspect_json(tmp_path, key)["model"] == "llama3.2"


ENTRY_HITS_APP = """
import sys
from llmcache import cached_generate
from llmcache.stores.disk import DiskStore

store = DiskStore(sys.argv[1])

@cached_generate(cache=store, namespace="app")
def generate(prompt: str) -> str:
    return "answer to " + prompt

for prompt, calls in (("a", 5), ("b", 2), ("c", 1)):
    for _ in range(calls):
        generate(prompt)
"""  # never closed: the counts are flushed at exit


def test_each_entry_shows_its_own_hits_from_a_fresh_process(tmp_path: Path) -> None:
    run_script(ENTRY_HITS_APP, str(tmp_path))
    with DiskStore(tmp_path) as store:
        keys = store.keys()
    entries = {str(inspect_json(tmp_path, key)["content"])[-1]: key for key in keys}
    hits = {prompt: inspect_json(tmp_path, key)["hits"] for prompt, key in entries.items()}
    assert hits == {"a": 4, "b": 1, "c": 0}
    shown = run("inspect", "--path", str(tmp_path), entries["a"]).stdout
    assert ["hits", "4"] in [line.split() for line in shown.splitlines()]


def test_a_replaced_entry_starts_from_zero_hits(tmp_path: Path) -> None:
    with DiskStore(tmp_path) as store:
        store.set("k", CachedResponse(content="old"))
        for _ in range(3):
            store.get("k")
    with DiskStore(tmp_path) as store:
        store.set("k", CachedResponse(content="new"))  # a new entry under the same key
        store.get("k")
    assert inspect_json(tmp_path, "k")["hits"] == 1


def test_hits_are_not_written_one_by_one(tmp_path: Path) -> None:
    """A hit costs no write: the side database changes at the flush, not at each hit."""
    with DiskStore(tmp_path) as store:
        store.set("k", CachedResponse(content="v"))
        store.stats()  # flushes what the set counted
        side = tmp_path / ".llmcache-stats"
        before = {p.name: p.read_bytes() for p in side.iterdir()}
        for _ in range(50):
            store.get("k")
        assert {p.name: p.read_bytes() for p in side.iterdir()} == before
    assert inspect_json(tmp_path, "k")["hits"] == 50


def test_clear_resets_the_statistics_and_says_so(tmp_path: Path) -> None:
    run_script(RESPONSE_CACHE_APP, str(tmp_path))
    result = run("clear", "--path", str(tmp_path), "--yes")
    assert result.exit_code == 0, result.output
    assert "Cleared 30 entries" in result.stdout
    assert "10 hits" in result.stdout and "30 misses" in result.stdout  # what was reset
    figures = stats_json(tmp_path)
    assert (figures["entries"], figures["hits"], figures["misses"], figures["calls"]) == (
        0,
        0,
        0,
        0,
    )
    assert figures["store_reads"] == {"hits": 0, "misses": 0}
    assert figures["counted_since"] is not None


def test_clear_says_when_there_is_nothing_to_clear(tmp_path: Path) -> None:
    with DiskStore(tmp_path):
        pass
    result = run("clear", "--path", str(tmp_path))  # no input: it must not ask
    assert result.exit_code == 0, result.output
    assert "Nothing to clear" in result.stdout
    assert "Delete all 0" not in result.output


def test_clear_of_an_empty_cache_with_statistics_asks_to_reset_them(tmp_path: Path) -> None:
    with DiskStore(tmp_path) as store:
        store.get("nothing")
    declined = run("clear", "--path", str(tmp_path), input="n\n")
    assert declined.exit_code == 1
    assert "Delete all" not in declined.output and "statistics" in declined.output
    assert stats_json(tmp_path)["store_reads"] == {"hits": 0, "misses": 1}
    accepted = run("clear", "--path", str(tmp_path), input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert stats_json(tmp_path)["store_reads"] == {"hits": 0, "misses": 0}


USER_FACING_MODULES = [
    "llmcache.cli",
    "llmcache.response_cache",
    "llmcache.embeddings",
    "llmcache.metrics",
    "llmcache.batching",
    "llmcache.parallel",
    "llmcache_ollama.cached",
]


@pytest.mark.parametrize("name", USER_FACING_MODULES)
def test_docstrings_do_not_assume_the_book(name: str) -> None:
    import importlib
    import inspect as pyinspect

    module = importlib.import_module(name)
    texts = [module.__doc__ or ""]
    for _, obj in pyinspect.getmembers(module):
        if getattr(obj, "__module__", None) == name:
            texts.append(pyinspect.getdoc(obj) or "")
            for _, member in pyinspect.getmembers(obj):
                texts.append(getattr(member, "__doc__", None) or "")
    # Sphinx reads `#:` comments as the documentation of what follows them.
    texts += [
        line for line in pyinspect.getsource(module).splitlines() if line.lstrip().startswith("#:")
    ]
    for word in ("chapter", "the book"):
        assert not [text for text in texts if word in text.lower()], (name, word)
