"""Conformance suites that a store or backend plugin runs on itself.

Subclass a suite in a test module, name the subclass ``Test...`` so pytest collects it, and
override one method; every inherited ``test_*`` method then checks one rule of the
interface (in the spirit of keyring's ``keyring.testing.backend`` and cachetools'
``CacheTestMixin``)::

    from llmcache.testing import StoreConformance

    class TestMyStore(StoreConformance):
        uses_clock = True                  # make_store() honours self.clock

        def make_store(self):
            return MyStore(clock=self.clock)

- `StoreConformance`: get/set/delete/clear/len, TTLs, ``get_many``/``set_many``, stats,
  close, threads. Entries come back as stored, whatever their fingerprint (checking it is
  the client's job, not the store's).
- `BackendConformance` / `AsyncBackendConformance`: generate, chat, their streams (which
  end with one ``done`` chunk and join to the plain answer), embeddings (shape and order),
  ``model=`` overrides, a token limit, JSON mode, `ModelNotFound`, context managers.

The suites import no test framework: their checks are ``assert`` statements with messages
(skips raise `unittest.SkipTest`, which pytest reports as skips), and each test of the async
suite runs in its own `asyncio.run` loop (``make_backend`` is called inside it; a subclass's
own ``async def test_*`` methods run the same way), so neither pytest nor an asyncio plugin
is needed to import or run them. The async backend suite is written by hand and the
blocking one generated from it, so the two check the same rules. pytest creates a fresh
instance per test, so ``self.clock`` is fresh too; fixtures a subclass needs (a server, a
directory) can be stored on ``self`` by an autouse fixture of its own. For pytest's full
assertion introspection, put ``pytest.register_assert_rewrite(*llmcache.testing.MODULES)``
at the top of your ``conftest.py``.

>>> from llmcache.stores import MemoryStore
>>> class CheckMemory(StoreConformance):
...     uses_clock = True
...     def make_store(self):
...         return MemoryStore(max_entries=100, clock=self.clock)
>>> CheckMemory().test_entry_expires_after_ttl()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from llmcache._async_backend_conformance import AsyncBackendConformance
from llmcache._conformance_backends import raises, same_model
from llmcache._sync_backend_conformance import BackendConformance
from llmcache.entry import CachedResponse
from llmcache.keys import hash_bytes
from llmcache.stores.base import Store

__all__ = [
    "AsyncBackendConformance",
    "BackendConformance",
    "FakeClock",
    "MODULES",
    "StoreConformance",
    "raises",
    "same_model",
]

#: The modules holding the suites' ``assert`` statements, for ``pytest.register_assert_rewrite``.
MODULES = (
    "llmcache.testing",
    "llmcache._conformance_backends",
    "llmcache._async_backend_conformance",
    "llmcache._sync_backend_conformance",
)


class FakeClock:
    """Wall-clock seconds that move only when told to.

    >>> clock = FakeClock(100.0)
    >>> clock.advance(5); clock()
    105.0
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- stores -----------------------------------------------------------------------------------


