"""One small adapter per cache, all with the same three calls: ``lookup``, ``fill``, ``close``.

``lookup(request)`` derives the contender's key from the request *on every call* (that is
part of a real hit) and returns the cached answer text or ``None``. ``fill(request,
answer)`` is a miss followed by a store, the way an application meets a new request: look
up, call the model, store. llmcache contenders run through ``@cached_generate``, the
public path that computes the key, checks the entry's fingerprint and single-flights
misses; the peers run through their public cache APIs (LangChain ``lookup``/``update``,
GPTCache ``adapter.api.get``/``put``), the floors through the raw library calls.

Libraries are imported in `prepare`, not at module level, so a subprocess can time the
import of one contender alone (cold start) and a missing peer only removes its own rows.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from benchmarks.peers.workload import Request

__all__ = ["CONTENDERS", "Contender", "OpenContext", "build", "version_of"]

TTL = 3600  # seconds; every contender that supports a TTL gets the same one
MAX_ENTRIES = 50_000  # bound for the in-memory ones: far above what a run stores


@dataclass(frozen=True, slots=True)
class OpenContext:
    """Where a contender keeps its data: its own directory, and its own Redis database."""

    directory: Path
    redis_url: str | None = None
    fresh: bool = True  # empty the directory / database first


def version_of(dist: str) -> str:
    """The installed version of distribution ``dist`` or ``"-"``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _floor_key(request: Request) -> str:
    # The floors' key: canonical JSON of the request fields, hashed (orjson + xxh3_128),
    # the baseline DESIGN.md measures llmcache's keys against.
    import xxhash

    return xxhash.xxh3_128_hexdigest(
        orjson.dumps(request.key_fields(), option=orjson.OPT_SORT_KEYS)
    )


def _llm_string(request: Request) -> str:
    # LangChain keys on (prompt, llm_string); llm_string is the serialised model settings.
    return orjson.dumps(
        {
            "model": request.model,
            "num_predict": request.num_predict,
            "temperature": request.temperature,
        },
        option=orjson.OPT_SORT_KEYS,
    ).decode()


class Contender(ABC):
    """A cache under test. Subclasses set the class attributes and the four methods."""

    id: str = ""  # short name for the command line and the subprocess probes
    name: str = ""  # shown in tables
    group: str = ""  # "memory", "disk" or "redis": what it is compared against
    role: str = "peer"  # "floor", "ours" or "peer"
    dists: tuple[str, ...] = ()  # distributions whose versions the report lists
    needs_redis: bool = False
    notes: str = ""  # caveats shown in the report (no TTL, no lock ...)
    api: str = ""  # the calls a hit goes through, for the report

    def prepare(self) -> None:
        """Import the library (timed separately as the import part of a cold start)."""
        return None

    @abstractmethod
    def open(self, ctx: OpenContext) -> None:
        """Create or open the cache."""

    @abstractmethod
    def lookup(self, request: Request) -> str | None:
        """The cached answer for ``request``, or ``None``."""

    @abstractmethod
    def fill(self, request: Request, answer: str) -> str:
        """A miss then a store of ``answer``; returns the answer the caller gets."""

    def preload(self, items: Sequence[tuple[Request, str]]) -> None:
        """Store many answers (before a hit benchmark, in the memory probe): `fill` each by
        default. Never timed per call; a contender whose one-at-a-time store takes minutes
        for 10k overrides it with its library's batch write of the same rows."""
        for request, answer in items:
            self.fill(request, answer)

    def close(self) -> None:
        """Release files and connections."""
        return None

    @staticmethod
    def _reset(ctx: OpenContext) -> None:
        if ctx.fresh and ctx.directory.exists():
            shutil.rmtree(ctx.directory)
        ctx.directory.mkdir(parents=True, exist_ok=True)


# ------------------------------------------------------------------------------- floors


