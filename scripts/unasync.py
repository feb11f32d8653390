#!/usr/bin/env python3
"""Generate the sync twins of llmcache's hand-written async modules.

The async side of every sync/async pair is written by hand; its sync twin is produced by
rewriting tokens (``async def`` -> ``def``, ``await x`` -> ``x``, ``AsyncStore`` ->
``Store``, ``aget`` -> ``get`` ...), then sorting imports, dropping the ones left unused and
formatting with ruff, so a generated file reads like a hand-written one. Each generated file
starts with a line saying so and naming its source; edit the source and rerun.

    python scripts/unasync.py           # write the sync files
    python scripts/unasync.py --check   # exit 1, with a diff, where a sync file is stale

Where the two faces must differ, the async source says so in a comment:

- ``# unasync: async-only`` at the end of a line drops that line from the sync twin;
- ``# unasync: sync <code>`` on a line of its own becomes ``<code>`` (same indent) there;
- ``# unasync: begin async-only`` ... ``# unasync: end`` drops the lines between.

The pairs and the names to rename are listed in `PAIRS` and `RENAMES`; the rules apply to
code, strings and comments alike, as names in docstrings must follow the code.
"""

from __future__ import annotations

import argparse
import difflib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: (hand-written async source, generated sync twin), relative to the repository root.
PAIRS: list[tuple[str, str]] = [
    ("src/llmcache/_async_postgres_io.py", "src/llmcache/_sync_postgres_io.py"),
    ("src/llmcache/stores/_async_postgres.py", "src/llmcache/stores/_sync_postgres.py"),
    ("src/llmcache/vector/_async_pgvector.py", "src/llmcache/vector/_sync_pgvector.py"),
    ("src/llmcache/stores/_async_redis.py", "src/llmcache/stores/_sync_redis.py"),
    ("src/llmcache/stores/_async_tiered.py", "src/llmcache/stores/_sync_tiered.py"),
    # The HTTP layer the model-server plugins share, the plugins' clients, the mock backend
    # and the backend conformance suite.
    ("src/llmcache_http/_async_transport.py", "src/llmcache_http/_sync_transport.py"),
    ("src/llmcache_http/_async_model_client.py", "src/llmcache_http/_sync_model_client.py"),
    ("src/llmcache_ollama/_async_client.py", "src/llmcache_ollama/_sync_client.py"),
    ("src/llmcache_openai/_async_client.py", "src/llmcache_openai/_sync_client.py"),
    ("src/llmcache/backends/_async_backend.py", "src/llmcache/backends/_sync_backend.py"),
    ("src/llmcache/backends/_async_mock.py", "src/llmcache/backends/_sync_mock.py"),
    ("src/llmcache/_async_backend_conformance.py", "src/llmcache/_sync_backend_conformance.py"),
    # The cache path's runner (llmcache._pipeline).
    ("src/llmcache/_pipeline/_async_runner.py", "src/llmcache/_pipeline/_sync_runner.py"),
    # The caching httpx / httpx2 transport's door (llmcache.integrations).
    (
        "src/llmcache/integrations/_async_cache_transport.py",
        "src/llmcache/integrations/_sync_cache_transport.py",
    ),
    # The client's constructor and calls (llmcache.client builds the public classes on them).
    ("src/llmcache/_async_cached_client.py", "src/llmcache/_sync_cached_client.py"),
    # CachedOllamaClient's constructor and calls (llmcache_ollama.cached builds the classes).
    ("src/llmcache_ollama/_async_cached.py", "src/llmcache_ollama/_sync_cached.py"),
]

#: Whole-word renames beyond the generic rules, async name -> sync name.
RENAMES: dict[str, str] = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "StopAsyncIteration": "StopIteration",
    "aclose": "close",
    "aclear": "clear",
    "adelete": "delete",
    "aget": "get",
    "aget_many": "get_many",
    "aset": "set",
    "aset_many": "set_many",
    "asyncio.sleep": "time.sleep",
    "asyncio.Lock": "threading.Lock",
    "asyncio.Event": "threading.Event",
    "asynccontextmanager": "contextmanager",
    "aiter_bytes": "iter_bytes",
    "aiter_lines": "iter_lines",
    "aread": "read",
    "handle_async_request": "handle_request",
    "pytest.mark.asyncio": "",
    # The Postgres tiers (llmcache._postgres): pools per event loop vs one sync pool, the
    # lock-provider twins, and the semantic tier's verifier.
    "async_pool": "sync_pool",
    "atry_lock": "try_lock",
    "arenew": "renew",
    "aunlock": "unlock",
    "averify": "verify",
    "aexplain": "explain",
    # RedisStore (stores/_async_redis.py): the generation a TieredStore keys its local
    # tiers by, and the private coroutines (both faces live in one class, so a coroutine
    # never shares its sync twin's name).
    "ageneration": "generation",
    "_aconn": "_conn",
    "_aread_again": "_read_again",
    "_abump_generation": "_bump_generation",
    "_asweep": "_sweep",
    "_ascript": "_script",
    # TieredStore (stores/_async_tiered.py).
    "_akey_prefix": "_key_prefix",
    "_apromote_entry": "_promote_entry",
    # The HTTP plugins' transport and clients, the mock backend, the conformance suites.
    "asyncio.BoundedSemaphore": "threading.BoundedSemaphore",
    "aiter_text": "iter_text",
    "anext": "next",
    # The pipeline's runner (llmcache._pipeline): the cross-process flight's coroutine twin.
    "ado": "do",
}

