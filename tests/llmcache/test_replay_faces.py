"""One answer, two faces: an entry stored by a plain call replays through the streamed face
with everything it had, and the other way round (issue 13, finding 10), over the public mock
backends and real stores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from llmcache import (
    AIResponse,
    AsyncMockBackend,
    CachedClient,
    DiskStore,
    MemoryStore,
    MockBackend,
    StreamChunk,
)
from llmcache.backends.errors import BackendUnavailable
from llmcache.backends.mock import MockCall

TOOL_CALL = {
    "id": "call_0",
    "type": "function",
    "function": {"name": "weather", "arguments": {"city": "Paris"}},
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]

# The same answer as a plain reply and as the chunks of a live stream: thinking in two
# deltas, text in two pieces, a tool call in a middle chunk, usage and reason in the last.
ANSWER = AIResponse(
    content="Let me check. ",
    model="mock",
    tokens_used=11,
    prompt_tokens=7,
    completion_tokens=4,
    done_reason="tool_calls",
    tool_calls=[TOOL_CALL],
    thinking="The user wants the weather.",
)
CHUNKS = [
    StreamChunk(content="", model="mock", thinking="The user wants "),
    StreamChunk(content="", model="mock", thinking="the weather."),
    StreamChunk(content="Let me ", model="mock"),
    StreamChunk(content="check. ", model="mock", tool_calls=[TOOL_CALL]),
    StreamChunk(
        content="",
        model="mock",
        done=True,
        done_reason="tool_calls",
        prompt_tokens=7,
        completion_tokens=4,
    ),
]


def answer(call: MockCall) -> Any:
    if call.streaming:
        return [
            replace(c, tool_calls=None if c.tool_calls is None else [dict(TOOL_CALL)])
            for c in CHUNKS
        ]
    return replace(ANSWER, tool_calls=[dict(TOOL_CALL)])


def view(response: AIResponse) -> dict[str, Any]:
    """What the model said, as a plain call gives it."""
    return {
        "content": response.content,
        "model": response.model,
        "thinking": response.thinking,
        "tool_calls": response.tool_calls,
        "prompt_tokens": response.prompt_tokens,
        "completion_tokens": response.completion_tokens,
        "tokens_used": response.tokens_used,
        "done_reason": response.done_reason,
    }


def assembled(chunks: list[StreamChunk]) -> dict[str, Any]:
    """What the model said, as a stream consumer puts it together."""
    last = chunks[-1]
    assert last.done and not any(c.done for c in chunks[:-1])
    return {
        "content": "".join(c.content for c in chunks),
        "model": last.model,
        "thinking": "".join(c.thinking or "" for c in chunks) or None,
        "tool_calls": [tc for c in chunks for tc in c.tool_calls or []] or None,
        "prompt_tokens": last.prompt_tokens,
        "completion_tokens": last.completion_tokens,
        "tokens_used": last.prompt_tokens + last.completion_tokens,
        "done_reason": last.done_reason,
    }


EXPECTED = view(ANSWER)
Stores = Callable[[Path], Any]
STORES = [
    pytest.param(lambda tmp: MemoryStore(), id="memory"),
    pytest.param(lambda tmp: DiskStore(tmp / "cache"), id="disk"),
]


def _calls(client: Any, method: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    if method == "generate":
        return (
            lambda: client.generate("Weather in Paris?", temperature=0),
            lambda: client.generate_stream("Weather in Paris?", temperature=0),
        )
    return (
        lambda: client.chat(MESSAGES, tools=TOOLS, temperature=0),
        lambda: client.chat_stream(MESSAGES, tools=TOOLS, temperature=0),
    )


@pytest.mark.parametrize("make_store", STORES)
@pytest.mark.parametrize("method", ["generate", "chat"])
def test_plain_then_streamed(method: str, make_store: Stores, tmp_path: Path) -> None:
    backend = MockBackend(answer)
    client = CachedClient(backend, make_store(tmp_path))
    plain, stream = _calls(client, method)
    assert view(plain()) == EXPECTED
    replay = list(stream())
    assert assembled(replay) == EXPECTED
    assert backend.call_count == 1


@pytest.mark.parametrize("make_store", STORES)
@pytest.mark.parametrize("method", ["generate", "chat"])
def test_streamed_then_plain(method: str, make_store: Stores, tmp_path: Path) -> None:
    backend = MockBackend(answer)
    client = CachedClient(backend, make_store(tmp_path))
    plain, stream = _calls(client, method)
    assert assembled(list(stream())) == EXPECTED
    hit = plain()
    assert hit.cached and view(hit) == EXPECTED
    # The streamed face replays the live chunks themselves, thinking deltas included.
    # The replay is the stream as it was, each chunk marked as coming from the cache.
    assert [c.to_dict() | {"raw": {}} for c in stream()] == [
        c.to_dict() | {"cached": True} for c in CHUNKS
    ]
    assert backend.call_count == 1


@pytest.mark.parametrize("make_store", STORES)
@pytest.mark.parametrize("method", ["generate", "chat"])
async def test_async_faces(method: str, make_store: Stores, tmp_path: Path) -> None:
    for first in ("plain", "stream"):
        backend = AsyncMockBackend(answer)
        client = CachedClient(backend, make_store(tmp_path / first))
        plain, stream = _calls(client, method)
        if first == "plain":
            assert view(await plain()) == EXPECTED
            assert assembled([c async for c in stream()]) == EXPECTED
        else:
            assert assembled([c async for c in stream()]) == EXPECTED
            hit = await plain()
            assert hit.cached and view(hit) == EXPECTED
        assert backend.call_count == 1


def test_a_replay_is_the_consumers_own_copy() -> None:
    for first in ("plain", "stream"):
        client = CachedClient(MockBackend(answer), MemoryStore())
        plain, stream = _calls(client, "chat")
        plain() if first == "plain" else list(stream())
        for chunk in stream():
            for call in chunk.tool_calls or []:
                call["function"]["arguments"]["city"] = "Rome"
        assert assembled(list(stream()))["tool_calls"] == [TOOL_CALL]
        assert plain().tool_calls == [TOOL_CALL]


def test_a_cut_or_abandoned_stream_with_tool_calls_is_never_stored() -> None:
    def cut(call: MockCall) -> Any:
        if not call.streaming:
            return replace(ANSWER, content="fresh")

        def pieces() -> Any:
            yield from CHUNKS[:-1]
            raise BackendUnavailable("connection reset before the final chunk")

        return pieces()

    client = CachedClient(MockBackend(cut), MemoryStore())
    with pytest.raises(BackendUnavailable):
        list(client.chat_stream(MESSAGES, tools=TOOLS, temperature=0))
    stream = client.chat_stream(MESSAGES, tools=TOOLS, temperature=0)
    for chunk in stream:
        if chunk.tool_calls:
            break  # the consumer has its tool call and walks away
    stream.close()
    assert len(client.store) == 0
    assert not client.chat(MESSAGES, tools=TOOLS, temperature=0).cached


async def test_the_mock_gives_one_answer_through_both_faces() -> None:
    def chunks(call: MockCall) -> Any:
        return list(CHUNKS)

    assert view(MockBackend(chunks).chat(MESSAGES)) == EXPECTED
    assert assembled(list(MockBackend(chunks).chat_stream(MESSAGES))) == EXPECTED
    assert view(await AsyncMockBackend(chunks).chat(MESSAGES)) == EXPECTED
