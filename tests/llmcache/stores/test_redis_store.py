"""RedisStore against a real redis-server: codec, TTL, namespaces, batches, untrusted bytes,
the async twins, and its place as the last tier of a TieredStore."""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from llmcache import CachedResponse, DiskStore, MemoryStore, TieredStore, cached_generate
from llmcache.entry import JSONCodec
from llmcache.stores.redis import RedisStore


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    with RedisStore(redis_url, namespace="t") as s:
        yield s


def _entry(content: Any = "v", **fields: Any) -> CachedResponse:
    return CachedResponse(content=content, **fields)


def test_round_trip_through_the_codec(store: RedisStore, raw: redis.Redis) -> None:
    entry = _entry(
        {"answer": "4", "items": [1, 2.5, None, True], "ünï": "cödé ✓"},
        model="m",
        prompt_tokens=3,
        completion_tokens=5,
        tokens_used=8,
        fingerprint="abc",
        chunks=[{"content": "4", "done": True}],
        metadata={"kind": "json", "done_reason": "stop"},
    )
    store.set("k", entry, ttl=60)
    got = store.get("k")
    assert got is not None
    assert got.to_dict() == {**entry.to_dict(), "expires_at": got.expires_at}
    assert got.expires_at is not None and abs(got.expires_at - (time.time() + 60)) < 5
    data = raw.get("t:0:k")  # {namespace}:{generation}:{key}, generation 0 until a clear
    assert isinstance(data, bytes) and data.startswith(JSONCodec.MAGIC)  # never a pickle
    assert store.get("absent") is None
    assert store.stats()["hits"] == 1 and store.stats()["misses"] == 1


def test_ttl_is_per_entry_and_in_milliseconds(redis_url: str, raw: redis.Redis) -> None:
    with RedisStore(redis_url, namespace="t", default_ttl=30) as store:
        store.set("short", _entry(), ttl=0.2)
        store.set("default", _entry())
        assert 0 < raw.pttl("t:0:short") <= 200
        assert 29_000 < raw.pttl("t:0:default") <= 30_000
        assert store.get("short") is not None
        time.sleep(0.3)
        assert store.get("short") is None
    with RedisStore(redis_url, namespace="t") as store:
        store.set("forever", _entry())
        assert raw.pttl("t:0:forever") == -1
        got = store.get("forever")
        assert got is not None and got.expires_at is None
        with pytest.raises(ValueError):
            store.set("k", _entry(), ttl=0)


def test_an_entry_past_its_expiry_by_this_hosts_clock_is_a_miss(redis_url: str) -> None:
    now = [1000.0]
    with RedisStore(redis_url, namespace="t", clock=lambda: now[0]) as store:
        store.set("k", _entry(), ttl=60)
        assert store.get("k") is not None
        now[0] += 61  # this host's clock runs ahead of Redis's expiry
        assert store.get("k") is None
        assert store.stats()["expirations"] == 1


def test_namespaces_are_isolated_and_clear_removes_only_its_own(
    redis_url: str, raw: redis.Redis
) -> None:
    with (
        RedisStore(redis_url, namespace="a") as a,
        RedisStore(redis_url, namespace="b") as b,
        RedisStore(redis_url, namespace="a2") as a2,
    ):
        for i in range(1200):  # more than one SCAN page and one UNLINK batch
            a.set(f"k{i}", _entry(f"a{i}"))
        b.set("k0", _entry("b0"))
        a2.set("k0", _entry("a2"))
        raw.set("foreign", b"someone else's")
        token = a.try_lock("k0", 30)
        assert token is not None
        assert a.get("k0").content == "a0" and b.get("k0").content == "b0"  # type: ignore
        assert len(a) == 1200 and len(b) == 1 and len(a2) == 1  # locks are not entries
        a.clear()
        assert len(a) == 0 and a.get("k0") is None
        assert b.get("k0").content == "b0" and a2.get("k0").content == "a2"  # type: ignore
        assert raw.get("foreign") == b"someone else's"
        assert raw.get("a:lock:k0") == token.encode()  # a running call keeps its lock


