"""The ``llmcache`` command: look into a disk cache, check and repair it, list the backends.

Every figure comes from the cache directory itself (entries, size, the counters every
process that used it persisted), so a fresh process shows what earlier processes did.

::

    llmcache stats   --path DIR          entries, size on disk, calls, hits and misses
    llmcache keys    --path DIR          the keys held
    llmcache inspect --path DIR KEY      one entry (KEY may be a unique prefix)
    llmcache doctor  --path DIR          check the database, every entry, the statistics
    llmcache doctor  --path DIR --repair ... and repair what is damaged, saying how
    llmcache clear   --path DIR [--yes]  delete every entry and reset the statistics
    llmcache backends [--check]          installed backend plugins
    llmcache eval PAIRS.jsonl [--json]   semantic cache quality on labeled pairs
    llmcache proxy --upstream URL        a caching reverse proxy (extra 'proxy')
    llmcache --version

``stats``, ``keys``, ``inspect`` and ``doctor`` without ``--repair`` change nothing in the
directory, not even a counter (they read it through `llmcache.stores.disk.DiskReader`).

``--path`` may also come from ``LLMCACHE_PATH``. Exit codes: 0 success, 1 a missing key, a
declined confirmation, or problems ``doctor`` found, 2 bad usage (including a path that is
not a cache directory, or one that cannot be opened), 3 the command could not do its job: a
corrupt database (``doctor --repair`` recovers it), an entry or statistics that cannot be
read, a clear or repair that did not happen.

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(app, ["--version"]).output.startswith("llmcache ")
True
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

import llmcache

if TYPE_CHECKING:
    from llmcache.backends.registry import BackendInfo
    from llmcache.entry import CachedResponse
    from llmcache.stores.disk import Damage, DiskReader, DiskStore

__all__ = ["app", "main"]

app = typer.Typer(
    name="llmcache",
    help="Inspect llmcache disk caches and the installed backend plugins.",
    no_args_is_help=True,
    add_completion=False,
    # Plain click help: typer's rich help panels print `<bool>` for every flag.
    rich_markup_mode=None,
    # A traceback's locals could hold cached content or API keys: never print them.
    pretty_exceptions_show_locals=False,
)

PathOption = Annotated[
    Path,
    typer.Option(
        "--path",
        "-p",
        envvar="LLMCACHE_PATH",
        show_default=False,
        help="Cache directory (a DiskStore or ResponseCache path).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

# Files diskcache keeps in every cache directory; their absence means "not a cache".
_CACHE_DB = "cache.db"
PROBLEMS_FOUND = 1
USAGE_ERROR = 2
STORE_ERROR = 3


def _out() -> Console:
    # Built per call: the console must see the streams and COLUMNS in force now (tests
    # swap them), not those of import time.
    return Console(highlight=False)


def _fail(message: str, code: int = 1) -> NoReturn:
    # soft_wrap: a long path must stay on one line, so the message can be grepped.
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(message)}"
    )
    raise typer.Exit(code)


def _warn(message: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold yellow]warning:[/] {escape(message)}"
    )


def _check_cache_dir(path: Path) -> Path:
    if not path.exists():
        _fail(f"{path}: no such directory", USAGE_ERROR)
    if not path.is_dir():
        _fail(f"{path}: not a directory", USAGE_ERROR)
    if not (path / _CACHE_DB).is_file():
        _fail(f"{path}: not an llmcache disk cache (no {_CACHE_DB} in it)", USAGE_ERROR)
    return path


@contextmanager
def _open_store(path: Path, not_done: str) -> Iterator[DiskStore]:
    """Open an existing cache to change it; never create one where the user mistyped. The
    commands that change a cache looked into it first, so a cache that cannot be opened now
    (a full disk, permissions) means the change did not happen: `not_done` says which."""
    _check_cache_dir(path)
    from llmcache.stores.disk import DiskStore  # lazy: `llmcache --help` stays fast

    try:
        # strict: a directory that cannot be opened is an error here, not a miss-only tier.
        store = DiskStore(path, strict=True)
    except Exception as exc:  # a foreign database, a permission problem, a full disk ...
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        _fail(
            f"{path}: {not_done}: cannot open the cache: {type(cause).__name__}: {cause}",
            STORE_ERROR,
        )
    with store:
        yield store


@contextmanager
def _open_reader(path: Path) -> Iterator[DiskReader]:
    """Look into an existing cache without changing anything in its directory."""
    _check_cache_dir(path)
    from llmcache.stores.disk import DiskReader

    try:
        reader = DiskReader(path)
    except OSError as exc:
        _fail(f"{path}: cannot read the cache: {type(exc).__name__}: {exc}", USAGE_ERROR)
    with reader:
        try:
            yield reader
        except sqlite3.DatabaseError as exc:  # met while reading: say what it is and the fix
            _unreadable(path, exc)


def _repair_hint(path: Path) -> str:
    return f"'llmcache doctor --path {path} --repair'"


def _unreadable(path: Path, exc: sqlite3.Error | OSError) -> NoReturn:
    from llmcache.stores.disk import DiskStore

    if isinstance(exc, sqlite3.DatabaseError) and DiskStore.check_database(path) is not None:
        _fail(
            f"{path}: the cache database is corrupt ({exc}); {_repair_hint(path)} keeps a "
            f"copy of it and starts an empty cache",
            STORE_ERROR,
        )
    _fail(f"{path}: cannot read the cache: {type(exc).__name__}: {exc}", STORE_ERROR)


def _corrupt(reader: DiskReader, path: Path) -> None:
    """Exit 3 when the cache's database is damaged: figures read from it would be made up."""
    problem = reader.check()
    if problem is not None:
        _fail(
            f"{path}: the cache database is corrupt ({problem}); {_repair_hint(path)} "
            f"keeps a copy of it and starts an empty cache",
            STORE_ERROR,
        )


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def _when(timestamp: float | None, *, never: str = "never") -> str:
    if timestamp is None:
        return never
    moment = dt.datetime.fromtimestamp(timestamp).astimezone()
    return moment.isoformat(sep=" ", timespec="seconds")