class CachetoolsFloor(Contender):
    """The raw in-memory floor: a ``cachetools.TTLCache`` under a ``threading.Lock``."""

    id, name, group, role = "cachetools", "cachetools TTLCache + lock", "memory", "floor"
    dists = ("cachetools",)
    api = "orjson + xxh3_128 key, `TTLCache.get` under a `threading.Lock`"

    def prepare(self) -> None:
        import cachetools  # noqa: F401
        import xxhash  # noqa: F401

    def open(self, ctx: OpenContext) -> None:
        import cachetools

        self._cache: Any = cachetools.TTLCache(MAX_ENTRIES, ttl=TTL)
        self._lock = threading.Lock()

    def lookup(self, request: Request) -> str | None:
        key = _floor_key(request)
        with self._lock:
            value: str | None = self._cache.get(key)
        return value

    def fill(self, request: Request, answer: str) -> str:
        key = _floor_key(request)
        with self._lock:
            if key in self._cache:
                return str(self._cache[key])
        with self._lock:
            self._cache[key] = answer
        return answer


class DiskcacheFloor(Contender):
    """The raw on-disk floor: ``diskcache.Cache`` holding the answer text (stored as raw
    TEXT by diskcache, no pickle)."""

    id, name, group, role = "diskcache", "diskcache Cache", "disk", "floor"
    dists = ("diskcache",)
    api = "orjson + xxh3_128 key, `Cache.get` / `Cache.set(expire=)` of the text"

    def prepare(self) -> None:
        import diskcache  # noqa: F401
        import xxhash  # noqa: F401

    def open(self, ctx: OpenContext) -> None:
        import diskcache

        self._reset(ctx)
        self._cache: Any = diskcache.Cache(str(ctx.directory))

    def lookup(self, request: Request) -> str | None:
        value: str | None = self._cache.get(_floor_key(request))
        return value

    def fill(self, request: Request, answer: str) -> str:
        key = _floor_key(request)
        found = self._cache.get(key)
        if found is not None:
            return str(found)
        self._cache.set(key, answer, expire=TTL)
        return answer

    def close(self) -> None:
        self._cache.close()


class RedisFloor(Contender):
    """The raw Redis floor: redis-py ``GET`` / ``SET ... EX`` of the answer text."""

    id, name, group, role = "redis-py", "redis-py GET/SET", "redis", "floor"
    dists = ("redis",)
    api = "orjson + xxh3_128 key, `GET` / `SET EX` of the text"
    needs_redis = True

    def prepare(self) -> None:
        import redis  # noqa: F401
        import xxhash  # noqa: F401

    def open(self, ctx: OpenContext) -> None:
        import redis

        assert ctx.redis_url is not None
        self._client: Any = redis.Redis.from_url(ctx.redis_url)
        if ctx.fresh:
            self._client.flushdb()

    def lookup(self, request: Request) -> str | None:
        data = self._client.get(_floor_key(request))
        return None if data is None else bytes(data).decode()

    def fill(self, request: Request, answer: str) -> str:
        key = _floor_key(request)
        found = self._client.get(key)
        if found is not None:
            return bytes(found).decode()
        self._client.set(key, answer.encode(), ex=TTL)
        return answer

    def close(self) -> None:
        self._client.close()


# ------------------------------------------------------------------------------ llmcache


