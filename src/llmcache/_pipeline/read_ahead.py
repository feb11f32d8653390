"""Reading an upstream stream ahead of its consumer: `AsyncReadAhead` (a task) and
`ReadAhead` (a thread).

A door whose callers may open a stream and read it later (an HTTP transport: an SDK opens
many streams, ``asyncio.gather``-ed, before reading any) asks the runner to read the
upstream ahead (``stream(..., read_ahead=True)``): the upstream is read as fast as it
comes, by a task (thread) of its own, into a buffer the consumer drains at its own pace.
So the end of the leader's stream -- which the followers of that stream wait for -- never
waits for the leader's consumer, and a follower blocked before its caller reads anything
cannot deadlock with a leader nobody reads yet.

``on_end(chunks)`` runs in the reader when it ends: with every chunk once the upstream ended
cleanly, with None when it failed or was stopped (the runner publishes the recording to the
followers there, and stores it if the consumer read it all). An upstream that fails passes
its exception to the consumer, raised where the next chunk would have been. `close` (a
consumer that stopped before the answer's end) stops the reader: the task is cancelled;
the thread stops after the chunk it is reading; either closes the upstream iterator.

Both faces are written by hand: a task and a thread are not one another's rewrite.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

__all__ = ["AsyncReadAhead", "ReadAhead"]

AsyncOnEnd = Callable[[list[Any] | None], Awaitable[None]]
OnEnd = Callable[[list[Any] | None], None]

_CHUNK, _ENDED, _FAILED = 0, 1, 2


def _more(message: tuple[int, Any]) -> bool:
    """Whether the reader's ``message`` holds a chunk for the consumer (False: the upstream
    ended); the upstream's failure is raised here, where the next chunk would have been."""
    kind, item = message
    if kind == _CHUNK:
        return True
    if kind == _ENDED:
        return False
    raise item


class AsyncReadAhead:
    """Reads `source` in a task of its own (see the module docstring)."""

    def __init__(self, source: AsyncIterator[Any], on_end: AsyncOnEnd) -> None:
        self._queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        self._on_end = on_end
        # The task runs in a copy of the creator's context, as the upstream call would.
        self._task = asyncio.get_running_loop().create_task(self._read(source))

    async def _read(self, source: AsyncIterator[Any]) -> None:
        chunks: list[Any] = []
        try:
            try:
                async for chunk in source:
                    chunks.append(chunk)
                    self._queue.put_nowait((_CHUNK, chunk))
            finally:
                close = getattr(source, "aclose", None)
                if close is not None:
                    await close()
        except asyncio.CancelledError:
            await self._on_end(None)
            raise
        except Exception as exc:
            self._queue.put_nowait((_FAILED, exc))
            await self._on_end(None)
            return
        await self._on_end(chunks)
        self._queue.put_nowait((_ENDED, None))

    async def __aiter__(self) -> AsyncIterator[Any]:
        while _more(message := await self._queue.get()):
            yield message[1]

    def close(self) -> None:
        """Stop reading (the consumer has gone)."""
        self._task.cancel()


class ReadAhead:
    """Reads `source` in a thread of its own (see the module docstring)."""

    def __init__(self, source: Iterator[Any], on_end: OnEnd) -> None:
        self._queue: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._on_end = on_end
        self._stop = threading.Event()
        context = contextvars.copy_context()  # the thread runs as the upstream call would
        threading.Thread(
            target=context.run, args=(self._read, source), name="llmcache-read-ahead", daemon=True
        ).start()

    def _read(self, source: Iterator[Any]) -> None:
        chunks: list[Any] = []
        try:
            try:
                for chunk in source:
                    if self._stop.is_set():
                        break
                    chunks.append(chunk)
                    self._queue.put((_CHUNK, chunk))
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # the consumer re-raises it; this thread ends quietly
            self._queue.put((_FAILED, exc))
            self._on_end(None)
            return
        if self._stop.is_set():
            self._on_end(None)
            return
        self._on_end(chunks)
        self._queue.put((_ENDED, None))

    def __iter__(self) -> Iterator[Any]:
        while _more(message := self._queue.get()):
            yield message[1]

    def close(self) -> None:
        """Stop reading (the consumer has gone)."""
        self._stop.set()
