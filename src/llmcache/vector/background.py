"""Work done off the request path: a bounded queue drained by a bounded number of workers.

A semantic cache hands a grey-zone candidate to a judge here and answers its caller at
once (the model answers this time); when the judge approves, the next identical request
is an exact hit. `BackgroundWork` runs such jobs on worker *threads* for sync callers
(`submit`) and on worker *tasks* of the running event loop for async ones (`asubmit`):

- the queue holds at most ``max_pending`` jobs; a job that does not fit is dropped and
  counted (``stats()["dropped"]``), never waited for: the caller must not slow down
  because the judge is slow;
- at most ``concurrency`` jobs of each kind run at once;
- workers start with the first job, so a cache that never verifies starts nothing;
- a job that raises is counted and logged (once per kind), and the worker goes on;
- `close` (and `aclose`) stops taking jobs, discards the queued ones (counted as dropped),
  lets the running ones finish (bounded by ``timeout``) and stops the workers. Threads are
  daemons, so a program that forgets to close still exits.

>>> done = []
>>> work = BackgroundWork(max_pending=4)
>>> work.submit(lambda: done.append(1))
True
>>> work.join(timeout=5), done, work.stats()["done"]
(True, [1], 1)
>>> work.close(); work.submit(lambda: None)
False
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from llmcache.stores.base import ErrorLog
from llmcache.vector._arguments import check_int

__all__ = ["BackgroundWork"]

logger = logging.getLogger(__name__)

Job = Callable[[], None]
AsyncJob = Callable[[], Awaitable[None]]
_STOP = object()


class BackgroundWork:
    """A bounded queue of jobs and the workers draining it (threads and tasks)."""

    def __init__(
        self, *, max_pending: int = 256, concurrency: int = 1, name: str = "llmcache-verify"
    ) -> None:
        self.max_pending = check_int("max_pending", max_pending, minimum=1)
        self.concurrency = check_int("concurrency", concurrency, minimum=1)
        self.name = name
        self._lock = threading.Lock()
        self._closed = False
        self._jobs: queue.Queue[Any] = queue.Queue(maxsize=self.max_pending)
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ajobs: asyncio.Queue[AsyncJob] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._counts = dict.fromkeys(("submitted", "done", "failed", "dropped"), 0)
        self._log = ErrorLog(logger, name)

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    # ------------------------------------------------------------------ threads

    def submit(self, job: Job) -> bool:
        """Queue ``job`` for a worker thread; ``False`` (counted) if it was dropped."""
        with self._lock:
            if self._closed:
                self._counts["dropped"] += 1
                return False
            if len(self._threads) < self.concurrency:
                self._start_thread()
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self._count("dropped")
            return False
        self._count("submitted")
        return True

    def _start_thread(self) -> None:  # caller holds the lock
        thread = threading.Thread(
            target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is _STOP:
                    return
                self._run(job)
            finally:
                self._jobs.task_done()

    def _run(self, job: Job) -> None:
        try:
            job()
        except Exception as exc:  # a failing job must not stop the worker
            self._count("failed")
            self._log.report("job", exc)
        else:
            self._count("done")

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued thread job has run; ``False`` if ``timeout`` passed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._jobs.all_tasks_done:
            while self._jobs.unfinished_tasks:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._jobs.all_tasks_done.wait(left)
        return True

    # ------------------------------------------------------------------ tasks

    def asubmit(self, job: AsyncJob) -> bool:
        """Queue ``job`` for a worker task of the running loop; ``False`` (counted) if it was
        dropped. Never waits."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                self._counts["dropped"] += 1
                return False
            if self._loop is not loop or self._ajobs is None:
                self._loop, self._ajobs = loop, asyncio.Queue(maxsize=self.max_pending)
                self._tasks = [
                    loop.create_task(self._awork(self._ajobs), name=f"{self.name}-task-{i}")
                    for i in range(self.concurrency)
                ]
            jobs = self._ajobs
        try:
            jobs.put_nowait(job)
        except asyncio.QueueFull:
            self._count("dropped")
            return False
        self._count("submitted")
        return True

    async def _awork(self, jobs: asyncio.Queue[AsyncJob]) -> None:
        while True:
            job = await jobs.get()
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._count("failed")
                self._log.report("job", exc)
            else:
                self._count("done")
            finally:
                jobs.task_done()

    async def ajoin(self) -> None:
        """Wait until every queued task job of this loop has run."""
        jobs = self._ajobs
        if jobs is not None and self._loop is asyncio.get_running_loop():
            await jobs.join()

    # ------------------------------------------------------------------ stopping

    def _discard(self) -> int:
        dropped = 0
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
            self._jobs.task_done()
            dropped += 1
        jobs = self._ajobs
        while jobs is not None and not jobs.empty():
            jobs.get_nowait()
            jobs.task_done()
            dropped += 1
        return dropped

    def _stop_tasks(self) -> list[asyncio.Task[None]]:
        tasks, loop = self._tasks, self._loop
        self._tasks = []
        if not tasks or loop is None or loop.is_closed():
            return []
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for task in tasks:
            if running is loop:
                task.cancel()
            else:
                with contextlib.suppress(RuntimeError):  # the loop stopped meanwhile
                    loop.call_soon_threadsafe(task.cancel)
        return tasks if running is loop else []

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking jobs, drop the queued ones, and stop the workers (running jobs get
        ``timeout`` seconds to finish). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        self._count("dropped", self._discard())
        self._stop_tasks()
        for _ in threads:
            self._jobs.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning(
                    "%s: a verification still running after %.1fs of close(); "
                    "left to finish on its own",
                    thread.name,
                    timeout,
                )

    async def aclose(self, timeout: float = 5.0) -> None:
        """`close` for async code: also waits for this loop's worker tasks to stop."""
        with self._lock:
            already = self._closed
        tasks = (
            [] if already else [t for t in self._tasks if self._loop is asyncio.get_running_loop()]
        )
        await asyncio.to_thread(self.close, timeout)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def stats(self) -> dict[str, int]:
        """Jobs submitted, done, failed, dropped (queue full or closed), and pending."""
        with self._lock:
            out = dict(self._counts)
        out["pending"] = self._jobs.qsize() + (self._ajobs.qsize() if self._ajobs else 0)
        return out