class _Llmcache(Contender):
    """llmcache through ``@cached_generate`` over one of its stores."""

    role = "ours"
    dists: tuple[str, ...] = ("llmcache",)
    api = "`@cached_generate` (key of the bound arguments, fingerprint check, single-flight)"

    def prepare(self) -> None:
        import llmcache  # noqa: F401

    @abstractmethod
    def _store(self, ctx: OpenContext) -> Any:
        """The store under test."""

    def open(self, ctx: OpenContext) -> None:
        from llmcache import cached_generate

        self._store_obj = self._store(ctx)
        self._next: str | None = None

        def generate(
            prompt: str, model: str, temperature: float = 0.0, num_predict: int = 256
        ) -> str:
            # The "model": hands back the answer `fill` was given. A lookup that reaches
            # it has missed, which a hit benchmark must not do.
            answer, self._next = self._next, None
            if answer is None:
                raise LookupError("unexpected cache miss")
            return answer

        self._generate = cached_generate(cache=self._store_obj, ttl=TTL)(generate)

    def lookup(self, request: Request) -> str | None:
        try:
            value: str = self._generate(
                request.prompt,
                model=request.model,
                temperature=request.temperature,
                num_predict=request.num_predict,
            )
        except LookupError:
            return None
        return value

    def fill(self, request: Request, answer: str) -> str:
        self._next = answer
        value: str = self._generate(
            request.prompt,
            model=request.model,
            temperature=request.temperature,
            num_predict=request.num_predict,
        )
        return value

    def close(self) -> None:
        self._store_obj.close()


class LlmcacheMemory(_Llmcache):
    id, name, group = "llmcache-memory", "llmcache MemoryStore", "memory"
    notes = (
        "a miss runs the in-process single-flight, looks up again as leader, and "
        "stamps and sizes the entry before storing it"
    )

    def _store(self, ctx: OpenContext) -> Any:
        from llmcache import MemoryStore

        return MemoryStore(max_entries=MAX_ENTRIES)


class LlmcacheDisk(_Llmcache):
    id, name, group = "llmcache-disk", "llmcache DiskStore", "disk"

    def _store(self, ctx: OpenContext) -> Any:
        from llmcache import DiskStore

        self._reset(ctx)
        return DiskStore(ctx.directory)


class LlmcacheTiered(_Llmcache):
    id, name, group = "llmcache-tiered", "llmcache TieredStore (memory -> disk)", "disk"
    notes = "the memory tier holds the whole working set, so warm hits are memory hits"

    def _store(self, ctx: OpenContext) -> Any:
        from llmcache import DiskStore, MemoryStore, TieredStore

        self._reset(ctx)
        return TieredStore(MemoryStore(max_entries=MAX_ENTRIES), DiskStore(ctx.directory))


class LlmcacheRedis(_Llmcache):
    id, name, group = "llmcache-redis", "llmcache RedisStore", "redis"
    dists = ("llmcache", "redis")
    needs_redis = True
    notes = (
        "a miss also takes the cross-process single-flight lease (SET NX, a renewal "
        "thread, a scripted release): more round trips than a bare GET + SET"
    )

    def prepare(self) -> None:
        import llmcache.stores.redis  # noqa: F401

    def _store(self, ctx: OpenContext) -> Any:
        from llmcache.stores.redis import RedisStore

        assert ctx.redis_url is not None
        store = RedisStore(
            ctx.redis_url, namespace="bench", socket_timeout=2.0, connect_timeout=2.0
        )
        if ctx.fresh:
            store.clear()
        return store


# ------------------------------------------------------------------------------ peers


def _no_auto_install(package: str, warn: bool = False) -> None:
    # GPTCache runs `pip install` from inside the process when an optional library is
    # missing; a benchmark must never change the environment it measures.
    raise ImportError(f"GPTCache wanted to pip-install {package!r} at run time; refused")


def quiet_gptcache() -> None:
    """Turn off GPTCache's run-time ``pip install`` of missing libraries."""
    import gptcache.utils

    gptcache.utils.prompt_install = _no_auto_install


