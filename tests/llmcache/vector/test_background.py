"""`BackgroundWork`: a bounded queue, bounded concurrency, counted drops, a clean stop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from llmcache.vector.background import BackgroundWork


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("llmcache-verify")]


def test_nothing_starts_before_the_first_job() -> None:
    before = len(workers())
    work = BackgroundWork()
    assert len(workers()) == before
    work.close()


def test_a_full_queue_drops_and_counts_without_waiting() -> None:
    release = threading.Event()
    started = threading.Event()

    def blocked() -> None:
        started.set()
        release.wait(10)

    work = BackgroundWork(max_pending=2, concurrency=1)
    try:
        assert work.submit(blocked)
        assert started.wait(5)  # the worker holds the first job; the queue is empty
        assert work.submit(lambda: None) and work.submit(lambda: None)
        assert not work.submit(lambda: None)  # the third does not fit: dropped, at once
        assert work.stats()["dropped"] == 1 and work.stats()["pending"] == 2
        release.set()
        assert work.join(timeout=5)
        assert work.stats() == {"submitted": 3, "done": 3, "failed": 0, "dropped": 1, "pending": 0}
    finally:
        release.set()
        work.close()


def test_concurrency_is_bounded() -> None:
    lock = threading.Lock()
    running, peak = [0], [0]
    gate = threading.Barrier(2, timeout=5)

    def job() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        gate.wait()  # two run together, never a third
        with lock:
            running[0] -= 1

    work = BackgroundWork(max_pending=10, concurrency=2)
    try:
        for _ in range(6):
            assert work.submit(job)
        assert work.join(timeout=10)
        assert peak[0] == 2 and work.stats()["done"] == 6
    finally:
        work.close()


def test_a_failing_job_is_counted_and_the_worker_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    done: list[int] = []

    def boom() -> None:
        raise RuntimeError("judge exploded")

    work = BackgroundWork()
    try:
        work.submit(boom)
        work.submit(lambda: done.append(1))
        assert work.join(timeout=5)
        assert done == [1] and work.stats()["failed"] == 1
        assert "judge exploded" in caplog.text
    finally:
        work.close()


def test_close_discards_the_queue_lets_the_running_job_finish_and_stops() -> None:
    release = threading.Event()
    started = threading.Event()
    finished: list[str] = []

    def slow() -> None:
        started.set()
        release.wait(10)
        finished.append("slow")

    work = BackgroundWork(max_pending=5)
    work.submit(slow)
    assert started.wait(5)
    work.submit(lambda: finished.append("queued"))
    threading.Timer(0.05, release.set).start()
    work.close(timeout=5)
    assert finished == ["slow"]  # the running job finished; the queued one never ran
    assert work.stats()["dropped"] == 1
    assert not any(t.is_alive() for t in workers())
    assert not work.submit(lambda: None) and work.stats()["dropped"] == 2
    work.close()  # idempotent


async def test_async_jobs_run_on_tasks_and_stop_with_aclose() -> None:
    seen: list[str] = []
    release = asyncio.Event()

    async def job(name: str) -> None:
        await release.wait()
        seen.append(name)

    work = BackgroundWork(max_pending=2, concurrency=1)
    assert work.asubmit(lambda: job("a"))
    assert work.asubmit(lambda: job("b"))
    await asyncio.sleep(0)  # the task takes "a"; "b" waits in the queue
    assert work.asubmit(lambda: job("c"))
    assert not work.asubmit(lambda: job("d"))  # full: dropped, never awaited
    release.set()
    await work.ajoin()
    assert seen == ["a", "b", "c"] and work.stats()["dropped"] == 1
    assert workers() == []  # tasks, not threads
    await work.aclose()
    assert not work.asubmit(lambda: job("e"))


async def test_aclose_cancels_a_job_that_never_ends() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    work = BackgroundWork()
    work.asubmit(forever)
    await started.wait()
    await work.aclose(timeout=1)
    assert work.stats()["done"] == 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_pending"):
        BackgroundWork(max_pending=0)
    with pytest.raises(ValueError, match="concurrency"):
        BackgroundWork(concurrency=0)
