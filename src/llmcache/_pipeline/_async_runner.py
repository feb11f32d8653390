"""The runner of the cache path: it drives a door's planned calls through the tiers.

Both faces come from one source: the coroutine runner is written by hand, and the runner
of plain calls is generated from it by ``scripts/unasync.py`` (same steps, same counters).
A door plans a call (`llmcache._pipeline.steps`) and hands the runner the plan and the
upstream call; the runner does the rest, the same way for every door:

1. a plan that skips the cache calls upstream (counted as a bypass or as uncacheable);
2. the exact tier is read, and its entry verified (`read`, the one check): a hit is returned;
3. on a miss, concurrent identical calls coalesce (in this process: `AsyncSingleFlight`;
   across processes, when the store holds shared locks: `llmcache.distributed`); the one
   that leads reads again (another caller may have stored the answer since), asks the
   semantic tier, then calls upstream (a counted miss) and stores the answer (exact tier,
   then semantic tier) before anyone gets it; the others get their own copy;
4. a stream replays a hit's chunks (marked cached) or passes the upstream's through,
   storing them only once the stream ran to its end; concurrent identical streams in this
   process (and, with a shared tier holding locks, in other processes) wait for the first
   one's recording and replay it (`AsyncRunner.stream`).

A failing tier is a counted miss (or an unwritten answer): the call still gets the
upstream's answer. Errors, cancelled calls and incomplete streams are never stored. The
tiers are called through their face of the runner's kind (`AsyncStore`): a memory or disk
tier answers inline, a network tier lets other tasks run while it waits.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar, cast

from llmcache._pipeline.codec import StreamCodec, ValueCodec
from llmcache._pipeline.counters import Counters
from llmcache._pipeline.read_ahead import AsyncReadAhead
from llmcache._pipeline.semantic import SemanticTier
from llmcache._pipeline.steps import MISS, Plan, entry_to_store
from llmcache.distributed import flight_for
from llmcache.entry import CachedResponse
from llmcache.keys import Request
from llmcache.policy import CachePolicy
from llmcache.singleflight import AsyncSingleFlight
from llmcache.stores.base import AsyncStore

__all__ = ["STREAM_WAIT", "AsyncRunner"]

#: Seconds a follower waits for a leader's stream to end before it streams itself.
STREAM_WAIT = 300.0

V = TypeVar("V")

Args = tuple[Any, ...]
Kwargs = dict[str, Any]
RequestOf = Callable[[Args, Kwargs], Request | None]
ModelOf = Callable[[Args, Kwargs], str]
Decode = Callable[[CachedResponse], Any]
#: What the door calls upstream: its answer, once awaited.
# unasync: sync Upstream = Callable[..., V]
Upstream = Callable[..., Awaitable[V]]  # unasync: async-only


class AsyncRunner(Generic[V]):
    """Runs planned calls of one door through the cache (see the module docstring).

    ``store``: the exact tier. ``codec``: the door's values to entries and back (a
    `StreamCodec` for a door that streams). ``counters``: where every call is counted.
    ``semantic``: a tier asked after an exact miss; it matches the plan's ``request``, or
    what ``request_of(args, kwargs)`` gives (a decorated function's arguments).
    ``model_of(args, kwargs)``: the model a call named, for entries whose values do not
    say (a decorated function's text answer).
    """

    def __init__(
        self,
        store: AsyncStore,
        codec: ValueCodec[V],
        counters: Counters,
        *,
        policy: CachePolicy,
        semantic: SemanticTier | None = None,
        request_of: RequestOf | None = None,
        model_of: ModelOf | None = None,
    ) -> None:
        self.store = store
        self._store_get = store.aget  # bound once: the hit path calls it
        self.codec = codec
        self._decode = codec.decode
        self.counters = counters
        self.policy = policy
        self.semantic = semantic
        self._request_of = request_of
        self._model_of = model_of
        self._flight: AsyncSingleFlight[tuple[V, V]] = AsyncSingleFlight()
        # Streams being recorded, by key (and event loop): their followers replay them.
        self._recordings: dict[Any, _Recording] = {}
        self._recordings_lock = threading.Lock()
        self._streams_ended = 0  # recordings ended so far (any key), under the lock
        # Decided once, here: a lock shared between processes (None: this process only),
        # and whether the store keeps the doors' call counts (a disk tier persists them for
        # ``llmcache stats``; a door given twice is counted once).
        self._shared = flight_for(store)
        count_calls_from = getattr(store, "count_calls_from", None)
        if count_calls_from is not None:
            count_calls_from(counters.as_dict)

    # -- plain calls ------------------------------------------------------------------------

    async def call(self, plan: Plan, fn: Upstream[V], args: Args, kwargs: Kwargs) -> V:
        """The answer to a call planned as `plan`: from the cache, or ``fn(*args,
        **kwargs)`` (an upstream call)."""
        if plan.read:
            value: V = await self.read(plan)
            if value is not MISS:
                return value
        elif not plan.write:
            self.counters.skipped(plan)
            return await fn(*args, **kwargs)
        return await self._missed(plan, fn, args, kwargs)

    async def read(self, plan: Plan, decode: Decode | None = None) -> Any:
        """The exact tier's answer for `plan` (a counted hit), or `MISS`: the one read of an
        entry, for every door. An entry written for another request (its fingerprint
        differs: moved or planted under this key in a shared tier) is a miss; so is one
        that does not decode (`decode`: the codec's by default; a shared tier is untrusted
        input), counted as an error."""
        try:
            entry = await self._store_get(plan.key)
        except Exception as exc:
            self.counters.failed("get", exc)
            return MISS
        if entry is None or entry.fingerprint != plan.fingerprint:
            return MISS
        try:
            value = (decode or self._decode)(entry)
        except (ValueError, TypeError, KeyError) as exc:
            self.counters.failed("decode", exc)
            return MISS
        counters = self.counters
        counters.hits += 1
        counters.tokens_saved += entry.tokens_used
        return value

    async def _missed(self, plan: Plan, fn: Upstream[V], args: Args, kwargs: Kwargs) -> V:
        async def lead() -> tuple[V, V]:
            value = await self._find(plan, fn, args, kwargs)
            # The followers' copy is taken before the leader's caller can change the value.
            return value, self.codec.share(value)

        (value, snapshot), shared = await self._flight.do_ex(plan.key, lead)
        if shared:
            self.counters.coalesced += 1
            return self.codec.share(snapshot)
        return value

    async def _find(self, plan: Plan, fn: Upstream[V], args: Args, kwargs: Kwargs) -> V:
        if plan.read:
            again: V = await self.read(plan)  # another flight may have stored it since
            if again is not MISS:
                return again
            if self._shared is not None and plan.write:
                # Other processes may miss this key too: one call among all of them.
                return await self._shared.ado(
                    plan.key,
                    lambda: self.read(plan),
                    lambda: self._compute(plan, fn, args, kwargs),
                    miss=MISS,
                )
        return await self._compute(plan, fn, args, kwargs)

    async def _compute(self, plan: Plan, fn: Upstream[V], args: Args, kwargs: Kwargs) -> V:
        request = self._semantic_request(plan, args, kwargs)
        if request is not None and plan.read:
            similar: V = await self._semantic_read(request)
            if similar is not MISS:
                return similar
        self.counters.misses += 1
        started = time.perf_counter()
        value = await fn(*args, **kwargs)
        self.counters.miss_ms += (time.perf_counter() - started) * 1000.0
        if plan.write:
            await self._save(plan, request, value, args, kwargs)
        return value

    # -- doors that call upstream themselves (LangChain asks its cache, then the model) -----

    async def lookup(self, plan: Plan, args: Args = (), kwargs: Kwargs | None = None) -> Any:
        """The cache's answer for `plan` (exact, then semantic), or `MISS`, counted: a
        miss (the door calls upstream next), or a skip. `args`/`kwargs` are what the door's
        ``request_of`` takes, when the plan carries no request."""
        if plan.read:
            value = await self.read(plan)
            if value is not MISS:
                return value
            request = self._semantic_request(plan, args, kwargs or {})
            if request is not None:
                similar = await self._semantic_read(request)
                if similar is not MISS:
                    return similar
        elif not plan.write:
            self.counters.skipped(plan)
            return MISS
        self.counters.misses += 1
        return MISS

    async def save(
        self, plan: Plan, value: V, args: Args = (), kwargs: Kwargs | None = None
    ) -> None:
        """Store the upstream's fresh answer to a call planned as `plan`, if it may be."""
        if plan.write:
            kwargs = kwargs or {}
            await self._save(plan, self._semantic_request(plan, args, kwargs), value, args, kwargs)

    # -- writing ----------------------------------------------------------------------------

    async def _save(
        self, plan: Plan, request: Request | None, value: V, args: Args, kwargs: Kwargs
    ) -> None:
        entry = entry_to_store(self.codec, value, plan, self.policy, self.counters)
        if entry is not None:
            if not entry.model and self._model_of is not None:
                entry.model = self._model_of(args, kwargs)
            await self._write(plan, entry)
            if request is not None and self.semantic is not None:
                try:
                    await self.semantic.aset(request, entry, ttl=plan.ttl)
                except Exception as exc:
                    self.counters.failed("semantic set", exc)

    async def _write(self, plan: Plan, entry: CachedResponse) -> None:
        try:
            await self.store.aset(plan.key, entry, plan.ttl)
        except Exception as exc:
            self.counters.failed("set", exc)

    # -- the semantic tier ------------------------------------------------------------------

    def _semantic_request(self, plan: Plan, args: Args, kwargs: Kwargs) -> Request | None:
        if self.semantic is None:
            return None
        if plan.request is not None or self._request_of is None:
            return plan.request
        return self._request_of(args, kwargs)

    async def _semantic_read(self, request: Request) -> Any:
        """A similar earlier call's answer (a counted hit), or `MISS`; a failing tier or an
        entry that does not decode is a counted error and a miss, never a failed call."""
        assert self.semantic is not None
        try:
            hit = await self.semantic.aget(request)
            if hit is None:
                return MISS
            entry: CachedResponse = getattr(hit, "entry", hit)
            value = self.codec.semantic(entry)
        except Exception as exc:
            self.counters.failed("semantic get", exc)
            return MISS
        self.counters.hits += 1
        self.counters.semantic_hits += 1
        self.counters.tokens_saved += entry.tokens_used
        return value

    # -- streams (the exact tier only) ------------------------------------------------------

    async def stream(
        self,
        plan: Plan,
        fn: Callable[..., AsyncIterator[Any]],
        args: Args,
        kwargs: Kwargs,
        *,
        read_ahead: bool = False,
    ) -> AsyncIterator[Any]:
        """The chunks of a streamed call planned as `plan`: a hit's, replayed and marked
        cached, or the upstream's (``fn(*args, **kwargs)``) as they come, stored once the
        stream ran to its end (the upstream's end, and its consumer's: a consumer that
        stopped early stores nothing).

        Concurrent identical misses in this process make one upstream call: the first
        (the leader) streams to its caller as the chunks come; the others (followers) wait
        until the leader's upstream ended, then replay its recording (counted as
        coalesced). A follower whose leader did not complete (an error, a cut stream, a
        consumer that stopped reading), or that waited `STREAM_WAIT` seconds, streams from
        upstream itself; so does a call that would wait on a stream its own task (thread)
        leads. With a shared tier holding locks, across processes too: the leader holds the
        tier's lock until its stream settled; another process's caller waits on it (as a
        plain call does, `llmcache.distributed`) and replays what was stored.

        ``read_ahead``: the upstream is read by a task (thread) of its own
        (`llmcache._pipeline.read_ahead`), so the followers never wait for the leader's
        consumer -- for a door whose callers open streams before they read them.
        """
        codec = cast("StreamCodec[V]", self.codec)
        ended = self._streams_ended
        if plan.read:
            replay = await self._read_replay(plan, codec)
            if replay is not MISS:
                for chunk in replay:
                    yield chunk
                return
        elif not plan.write:
            self.counters.skipped(plan)
            async for chunk in fn(*args, **kwargs):
                yield chunk
            return
        replay, recording = await self._join_stream(plan, codec, ended, read_ahead)
        if replay is not MISS:
            for chunk in replay:
                yield chunk
            return
        self.counters.misses += 1
        if read_ahead:
            flow = _Flow(recording)
            ahead = AsyncReadAhead(
                fn(*args, **kwargs), functools.partial(self._reader_ended, plan, codec, flow)
            )
            received: list[Any] = []
            complete = False
            try:
                async for chunk in ahead:
                    received.append(chunk)
                    yield chunk
                complete = True
            finally:
                if not complete:
                    # The SDKs stop reading at the answer's last event ([DONE]): that is an
                    # answer read to its end, even if the body's end was not asked for.
                    complete = plan.write and self._answered(codec, received)
                    if not complete:
                        ahead.close()
                await self._consumer_ended(plan, flow, complete)
            return
        chunks: list[Any] = []
        try:
            async for chunk in fn(*args, **kwargs):
                chunks.append(chunk)
                yield chunk
            # Reached only when the stream ran to its end: an exception, or a consumer that
            # stopped early (GeneratorExit), leaves before this line and nothing is stored.
            if plan.write:
                entry = self._stream_entry(plan, codec, chunks)
                if entry is not None:
                    await self._write(plan, entry)
                if recording is not None:
                    recording.entry = entry
        finally:
            if recording is not None:
                self._end_recording(recording)
                await self._let_go(recording)

    @staticmethod
    async def _let_go(recording: _Recording) -> None:
        """Wait until the shared lock this stream held is released, so a caller that closes
        its store right after the stream leaves no lock (and no connection) behind."""
        if recording.holder is not None:
            await recording.holder  # unasync: async-only
            # unasync: sync recording.holder.join()

    async def _read_replay(self, plan: Plan, codec: StreamCodec[V]) -> Any:
        return await self.read(plan, codec.replay)

    async def _join_stream(
        self, plan: Plan, codec: StreamCodec[V], ended: int, read_ahead: bool
    ) -> tuple[Any, _Recording | None]:
        """A leader's recording to replay, or `MISS` and the recording this call leads
        (None: it streams on its own, unregistered). `ended`: `_streams_ended` before
        this call's first read."""
        slot = (id(asyncio.get_running_loop()), plan.key)  # unasync: async-only
        # unasync: sync slot = plan.key
        owner = asyncio.current_task()  # unasync: async-only
        # unasync: sync owner = threading.get_ident()
        with self._recordings_lock:
            recording = self._recordings.get(slot)
            leads = recording is None and plan.write
            if leads:
                # Read ahead, the stream ends whoever reads it: even its own task (thread)
                # may wait for it.
                recording = self._recordings[slot] = _Recording(slot, None if read_ahead else owner)
            stale = self._streams_ended != ended
        if recording is None:
            return MISS, None
        if leads:
            replay = MISS
            if plan.read and stale:
                # A leader that ended since this call's first read stored before it left.
                replay = await self._read_replay(plan, codec)
            if replay is MISS and plan.read and self._shared is not None:
                replay = await self._lead_across(plan, codec, recording)
            if replay is not MISS:
                self._end_recording(recording)
                return replay, None
            return MISS, recording
        if not plan.read or recording.owner == owner:
            return MISS, None  # refreshing; or waiting on itself would never end
        entry = await self._wait_recording(recording)
        if entry is None:
            # The leader did not complete; it may still have found a stored answer.
            return await self._read_replay(plan, codec), None
        try:
            replay = codec.replay(entry)
        except (ValueError, TypeError, KeyError) as exc:
            self.counters.failed("replay", exc)
            return MISS, None
        self.counters.coalesced += 1
        return replay, None

    async def _lead_across(self, plan: Plan, codec: StreamCodec[V], recording: _Recording) -> Any:
        """Across processes (a shared tier holding locks): `MISS` when this process leads
        the stream -- it holds the shared lock until the stream settled (`_end_recording`)
        -- or the replay of what another process's leader stored meanwhile."""
        assert self._shared is not None
        shared = self._shared
        decided = asyncio.Event()
        release = recording.release = asyncio.Event()
        found: list[Any] = []

        async def compute() -> Any:  # holding the lock: this process streams
            decided.set()
            await release.wait()
            return MISS

        async def hold() -> None:
            try:
                found.append(
                    await shared.ado(
                        plan.key, lambda: self._read_replay(plan, codec), compute, miss=MISS
                    )
                )
            finally:
                decided.set()  # whatever happened, the stream does not wait for it

        # The lock is held by a task (thread) of its own, for as long as the stream lasts.
        recording.holder = asyncio.get_running_loop().create_task(hold())  # unasync: async-only
        # unasync: sync recording.holder = threading.Thread(target=hold, daemon=True)
        # unasync: sync recording.holder.start()
        await decided.wait()
        return found[0] if found else MISS

    async def _wait_recording(self, recording: _Recording) -> CachedResponse | None:
        # unasync: begin async-only
        try:
            await asyncio.wait_for(recording.done.wait(), STREAM_WAIT)
        except asyncio.TimeoutError:
            return None
        # unasync: end
        # unasync: sync if not recording.done.wait(STREAM_WAIT):
        # unasync: sync     return None
        return recording.entry

    def _end_recording(self, recording: _Recording) -> None:
        with self._recordings_lock:
            if self._recordings.get(recording.slot) is recording:
                del self._recordings[recording.slot]
            self._streams_ended += 1
        recording.done.set()
        if recording.release is not None:
            recording.release.set()  # the shared lock this stream held is let go

    def _stream_entry(
        self, plan: Plan, codec: StreamCodec[V], chunks: list[Any]
    ) -> CachedResponse | None:
        """The entry a complete stream's chunks become, or None (not storable)."""
        try:
            recorded = codec.record(chunks)
        except (TypeError, ValueError) as exc:
            self.counters.failed("encode", exc)
            return None
        if recorded is None:
            return None  # no final chunk: an incomplete stream is never stored
        entry = entry_to_store(codec, recorded[0], plan, self.policy, self.counters)
        if entry is not None:
            entry.chunks = recorded[1]
        return entry

    @staticmethod
    def _answered(codec: StreamCodec[V], chunks: list[Any]) -> bool:
        """Whether `chunks` hold a whole answer (its last event came)."""
        try:
            return codec.record(list(chunks)) is not None
        except (TypeError, ValueError):
            return False

    # A stream read ahead ends twice: its reader's end (the upstream's) and its consumer's.
    # Whichever comes second settles it: the recording is stored if the upstream ended
    # cleanly and the consumer read it all; the followers were told at the reader's end.

    async def _reader_ended(
        self, plan: Plan, codec: StreamCodec[V], flow: _Flow, chunks: list[Any] | None
    ) -> None:
        entry = None
        if chunks is not None and plan.write:
            entry = self._stream_entry(plan, codec, chunks)
        if flow.recording is not None:
            flow.recording.entry = entry
            flow.recording.done.set()  # the followers replay it now
        with flow.lock:
            flow.reader_done, flow.entry = True, entry
            settle = flow.consumer == _COMPLETE
        if settle:
            await self._settle(plan, flow, store=True)

    async def _consumer_ended(self, plan: Plan, flow: _Flow, complete: bool) -> None:
        with flow.lock:
            flow.consumer = _COMPLETE if complete else _GONE
            settle = flow.reader_done or not complete
        if settle:
            await self._settle(plan, flow, store=complete)

    async def _settle(self, plan: Plan, flow: _Flow, *, store: bool) -> None:
        if store and flow.entry is not None:
            await self._write(plan, flow.entry)
        if flow.recording is not None:
            self._end_recording(flow.recording)


class _Recording:
    """A stream a leader is recording; its followers wait for `done`, then replay `entry`
    (None: the stream did not complete, or was not storable)."""

    __slots__ = ("done", "entry", "holder", "owner", "release", "slot")

    def __init__(self, slot: Any, owner: Any) -> None:
        self.slot = slot
        self.owner = owner
        self.done = asyncio.Event()
        self.entry: CachedResponse | None = None
        # Across processes: what holds the shared lock, and what lets it go.
        self.holder: Any = None
        self.release: asyncio.Event | None = None


_READING, _COMPLETE, _GONE = 0, 1, 2


class _Flow:
    """A stream read ahead: whether its reader ended (and the entry it recorded) and
    whether its consumer read it all (``_COMPLETE``) or stopped before its end
    (``_GONE``); read and written under `lock`."""

    __slots__ = ("consumer", "entry", "lock", "reader_done", "recording")

    def __init__(self, recording: _Recording | None) -> None:
        self.recording = recording
        self.lock = threading.Lock()
        self.reader_done = False
        self.entry: CachedResponse | None = None
        self.consumer = _READING
