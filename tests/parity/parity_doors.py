"""The doors of the parity suite: every way into the cache, over a real upstream it can slow
down or break.

A `Door` makes calls the way its users do (a decorated function, a cached client's
``generate``, LangChain asking its cache) and reads the same things back from each: how many
calls reached the upstream, the door's counters, and whether an answer was marked as
cached. Sync doors run in threads of a private pool (so 20 concurrent callers are 20
threads), with the caller's context copied, so `cache_control` reaches them as it reaches a
task.

Upstreams: the project's test server (``llmcache_testserver``) on loopback, spoken to by the
Ollama and OpenAI plugins' real clients, and the public mock backends.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from llmcache_testserver import OllamaServer

from llmcache import AIResponse, CachedClient, MemoryStore, cached_generate
from llmcache.backends.errors import BackendUnavailable
from llmcache.backends.mock import AsyncMockBackend, MockBackend, MockCall
from llmcache_ollama import AsyncOllamaClient, OllamaClient
from llmcache_openai import AsyncOpenAIClient, OpenAIClient

MODEL = "llama3.2"
_names = itertools.count()


class Upstream:
    """What a door calls: counted, and able to fail or to be slow on request."""

    def calls(self) -> int:
        raise NotImplementedError

    def fail(self, failing: bool) -> None:
        raise NotImplementedError

    def slow(self, seconds: float) -> None:
        raise NotImplementedError


class ServerUpstream(Upstream):
    def __init__(self, server: OllamaServer) -> None:
        self.server = server

    def calls(self) -> int:
        return int(self.server.calls.total)

    def fail(self, failing: bool) -> None:
        self.server.faults.server_error = failing

    def slow(self, seconds: float) -> None:
        engine: Any = self.server.engine
        engine.latency_ms = seconds * 1000.0


class MockUpstream(Upstream):
    """A mock backend's handler: echoes, or raises while `failing`."""

    def __init__(self) -> None:
        self.failing = False
        self.backends: list[MockBackend | AsyncMockBackend] = []

    def handler(self, call: MockCall) -> str:
        if self.failing:
            raise BackendUnavailable("the upstream is down (on purpose)")
        return f"echo: {call.text}"

    def calls(self) -> int:
        return sum(b.call_count for b in self.backends)

    def fail(self, failing: bool) -> None:
        self.failing = failing

    def slow(self, seconds: float) -> None:
        for backend in self.backends:
            backend.latency = seconds


@dataclass
class Door:
    """One way into the cache. `call` and `stream` are coroutines for every door."""

    name: str
    upstream: Upstream
    counters: Callable[[], dict[str, Any]]
    call_async: Callable[..., Awaitable[Any]] | None = None
    call_sync: Callable[..., Any] | None = None
    stream_async: Callable[..., AsyncIterator[Any]] | None = None
    stream_sync: Callable[..., Iterator[Any]] | None = None
    #: Whether an answer says it came from the cache (None: the door's answers cannot tell).
    cached: Callable[[Any], bool | None] = lambda answer: None
    pool: ThreadPoolExecutor | None = None
    closers: list[Callable[[], Any]] = field(default_factory=list)
    #: Why a scenario does not apply to this door (a door that cannot coalesce calls).
    no_flight: str | None = None

    async def call(self, prompt: str, **kwargs: Any) -> Any:
        if self.call_async is not None:
            return await self.call_async(prompt, **kwargs)
        assert self.call_sync is not None
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await loop.run_in_executor(
            self.pool, lambda: context.run(self.call_sync, prompt, **kwargs)
        )  # type: ignore[arg-type]

    async def stream(self, prompt: str, **kwargs: Any) -> list[Any]:
        if self.stream_async is not None:
            return [chunk async for chunk in self.stream_async(prompt, **kwargs)]
        assert self.stream_sync is not None
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        sync = self.stream_sync
        return await loop.run_in_executor(
            self.pool, lambda: context.run(lambda: list(sync(prompt, **kwargs)))
        )

    async def close(self) -> None:
        for close in self.closers:
            result = close()
            if asyncio.iscoroutine(result):
                await result


def _response_cached(answer: Any) -> bool | None:
    return answer.cached if isinstance(answer, AIResponse) else None


def _client_door(
    name: str, client: Any, upstream: Upstream, pool: ThreadPoolExecutor, *, is_async: bool
) -> Door:
    door = Door(name, upstream, client.counters, cached=_response_cached, pool=pool)
    if is_async:
        door.call_async = client.generate
        door.stream_async = client.generate_stream
        door.closers.append(client.aclose)
    else:
        door.call_sync = client.generate
        door.stream_sync = client.generate_stream
        door.closers.append(client.close)
    return door