def _print_json(data: Any) -> None:
    # Plain bytes on stdout (no colour, no wrapping) so the output can be piped to jq.
    sys.stdout.write(
        orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str).decode()
        + "\n"
    )


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmcache {llmcache.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Inspect llmcache disk caches and the installed backend plugins."""


# -- stats -----------------------------------------------------------------------------------

_CALLS = ("hits", "misses", "coalesced", "bypasses", "uncacheable")


def _figures(reader: DiskReader, path: Path) -> dict[str, Any]:
    """What `stats` shows. ``hits``, ``misses`` ... are calls, each counted once by the door
    that answered it; ``store_reads`` are the store's reads (a miss may read twice)."""
    counts = reader.counters()
    calls = {name: counts[f"call_{name}"] for name in (*_CALLS, "semantic_hits", "tokens_saved")}
    hits, misses = calls["hits"], calls["misses"]
    return {
        "path": str(path),
        "entries": len(reader),
        "size_on_disk": reader.volume(),
        "calls": sum(calls[name] for name in _CALLS),
        **calls,
        "hit_rate": hits / (hits + misses) if hits + misses else None,
        "store_reads": {"hits": counts["hits"], "misses": counts["misses"]},
        **{
            name: counts[name]
            for name in ("sets", "deletes", "expirations", "errors", "recoveries")
        },
        "counted_since": _when(counts["since"], never="") or None,
    }


@app.command(short_help="Entries, size, calls, hits and misses.")
def stats(path: PathOption, as_json: JsonOption = False) -> None:
    """Show entries, size on disk, and the calls recorded in the cache: hits, misses,
    bypasses, uncacheable calls (each call counted once), the hit rate (hits / (hits +
    misses)), and the store's own reads, writes and faults. Changes nothing."""
    with _open_reader(path) as reader:
        _corrupt(reader, path)
        problem = reader.check_statistics()
        if problem is not None:
            _fail(
                f"{path}: the statistics database is corrupt ({problem}); "
                f"{_repair_hint(path)} starts counting again",
                STORE_ERROR,
            )
        figures = _figures(reader, path)
    if as_json:
        _print_json(figures)
        return
    table = Table()
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for name, value in _stat_rows(figures):
        table.add_row(name, value)
    out = _out()
    out.print(Text(f"llmcache disk cache {path}", style="bold"), soft_wrap=True)
    out.print(table)
    reads = figures["store_reads"]
    if not figures["calls"] and reads["hits"] + reads["misses"]:
        out.print(
            "No calls were reported: the programs that used this cache read it "
            "directly, so only the store reads count them.",
            soft_wrap=True,
        )


def _stat_rows(figures: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield "entries", str(figures["entries"])
    yield "size on disk", _size(figures["size_on_disk"])
    yield "calls", str(figures["calls"])
    for name in ("hits", "misses"):
        yield name, str(figures[name])
    rate = figures["hit_rate"]
    yield "hit rate", "-" if rate is None else f"{100 * rate:.1f}%"
    for name in ("semantic_hits", "coalesced", "bypasses", "uncacheable", "tokens_saved"):
        yield name.replace("_", " "), str(figures[name])
    reads = figures["store_reads"]
    yield "store reads: hits", str(reads["hits"])
    yield "store reads: misses", str(reads["misses"])
    for name in ("sets", "deletes", "expirations", "errors", "recoveries"):
        yield name, str(figures[name])
    yield "counting since", figures["counted_since"] or "-"


# -- clear -----------------------------------------------------------------------------------


@app.command(short_help="Delete every entry, reset the statistics.")
def clear(
    path: PathOption,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every entry of the cache and reset its statistics (asks first unless --yes);
    says so when there is nothing to clear.

    A corrupt database is recovered instead: a copy of it is kept aside and the cache starts
    empty. Exits with 3 when the entries could not be deleted.
    """
    from llmcache.errors import StoreError

    with _open_reader(path) as reader:
        problem = reader.check()
        count = 0 if problem else len(reader)
        counts = _counts_or_none(reader)
    if problem is not None:
        _clear_corrupt(path, problem, yes, counts)
        return
    counted = counts is None or any(v for k, v in counts.items() if k != "since")
    if not count and not counted:
        _out().print(
            escape(f"Nothing to clear: the cache at {path} holds no entries and no statistics."),
            soft_wrap=True,
        )
        return
    if not yes:
        typer.confirm(
            f"Delete all {count} entries from {path} and reset its statistics?"
            if count
            else f"The cache at {path} holds no entries. Reset its statistics?",
            abort=True,
        )
    with _open_store(path, "the cache was not cleared") as store:
        count = len(store)
        try:
            store.clear()
            _reset_statistics(store, counts)
        except StoreError as exc:
            _fail(f"{path}: the cache was not cleared: {exc}", STORE_ERROR)
        recovered = store.recovered
    note = f" The database was corrupt: a copy of it is at {recovered[-1]}." if recovered else ""
    _out().print(
        escape(
            f"Cleared {count} entries from {path} and reset its statistics "
            f"({_summary(counts)}).{note}"
        ),
        soft_wrap=True,
    )


def _counts_or_none(reader: DiskReader) -> dict[str, Any] | None:
    try:
        return reader.counters()
    except sqlite3.DatabaseError:
        return None  # damaged statistics: clear resets them anyway


def _reset_statistics(store: DiskStore, counts: dict[str, Any] | None) -> None:
    if counts is None:  # damaged: a reset would fail on them the same way
        store.recover_statistics("found damaged by llmcache clear")
    else:
        store.reset_stats()


def _summary(counts: dict[str, Any] | None) -> str:
    if counts is None:
        return "they could not be read"
    calls = sum(counts[f"call_{name}"] for name in _CALLS)
    return (
        f"{calls} calls: {counts['call_hits']} hits, {counts['call_misses']} misses; "
        f"{counts['hits'] + counts['misses']} store reads"
    )


def _clear_corrupt(path: Path, problem: str, yes: bool, counts: dict[str, Any] | None) -> None:
    from llmcache.errors import StoreError

    if not yes:
        typer.confirm(
            f"{path}: the cache database is corrupt ({problem}). Keep a copy of it "
            f"aside, start an empty cache and reset its statistics?",
            abort=True,
        )
    # The store logs the recovery; the message below says it on stdout.
    with _quiet("llmcache.stores.disk"), _open_store(path, "it was not recovered") as store:
        try:  # opening may have recovered it already (a destroyed header)
            copy = store.recovered[-1] if store.recovered else store.recover(problem)
            store.clear()  # anything another process wrote since
            _reset_statistics(store, counts)
        except StoreError as exc:
            _fail(f"{path}: the corrupt cache could not be recovered: {exc}", STORE_ERROR)
    _out().print(
        escape(
            f"The cache database was corrupt ({problem}); {_kept(copy)}. The cache "
            f"at {path} is now empty and its statistics are reset."
        ),
        soft_wrap=True,
    )


# -- keys and inspect ------------------------------------------------------------------------


@app.command(short_help="List the keys held, one a line.")
def keys(
    path: PathOption,
    limit: Annotated[int, typer.Option(min=0, help="Show at most this many (0: all).")] = 0,
) -> None:
    """List the keys held in the cache, one a line. Changes nothing."""
    with _open_reader(path) as reader:
        for n, key in enumerate(reader.iterkeys()):
            if limit and n >= limit:
                break
            typer.echo(key)


def _resolve_key(reader: DiskReader, path: Path, key: str) -> str:
    # Keys are long hashes, so like git accept a unique prefix.
    matches: list[str] = []
    for candidate in reader.iterkeys():
        if candidate == key:
            return key
        if key and candidate.startswith(key):
            matches.append(candidate)
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        _fail(f"{key!r} matches {len(matches)} keys in {path}: {shown}")
    if not matches:
        _fail(f"no entry with key {key!r} in {path}")
    return matches[0]


@app.command(short_help="Show one entry, by key or unique prefix.")
def inspect(
    path: PathOption,
    key: Annotated[str, typer.Argument(help="The entry's key, or a unique prefix of it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw entry as JSON.")] = False,
    preview: Annotated[
        int, typer.Option(min=0, help="Characters of content to show (0: all).")
    ] = 300,
) -> None:
    """Show one entry: model, created and expiry times, hits, tokens, fingerprint, content.
    Changes nothing (looking is not a hit)."""
    from llmcache.entry import CodecError

    with _open_reader(path) as reader:
        found = _resolve_key(reader, path, key)
        try:
            entry = reader.peek(found)
        except CodecError as exc:
            _fail(
                f"{path}: the entry {found} cannot be read ({exc}); {_repair_hint(path)} "
                f"deletes it",
                STORE_ERROR,
            )
        if entry is None:  # deleted by another process since the scan
            _fail(f"no entry with key {key!r} in {path}")
        try:
            entry.hits = reader.hits_of(found, entry)
            counted = True
        except sqlite3.DatabaseError as exc:
            _warn(
                f"{path}: the entry's hits cannot be read ({exc}); {_repair_hint(path)} "
                f"repairs the statistics"
            )
            counted = False
    if as_json:
        _print_json(entry.to_dict())
        return
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in _entry_rows(found, entry, preview, counted):
        table.add_row(name, Text(value))  # Text: cached content is never read as markup
    _out().print(table)


def _entry_rows(
    key: str, entry: CachedResponse, preview: int, counted: bool
) -> Iterator[tuple[str, str]]:
    content = (
        entry.content
        if isinstance(entry.content, str)
        else orjson.dumps(entry.content, default=str).decode()
    )
    if preview and len(content) > preview:
        content = content[:preview] + f"... ({len(content)} characters)"
    yield "key", key
    yield "model", entry.model or "-"
    yield "created", _when(entry.created_at)
    expired = entry.expires_at is not None and entry.expires_at <= time.time()
    yield "expires", _when(entry.expires_at) + (" (expired)" if expired else "")
    yield "hits", str(entry.hits) if counted else "?"
    yield (
        "tokens",
        (
            f"{entry.tokens_used} (prompt {entry.prompt_tokens}, "
            f"completion {entry.completion_tokens})"
        ),
    )
    yield "fingerprint", entry.fingerprint or "-"
    if entry.chunks is not None:
        yield "stream chunks", str(len(entry.chunks))
    if entry.metadata:
        yield "metadata", orjson.dumps(entry.metadata, default=str).decode()
    yield "content", content


# -- doctor ----------------------------------------------------------------------------------


@app.command(short_help="Check the cache; --repair repairs it.")
def doctor(
    path: PathOption,
    repair: Annotated[
        bool, typer.Option("--repair", help="Repair what is damaged and say what was done.")
    ] = False,
) -> None:
    """Check the cache: its database (every page), every entry, its statistics. Exits 1
    when something is damaged; changes nothing.

    With --repair: a corrupt database is copied aside and the cache starts empty, entries
    that cannot be read are deleted, damaged statistics are copied aside and counting starts
    again; exits 0 when everything was repaired, 3 when a repair failed. Entries are read
    with the default JSON codec: do not repair a cache written with another codec.
    """
    with _open_reader(path) as reader:
        problem = reader.check()
        damaged = list(reader.damaged()) if problem is None else []
        entries = len(reader) if problem is None else None
        stats_problem = reader.check_statistics()
    out = _out()
    out.print(Text(f"llmcache disk cache {path}", style="bold"), soft_wrap=True)
    out.print(escape(f"database: {_state(problem)}"), soft_wrap=True)
    if entries is not None:
        out.print(escape(f"entries: {entries}, {len(damaged) or 'none'} damaged"), soft_wrap=True)
        for damage in damaged:
            out.print(escape(f"  {damage.key}: {damage.reason}"), soft_wrap=True)
    out.print(escape(f"statistics: {_state(stats_problem)}"), soft_wrap=True)
    found = (problem is not None) + bool(damaged) + (stats_problem is not None)
    if not found:
        out.print("No problems found" + ("; nothing to repair." if repair else "."))
        return
    if not repair:
        out.print(
            escape(
                f"Found {found} problem{'s' if found > 1 else ''}; "
                f"{_repair_hint(path)} repairs them."
            ),
            soft_wrap=True,
        )
        raise typer.Exit(PROBLEMS_FOUND)
    _repair(path, problem, damaged, stats_problem)


def _state(problem: str | None) -> str:
    return "ok" if problem is None else f"corrupt ({problem})"


def _repair(
    path: Path, problem: str | None, damaged: list[Damage], stats_problem: str | None
) -> None:
    from llmcache.errors import StoreError

    out = _out()
    # One store for every repair, the statistics first: the other repairs count into them.
    with _quiet("llmcache.stores.disk"), _open_store(path, "it was not repaired") as store:
        try:
            if stats_problem is not None:
                aside = store.recover_statistics(stats_problem)
                out.print(
                    escape(
                        f"The statistics database was corrupt; {_kept(aside)}. "
                        f"Counting starts again from zero."
                    ),
                    soft_wrap=True,
                )
            if problem is not None:
                # Opening may have recovered it already (a destroyed header).
                copy = store.recovered[-1] if store.recovered else store.recover(problem)
                store.clear()  # anything another process wrote since
                out.print(
                    escape(
                        f"The cache database was corrupt; {_kept(copy)}. The cache is now empty."
                    ),
                    soft_wrap=True,
                )
            if damaged:
                deleted = store.delete_damaged()
                out.print(
                    escape(
                        f"Deleted {len(deleted)} damaged entries: "
                        f"{', '.join(d.key for d in deleted)}."
                    ),
                    soft_wrap=True,
                )
        except StoreError as exc:
            _fail(f"{path}: the repair did not happen: {exc}", STORE_ERROR)


def _kept(copy: Path | None) -> str:
    return f"a copy of it is at {copy}" if copy is not None else "no copy of it was kept"


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    # `backends --check` reports load failures in its table; the registry's log lines (with
    # tracebacks) would repeat them on stderr.
    logger = logging.getLogger(logger_name)
    saved = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(saved)


def _status(info: BackendInfo, check: bool) -> Text:
    if info.conflicts:
        return Text(f"conflict (also {', '.join(info.conflicts)})", style="yellow")
    if check:
        from llmcache.backends.registry import load_backend

        try:
            load_backend(info.name)
        except Exception as exc:
            cause = exc.__cause__ or exc
            return Text(f"error: {type(cause).__name__}: {cause}", style="red")
    return Text("ok", style="green")


@app.command(short_help="List the installed backend plugins.")
def backends(
    check: Annotated[
        bool,
        typer.Option("--check", help="Also import each plugin; exit 1 if any fails or conflicts."),
    ] = False,
) -> None:
    """List the backend plugins installed (entry points in the llmcache.backends group)."""
    from llmcache.backends.registry import list_backends

    with _quiet("llmcache.backends") if check else nullcontext():
        rows = [(info, _status(info, check)) for info in list_backends()]
    table = Table(title="llmcache backends", title_justify="left")
    for column in ("name", "target", "distribution", "version", "status"):
        table.add_column(column, overflow="fold")
    for info, status in rows:
        table.add_row(
            info.name, info.target, info.distribution or "(in-process)", info.version or "-", status
        )
    _out().print(table)
    if check and any(status.plain != "ok" for _, status in rows):
        raise typer.Exit(1)


def _within(low: float, high: float) -> Any:
    """An option callback refusing NaN, inf and numbers outside [low, high] as bad usage
    (click's own ranges let NaN through and name one bound only)."""

    def check(value: float | None) -> float | None:
        if value is not None and not low <= value <= high:  # False for NaN
            raise typer.BadParameter(f"expected a number in [{low:g}, {high:g}], got {value}")
        return value

    return check


@app.command("eval")
def eval_pairs(
    pairs: Annotated[
        Path,
        typer.Argument(
            help='JSON lines: {"a", "b", "same_answer", "category"}.', show_default=False
        ),
    ],
    embedder: Annotated[
        str, typer.Option(help="wordllama (bundled, extra 'semantic') or hashing.")
    ] = "wordllama",
    threshold: Annotated[
        float | None,
        typer.Option(
            callback=_within(-1.0, 1.0),
            help="Similarity threshold in [-1, 1] (default: the cache's).",
        ),
    ] = None,
    guards: Annotated[
        bool, typer.Option("--guards/--no-guards", help="Apply the default guards.")
    ] = True,
    budget: Annotated[
        float,
        typer.Option(
            callback=_within(0.0, 1.0),
            help="Share of traps in [0, 1] allowed a wrong answer when choosing a threshold.",
        ),
    ] = 0.02,
    verifier: Annotated[
        str | None,
        typer.Option(
            help="Ask a judge, BACKEND:MODEL (e.g. ollama:qwen2.5:0.5b; the backend finds its "
            "server as usual, e.g. from OLLAMA_HOST).",
            show_default=False,
        ),
    ] = None,
    judge_accuracy: Annotated[
        float | None,
        typer.Option(
            callback=_within(0.0, 1.0),
            help="Ask a simulated judge right with this probability (from the labels; its "
            "mistakes are fixed per pair).",
            show_default=False,
        ),
    ] = None,
    max_error: Annotated[
        float | None,
        typer.Option(
            callback=_within(0.0, 1.0),
            help="Learned mode: the stated bound on wrong answers, in (0, 1); calibrates on "
            "half of the pairs and scores the other half.",
            show_default=False,
        ),
    ] = None,
    splits: Annotated[
        int,
        typer.Option(
            min=1,
            help="Learned mode: splits (runs, with --calibrate-on); with a simulated "
            "judge, runs with other seeds.",
        ),
    ] = 5,
    calibrate_on: Annotated[
        Path | None,
        typer.Option(
            help="Learned mode: calibrate on this pairs file, score all of PAIRS (a holdout).",
            show_default=False,
        ),
    ] = None,
    curve: Annotated[
        bool, typer.Option("--curve", help="Also the served share against bounds from 0.5% to 20%.")
    ] = False,
    floor: Annotated[
        float,
        typer.Option(
            callback=_within(-1.0, 1.0),
            help="With a judge or a bound: candidates below this similarity are neither judged "
            "nor served.",
        ),
    ] = 0.5,
    inline: Annotated[
        bool,
        typer.Option(
            "--inline/--background",
            help="Learned mode: ask the judge on the request path, or in the background (a "
            "pair is then served on its repeat).",
        ),
    ] = False,
    seed: Annotated[
        int, typer.Option(help="Seed of the splits, the simulated judge and the exploration.")
    ] = 0,
    as_json: JsonOption = False,
) -> None:
    """Measure the semantic cache on labeled pairs: should-hit pairs served, traps served a
    wrong answer (per category), and the best threshold under a wrong-answer budget. With a
    judge (--verifier, --judge-accuracy) and a stated bound (--max-error, --curve): the
    served and wrong shares of the cache that learns its thresholds."""
    from llmcache.vector import eval as evaluation

    judged = verifier is not None or judge_accuracy is not None
    learning = max_error is not None or curve
    if verifier is not None and judge_accuracy is not None:
        _fail("--verifier and --judge-accuracy: choose one judge", USAGE_ERROR)
    if calibrate_on is not None and not learning:
        _fail("--calibrate-on needs --max-error or --curve", USAGE_ERROR)
    if not judged and not learning:
        try:
            loaded = evaluation.load_pairs(pairs)
            report = evaluation.evaluate(
                loaded,
                evaluation.make_embedder(embedder),
                threshold=threshold,
                guards=None if guards else (),
                budget=budget,
            )
        except (OSError, ValueError, ImportError) as exc:
            _fail(str(exc), USAGE_ERROR)
        if as_json:
            _print_json(report)
            return
        evaluation.render([("guards on" if guards else "guards off", report)])
        return
    _eval_judged(
        pairs,
        embedder=embedder,
        threshold=threshold,
        guards=guards,
        verifier=verifier,
        judge_accuracy=judge_accuracy,
        max_error=max_error,
        splits=splits,
        calibrate_on=calibrate_on,
        curve=curve,
        floor=floor,
        inline=inline,
        seed=seed,
        as_json=as_json,
    )


def _eval_judged(
    pairs: Path,
    *,
    embedder: str,
    threshold: float | None,
    guards: bool,
    verifier: str | None,
    judge_accuracy: float | None,
    max_error: float | None,
    splits: int,
    calibrate_on: Path | None,
    curve: bool,
    floor: float,
    inline: bool,
    seed: int,
    as_json: bool,
) -> None:
    """`eval_pairs` with a judge or a stated bound (`llmcache.vector.eval_learned`)."""
    from llmcache.backends.registry import BackendNotFound
    from llmcache.vector import eval as evaluation
    from llmcache.vector import eval_learned as learned
    from llmcache.vector.verifier import Verifier

    try:
        loaded = evaluation.load_pairs(pairs)
        calibration = evaluation.load_pairs(calibrate_on) if calibrate_on else None
        model = evaluation.make_embedder(embedder)
        real = learned.make_verifier(verifier) if verifier is not None else None
        known = [*loaded, *(calibration or [])]

        def judge(k: int) -> Verifier | None:
            if judge_accuracy is not None:
                return learned.simulated_judge(known, accuracy=judge_accuracy, seed=seed * 1000 + k)
            return real

        options: learned.SplitOptions = {
            "splits": splits,
            "seed": seed,
            "floor": floor,
            "guards": None if guards else (),
            "verify": "inline" if inline else "background",
            "calibrate_on": calibration,
        }
        rows: list[dict[str, Any]] = []
        if max_error is None and not curve:
            report = learned.judged_once(
                loaded,
                model,
                judge=judge,
                runs=splits if judge_accuracy is not None else 1,
                threshold=threshold,
                floor=floor,
                guards=options["guards"],
            )
        else:
            report = learned.learned_splits(
                loaded,
                model,
                judge=judge,
                max_error=0.01 if max_error is None else max_error,
                **options,
            )
            if curve:
                rows = learned.curve(loaded, model, judge=judge, **options)
    except (OSError, ValueError, ImportError, BackendNotFound) as exc:
        _fail(str(exc), USAGE_ERROR)
    report["judge"] = (
        f"simulated judge right {judge_accuracy:.0%}"
        if judge_accuracy is not None
        else f"judge {verifier}"
        if verifier
        else "no judge"
    )
    report["embedder"] = model.name
    if real is not None:
        report["verifier"] = real.stats()
    if curve:
        report["curve"] = rows
    if as_json:
        _print_json(report)
        return
    learned.render_learned(report, rows)


@app.command(short_help="A caching reverse proxy for model APIs (extra 'proxy').")
def proxy(
    upstream: Annotated[
        str,
        typer.Option(
            "--upstream",
            help="The API the proxy forwards to, e.g. http://127.0.0.1:11434 or "
            "https://api.openai.com.",
            show_default=False,
        ),
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8787,
    path: Annotated[
        Path | None,
        typer.Option("--path", help="Cache in this directory (a DiskStore).", show_default=False),
    ] = None,
    redis: Annotated[
        str | None,
        typer.Option(
            "--redis",
            help="Cache in this Redis, e.g. redis://127.0.0.1:6379/0 (extra 'redis').",
            show_default=False,
        ),
    ] = None,
    semantic: Annotated[
        bool,
        typer.Option(
            "--semantic", help="Also answer requests that mean the same (extra 'semantic')."
        ),
    ] = False,
    ttl: Annotated[
        float | None,
        typer.Option(
            help="Seconds an answer is kept (default: until evicted).", show_default=False
        ),
    ] = None,
    max_body: Annotated[
        int,
        typer.Option("--max-body", help="Largest request body forwarded, in bytes; larger: 413."),
    ] = 32 * 1024 * 1024,
) -> None:
    """Run a caching reverse proxy in front of an OpenAI-, Anthropic- or Ollama-style API:
    point a client's base URL at it. Without --path or --redis the cache is in memory.
    Prints its URL once it listens; SIGTERM or Ctrl-C stops it after the answers in flight."""
    try:  # lazy: the other commands must not need starlette, uvicorn or httpx
        from llmcache.proxy import ProxyConfig, serve
    except ImportError as exc:
        _fail(str(exc), USAGE_ERROR)
    try:
        config = ProxyConfig(
            upstream=upstream,
            host=host,
            port=port,
            path=path,
            redis=redis,
            semantic=semantic,
            ttl=ttl,
            max_body=max_body,
        )
    except (ValueError, ImportError) as exc:
        _fail(str(exc), USAGE_ERROR)
    try:
        code = serve(config)
    except (OSError, ImportError) as exc:
        _fail(f"the proxy could not start: {exc}", STORE_ERROR)
    raise typer.Exit(code)


def main() -> None:
    """Entry point of the ``llmcache`` console script."""
    app(prog_name="llmcache")
