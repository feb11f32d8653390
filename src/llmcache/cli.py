"""The ``llmcache`` command: look into a disk cache and the installed backends.

Every figure comes from the cache directory itself (entry count, size, the hit and miss
counters the disk tier persists), so a fresh process shows what earlier processes did; the
chapter's version read in-process metrics and always showed nothing.

::

    llmcache stats   --path DIR          entries, size on disk, hits and misses
    llmcache inspect --path DIR KEY      one entry (KEY may be a unique prefix)
    llmcache keys    --path DIR          the keys held
    llmcache clear   --path DIR [--yes]  delete every entry
    llmcache backends [--check]          installed backend plugins
    llmcache eval PAIRS.jsonl [--json]   semantic cache quality on labeled pairs
    llmcache --version

``--path`` may also come from ``LLMCACHE_PATH``. Exit codes: 0 success, 1 a missing key or
a declined confirmation, 2 bad usage (including a path that is not a cache directory, or one
that cannot be opened), 3 the cache could not do the job: ``stats`` on a corrupt database
(``clear`` recovers one: it keeps a copy aside and starts an empty cache), a ``clear`` that
did not happen.

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(app, ["--version"]).output.startswith("llmcache ")
True
"""

from __future__ import annotations

import datetime as dt
import logging
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
    from llmcache.stores.disk import DiskStore

__all__ = ["app", "main"]

app = typer.Typer(
    name="llmcache",
    help="Inspect llmcache disk caches and the installed backend plugins.",
    no_args_is_help=True,
    add_completion=False,
    # A traceback's locals could hold cached content or API keys: never print them.
    pretty_exceptions_show_locals=False,
)