def _decorator_door(
    name: str, server: OllamaServer, pool: ThreadPoolExecutor, *, is_async: bool
) -> Door:
    upstream = ServerUpstream(server)
    namespace = f"parity-{next(_names)}"
    if is_async:
        aclient = AsyncOllamaClient(server.url, timeout=10, retries=0)

        @cached_generate(cache=MemoryStore(), namespace=namespace)
        async def agenerate(prompt: str, temperature: float | None = None) -> str:
            options = None if temperature is None else {"temperature": temperature}
            return (await aclient.generate(prompt, options=options)).content

        door = Door(name, upstream, agenerate.cache_counters, call_async=agenerate, pool=pool)
        door.closers.append(aclient.aclose)
        return door
    client = OllamaClient(server.url, timeout=10, retries=0)

    @cached_generate(cache=MemoryStore(), namespace=namespace)
    def generate(prompt: str, temperature: float | None = None) -> str:
        options = None if temperature is None else {"temperature": temperature}
        return client.generate(prompt, options=options).content

    door = Door(name, upstream, generate.cache_counters, call_sync=generate, pool=pool)
    door.closers.append(client.close)
    return door


def _langchain_door(name: str, pool: ThreadPoolExecutor, *, is_async: bool) -> Door:
    pytest.importorskip(
        "langchain_core", reason="needs the extra: pip install 'llmcache[langchain]'"
    )
    from langchain_core.language_models.llms import LLM

    from llmcache.integrations.langchain import LLMCache

    cache = LLMCache(MemoryStore())
    upstream = _LangChainUpstream()

    class EchoLLM(LLM):
        temperature: float | None = None

        @property
        def _llm_type(self) -> str:
            return "echo"

        @property
        def _identifying_params(self) -> dict[str, Any]:
            return {"temperature": self.temperature}

        def _call(
            self, prompt: str, stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
        ) -> str:
            return upstream.answer(prompt)

        async def _acall(
            self, prompt: str, stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
        ) -> str:
            await asyncio.sleep(upstream.latency)
            return upstream.answer(prompt)

    def model(temperature: float | None) -> Any:
        return EchoLLM(temperature=temperature, cache=cache)

    door = Door(
        name,
        upstream,
        cache.counters,
        pool=pool,
        no_flight="LangChain asks its cache, then calls the model itself: "
        "nothing in between can make concurrent callers wait for one call",
    )
    if is_async:

        async def acall(prompt: str, temperature: float | None = None) -> str:
            return str(await model(temperature).ainvoke(prompt))

        door.call_async = acall
    else:

        def call(prompt: str, temperature: float | None = None) -> str:
            return str(model(temperature).invoke(prompt))

        door.call_sync = call
    return door


class _LangChainUpstream(Upstream):
    def __init__(self) -> None:
        self.count = 0
        self.failing = False
        self.latency = 0.0

    def answer(self, prompt: str) -> str:
        self.count += 1
        if self.failing:
            raise BackendUnavailable("the upstream is down (on purpose)")
        return f"echo: {prompt}"

    def calls(self) -> int:
        return self.count

    def fail(self, failing: bool) -> None:
        self.failing = failing

    def slow(self, seconds: float) -> None:
        self.latency = seconds


#: Every door: (name, streams?) -- the parity tests are parametrized over these names.
DOORS = [
    "decorator",
    "decorator-async",
    "client-mock",
    "client-mock-async",
    "client-ollama",
    "client-ollama-async",
    "client-openai",
    "client-openai-async",
    "langchain",
    "langchain-async",
]
STREAMING = [d for d in DOORS if d.startswith("client-")]


async def open_door(name: str, server: OllamaServer, pool: ThreadPoolExecutor) -> Door:
    """The door called `name`, created inside the running event loop."""
    is_async = name.endswith("-async")
    if name.startswith("decorator"):
        return _decorator_door(name, server, pool, is_async=is_async)
    if name.startswith("langchain"):
        return _langchain_door(name, pool, is_async=is_async)
    store = MemoryStore()
    if name.startswith("client-mock"):
        mock = MockUpstream()
        backend: Any = (
            AsyncMockBackend(mock.handler, model=MODEL)
            if is_async
            else MockBackend(mock.handler, model=MODEL)
        )
        mock.backends.append(backend)
        return _client_door(name, CachedClient(backend, store), mock, pool, is_async=is_async)
    if name.startswith("client-ollama"):
        plugin: Any = (
            AsyncOllamaClient(server.url, timeout=10, retries=0)
            if is_async
            else OllamaClient(server.url, timeout=10, retries=0)
        )
    else:
        plugin = (
            AsyncOpenAIClient(server.openai_url, model=MODEL, timeout=10, retries=0)
            if is_async
            else OpenAIClient(server.openai_url, model=MODEL, timeout=10, retries=0)
        )
    return _client_door(
        name, CachedClient(plugin, store), ServerUpstream(server), pool, is_async=is_async
    )
