"""MetricsCollector: sync/async measuring, percentiles, sources, persistence, threads."""

from __future__ import annotations

import gc
import json
import logging
import threading
from pathlib import Path

import pytest

from llmcache.metrics import MetricsCollector, metrics


def test_sync_measure_with_handle_and_default_miss() -> None:
    m = MetricsCollector()
    with m.measure("gen") as h:
        h.cached = True
    with m.measure("gen"):
        pass
    s = m.get_summary()["gen"]
    assert (s["count"], s["cache_hits"], s["cache_misses"]) == (2, 1, 1)
    assert s["cache_hit_rate"] == 50.0
    assert h.duration_ms >= 0.0
    assert s["min_ms"] <= s["avg_ms"] <= s["max_ms"]


async def test_async_measure() -> None:
    m = MetricsCollector()
    async with m.measure("embed", cached=True) as h:
        assert h.cached is True
    assert m.get_summary()["embed"]["cache_hits"] == 1


def test_exception_records_duration_and_error_and_propagates() -> None:
    m = MetricsCollector()
    with pytest.raises(KeyError), m.measure("gen") as h:
        h.cached = True
        raise KeyError("boom")
    s = m.get_summary()["gen"]
    assert (s["count"], s["errors"], s["cache_hits"], s["cache_misses"]) == (1, 1, 0, 0)


async def test_cancellation_is_counted_apart_from_errors() -> None:
    import asyncio

    m = MetricsCollector()

    async def slow() -> None:
        async with m.measure("gen"):
            await asyncio.sleep(10)

    task = asyncio.create_task(slow())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    s = m.get_summary()["gen"]
    assert (s["count"], s["errors"], s["cancelled"]) == (1, 0, 1)


def test_percentiles_and_bounded_reservoir() -> None:
    m = MetricsCollector(reservoir_size=100)
    for i in range(1, 1001):
        m.record("op", float(i))
    s = m.get_summary()["op"]
    assert s["count"] == 1000
    assert (s["min_ms"], s["max_ms"]) == (1.0, 1000.0)
    assert s["avg_ms"] == 500.5  # exact over all samples, not just the reservoir
    # Percentiles come from the last 100 samples (901..1000).
    assert s["p50_ms"] == pytest.approx(950.5)
    assert s["p95_ms"] == pytest.approx(995.05)
    assert len(m._ops["op"].samples) == 100


def test_empty_and_hit_only_operations() -> None:
    m = MetricsCollector()
    m.record_cache_hit("lookup", tokens_saved=10, time_saved_ms=250.0)
    m.record_cache_miss("lookup")
    m.record_error("lookup")
    s = m.get_summary()["lookup"]
    assert s["count"] == 0 and s["min_ms"] == 0.0 and s["p95_ms"] == 0.0
    assert (s["cache_hits"], s["cache_misses"], s["errors"]) == (1, 1, 1)
    assert (s["tokens_saved"], s["time_saved_ms"]) == (10, 250.0)
    assert "batches" not in s


def test_record_rejects_bad_durations() -> None:
    m = MetricsCollector()
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="duration_ms"):
            m.record("op", bad)


def test_batches() -> None:
    m = MetricsCollector()
    m.record_batch("embed", 4, 10.0)
    m.record_batch("embed", 8, 30.0)
    assert m.get_summary()["embed"]["batches"] == {
        "count": 2,
        "avg_size": 6.0,
        "max_size": 8,
        "avg_wait_ms": 20.0,
    }


class _Store:
    def __init__(self) -> None:
        self.hits = 0

    def counters(self) -> dict[str, int | float]:
        return {"hits": self.hits, "ratio": 0.5}


def test_sources_are_pulled_and_dead_bound_methods_dropped() -> None:
    m = MetricsCollector()
    store = _Store()
    m.register_source("store", store.counters)
    store.hits = 3  # the collector pulls the value at read time
    m.register_source("static", lambda: {"n": 1})
    assert m.get_sources() == {"store": {"hits": 3, "ratio": 0.5}, "static": {"n": 1}}
    del store
    gc.collect()
    assert m.get_sources() == {"static": {"n": 1}}
    m.unregister_source("static")
    assert m.get_sources() == {}


