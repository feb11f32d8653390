"""llmcache in one screen: a slow "model" behind @cached_generate, cold then warm.

Run with `make quickstart`, or `python examples/quickstart.py` wherever llmcache is installed
(it needs llmcache alone, no extra). The function sleeps 200 ms like a model call would; the
cache sits on a memory tier in front of a disk tier in a temporary directory, so the second
run of each prompt is a memory hit and a fresh process would still find the answers on disk.
"""

from __future__ import annotations

import statistics
import tempfile
import time

from rich.console import Console
from rich.table import Table

from llmcache import DiskStore, MemoryStore, TieredStore, cached_generate

PROMPTS = [
    "buy groceries tomorrow",
    "finish report by Friday",
    "call mom in the afternoon",
    "schedule dentist appointment",
    "review pull request urgent",
]


def main() -> None:
    console = Console()
    with tempfile.TemporaryDirectory(prefix="llmcache-demo-") as tmp:
        store = TieredStore(MemoryStore(max_entries=1000), DiskStore(tmp))

        @cached_generate(cache=store, ttl=3600)
        def generate(prompt: str, model: str = "demo-model", temperature: float = 0.0) -> str:
            time.sleep(0.2)  # what a real model call costs, at best
            return f"TASK: {prompt.capitalize()}"

        cold, warm = [], []
        with console.status("cold run: calling the 200 ms model for each prompt"):
            for prompt in PROMPTS:
                start = time.perf_counter()
                generate(prompt)
                cold.append(time.perf_counter() - start)
        for _ in range(200):
            for prompt in PROMPTS:
                start = time.perf_counter()
                generate(prompt)
                warm.append(time.perf_counter() - start)

        cold_ms = statistics.median(cold) * 1000
        warm_us = statistics.median(warm) * 1e6
        table = Table(title="@cached_generate: cold vs warm (median per call)")
        table.add_column("run")
        table.add_column("calls", justify="right")
        table.add_column("median", justify="right")
        table.add_row("cold (model)", str(len(cold)), f"{cold_ms:.1f} ms")
        table.add_row("warm (memory hit)", str(len(warm)), f"{warm_us:.1f} µs")
        console.print(table)
        console.print(f"[bold green]warm is {cold_ms * 1000 / warm_us:,.0f}x faster[/]")

        info = generate.cache_info()
        stats = Table(title="cache statistics")
        stats.add_column("counter")
        stats.add_column("value", justify="right")
        stats.add_row("hits", str(info.hits))
        stats.add_row("misses", str(info.misses))
        stats.add_row("entries", str(info.currsize))
        for tier, hits in store.stats().get("tier_hits", {}).items():
            stats.add_row(f"hits in {tier}", str(hits))
        console.print(stats)
        store.close()

        # A "restart": a fresh memory tier over the same disk directory. The answers come
        # back from disk (and are promoted to memory), without calling the model.
        restarted = TieredStore(MemoryStore(max_entries=1000), DiskStore(tmp))
        again = cached_generate(cache=restarted, ttl=3600)(generate.uncached)
        start = time.perf_counter()
        for prompt in PROMPTS:
            again(prompt)
        elapsed_ms = (time.perf_counter() - start) * 1000
        tier_hits = restarted.stats()["tier_hits"]
        console.print(
            f"after a restart: {len(PROMPTS)} answers in {elapsed_ms:.2f} ms, "
            f"{tier_hits.get('disk', 0)} from disk, "
            f"{again.cache_info().misses} model calls"
        )
        restarted.close()


if __name__ == "__main__":
    main()