PathOption = Annotated[
    Path,
    typer.Option("--path", "-p", envvar="LLMCACHE_PATH", show_default=False,
                 help="Cache directory (a DiskStore path). Env: LLMCACHE_PATH."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

# Files diskcache keeps in every cache directory; their absence means "not a cache".
_CACHE_DB = "cache.db"
USAGE_ERROR = 2
STORE_ERROR = 3


def _out() -> Console:
    # Built per call: the console must see the streams and COLUMNS in force now (tests
    # swap them), not those of import time.
    return Console(highlight=False)


def _fail(message: str, code: int = 1) -> NoReturn:
    # soft_wrap: a long path must stay on one line, so the message can be grepped.
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _check_cache_dir(path: Path) -> Path:
    if not path.exists():
        _fail(f"{path}: no such directory", USAGE_ERROR)
    if not path.is_dir():
        _fail(f"{path}: not a directory", USAGE_ERROR)
    if not (path / _CACHE_DB).is_file():
        _fail(f"{path}: not an llmcache disk cache (no {_CACHE_DB} in it)", USAGE_ERROR)
    return path


@contextmanager
def _open_store(path: Path) -> Iterator[DiskStore]:
    """Open an existing cache; never create one where the user mistyped a path."""
    _check_cache_dir(path)
    from llmcache.stores.disk import DiskStore  # lazy: `llmcache --help` stays fast

    try:
        # strict: a directory that cannot be opened is an error here, not a miss-only tier.
        store = DiskStore(path, strict=True)
    except Exception as exc:  # a foreign database, a permission problem, a full disk ...
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        _fail(f"{path}: cannot open the cache: {type(cause).__name__}: {cause}", USAGE_ERROR)
    with store:
        yield store


def _damage(path: Path) -> str | None:
    """What is wrong with the cache's database, None when it is sound (read-only: reads
    every page, writes nothing)."""
    import sqlite3

    from llmcache.stores.disk import DiskStore

    _check_cache_dir(path)
    try:
        return DiskStore.check_database(path)
    except (sqlite3.Error, OSError) as exc:
        _fail(f"{path}: cannot read the cache: {type(exc).__name__}: {exc}", USAGE_ERROR)


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _when(timestamp: float | None, *, never: str = "never") -> str:
    if timestamp is None:
        return never
    moment = dt.datetime.fromtimestamp(timestamp).astimezone()
    return moment.isoformat(sep=" ", timespec="seconds")


def _print_json(data: Any) -> None:
    # Plain bytes on stdout (no colour, no wrapping) so the output can be piped to jq.
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
                                  default=str).decode() + "\n")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmcache {llmcache.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Inspect llmcache disk caches and the installed backend plugins."""


# Figures that describe how *this* process opened the store (its constructor defaults, its
# own counts), not the cache an application keeps in the directory: showing them would
# mislead.
_NOT_THE_CACHES = frozenset({"path", "size_limit", "default_ttl", "lru_by_access",
                             "this_process", "available"})
_SIZE_KEYS = ("bytes", "volume", "size")


def _cache_figures(store: DiskStore, path: Path) -> dict[str, Any]:
    raw = store.stats()
    figures = {k: v for k, v in raw.items() if k not in _NOT_THE_CACHES}
    size = next((raw[k] for k in _SIZE_KEYS if isinstance(raw.get(k), int)), None)
    for k in _SIZE_KEYS:
        figures.pop(k, None)
    figures["size_on_disk"] = size if size is not None else _dir_size(path)
    return figures


@app.command()
def stats(path: PathOption, as_json: JsonOption = False) -> None:
    """Show entries, size on disk, and the hits and misses recorded in the cache."""
    problem = _damage(path)
    if problem is not None:  # figures read from a damaged database would be made up
        _fail(f"{path}: the cache database is corrupt ({problem}); "
              f"'llmcache clear --path {path}' keeps a copy of it and starts an empty cache",
              STORE_ERROR)
    with _open_store(path) as store:
        figures = _cache_figures(store, path)
    if as_json:
        _print_json({"path": str(path), **figures})
        return
    table = Table()
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for name, value in _stat_rows(figures):
        table.add_row(name, value)
    out = _out()
    out.print(Text(f"llmcache disk cache {path}", style="bold"), soft_wrap=True)
    out.print(table)


def _stat_rows(figures: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield "entries", str(figures.get("entries", "?"))
    yield "size on disk", _size(figures["size_on_disk"])
    hits, misses = figures.get("hits"), figures.get("misses")
    if isinstance(hits, int) and isinstance(misses, int):
        rate = f"{100 * hits / (hits + misses):.1f}%" if hits + misses else "-"
        yield from (("hits", str(hits)), ("misses", str(misses)), ("hit rate", rate))
    shown = {"entries", "size_on_disk", "hits", "misses"}
    for key, value in figures.items():
        if key not in shown:
            yield key.replace("_", " "), str(value)


@app.command()
def clear(
    path: PathOption,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
) -> None:
    """Delete every entry of the cache (asks first unless --yes).

    A corrupt database is recovered instead: a copy of it is kept aside and the cache starts
    empty. Exits with 3 when the entries could not be deleted.
    """
    from llmcache.errors import StoreError

    problem = _damage(path)
    if problem is not None:
        _clear_corrupt(path, problem, yes)
        return
    with _open_store(path) as store:
        count = len(store)
        if not yes:
            typer.confirm(f"Delete all {count} entries from {path}?", abort=True)
        try:
            store.clear()
        except StoreError as exc:
            _fail(f"{path}: the cache was not cleared: {exc}", STORE_ERROR)
        recovered = store.recovered
    note = f" The database was corrupt: a copy of it is at {recovered[-1]}." if recovered else ""
    _out().print(escape(f"Cleared {count} entries from {path}.{note}"), soft_wrap=True)


def _clear_corrupt(path: Path, problem: str, yes: bool) -> None:
    from llmcache.errors import StoreError

    if not yes:
        typer.confirm(f"{path}: the cache database is corrupt ({problem}). Keep a copy of it "
                      f"aside and start an empty cache?", abort=True)
    # The store logs the recovery; the message below says it on stdout.
    with _quiet("llmcache.stores.disk"), _open_store(path) as store:
        try:  # opening may have recovered it already (a destroyed header)
            copy = store.recovered[-1] if store.recovered else store.recover(problem)
            store.clear()  # anything another process wrote since
        except StoreError as exc:
            _fail(f"{path}: the corrupt cache could not be recovered: {exc}", STORE_ERROR)
    kept = f"a copy of it is at {copy}" if copy is not None else "no copy of it could be kept"
    _out().print(escape(f"The cache database was corrupt ({problem}); {kept}. The cache at "
                        f"{path} is now empty."), soft_wrap=True)


@app.command()
def keys(
    path: PathOption,
    limit: Annotated[int, typer.Option(min=0, help="Show at most this many (0: all).")] = 0,
) -> None:
    """List the keys held in the cache, one a line."""
    with _open_store(path) as store:
        for n, key in enumerate(store.iterkeys()):
            if limit and n >= limit:
                break
            typer.echo(key)


def _look(store: DiskStore, key: str) -> CachedResponse | None:
    # Looking must not count as a hit (it would skew the persisted hit rate) nor delete an
    # expired entry; `peek` does neither where the store offers it.
    peek = getattr(store, "peek", None)
    result: CachedResponse | None = peek(key) if callable(peek) else store.get(key)
    return result


def _resolve_key(store: DiskStore, path: Path, key: str) -> tuple[str, CachedResponse]:
    matches: list[str] = []
    # Scanning the keys first means only a key that exists is ever read, so a typo does not
    # add a miss to the counters; keys are long hashes, so like git accept a unique prefix.
    for candidate in store.iterkeys():
        if candidate == key:
            matches = [key]
            break
        if key and candidate.startswith(key):
            matches.append(candidate)
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        _fail(f"{key!r} matches {len(matches)} keys in {path}: {shown}")
    if matches and (entry := _look(store, matches[0])) is not None:
        return matches[0], entry
    _fail(f"no entry with key {key!r} in {path}")


@app.command()
def inspect(
    path: PathOption,
    key: Annotated[str, typer.Argument(help="The entry's key, or a unique prefix of it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw entry as JSON.")]
    = False,
    preview: Annotated[int, typer.Option(min=0, help="Characters of content to show "
                                                    "(0: all).")] = 300,
) -> None:
    """Show one entry: model, created and expiry times, hits, tokens, fingerprint, content."""
    with _open_store(path) as store:
        found, entry = _resolve_key(store, path, key)
    if as_json:
        _print_json(entry.to_dict())
        return
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in _entry_rows(found, entry, preview):
        table.add_row(name, Text(value))  # Text: cached content is never read as markup
    _out().print(table)


def _entry_rows(key: str, entry: CachedResponse, preview: int) -> Iterator[tuple[str, str]]:
    content = entry.content if isinstance(entry.content, str) else orjson.dumps(
        entry.content, default=str).decode()
    if preview and len(content) > preview:
        content = content[:preview] + f"... ({len(content)} characters)"
    yield "key", key
    yield "model", entry.model or "-"
    yield "created", _when(entry.created_at)
    expired = entry.expires_at is not None and entry.expires_at <= time.time()
    yield "expires", _when(entry.expires_at) + (" (expired)" if expired else "")
    yield "hits", str(entry.hits)
    yield "tokens", (f"{entry.tokens_used} (prompt {entry.prompt_tokens}, "
                     f"completion {entry.completion_tokens})")
    yield "fingerprint", entry.fingerprint or "-"
    if entry.chunks is not None:
        yield "stream chunks", str(len(entry.chunks))
    if entry.metadata:
        yield "metadata", orjson.dumps(entry.metadata, default=str).decode()
    yield "content", content


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


@app.command()
def backends(
    check: Annotated[bool, typer.Option("--check", help="Also import each plugin; exit 1 if "
                                                        "any fails or conflicts.")] = False,
) -> None:
    """List the backend plugins installed (entry points in the llmcache.backends group)."""
    from llmcache.backends.registry import list_backends

    with _quiet("llmcache.backends") if check else nullcontext():
        rows = [(info, _status(info, check)) for info in list_backends()]
    table = Table(title="llmcache backends", title_justify="left")
    for column in ("name", "target", "distribution", "version", "status"):
        table.add_column(column, overflow="fold")
    for info, status in rows:
        table.add_row(info.name, info.target, info.distribution or "(in-process)",
                      info.version or "-", status)
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
    pairs: Annotated[Path, typer.Argument(help='JSON lines: {"a", "b", "same_answer", '
                                               '"category"}.', show_default=False)],
    embedder: Annotated[str, typer.Option(help="wordllama (bundled, extra 'semantic') or "
                                               "hashing.")] = "wordllama",
    threshold: Annotated[float | None, typer.Option(
        callback=_within(-1.0, 1.0),
        help="Similarity threshold in [-1, 1] (default: the cache's).")] = None,
    guards: Annotated[bool, typer.Option("--guards/--no-guards",
                                         help="Apply the default guards.")] = True,
    budget: Annotated[float, typer.Option(
        callback=_within(0.0, 1.0),
        help="Share of traps in [0, 1] allowed a wrong answer when choosing a threshold.")]
    = 0.02,
    as_json: JsonOption = False,
) -> None:
    """Measure the semantic cache on labeled pairs: should-hit pairs served, traps served a
    wrong answer (per category), and the best threshold under a wrong-answer budget."""
    from llmcache.vector import eval as evaluation

    try:
        loaded = evaluation.load_pairs(pairs)
        report = evaluation.evaluate(loaded, evaluation.make_embedder(embedder),
                                     threshold=threshold, guards=None if guards else (),
                                     budget=budget)
    except (OSError, ValueError, ImportError) as exc:
        _fail(str(exc), USAGE_ERROR)
    if as_json:
        _print_json(report)
        return
    evaluation.render([("guards on" if guards else "guards off", report)])


def main() -> None:
    """Entry point of the ``llmcache`` console script."""
    app(prog_name="llmcache")