class GptcacheExact(Contender):
    """GPTCache in exact-match mode: its default ``cache.init()`` pipeline (string
    "embedding", ``MapDataManager``, ``ExactMatchEvaluation``) through ``adapter.api``."""

    id, name, group = "gptcache", "GPTCache exact (map)", "memory"
    dists = ("gptcache",)
    api = "`gptcache.adapter.api.get` / `put` over `cache.init()`'s exact-match pipeline"
    notes = (
        "no TTL; keys on the prompt text only, so the request's model and options are "
        "serialised into that text"
    )

    def prepare(self) -> None:
        import gptcache.adapter.api  # noqa: F401

        quiet_gptcache()

    def open(self, ctx: OpenContext) -> None:
        from gptcache import Cache
        from gptcache.adapter.api import get, put
        from gptcache.manager.data_manager import MapDataManager
        from gptcache.processor.pre import get_prompt

        self._reset(ctx)
        self._cache = Cache()
        # Its default data manager pickles to ./data_map.txt at exit; ours lives in the
        # run's directory, so nothing lands in the repository.
        self._cache.init(
            pre_embedding_func=get_prompt,
            data_manager=MapDataManager(str(ctx.directory / "data_map.txt"), MAX_ENTRIES),
        )
        self._get, self._put = get, put

    @staticmethod
    def _text(request: Request) -> str:
        return orjson.dumps(request.key_fields(), option=orjson.OPT_SORT_KEYS).decode()

    def lookup(self, request: Request) -> str | None:
        value: str | None = self._get(self._text(request), cache_obj=self._cache)
        return value

    def fill(self, request: Request, answer: str) -> str:
        text = self._text(request)
        found = self._get(text, cache_obj=self._cache)
        if found is not None:
            return str(found)
        self._put(text, answer, cache_obj=self._cache)
        return answer

    def close(self) -> None:
        # GPTCache's exit hook pickles the map to its data path; by then the run's
        # temporary directory is gone, so point it at /dev/null instead.
        self._cache.data_manager.data_path = os.devnull


class _Langchain(Contender):
    dists: tuple[str, ...] = ("langchain-core", "langchain-community")
    api = "`cache.lookup(prompt, llm_string)` / `cache.update(...)` with a `Generation`"

    _cache: Any

    def prepare(self) -> None:
        import warnings

        with warnings.catch_warnings():
            # langchain-community warns at import that it is being sunset.
            warnings.simplefilter("ignore")
            import langchain_community.cache  # noqa: F401
            import langchain_core.caches  # noqa: F401
            import langchain_core.outputs  # noqa: F401

    def lookup(self, request: Request) -> str | None:
        found = self._cache.lookup(request.prompt, _llm_string(request))
        return None if not found else str(found[0].text)

    def fill(self, request: Request, answer: str) -> str:
        from langchain_core.outputs import Generation

        llm_string = _llm_string(request)
        found = self._cache.lookup(request.prompt, llm_string)
        if found:
            return str(found[0].text)
        self._cache.update(request.prompt, llm_string, [Generation(text=answer)])
        return answer


class LangchainMemory(_Langchain):
    id, name, group = "langchain-memory", "LangChain InMemoryCache", "memory"
    dists = ("langchain-core",)
    notes = "no TTL, no lock (a plain dict)"

    def prepare(self) -> None:
        import langchain_core.caches  # noqa: F401
        import langchain_core.outputs  # noqa: F401

    def open(self, ctx: OpenContext) -> None:
        from langchain_core.caches import InMemoryCache

        self._cache = InMemoryCache()


class LangchainSqlite(_Langchain):
    id, name, group = "langchain-sqlite", "LangChain SQLiteCache", "disk"
    notes = "no TTL; one SQLAlchemy session per call"

    def open(self, ctx: OpenContext) -> None:
        from langchain_community.cache import SQLiteCache

        self._reset(ctx)
        self._cache = SQLiteCache(database_path=str(ctx.directory / "langchain.db"))

    def preload(self, items: Sequence[tuple[Request, str]]) -> None:
        # `update` commits (and fsyncs) once per answer: 10k of them take minutes here. The
        # same rows, written the way `update` writes them, one transaction per 50 rows (few
        # ORM objects alive at once, so the memory probe measures the cache, not them).
        from langchain_core.load import dumps
        from langchain_core.outputs import Generation
        from sqlalchemy.orm import Session

        schema = self._cache.cache_schema
        for start in range(0, len(items), 50):
            with Session(self._cache.engine) as session, session.begin():
                session.add_all(
                    [
                        schema(
                            prompt=request.prompt,
                            llm=_llm_string(request),
                            response=dumps(Generation(text=answer)),
                            idx=0,
                        )
                        for request, answer in items[start : start + 50]
                    ]
                )

    def close(self) -> None:
        self._cache.engine.dispose()