def test_namespace_and_reserved_keys_are_checked(redis_url: str) -> None:
    for bad in ["", "a:b", "a*", "x" * 65, "sp ace"]:
        with pytest.raises(ValueError, match="namespace"):
            RedisStore(redis_url, namespace=bad)
    with pytest.raises(ValueError, match="socket_timeout"):
        RedisStore(redis_url, socket_timeout=0)
    with pytest.raises(ValueError) as caught:
        RedisStore(redis_url, namespace="a:b")
    assert str(caught.value) == (
        "namespace: expected 1-64 characters among letters, digits, '_', '.' and '-', got 'a:b'"
    )
    with pytest.raises(ValueError) as caught:
        RedisStore(redis_url, retry_after=-1)
    assert str(caught.value) == "retry_after: expected seconds > 0, got -1"
    with RedisStore(redis_url) as store:
        with pytest.raises(ValueError, match="reserved"):
            store.set("lock:x", _entry())
        with pytest.raises(TypeError):
            store.get(b"k")  # type: ignore[arg-type]


def test_get_many_is_one_mget_and_set_many_one_script_call(
    store: RedisStore, raw: redis.Redis
) -> None:
    entries = {f"k{i}": _entry(f"v{i}") for i in range(100)}
    store.set_many(entries, ttl=60)
    assert 59_000 < raw.pttl("t:0:k7") <= 60_000
    before = raw.info("commandstats").get("cmdstat_mget", {}).get("calls", 0)
    found = store.get_many([*entries, "k3", "missing"])
    after = raw.info("commandstats")["cmdstat_mget"]["calls"]
    assert after - before == 1
    assert {k: e.content for k, e in found.items()} == {k: e.content for k, e in entries.items()}
    assert store.stats()["sets"] == 100
    many = {f"m{i}": _entry(i) for i in range(1100)}  # several MGETs, pipelined
    store.set_many(many)
    assert len(store.get_many(many)) == 1100
    assert store.get_many([]) == {} and store.set_many({}) is None