class StoreConformance:
    """The `Store` contract. Override `make_store`; set ``uses_clock = True`` when the
    store reads ``self.clock`` (a `FakeClock`), else TTL tests sleep ``ttl`` real seconds."""

    uses_clock: bool = False
    ttl: float = 0.3  # seconds; TTL tests wait this long (plus a margin) on a real clock

    def make_store(self) -> Store:
        """A new, empty store; closed by the test that made it."""
        raise NotImplementedError("override make_store() to return the store under test")

    @cached_property
    def clock(self) -> FakeClock:
        return FakeClock()

    def key(self, name: str) -> str:
        """The key a test uses for `name` (shaped like llmcache's own keys)."""
        return hash_bytes(name.encode())

    @staticmethod
    def entry(content: Any = "answer", **fields: Any) -> CachedResponse:
        return CachedResponse(content=content, **fields)

    @contextmanager
    def store(self) -> Iterator[Store]:
        store = self.make_store()
        try:
            yield store
        finally:
            store.close()

    def elapse(self, seconds: float) -> None:
        if self.uses_clock:
            self.clock.advance(seconds)
        else:
            time.sleep(seconds)

    def now(self) -> float:
        return self.clock() if self.uses_clock else time.time()

    # -- basics --------------------------------------------------------------------------

    def test_is_a_store(self) -> None:
        with self.store() as store:
            assert isinstance(store, Store)

    def test_missing_key_is_none(self) -> None:
        with self.store() as store:
            assert store.get(self.key("nothing here")) is None

    def test_set_then_get_round_trips_every_field(self) -> None:
        original = self.entry(
            {"answer": [1, 2.5, "x", None, True]},
            model="m",
            prompt_tokens=3,
            completion_tokens=4,
            tokens_used=7,
            created_at=1234.5,
            hits=2,
            fingerprint="f00d",
            chunks=[{"content": "a"}, {"content": "", "done": True}],
            metadata={"kind": "json", "nested": {"n": 1}},
        )
        with self.store() as store:
            store.set(self.key("k"), original)
            got = store.get(self.key("k"))
        assert got is not None, "a stored entry reads as a miss"
        expected = original.to_dict()
        actual = got.to_dict()
        assert actual.pop("expires_at") is None, "no TTL, yet the entry expires"
        expected.pop("expires_at")
        assert actual == expected, f"stored {expected!r}, read back {actual!r}"

    def test_json_contents_round_trip(self) -> None:
        values = [
            "text",
            "",
            "ünïcødé ✓",
            {"a": {"b": [1, 2]}},
            [1, "two", 3.5],
            42,
            -0.5,
            True,
            False,
            None,
        ]
        with self.store() as store:
            for i, value in enumerate(values):
                store.set(self.key(f"v{i}"), self.entry(value))
            for i, value in enumerate(values):
                got = store.get(self.key(f"v{i}"))
                assert got is not None, f"{value!r} was stored but reads as a miss"
                assert got.content == value and type(got.content) is type(value), (
                    f"stored {value!r}, read back {got.content!r}"
                )

    def test_overwrite_replaces_the_entry(self) -> None:
        with self.store() as store:
            store.set(self.key("k"), self.entry("old"))
            store.set(self.key("k"), self.entry("new"))
            got = store.get(self.key("k"))
            assert got is not None and got.content == "new", got
            assert len(store) == 1, len(store)

    def test_any_string_is_a_key(self) -> None:
        keys = ["k", "K", "k ", " k", "ключ ✓", "with/slash:colon|pipe", "x" * 500, "v1:00"]
        with self.store() as store:
            for i, key in enumerate(keys):
                store.set(key, self.entry(i))
            for i, key in enumerate(keys):
                got = store.get(key)
                assert got is not None and got.content == i, key

    def test_fingerprints_are_stored_not_judged(self) -> None:
        with self.store() as store:
            store.set(self.key("a"), self.entry("A", fingerprint="not-the-key's"))
            store.set(self.key("b"), self.entry("B", fingerprint=""))
            a, b = store.get(self.key("a")), store.get(self.key("b"))
        assert a is not None and a.fingerprint == "not-the-key's", (
            "a store must return entries whatever their fingerprint (the client checks it)"
        )
        assert b is not None and b.fingerprint == "", b

    def test_non_string_key_is_a_type_error(self) -> None:
        with self.store() as store, raises(TypeError):
            store.set(42, self.entry())  # type: ignore[arg-type]

    def test_delete(self) -> None:
        with self.store() as store:
            store.set(self.key("a"), self.entry("A"))
            store.set(self.key("b"), self.entry("B"))
            assert store.delete(self.key("a")) is True
            assert store.get(self.key("a")) is None
            assert store.delete(self.key("a")) is False
            assert store.delete(self.key("never set")) is False
            got = store.get(self.key("b"))
            assert got is not None and got.content == "B"

    def test_clear_removes_everything_and_the_store_stays_usable(self) -> None:
        with self.store() as store:
            for i in range(5):
                store.set(self.key(str(i)), self.entry(i))
            store.clear()
            assert len(store) == 0
            assert all(store.get(self.key(str(i))) is None for i in range(5))
            store.set(self.key("after"), self.entry("ok"))
            assert store.get(self.key("after")) is not None

    def test_len_counts_entries(self) -> None:
        with self.store() as store:
            assert len(store) == 0
            for name in "abc":
                store.set(self.key(name), self.entry(name))
            store.set(self.key("a"), self.entry("again"))
            assert len(store) == 3, len(store)
            store.delete(self.key("b"))
            assert len(store) == 2, len(store)

    # -- time to live ----------------------------------------------------------------------

    def test_entry_expires_after_ttl(self) -> None:
        with self.store() as store:
            store.set(self.key("k"), self.entry(), ttl=self.ttl)
            assert store.get(self.key("k")) is not None, "expired before its TTL"
            self.elapse(self.ttl * 1.5)
            assert store.get(self.key("k")) is None, "still served after its TTL"

    def test_expires_at_reflects_the_ttl(self) -> None:
        with self.store() as store:
            before = self.now()
            store.set(self.key("k"), self.entry(), ttl=60)
            after = self.now()
            got = store.get(self.key("k"))
        assert got is not None and got.expires_at is not None, got
        assert before + 60 - 1 <= got.expires_at <= after + 60 + 1, (
            f"expires_at {got.expires_at} is not about now + 60 ({after + 60})"
        )

    def test_no_ttl_never_expires(self) -> None:
        with self.store() as store:
            store.set(self.key("k"), self.entry())
            self.elapse(10 * 86400 if self.uses_clock else self.ttl * 1.5)
            got = store.get(self.key("k"))
        assert got is not None and got.expires_at is None

    def test_ttl_is_per_entry_and_reset_by_overwrite(self) -> None:
        with self.store() as store:
            store.set(self.key("short"), self.entry(), ttl=self.ttl)
            store.set(self.key("long"), self.entry(), ttl=self.ttl * 100)
            store.set(self.key("renewed"), self.entry(), ttl=self.ttl)
            store.set(self.key("renewed"), self.entry())
            self.elapse(self.ttl * 1.5)
            assert store.get(self.key("short")) is None, "still served after its TTL"
            assert store.get(self.key("long")) is not None, "expired with another's TTL"
            assert store.get(self.key("renewed")) is not None, "an overwrite kept the old TTL"

    def test_invalid_ttl_raises(self) -> None:
        with self.store() as store:
            for bad in (0, -1, -0.5):
                with raises(ValueError):
                    store.set(self.key("k"), self.entry(), ttl=bad)
                with raises(ValueError):
                    store.set_many({self.key("k"): self.entry()}, ttl=bad)
            with raises(TypeError):
                store.set(self.key("k"), self.entry(), ttl="60")  # type: ignore[arg-type]

    # -- batches, stats, lifecycle -----------------------------------------------------------

    def test_get_many_returns_only_live_entries(self) -> None:
        with self.store() as store:
            store.set(self.key("a"), self.entry("A"))
            store.set(self.key("b"), self.entry("B"))
            wanted = (self.key(n) for n in ["a", "missing", "b", "a"])  # any iterable
            found = store.get_many(wanted)
            assert set(found) == {self.key("a"), self.key("b")}, found
            assert found[self.key("a")].content == "A" and found[self.key("b")].content == "B"
            assert store.get_many([]) == {}

    def test_set_many_stores_all_with_one_ttl(self) -> None:
        entries = {self.key(str(i)): self.entry(i) for i in range(10)}
        with self.store() as store:
            store.set_many(entries, ttl=self.ttl)
            found = store.get_many(entries)
            assert {k: e.content for k, e in found.items()} == {
                k: e.content for k, e in entries.items()
            }
            self.elapse(self.ttl * 1.5)
            assert store.get_many(entries) == {}

    def test_stats_is_a_dict_counting_entries(self) -> None:
        with self.store() as store:
            store.set(self.key("a"), self.entry())
            store.get(self.key("a"))
            stats = store.stats()
            assert isinstance(stats, dict) and stats["entries"] == len(store) == 1

    def test_context_manager_and_idempotent_close(self) -> None:
        store = self.make_store()
        with store as entered:
            assert entered is store
        store.close()  # a second close is harmless

    def test_threads_see_each_others_writes(self) -> None:
        errors: list[BaseException] = []
        with self.store() as store:

            def work(worker: int) -> None:
                try:
                    for i in range(25):
                        store.set(self.key(f"{worker}:{i}"), self.entry(f"{worker}:{i}"))
                        got = store.get(self.key(f"{worker}:{i}"))
                        assert got is not None and got.content == f"{worker}:{i}"
                except BaseException as exc:  # re-raised in the test's thread below
                    errors.append(exc)

            threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert not errors, errors
            keys = [self.key(f"{w}:{i}") for w in range(4) for i in range(25)]
            assert len(store.get_many(keys)) == 100