def test_failing_source_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    m = MetricsCollector()

    def broken() -> dict[str, int | float]:
        raise RuntimeError("nope")

    m.register_source("broken", broken)
    with caplog.at_level(logging.WARNING, logger="llmcache.metrics"):
        assert m.get_sources() == {}
    assert "broken" in caplog.text


def test_save_load_round_trip_and_atomic_file(tmp_path: Path) -> None:
    m = MetricsCollector()
    for d in (1.0, 2.0, 3.0):
        m.record("gen", d, cached=d == 1.0)
    m.record_cache_hit("gen", tokens_saved=5, time_saved_ms=100.0)
    m.record_batch("embed", 3, 4.0)
    store = _Store()
    store.hits = 7
    m.register_source("store", store.counters)
    path = tmp_path / "sub" / "metrics.json"
    m.save(path)
    assert json.loads(path.read_text())["format"] == "llmcache.metrics"
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temp left over

    loaded = MetricsCollector.load(path)
    assert loaded.get_summary() == m.get_summary()
    assert loaded.get_sources() == {"store": {"hits": 7, "ratio": 0.5}}
    assert MetricsCollector.from_dict(m.to_dict()).get_summary() == m.get_summary()


def test_load_missing_and_corrupt(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        MetricsCollector.load(tmp_path / "none.json")
    assert MetricsCollector.load(tmp_path / "none.json", missing_ok=True).get_summary() == {}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        MetricsCollector.load(bad)
    bad.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="format"):
        MetricsCollector.load(bad)
    bad.write_text('{"format": "llmcache.metrics", "version": 1, "operations": {"x": 3}}')
    with pytest.raises(ValueError, match="malformed"):
        MetricsCollector.load(bad)


def test_merge_accumulates_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    for run in range(3):  # what an app does at exit: load, merge this run, save
        current = MetricsCollector()
        current.record("gen", 10.0 * (run + 1))
        current.register_source("cache", lambda: {"hits": 2})
        total = MetricsCollector.load(path, missing_ok=True)
        total.merge(current)
        total.save(path)
    final = MetricsCollector.load(path)
    s = final.get_summary()["gen"]
    assert (s["count"], s["avg_ms"], s["min_ms"], s["max_ms"]) == (3, 20.0, 10.0, 30.0)
    assert final.get_sources() == {"cache": {"hits": 6}}


def test_reset() -> None:
    m = MetricsCollector()
    m.record("a", 1.0)
    m.reset()
    assert m.get_summary() == {}


def test_thread_safety() -> None:
    m = MetricsCollector()
    threads, per = 8, 2000
    barrier = threading.Barrier(threads)

    def work(i: int) -> None:
        barrier.wait()
        for j in range(per):
            if j % 2:
                with m.measure("op") as h:
                    h.cached = bool(i % 2)
            else:
                m.record_cache_hit("op")
            if j % 500 == 0:
                m.get_summary()  # readers interleaved with writers

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    s = m.get_summary()["op"]
    assert s["count"] == threads * per // 2
    assert s["cache_hits"] + s["cache_misses"] == threads * per


def test_log_summary_uses_logging(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    m = MetricsCollector()
    m.record("gen", 5.0)
    with caplog.at_level(logging.INFO, logger="llmcache.metrics"):
        m.log_summary()
    assert "gen: 1 calls" in caplog.text
    assert capsys.readouterr().out == ""


def test_module_level_collector_exists() -> None:
    assert isinstance(metrics, MetricsCollector)


def test_metrics_takes_no_private_name_from_another_module() -> None:
    # STYLE: a module is one concept; metrics once imported its statistics' private record
    # and helpers from a module cut off to keep metrics.py short.
    import ast
    import importlib

    # importlib, not `import llmcache.metrics as m`: the package's `metrics` is the collector
    module = importlib.import_module("llmcache.metrics")
    tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
    taken = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module != "__future__"
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert taken == []