def test_planted_pickles_and_garbage_are_misses_never_unpickled(
    store: RedisStore, raw: redis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> Any:
            return (Path.touch, (marker,))

    raw.set("t:0:pickle", pickle.dumps(Exploit()))
    raw.set("t:0:garbage", b"\x00\xff garbage")
    raw.set("t:0:badjson", JSONCodec.MAGIC + b"{not json")
    raw.set("t:0:badtypes", JSONCodec.MAGIC + b'{"content": "x", "hits": "many"}')
    raw.hset("t:0:hash", "f", "v")  # MGET reads a key of another type as missing
    names = ["pickle", "garbage", "badjson", "badtypes", "hash"]
    for name in names:
        assert store.get(name) is None, name
    assert store.get_many(names[:4]) == {}
    assert not marker.exists()
    stats = store.stats()
    assert stats["errors"] == 8 and stats["hits"] == 0  # 4 gets, 4 in get_many; hash: a miss
    assert not stats["circuit_open"]  # bad data says nothing about the server
    store.set("garbage", _entry("fixed"))
    assert store.get("garbage").content == "fixed"  # type: ignore[union-attr]


def test_stats_and_repr_never_show_the_password(caplog: pytest.LogCaptureFixture) -> None:
    with RedisStore("redis://user:s3cret@127.0.0.1:1/0", namespace="p") as store:
        assert store.get("k") is None
        stats = store.stats()
        assert "s3cret" not in repr(store) and "s3cret" not in str(stats)
        assert stats["url"] == "redis://user:***@127.0.0.1:1/0"
    assert caplog.records and not any("s3cret" in r.getMessage() for r in caplog.records)
    with RedisStore("rediss://:pw@127.0.0.1:1/0") as tls:  # TLS URLs are accepted
        assert tls.get("k") is None and "pw@" not in repr(tls)


def test_a_client_passed_in_is_used_and_left_open(redis_url: str, raw: redis.Redis) -> None:
    with RedisStore(client=raw, namespace="t") as store:
        store.set("k", _entry())
        assert store.get("k") is not None
    assert raw.ping()


async def test_async_twins(redis_url: str, raw: redis.Redis) -> None:
    async with RedisStore(redis_url, namespace="t") as store:
        await store.aset("k", _entry("async"), ttl=60)
        got = await store.aget("k")
        assert got is not None and got.content == "async"
        assert store.get("k") is not None  # one store, both faces
        await store.aset_many({f"m{i}": _entry(i) for i in range(3)}, ttl=60)
        found = await store.aget_many(["m0", "m1", "m2", "nope"])
        assert sorted(e.content for e in found.values()) == [0, 1, 2]
        assert await store.adelete("m0") and not await store.adelete("m0")
        token = await store.atry_lock("x", 5)
        assert token is not None and await store.atry_lock("x", 5) is None
        assert await store.arenew("x", token, 10) and not await store.aunlock("x", "other")
        assert await store.aunlock("x", token)
        raw.set("t:0:planted", pickle.dumps({"x": 1}))
        assert await store.aget("planted") is None
        await store.aclear()
        assert len(store) == 0
    with RedisStore(client=raw, namespace="t") as threaded:  # no async client: a thread
        await threaded.aset("k", _entry("t"))
        assert (await threaded.aget("k")).content == "t"  # type: ignore[union-attr]


def test_memory_then_redis_promotes_with_the_ttl_left(redis_url: str) -> None:
    with RedisStore(redis_url, namespace="t") as shared:
        TieredStore(MemoryStore(), shared).set("k", _entry(), ttl=60)
        # Another process: its own memory tier, the same Redis.
        memory = MemoryStore()
        tiered = TieredStore(memory, shared)
        got = tiered.get("k")
        assert got is not None and got.content == "v"
        promoted = memory.get("k")
        assert promoted is not None and got.expires_at is not None
        assert promoted.expires_at == pytest.approx(got.expires_at, abs=0.5)
        assert tiered.get("k") is not None
        assert tiered.stats()["tier_hits"] == {"memory": 1, "redis": 1}


def test_memory_disk_redis_promotes_to_every_faster_tier(redis_url: str, tmp_path: Path) -> None:
    with RedisStore(redis_url, namespace="t") as shared, DiskStore(tmp_path) as disk:
        shared.set("k", _entry("deep"), ttl=60)
        memory = MemoryStore()
        tiered = TieredStore(memory, disk, shared)
        assert tiered.get("k").content == "deep"  # type: ignore[union-attr]
        assert memory.get("k") is not None and disk.get("k") is not None
        assert tiered.get_many(["k", "nope"]).keys() == {"k"}
        assert tiered.stats()["tier_hits"] == {"memory": 1, "disk": 0, "redis": 1}


def _shared_generate(store: Any, calls: list[str]) -> Any:
    @cached_generate(cache=store, namespace="shared")
    def generate(prompt: str) -> str:
        calls.append(prompt)
        return prompt.upper()

    return generate


def test_decorated_functions_in_two_processes_share_redis(redis_url: str) -> None:
    calls: list[str] = []
    with RedisStore(redis_url, namespace="t") as shared:
        first = _shared_generate(TieredStore(MemoryStore(), shared), calls)
        second = _shared_generate(TieredStore(MemoryStore(), shared), calls)  # "elsewhere"
        assert first("hi") == "HI" and second("hi") == "HI"
        assert calls == ["hi"]
        assert second.cache_info().hits == 1


def test_import_llmcache_needs_no_redis_and_the_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import llmcache, llmcache.stores.redis as r\n"
        "try:\n    r.RedisStore()\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "RedisStore needs the redis extra: pip install 'llmcache[redis]'"
    code = "import sys, llmcache.stores.redis; print('redis' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"  # imported only when a store is built


# -- clear and delete: reported when they did not happen, never undone later ----------------


def test_delete_is_true_then_false_and_clear_returns_none(store: RedisStore) -> None:
    store.set("k", _entry())
    assert store.delete("k") is True
    assert store.delete("k") is False
    assert store.clear() is None
    assert store.stats()["deletes"] == 1


def test_an_entry_that_comes_back_after_a_clear_is_never_served(
    redis_url: str, raw: redis.Redis
) -> None:
    with (
        RedisStore(redis_url, namespace="t") as here,
        RedisStore(redis_url, namespace="t") as elsewhere,
    ):
        here.set("k", _entry("old"))
        assert elsewhere.get("k").content == "old"  # type: ignore[union-attr]
        (name,) = raw.keys("t:*")
        data = raw.get(name)
        here.clear()
        assert raw.keys("t:*") == [b"t:gen"]  # the old entries were swept as well
        # The old entry reappears (a replica that missed the UNLINK, a restored backup).
        raw.set(name, data)  # type: ignore[arg-type]
        assert here.get("k") is None
        assert elsewhere.get("k") is None  # another client, which had not seen the clear
        assert elsewhere.get_many(["k"]) == {} and here.get_many(["k"]) == {}
        assert len(here) == 0
        here.set("k", _entry("new"))
        assert elsewhere.get("k").content == "new"  # type: ignore[union-attr]
        assert here.stats()["generation"] == elsewhere.stats()["generation"] > 0


def test_a_generation_that_went_back_is_moved_forward_again(
    redis_url: str, raw: redis.Redis
) -> None:
    with RedisStore(redis_url, namespace="t") as store:
        store.set("k", _entry("old"))
        old_name, old_gen = raw.keys("t:*")[0], raw.get("t:gen")
        assert old_gen is None  # generation 0: never cleared
        store.clear()
        new_gen = raw.get("t:gen")
        store.set("k", _entry("new"))
        # Redis loses the clear (FLUSHALL, or a restart from an older snapshot) and the old
        # entry is back under the old generation.
        raw.flushall()
        raw.set(old_name, JSONCodec().encode(_entry("old")))
        assert store.get("k") is None  # not "old": this client saw the clear
        assert raw.get("t:gen") == new_gen  # and put the generation back where it was
        with RedisStore(redis_url, namespace="t") as fresh:  # a process started afterwards
            assert fresh.get("k") is None
        for garbage in (b"not a number", b"-3", b"1.5", b"007"):
            raw.set("t:gen", garbage)
            assert store.get("k") is None and store.generation() == int(new_gen)  # type: ignore
            assert raw.get("t:gen") == new_gen


def test_clear_sweeps_older_generations_and_the_old_layout_but_keeps_locks(
    redis_url: str, raw: redis.Redis
) -> None:
    with RedisStore(redis_url, namespace="t") as store:
        raw.set("t:v3:from-before-generations", b"x")
        raw.set("t:5:older", b"x")
        raw.set("t:plain", b"x")
        token = store.try_lock("k", 30)
        store.set("k", _entry())
        store.clear()
        gen = raw.get("t:gen")
        assert gen is not None
        assert sorted(raw.keys("t:*")) == [b"t:gen", b"t:lock:k"]
        assert raw.get("t:lock:k") == token.encode()  # type: ignore[union-attr]
        # A newer generation's entries (another client cleared meanwhile) are not swept.
        raw.set(b"t:" + str(int(gen) + 10).encode() + b":newer", b"x")
        store.clear()
        assert int(raw.get("t:gen")) > int(gen)  # type: ignore[arg-type]


async def test_async_clear_and_delete_match_the_sync_ones(redis_url: str, raw: redis.Redis) -> None:
    async with (
        RedisStore(redis_url, namespace="t") as here,
        RedisStore(redis_url, namespace="t") as elsewhere,
    ):
        await here.aset("k", _entry("old"))
        (name,) = raw.keys("t:*")
        data = raw.get(name)
        assert (await elsewhere.aget("k")).content == "old"  # type: ignore[union-attr]
        await here.aclear()
        raw.set(name, data)  # type: ignore[arg-type]
        assert await elsewhere.aget("k") is None and await here.aget("k") is None
        assert await elsewhere.aget_many(["k"]) == {}
        assert await elsewhere.ageneration() == here.stats()["generation"]
        await elsewhere.aset("k", _entry("new"))
        assert await here.adelete("k") is True and await here.adelete("k") is False
