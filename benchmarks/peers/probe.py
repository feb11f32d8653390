"""The subprocess side: memory per 10k answers, and cold start, one contender per process.

Run by ``run.py`` as ``python -m benchmarks.peers.probe KIND CONTENDER DIRECTORY [URL]``
from the repository root; prints one JSON object. A fresh process per contender keeps one
library's imports, arenas and threads out of another's figures.

- ``rss``: resident-set growth (``/proc/self/statm``) while 10k answers are stored (through
  `Contender.preload`, 500 at a time); for
  Redis contenders also the server's ``used_memory`` growth; for disk ones the bytes on
  disk after closing.
- ``tracemalloc``: Python-heap growth over the same fill (blind to memory that C
  libraries such as SQLite allocate themselves, hence the RSS figure next to it).
- ``cold``: import, then open (an existing 10k-entry cache for the persistent ones), then
  the first lookup, each timed.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()  # before anything heavier than `time` is imported

import gc  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import orjson  # noqa: E402
from benchmarks.peers.contenders import Contender, OpenContext, build  # noqa: E402
from benchmarks.peers.workload import answer_for, make_requests  # noqa: E402

__all__ = ["main"]

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def _redis_used(url: str | None) -> int | None:
    if url is None:
        return None
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


def _disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _fill(contender: Contender, count: int) -> None:
    # Requests and answers are built inside the measured window, 500 at a time, and dropped
    # after the store, so a cache is charged for exactly the copies it keeps.
    for start in range(0, count, 500):
        chunk = []
        for i in range(start, min(count, start + 500)):
            request = make_requests(1, start=i)[0]
            chunk.append((request, answer_for(request)))
        contender.preload(chunk)
        del chunk


def memory(
    kind: str, contender_id: str, directory: Path, url: str | None, count: int
) -> dict[str, Any]:
    """Growth of RSS (or of the traced Python heap) while ``count`` answers are stored."""
    contender = build(contender_id)
    contender.prepare()
    contender.open(OpenContext(directory, url, fresh=True))
    # Lazy set-up (imports, compiled statements, connections) is paid before the baseline:
    # one throwaway answer goes through the same path as the measured ones.
    spare = make_requests(1, start=10**9)[0]
    contender.preload([(spare, answer_for(spare))])
    gc.collect()
    result: dict[str, Any] = {"count": count}
    if kind == "tracemalloc":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        _fill(contender, count)
        gc.collect()
        result["python_heap"] = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    else:
        server_before = _redis_used(url) if contender.needs_redis else None
        before = _rss()
        _fill(contender, count)
        gc.collect()
        result["rss"] = _rss() - before
        if server_before is not None:
            server_after = _redis_used(url)
            assert server_after is not None
            result["server"] = server_after - server_before
    contender.close()
    if contender.group == "disk":
        result["disk"] = _disk_bytes(directory)
    return result


def cold(contender_id: str, directory: Path, url: str | None) -> dict[str, Any]:
    """Import, open and one lookup, timed from the start of this process's own code."""
    contender = build(contender_id)
    t_import = time.perf_counter()
    contender.prepare()
    t_open = time.perf_counter()
    # Persistent contenders open what the memory probe left (10k entries); in-memory ones
    # start empty, as they would after a restart.
    contender.open(OpenContext(directory, url, fresh=contender.group == "memory"))
    t_lookup = time.perf_counter()
    found = contender.lookup(make_requests(1, start=0)[0])
    t_end = time.perf_counter()
    contender.close()
    return {
        "import_ms": (t_open - t_import) * 1e3,
        "open_ms": (t_lookup - t_open) * 1e3,
        "first_lookup_ms": (t_end - t_lookup) * 1e3,
        "since_process_code_ms": (t_end - _T0) * 1e3,
        "hit": found is not None,
    }


def main(argv: list[str]) -> int:
    """``KIND CONTENDER DIRECTORY [URL] [COUNT]``; prints the result as one JSON line."""
    kind, contender_id, directory = argv[0], argv[1], Path(argv[2])
    url = argv[3] if len(argv) > 3 and argv[3] != "-" else None
    count = int(argv[4]) if len(argv) > 4 else 10_000
    if kind == "cold":
        result = cold(contender_id, directory, url)
    elif kind in ("rss", "tracemalloc"):
        result = memory(kind, contender_id, directory, url, count)
    else:
        raise SystemExit(f"unknown probe {kind!r}")
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()
    # Skip interpreter teardown: GPTCache's atexit hooks would pickle its map into the
    # directory, which is not part of what is measured (and would change the next probe).
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