class LangchainRedis(_Langchain):
    id, name, group = "langchain-redis", "LangChain RedisCache", "redis"
    dists = ("langchain-community", "redis")
    needs_redis = True

    def open(self, ctx: OpenContext) -> None:
        import redis
        from langchain_community.cache import RedisCache

        assert ctx.redis_url is not None
        self._client: Any = redis.Redis.from_url(ctx.redis_url)
        if ctx.fresh:
            self._client.flushdb()
        self._cache = RedisCache(self._client, ttl=TTL)

    def close(self) -> None:
        self._client.close()


class _LlmcacheForLangchain(_Langchain):
    """llmcache's own LangChain cache (`llmcache.integrations.langchain.LLMCache`): the
    same ``lookup`` / ``update`` calls as LangChain's caches, over an llmcache store."""

    role = "ours"
    dists = ("llmcache", "langchain-core")
    api = (
        "`LLMCache.lookup(prompt, llm_string)` / `update(...)`: LangChain's API, llmcache "
        "key, fingerprint check and allow-listed `load`"
    )
    notes = (
        "a hit rebuilds the generations with LangChain's `load(allowed_objects=...)`, "
        "which works out its allowed class paths again on every call"
    )

    def prepare(self) -> None:
        import langchain_core.outputs  # noqa: F401

        import llmcache.integrations.langchain  # noqa: F401

    @abstractmethod
    def _store(self, ctx: OpenContext) -> Any:
        """The store under the adapter."""

    def open(self, ctx: OpenContext) -> None:
        from llmcache.integrations.langchain import LLMCache

        self._cache = LLMCache(self._store(ctx), ttl=TTL)

    def close(self) -> None:
        self._cache.close()


class LlmcacheLangchainMemory(_LlmcacheForLangchain):
    id, name, group = (
        "llmcache-langchain-memory",
        "llmcache LLMCache (LangChain API) on MemoryStore",
        "memory",
    )

    def _store(self, ctx: OpenContext) -> Any:
        from llmcache import MemoryStore

        return MemoryStore(max_entries=MAX_ENTRIES)


class LlmcacheLangchainDisk(_LlmcacheForLangchain):
    id, name, group = (
        "llmcache-langchain-disk",
        "llmcache LLMCache (LangChain API) on DiskStore",
        "disk",
    )

    def _store(self, ctx: OpenContext) -> Any:
        from llmcache import DiskStore

        self._reset(ctx)
        return DiskStore(ctx.directory)


#: In table order: each group's floor first, then llmcache, then the peers.
CONTENDERS: tuple[type[Contender], ...] = (
    CachetoolsFloor,
    LlmcacheMemory,
    LlmcacheLangchainMemory,
    GptcacheExact,
    LangchainMemory,
    DiskcacheFloor,
    LlmcacheDisk,
    LlmcacheTiered,
    LlmcacheLangchainDisk,
    LangchainSqlite,
    RedisFloor,
    LlmcacheRedis,
    LangchainRedis,
)

#: Redis database per contender, so each can be emptied (FLUSHDB) without touching others.
REDIS_DB = {"redis-py": 1, "llmcache-redis": 2, "langchain-redis": 3}


def build(contender_id: str) -> Contender:
    """A new, unopened contender by its id."""
    for cls in CONTENDERS:
        if cls.id == contender_id:
            return cls()
    raise KeyError(
        f"unknown contender {contender_id!r}; choose among {', '.join(c.id for c in CONTENDERS)}"
    )