# Two lines: with a source path in a subpackage, one would pass ruff's line length.
_HEADER = "# Generated by scripts/unasync.py from {source}:\n# do not edit, edit the source.\n"
_PRAGMA_SYNC = re.compile(r"^(\s*)# unasync: sync (.*)$")
_GENERIC = [
    (re.compile(r"\basync def\b"), "def"),
    (re.compile(r"\basync with\b"), "with"),
    (re.compile(r"\basync for\b"), "for"),
    (re.compile(r"\bawait "), ""),
    # AsyncCachedClient -> CachedClient, AsyncIterator -> Iterator, AsyncStore -> Store.
    (re.compile(r"\bAsync([A-Z]\w*)"), r"\1"),
    # _async_redis -> _sync_redis style module names, in imports and mentions.
    (re.compile(r"\b_async_(\w+)"), r"_sync_\1"),
]


def _rename_rules() -> list[tuple[re.Pattern[str], str]]:
    rules = []
    for old, new in sorted(RENAMES.items(), key=lambda kv: -len(kv[0])):
        rules.append((re.compile(rf"(?<!\w){re.escape(old)}\b"), new))
    return rules


def _strip_pragmas(lines: list[str]) -> list[str]:
    out: list[str] = []
    skipping = False
    for line in lines:
        stripped = line.strip()
        if stripped == "# unasync: begin async-only":
            skipping = True
            continue
        if stripped == "# unasync: end":
            skipping = False
            continue
        if skipping or line.rstrip().endswith("# unasync: async-only"):
            continue
        match = _PRAGMA_SYNC.match(line)
        out.append(f"{match.group(1)}{match.group(2)}\n" if match else line)
    if skipping:
        raise ValueError("'# unasync: begin async-only' without '# unasync: end'")
    return out


def transform(source: str) -> str:
    """The sync twin of async `source`, before import sorting and formatting.

    >>> transform("async def aget(self):\\n    return await self.conn.aget()\\n")
    'def get(self):\\n    return self.conn.get()\\n'
    """
    rules = _GENERIC + _rename_rules()
    out = []
    for line in _strip_pragmas(source.splitlines(keepends=True)):
        for pattern, repl in rules:
            line = pattern.sub(repl, line)
        out.append(line)
    return "".join(out)


def _ruff(args: list[str], text: str, filename: str) -> str:
    ruff = Path(sys.executable).with_name("ruff")
    command = [str(ruff) if ruff.exists() else "ruff", *args, "--stdin-filename", filename, "-"]
    done = subprocess.run(command, input=text, capture_output=True, text=True, cwd=ROOT)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"ruff {' '.join(args)} failed on {filename}: {done.stderr}")
    return done.stdout


def generate(source_path: str, target_path: str) -> str:
    """The full text of the sync twin of `source_path`, as it is written to `target_path`."""
    text = (ROOT / source_path).read_text(encoding="utf-8")
    body = transform(text)
    body = _ruff(["check", "--select", "I,F401", "--fix-only", "--quiet"], body, target_path)
    body = _ruff(["format", "--quiet"], body, target_path)
    return _HEADER.format(source=source_path) + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff where a sync file is stale",
    )
    args = parser.parse_args(argv)
    stale = 0
    for source, target in PAIRS:
        expected = generate(source, target)
        path = ROOT / target
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == expected:
            continue
        if args.check:
            stale += 1
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    expected.splitlines(keepends=True),
                    f"{target} (on disk)",
                    f"{target} (generated from {source})",
                )
            )
        else:
            path.write_text(expected, encoding="utf-8")
            print(f"wrote {target}")
    if stale:
        print(
            f"{stale} generated file(s) out of date: run python scripts/unasync.py", file=sys.stderr
        )
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
