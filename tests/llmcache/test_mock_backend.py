"""The public mock backend: scripted answers, call recording, streams, embeddings, twins."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from llmcache.backends import AIResponse, AsyncBackend, Backend, StreamChunk
from llmcache.backends.errors import BackendUnavailable, ModelNotFound, StreamError
from llmcache.backends.mock import AsyncMockBackend, MockBackend, MockCall, hashed_embedding
from llmcache.testing import AsyncBackendConformance, BackendConformance

MESSAGES = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hi you"},
    {"role": "assistant", "content": "hello"},
    {"role": "user", "content": "2 + 2?"},
]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


# -- answers ---------------------------------------------------------------------------------


def test_default_handler_echoes_deterministically() -> None:
    backend = MockBackend()
    answer = backend.generate("what is two plus two")
    assert isinstance(backend, Backend)
    assert (answer.content, answer.model, answer.done_reason) == (
        "echo: what is two plus two",
        "mock",
        "stop",
    )
    assert (answer.prompt_tokens, answer.completion_tokens, answer.tokens_used) == (5, 6, 11)
    assert not answer.cached
    assert backend.generate("what is two plus two").content == answer.content
    assert backend.chat(MESSAGES).content == "echo: 2 + 2?"


def test_model_default_and_override() -> None:
    backend = MockBackend(model="tiny")
    assert backend.model == "tiny"
    assert backend.generate("x").model == "tiny"
    assert backend.generate("x", model="big").model == "big"
    assert backend.calls[1].model == "big"


def test_handler_may_return_str_response_or_pieces() -> None:
    canned = AIResponse(content="4", model="oracle", tokens_used=7)
    replies: list[Any] = ["plain", canned, ["a ", "b"]]
    backend = MockBackend(lambda call: replies[call.index])
    assert backend.generate("q").content == "plain"
    got = backend.generate("q")
    assert got == canned and got is not canned  # a copy: callers may mutate theirs
    assert backend.generate("q").content == "a b"


def test_handler_returning_garbage_is_a_type_error() -> None:
    backend = MockBackend(lambda call: 42)
    with pytest.raises(TypeError, match="returned a int for generate"):
        backend.generate("q")


def test_handler_errors_propagate_and_fail_after_n() -> None:
    def handler(call: MockCall) -> str:
        if call.index >= 2:
            raise BackendUnavailable("server went away")
        return f"answer {call.index}"

    backend = MockBackend(handler)
    assert [backend.generate("q").content for _ in range(2)] == ["answer 0", "answer 1"]
    with pytest.raises(BackendUnavailable, match="went away"):
        backend.generate("q")
    assert backend.call_count == 3  # failed calls are recorded too


# -- recording -------------------------------------------------------------------------------


def test_calls_record_every_argument() -> None:
    backend = MockBackend()
    backend.generate(
        "p", system="s", format="json", options={"temperature": 0}, images=[b"img"], keep_alive="5m"
    )
    backend.chat(MESSAGES, model="m2", tools=[{"type": "function"}], options={"seed": 1})
    backend.embed(["a", "b"])
    gen, chat, emb = backend.calls
    assert gen == MockCall(
        method="generate",
        model="mock",
        index=0,
        prompt="p",
        system="s",
        format="json",
        options={"temperature": 0},
        images=[b"img"],
        kwargs={"keep_alive": "5m"},
    )
    assert (chat.method, chat.model, chat.messages, chat.tools, chat.options) == (
        "chat",
        "m2",
        MESSAGES,
        [{"type": "function"}],
        {"seed": 1},
    )
    assert chat.text == "2 + 2?" and gen.text == "p"
    assert (emb.method, emb.texts, emb.text) == ("embed", ["a", "b"], "a\nb")
    assert backend.call_count == 3


def test_sampling_shortcuts_are_recorded_with_the_other_keywords() -> None:
    # temperature= and max_tokens= are named by the calls the mock shares with the HTTP
    # clients; the mock samples nothing, so it records them as they came, in kwargs.
    backend = MockBackend()
    backend.generate("p", seed=1, temperature=0.2, max_tokens=5)
    for chunk in backend.chat_stream(MESSAGES, max_tokens=3):
        del chunk
    backend.generate_stream("q")
    gen, chat, plain = backend.calls
    assert (gen.kwargs, gen.options) == ({"seed": 1, "temperature": 0.2, "max_tokens": 5}, {})
    assert (chat.method, chat.kwargs, chat.options) == ("chat_stream", {"max_tokens": 3}, {})
    assert (plain.method, plain.kwargs) == ("generate_stream", {})


def test_async_twin_records_the_same_calls() -> None:
    async def main() -> list[MockCall]:
        async with AsyncMockBackend() as backend:
            await backend.generate("p", system="s", temperature=0.2, keep_alive="5m")
            await backend.chat(MESSAGES, model="m2", tools=[{"type": "function"}])
            return backend.calls

    sync = MockBackend()
    sync.generate("p", system="s", temperature=0.2, keep_alive="5m")
    sync.chat(MESSAGES, model="m2", tools=[{"type": "function"}])
    assert asyncio.run(main()) == sync.calls


def test_records_are_snapshots() -> None:
    backend = MockBackend()
    messages = [{"role": "user", "content": "before"}]
    options = {"stop": ["x"]}
    backend.chat(messages, options=options)
    messages[0]["content"] = "after"
    options["stop"].append("y")
    assert backend.calls[0].messages == [{"role": "user", "content": "before"}]
    assert backend.calls[0].options == {"stop": ["x"]}
    backend.calls.clear()  # .calls is a copy; the log is untouched
    assert backend.call_count == 1


def test_reset_forgets_calls() -> None:
    backend = MockBackend()
    backend.generate("a")
    backend.reset()
    backend.generate("b")
    assert [(c.index, c.prompt) for c in backend.calls] == [(0, "b")]


def test_recording_is_thread_safe() -> None:
    backend = MockBackend()
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(50):
            backend.generate("x")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert backend.call_count == 400
    assert sorted(c.index for c in backend.calls) == list(range(400))


# -- streams ---------------------------------------------------------------------------------


def test_stream_splits_words_and_ends_with_a_done_chunk() -> None:
    backend = MockBackend(lambda call: "  The answer is\n42. ")
    chunks = list(backend.generate_stream("q"))
    assert [c.content for c in chunks] == ["  The ", "answer ", "is\n", "42. ", ""]
    assert all(isinstance(c, StreamChunk) and c.model == "mock" for c in chunks)
    assert [c.done for c in chunks] == [False] * 4 + [True]
    assert (chunks[-1].done_reason, chunks[-1].prompt_tokens, chunks[-1].completion_tokens) == (
        "stop",
        1,
        4,
    )
    assert "".join(c.content for c in chunks) == "  The answer is\n42. "


def test_stream_of_empty_answer_is_just_the_done_chunk() -> None:
    chunks = list(MockBackend(lambda call: "").chat_stream(MESSAGES))
    assert [(c.content, c.done) for c in chunks] == [("", True)]


def test_stream_of_a_response_carries_tool_calls_on_the_done_chunk() -> None:
    tool_calls = [{"function": {"name": "add", "arguments": {"a": 2}}}]
    backend = MockBackend(
        lambda call: AIResponse("", "m", tool_calls=tool_calls, done_reason="tool_calls")
    )
    *_, done = backend.chat_stream(MESSAGES)
    assert (done.done, done.tool_calls, done.done_reason) == (True, tool_calls, "tool_calls")


def test_stream_breaking_half_way() -> None:
    def handler(call: MockCall) -> Iterator[str]:
        yield "partial "
        yield "answer"
        raise StreamError("connection dropped", status_code=-1)

    got: list[str] = []
    with pytest.raises(StreamError):
        for chunk in MockBackend(handler).generate_stream("q"):
            got.append(chunk.content)
    assert got == ["partial ", "answer"]


def test_stream_of_pieces_gets_a_done_chunk_unless_it_has_one() -> None:
    pieces = MockBackend(lambda call: ["a", "b"]).generate_stream("q")
    assert [(c.content, c.done) for c in pieces] == [("a", False), ("b", False), ("", True)]
    own = [StreamChunk("a"), StreamChunk("", done=True, done_reason="length")]
    chunks = list(MockBackend(lambda call: own).generate_stream("q"))
    assert chunks == own


def test_stream_call_is_recorded_when_made_and_fails_when_iterated() -> None:
    def handler(call: MockCall) -> str:
        raise BackendUnavailable("down")

    backend = MockBackend(handler)
    stream = backend.generate_stream("q")
    assert backend.calls[0].method == "generate_stream" and backend.calls[0].streaming
    with pytest.raises(BackendUnavailable):
        next(iter(stream))


# -- embeddings ------------------------------------------------------------------------------


def test_embeddings_are_deterministic_unit_vectors() -> None:
    backend = MockBackend(embed_dim=16)
    first = backend.embed(["hello world", "goodbye", ""])
    again = MockBackend(embed_dim=16).embed(["hello world", "goodbye", ""])
    assert first.embeddings == again.embeddings
    assert first.model == "mock" and first.prompt_tokens == 3
    for vector in first.embeddings:
        assert len(vector) == 16
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0)


def test_embeddings_depend_on_words_and_model() -> None:
    def vec(text: str, model: str = "m") -> list[float]:
        return hashed_embedding(text, model=model, dim=64)

    base = vec("what is the capital of france")
    assert cosine(base, vec("What is the capital of France?")) == pytest.approx(1.0)
    assert cosine(base, vec("what is the capital of spain")) > 0.7
    assert cosine(base, vec("bananas grow quickly")) < 0.7
    assert vec("same text", "a") != vec("same text", "b")


def test_embed_consults_the_handler() -> None:
    text_handler = MockBackend(lambda call: "text answer").embed(["x"])
    assert text_handler.embeddings == MockBackend().embed(["x"]).embeddings

    assert MockBackend(lambda call: [[1.0, 0.0]]).embed(["x"]).embeddings == [[1.0, 0.0]]

    def down(call: MockCall) -> str:
        raise BackendUnavailable("embedder down")

    with pytest.raises(BackendUnavailable):
        MockBackend(down).embed(["x"])


# -- lifecycle and options -------------------------------------------------------------------


def test_latency_is_slept() -> None:
    backend = MockBackend(latency=0.05)
    started = time.perf_counter()
    answer = backend.generate("q")
    assert time.perf_counter() - started >= 0.05
    assert answer.duration_ms >= 50


def test_closed_backend_refuses_calls() -> None:
    with MockBackend() as backend:
        backend.generate("q")
    assert backend.closed
    with pytest.raises(BackendUnavailable, match="closed"):
        backend.generate("q")
    backend.close()  # idempotent


@pytest.mark.parametrize("kwargs", [{"latency": -1}, {"embed_dim": 0}])
def test_bad_options(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        MockBackend(**kwargs)


def test_sync_mock_rejects_an_async_handler_without_leaking_a_coroutine() -> None:
    async def handler(call: MockCall) -> str:
        return "x"

    async def pieces(call: MockCall) -> AsyncIterator[str]:
        yield "x"

    with pytest.raises(TypeError, match="AsyncMockBackend"):
        MockBackend(handler).generate("q")
    with pytest.raises(TypeError, match="AsyncMockBackend"):
        list(MockBackend(pieces).generate_stream("q"))


# -- the async twin --------------------------------------------------------------------------


async def test_async_mock_with_sync_and_async_handlers() -> None:
    async def slow(call: MockCall) -> str:
        await asyncio.sleep(0)
        return f"async {call.text}"

    for handler, expected in ((None, "echo: q"), (lambda c: "sync", "sync"), (slow, "async q")):
        backend = AsyncMockBackend(handler)
        assert isinstance(backend, AsyncBackend)
        assert (await backend.generate("q")).content == expected


async def test_async_stream_breaking_half_way_with_an_async_generator() -> None:
    async def handler(call: MockCall) -> AsyncIterator[str]:
        yield "one "
        raise StreamError("dropped")

    got: list[str] = []
    with pytest.raises(StreamError):
        async for chunk in AsyncMockBackend(handler).generate_stream("q"):
            got.append(chunk.content)
    assert got == ["one "]


async def test_async_pieces_are_joined_for_non_stream_calls() -> None:
    async def handler(call: MockCall) -> AsyncIterator[str]:
        for piece in ("a ", "b"):
            yield piece

    assert (await AsyncMockBackend(handler).chat(MESSAGES)).content == "a b"


async def test_async_close_and_latency() -> None:
    async with AsyncMockBackend(latency=0.02) as backend:
        started = time.perf_counter()
        await backend.embed(["x"])
        assert time.perf_counter() - started >= 0.02
    with pytest.raises(BackendUnavailable):
        await backend.generate("q")


async def test_async_calls_run_concurrently() -> None:
    backend = AsyncMockBackend(latency=0.05)
    started = time.perf_counter()
    await asyncio.gather(*(backend.generate(str(i)) for i in range(20)))
    assert time.perf_counter() - started < 0.5  # 20 x 50 ms would be 1 s if serialised
    assert backend.call_count == 20


def _strip(value: Any) -> Any:
    # duration_ms is a measurement, the only field allowed to differ between the twins.
    if isinstance(value, AIResponse):
        return {**value.to_dict(), "duration_ms": None}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    if hasattr(value, "embeddings"):
        return (value.embeddings, value.model, value.prompt_tokens)
    return value


@pytest.mark.parametrize("handler", [None, lambda call: f"{call.method}: {call.text} words"])
async def test_sync_and_async_twins_agree(handler: Any) -> None:
    sync, asyn = MockBackend(handler, model="p"), AsyncMockBackend(handler, model="p")
    opts: dict[str, Any] = {"options": {"temperature": 0}, "format": "json"}
    assert _strip(sync.generate("two words", **opts)) == _strip(
        await asyn.generate("two words", **opts)
    )
    assert _strip(sync.chat(MESSAGES, **opts)) == _strip(await asyn.chat(MESSAGES, **opts))
    assert list(sync.generate_stream("a b c")) == [c async for c in asyn.generate_stream("a b c")]
    assert list(sync.chat_stream(MESSAGES)) == [c async for c in asyn.chat_stream(MESSAGES)]
    assert _strip(sync.embed(["x y", "z"])) == _strip(await asyn.embed(["x y", "z"]))
    assert sync.calls == asyn.calls


# -- both twins pass the public conformance suites --------------------------------------------

MISSING = BackendConformance.missing_model


def _like_a_server(call: MockCall) -> Any:
    """A handler making the mock answer as the suites expect of a model server."""
    if call.model == MISSING:
        raise ModelNotFound(MISSING)
    if call.method == "embed":
        return None  # the deterministic vectors
    text = '{"answer": "blue"}' if call.format == "json" else f"echo: {call.text}"
    limit = call.options.get("num_predict")
    if limit is None:
        return text
    words = [f"{word} " for word in text.split()[:limit]]
    return [*words, StreamChunk(content="", model=call.model, done=True, done_reason="length")]


class TestMockBackendConformance(BackendConformance):
    other_model = "other"

    def make_backend(self) -> Backend:
        return MockBackend(_like_a_server)


class TestAsyncMockBackendConformance(AsyncBackendConformance):
    other_model = "other"

    def make_backend(self) -> AsyncBackend:
        return AsyncMockBackend(_like_a_server)

    async def test_a_subclass_may_add_async_tests(self) -> None:
        # Run in its own event loop like the inherited ones, without an asyncio plugin.
        async with self.backend() as backend:
            assert (await backend.generate("hi")).content == "echo: hi"


def test_the_async_suite_runs_without_an_event_loop_or_plugin() -> None:
    suite = TestAsyncMockBackendConformance()
    assert suite.test_generate() is None
    assert suite.test_a_subclass_may_add_async_tests() is None
