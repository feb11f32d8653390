"""Answers of the model APIs as the caching transport and proxy record them: what may be
stored, streams fed in arbitrary pieces, usage, and the entry codec's byte-exact replay.

The payloads follow each API's documented wire format; the official SDKs then parse the
replayed bytes, so a replay that an SDK would read differently fails here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmcache.entry import CachedResponse, CodecError, JSONCodec
from llmcache.integrations._http_answers import (
    REPLAYED_HEADERS,
    Answer,
    ResponseRecorder,
    Usage,
    answer_entry,
    replay_entry,
)
from llmcache.integrations._http_routes import ROUTES, Route
from llmcache.policy import CachePolicy

ROUTE: dict[str, Route] = {r.name: r for r in ROUTES}
SSE = {"content-type": "text/event-stream; charset=utf-8"}
NDJSON = {"content-type": "application/x-ndjson"}
JSON_CT = {"content-type": "application/json"}


def sse(*events: tuple[str | None, Any], eol: str = "\n") -> bytes:
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else orjson.dumps(data).decode()
        out.append((f"event: {name}{eol}" if name else "") + f"data: {text}{eol}{eol}")
    return "".join(out).encode()


def ndjson(*objs: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(o) + b"\n" for o in objs)


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }


OPENAI_STREAM = sse(
    (None, _chunk({"role": "assistant", "content": ""})),
    (None, _chunk({"content": "Hel"})),
    (None, _chunk({"content": "lo ✓"})),
    (None, _chunk({}, "stop")),
    (
        None,
        dict(
            _chunk({}),
            choices=[],
            usage={"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
        ),
    ),
    (None, "[DONE]"),
)

OPENAI_TOOL_STREAM = sse(
    (
        None,
        _chunk(
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add", "arguments": ""},
                    }
                ],
            }
        ),
    ),
    (None, _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 1}'}}]})),
    (None, _chunk({}, "tool_calls")),
    (None, "[DONE]"),
)

COMPLETIONS_STREAM = sse(
    (
        None,
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "created": 1,
            "model": "gpt-i",
            "choices": [{"index": 0, "text": "This", "logprobs": None, "finish_reason": None}],
        },
    ),
    (
        None,
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "created": 1,
            "model": "gpt-i",
            "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": "length"}],
        },
    ),
    (None, "[DONE]"),
)

_RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1700000000,
    "model": "gpt-4o-mini",
    "output": [],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "status": "in_progress",
}
RESPONSES_STREAM = sse(
    ("response.created", {"type": "response.created", "sequence_number": 0, "response": _RESPONSE}),
    (
        "response.output_text.delta",
        {
            "type": "response.output_text.delta",
            "sequence_number": 1,
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "delta": "Hi",
            "logprobs": [],
        },
    ),
    (
        "response.completed",
        {
            "type": "response.completed",
            "sequence_number": 2,
            "response": dict(
                _RESPONSE,
                status="completed",
                usage={
                    "input_tokens": 5,
                    "output_tokens": 1,
                    "total_tokens": 6,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens_details": {"reasoning_tokens": 0},
                },
            ),
        },
    ),
)

ANTHROPIC_STREAM = sse(
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "claude-x",
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 12, "cache_read_input_tokens": 3, "output_tokens": 1},
            },
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Hello"},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": " there ✓"},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
)

_OLLAMA_LAST = {
    "done": True,
    "done_reason": "stop",
    "total_duration": 4_000_000,
    "load_duration": 1,
    "prompt_eval_count": 7,
    "prompt_eval_duration": 1,
    "eval_count": 2,
    "eval_duration": 1,
}
OLLAMA_CHAT_STREAM = ndjson(
    {
        "model": "llama3",
        "created_at": "2026-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": "Hel"},
        "done": False,
    },
    {
        "model": "llama3",
        "created_at": "2026-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": "lo"},
        "done": False,
    },
    {
        "model": "llama3",
        "created_at": "2026-01-01T00:00:01Z",
        "message": {"role": "assistant", "content": ""},
        **_OLLAMA_LAST,
    },
)
OLLAMA_GENERATE_STREAM = ndjson(
    {"model": "llama3", "created_at": "2026-01-01T00:00:00Z", "response": "4", "done": False},
    {
        "model": "llama3",
        "created_at": "2026-01-01T00:00:00Z",
        "response": "",
        "context": [1],
        **_OLLAMA_LAST,
    },
)

STREAMS: dict[str, tuple[str, dict[str, str], bytes]] = {
    "openai": ("openai.chat", SSE, OPENAI_STREAM),
    "openai-tools": ("openai.chat", SSE, OPENAI_TOOL_STREAM),
    "openai-crlf": ("openai.chat", SSE, OPENAI_STREAM.replace(b"\n", b"\r\n")),
    "completions": ("openai.completions", SSE, COMPLETIONS_STREAM),
    "responses": ("openai.responses", SSE, RESPONSES_STREAM),
    "anthropic": ("anthropic.messages", SSE, ANTHROPIC_STREAM),
    "anthropic-crlf": ("anthropic.messages", SSE, ANTHROPIC_STREAM.replace(b"\n", b"\r\n")),
    "ollama-chat": ("ollama.chat", NDJSON, OLLAMA_CHAT_STREAM),
    "ollama-generate": ("ollama.generate", NDJSON, OLLAMA_GENERATE_STREAM),
}

BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "openai": (
        "openai.chat",
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "4"},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
        },
    ),
    "completions": (
        "openai.completions",
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "created": 1,
            "model": "gpt-i",
            "choices": [{"index": 0, "text": "This is", "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        },
    ),
    "responses": (
        "openai.responses",
        dict(
            _RESPONSE,
            status="completed",
            usage={"input_tokens": 5, "output_tokens": 1, "total_tokens": 6},
        ),
    ),
    "embeddings": (
        "openai.embeddings",
        {
            "object": "list",
            "model": "text-embedding-3-small",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2]}],
            "usage": {"prompt_tokens": 2, "total_tokens": 2},
        },
    ),
    "anthropic": (
        "anthropic.messages",
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [{"type": "text", "text": "Hi"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 2},
        },
    ),
    "ollama-generate": (
        "ollama.generate",
        {"model": "llama3", "created_at": "2026-01-01T00:00:00Z", "response": "4", **_OLLAMA_LAST},
    ),
    "ollama-chat": (
        "ollama.chat",
        {
            "model": "llama3",
            "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "4"},
            **_OLLAMA_LAST,
        },
    ),
    "ollama-embed": (
        "ollama.embed",
        {
            "model": "all-minilm",
            "embeddings": [[0.1, 0.2]],
            "total_duration": 1,
            "load_duration": 1,
            "prompt_eval_count": 2,
        },
    ),
}


def record(
    route: str, headers: dict[str, str], pieces: list[bytes], status: int = 200, **kwargs: Any
) -> Answer:
    recorder = ResponseRecorder(ROUTE[route], status, headers, **kwargs)
    for piece in pieces:
        recorder.feed(piece)
    return recorder.finish()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def replayed(answer: Answer) -> bytes:
    return b"".join(replay_entry(answer_entry(answer, fingerprint="f")).iter_bytes())


# -- what may be stored ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_a_complete_stream_is_storable_and_replays_byte_for_byte(name: str) -> None:
    route, headers, data = STREAMS[name]
    answer = record(route, headers, [data])
    assert answer.storable, answer.reason
    assert answer.chunks is not None and "".join(answer.chunks).encode() == data
    assert replayed(answer) == data


@pytest.mark.parametrize("name", sorted(STREAMS))
@given(cuts=st.lists(st.integers(0, 4000), max_size=12))
def test_random_splits_record_the_same_events(name: str, cuts: list[int]) -> None:
    route, headers, data = STREAMS[name]
    whole = record(route, headers, [data])
    pieces = split(data, cuts)
    assert record(route, headers, pieces) == whole


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_byte_by_byte_records_the_same_events(name: str) -> None:
    route, headers, data = STREAMS[name]
    assert record(route, headers, [data[i : i + 1] for i in range(len(data))]) == record(
        route, headers, [data]
    )


@pytest.mark.parametrize("name", ["openai", "anthropic", "responses", "openai-crlf"])
def test_event_boundaries_are_kept(name: str) -> None:
    route, headers, data = STREAMS[name]
    chunks = record(route, headers, [data]).chunks
    assert chunks is not None
    eol = "\r\n" if "crlf" in name else "\n"
    assert all(c.endswith(eol * 2) and c.count(eol * 2) == 1 for c in chunks)
    assert len(chunks) == data.count((eol * 2).encode())


@pytest.mark.parametrize("name", sorted(STREAMS))
@given(data=st.data())
def test_a_cut_stream_is_never_storable(name: str, data: st.DataObject) -> None:
    route, headers, stream = STREAMS[name]
    # An NDJSON stream whose last line lost only its line end is whole, and so is an SSE
    # stream of CRLF lines that lost its last LF (a lone CR ends a line, as the SSE spec
    # and the SDKs read it); anything shorter is not.
    last = len(stream) - (2 if headers is NDJSON or stream.endswith(b"\r\n") else 1)
    cut = data.draw(st.integers(0, last))
    answer = record(route, headers, [stream[:cut]])
    assert not answer.storable and answer.reason and answer.chunks is None


def test_an_ndjson_stream_without_its_last_line_end_is_whole() -> None:
    answer = record("ollama.chat", NDJSON, [OLLAMA_CHAT_STREAM[:-1]])
    assert answer.storable and replayed(answer) == OLLAMA_CHAT_STREAM[:-1]


@pytest.mark.parametrize("name", sorted(BODIES))
@given(cuts=st.lists(st.integers(0, 600), max_size=6))
def test_complete_json_answers_are_storable(name: str, cuts: list[int]) -> None:
    route, obj = BODIES[name]
    body = orjson.dumps(obj)
    answer = record(route, JSON_CT, split(body, cuts))
    assert answer.storable, answer.reason
    assert answer.body is not None and answer.body.encode() == body
    assert replayed(answer) == body


@pytest.mark.parametrize(
    "name, change",
    [
        ("openai", {"choices": []}),
        ("openai", {"choices": [{"index": 0, "message": {}, "finish_reason": None}]}),
        (
            "completions",
            {
                "choices": [
                    {"index": 0, "text": "x"},
                    {"index": 1, "text": "y", "finish_reason": "stop"},
                ]
            },
        ),
        ("responses", {"status": "in_progress"}),
        ("responses", {"status": "failed"}),
        ("responses", {"status": "queued"}),
        ("embeddings", {"data": None}),
        ("anthropic", {"stop_reason": None}),
        ("ollama-chat", {"done": False}),
        ("ollama-embed", {"embeddings": None}),
        ("openai", {"error": {"message": "boom"}}),
        ("anthropic", {"type": "error", "error": {"type": "overloaded_error"}}),
    ],
)
def test_incomplete_json_answers_are_not_storable(name: str, change: dict[str, Any]) -> None:
    route, obj = BODIES[name]
    answer = record(route, JSON_CT, [orjson.dumps(dict(obj, **change))])
    assert not answer.storable and answer.reason and answer.body is None


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'"x"', b"\xff\xfe", b"null"])
def test_bodies_that_are_not_json_objects_are_not_storable(body: bytes) -> None:
    assert not record("openai.chat", JSON_CT, [body]).storable


@pytest.mark.parametrize("status", [100, 199, 300, 304, 400, 401, 404, 429, 500, 502, 529])
def test_only_2xx_answers_are_storable(status: int) -> None:
    route, obj = BODIES["openai"]
    answer = record(route, JSON_CT, [orjson.dumps(obj)], status=status)
    assert not answer.storable and str(status) in answer.reason


@pytest.mark.parametrize(
    "route, headers, data, why",
    [
        ("openai.chat", {"content-type": "text/plain"}, b"hi", "content-type"),
        ("openai.chat", {}, b"{}", "content-type (none)"),
        ("openai.embeddings", SSE, OPENAI_STREAM, "content-type"),
        ("openai.embeddings", {"content-type": "image/png"}, b"x", "content-type"),
        ("openai.chat", NDJSON, OLLAMA_CHAT_STREAM, "content-type"),
        ("ollama.chat", SSE, OPENAI_STREAM, "content-type"),
        ("openai.chat", dict(SSE, **{"content-encoding": "gzip"}), OPENAI_STREAM, "decoded"),
    ],
)
def test_answers_of_another_shape_are_not_storable(
    route: str, headers: dict[str, str], data: bytes, why: str
) -> None:
    recorder = ResponseRecorder(ROUTE[route], 200, headers)
    assert not recorder.recording
    recorder.feed(data)
    answer = recorder.finish()
    assert not answer.storable and why in answer.reason


@pytest.mark.parametrize(
    "route, headers, stream, why",
    [
        ("openai.chat", SSE, OPENAI_STREAM.replace(b"data: [DONE]\n\n", b""), "[DONE]"),
        ("openai.chat", SSE, OPENAI_STREAM.replace(b'"stop"', b"null"), "finish_reason"),
        ("openai.chat", SSE, OPENAI_STREAM + sse((None, _chunk({"content": "x"}))), "after"),
        (
            "openai.chat",
            SSE,
            sse(
                (None, _chunk({"content": "x"})),
                (None, {"error": {"message": "overloaded"}}),
                (None, "[DONE]"),
            ),
            "error",
        ),
        (
            "openai.chat",
            SSE,
            sse((None, _chunk({"content": "x"})), ("error", {"message": "e"}), (None, "[DONE]")),
            "error",
        ),
        ("openai.chat", SSE, sse((None, "not json"), (None, "[DONE]")), "not JSON"),
        ("openai.chat", SSE, sse((None, "[]"), (None, "[DONE]")), "not a JSON object"),
        ("openai.chat", SSE, sse((None, "[DONE]")), "no choices"),
        (
            "openai.responses",
            SSE,
            RESPONSES_STREAM.rsplit(b"event: response.completed", 1)[0],
            "response.completed",
        ),
        (
            "openai.responses",
            SSE,
            RESPONSES_STREAM.replace(b"response.completed", b"response.failed"),
            "failed",
        ),
        ("openai.responses", SSE, RESPONSES_STREAM + sse(("error", {"type": "error"})), "error"),
        (
            "anthropic.messages",
            SSE,
            ANTHROPIC_STREAM.rsplit(b"event: message_stop", 1)[0],
            "message_stop",
        ),
        (
            "anthropic.messages",
            SSE,
            ANTHROPIC_STREAM.replace(b"event: ping", b"event: error").replace(
                b'{"type":"ping"}', b'{"type":"error","error":{"type":"overloaded_error"}}'
            ),
            "error",
        ),
        (
            "anthropic.messages",
            SSE,
            ANTHROPIC_STREAM + sse(("content_block_delta", {})),
            "after message_stop",
        ),
        ("ollama.chat", NDJSON, OLLAMA_CHAT_STREAM.rsplit(b"\n", 2)[0] + b"\n", "done: true"),
        (
            "ollama.chat",
            NDJSON,
            ndjson(
                {"model": "m", "message": {"content": "x"}, "done": False},
                {"error": "an error was encountered while running"},
            ),
            "error",
        ),
        ("ollama.chat", NDJSON, OLLAMA_CHAT_STREAM + ndjson({"done": False}), "after the done"),
        ("ollama.chat", NDJSON, b"not json\n", "not JSON"),
        ("ollama.chat", NDJSON, b"[1]\n", "not a JSON object"),
        ("ollama.chat", NDJSON, OLLAMA_CHAT_STREAM.replace(b"Hel", b"H\xffl"), "UTF-8"),
    ],
)
def test_failed_and_unfinished_streams_are_not_storable(
    route: str, headers: dict[str, str], stream: bytes, why: str
) -> None:
    answer = record(route, headers, [stream])
    assert not answer.storable and why in answer.reason, answer.reason
    assert answer.chunks is None


def test_an_answer_over_the_size_limit_is_passed_on_not_kept() -> None:
    recorder = ResponseRecorder(ROUTE["openai.chat"], 200, SSE, max_bytes=100)
    for piece in split(OPENAI_STREAM, list(range(0, len(OPENAI_STREAM), 40))):
        recorder.feed(piece)
    assert not recorder.recording
    answer = recorder.finish()
    assert not answer.storable and "max_bytes=100" in answer.reason


def test_feeding_after_finish_is_a_bug() -> None:
    recorder = ResponseRecorder(ROUTE["openai.chat"], 200, SSE)
    recorder.feed(OPENAI_STREAM)
    recorder.finish()
    with pytest.raises(RuntimeError):
        recorder.feed(b"data: x\n\n")


def test_comments_and_keepalives_are_recorded_and_ignored() -> None:
    data = b": keep-alive\n\n" + OPENAI_STREAM[:40] + OPENAI_STREAM[40:] + b": bye\n\n"
    answer = record("openai.chat", SSE, [data])
    assert answer.storable and replayed(answer) == data


def test_a_lone_cr_ends_lines_too() -> None:
    # SSE allows CR, LF and CRLF; a CR last in a piece waits for a possible LF.
    data = OPENAI_STREAM.replace(b"\n", b"\r")
    for pieces in ([data], [data[i : i + 1] for i in range(len(data))]):
        answer = record("openai.chat", SSE, pieces)
        assert answer.storable, answer.reason
        assert replayed(answer) == data
    assert record("openai.chat", SSE, [data[:-1]]).storable is False


# -- why it ended, usage, model ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name, reason",
    [
        ("openai", "stop"),
        ("openai-tools", "tool_calls"),
        ("completions", "length"),
        ("responses", None),
        ("anthropic", "end_turn"),
        ("ollama-chat", "stop"),
    ],
)
def test_why_a_stream_ended(name: str, reason: str | None) -> None:
    route, headers, data = STREAMS[name]
    assert record(route, headers, [data]).done_reason == reason


@pytest.mark.parametrize(
    "name, change",
    [
        ("openai", {"choices": [{"index": 0, "message": {}, "finish_reason": "length"}]}),
        ("anthropic", {"stop_reason": "max_tokens"}),
        ("anthropic", {"stop_reason": "model_context_window_exceeded"}),
        (
            "responses",
            {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}},
        ),
        ("ollama-generate", {"done_reason": "length"}),
    ],
)
def test_every_token_limit_reads_as_length(name: str, change: dict[str, Any]) -> None:
    route, obj = BODIES[name]
    answer = record(route, JSON_CT, [orjson.dumps(dict(obj, **change))])
    assert answer.storable and answer.done_reason == "length"
    # so the one policy rule applies: a cut answer is not stored unless asked for
    assert not CachePolicy().storable_reason(answer.done_reason)
    assert CachePolicy(store_length_limited=True).storable_reason(answer.done_reason)


def test_a_length_limited_choice_wins_over_a_finished_one() -> None:
    route, obj = BODIES["openai"]
    two = dict(
        obj,
        choices=[{"index": 0, "finish_reason": "stop"}, {"index": 1, "finish_reason": "length"}],
    )
    assert record(route, JSON_CT, [orjson.dumps(two)]).done_reason == "length"


@pytest.mark.parametrize(
    "name, usage, model",
    [
        ("openai", Usage(9, 3, 12), "gpt-4o-mini"),
        ("openai-tools", Usage(), "gpt-4o-mini"),  # no include_usage: no usage chunk
        ("responses", Usage(5, 1, 6), "gpt-4o-mini"),
        ("anthropic", Usage(15, 5, 20), "claude-x"),  # input + cache reads; output cumulative
        ("ollama-chat", Usage(7, 2, 9), "llama3"),
    ],
)
def test_usage_of_a_stream(name: str, usage: Usage, model: str) -> None:
    route, headers, data = STREAMS[name]
    answer = record(route, headers, [data])
    assert (answer.usage, answer.model) == (usage, model)


@pytest.mark.parametrize(
    "name, usage",
    [
        ("openai", Usage(9, 1, 10)),
        ("completions", Usage(5, 2, 7)),
        ("responses", Usage(5, 1, 6)),
        ("embeddings", Usage(2, 0, 2)),
        ("anthropic", Usage(10, 2, 12)),
        ("ollama-generate", Usage(7, 2, 9)),
        ("ollama-embed", Usage(2, 0, 2)),
    ],
)
def test_usage_of_a_json_answer(name: str, usage: Usage) -> None:
    route, obj = BODIES[name]
    assert record(route, JSON_CT, [orjson.dumps(obj)]).usage == usage


def test_odd_usage_values_count_as_zero() -> None:
    route, obj = BODIES["openai"]
    odd = dict(obj, usage={"prompt_tokens": "9", "completion_tokens": True, "total_tokens": -1})
    assert record(route, JSON_CT, [orjson.dumps(odd)]).usage == Usage()


# -- the entry codec ------------------------------------------------------------------------


def test_only_the_content_type_is_replayed() -> None:
    headers = {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Date": "Mon",
        "Set-Cookie": "__cf_bm=abc",
        "x-request-id": "req_1",
        "request-id": "req_2",
        "openai-organization": "org-1",
        "openai-processing-ms": "12",
        "x-ratelimit-remaining-requests": "99",
        "cf-ray": "abc-LHR",
        "content-length": "100",
        "transfer-encoding": "chunked",
    }
    answer = record("openai.chat", headers, [OPENAI_STREAM])
    assert answer.headers == (("content-type", "text/event-stream; charset=utf-8"),)
    assert REPLAYED_HEADERS == ("content-type",)


@pytest.mark.parametrize("name", sorted(STREAMS) + sorted(BODIES))
def test_entries_round_trip_through_the_codec(name: str) -> None:
    if name in STREAMS:
        route, headers, data = STREAMS[name]
    else:
        route, obj = BODIES[name]
        headers, data = JSON_CT, orjson.dumps(obj)
    answer = record(route, headers, [data])
    entry = answer_entry(answer, fingerprint="fp")
    assert entry.fingerprint == "fp" and entry.tokens_used == answer.usage.total_tokens
    back = JSONCodec().decode(JSONCodec().encode(entry))
    replay = replay_entry(back)
    assert replay.status == 200 and replay.headers == answer.headers
    assert b"".join(replay.iter_bytes()) == data
    if answer.chunks is not None:
        assert replay.chunks == tuple(c.encode() for c in answer.chunks)


def test_an_unstorable_answer_makes_no_entry() -> None:
    answer = record("openai.chat", SSE, [OPENAI_STREAM[:50]])
    with pytest.raises(ValueError, match="cannot be stored"):
        answer_entry(answer, fingerprint="f")


def _entry(**meta: Any) -> CachedResponse:
    good = answer_entry(record("openai.chat", SSE, [OPENAI_STREAM]), fingerprint="f")
    good.metadata["http"].update(meta)
    return good


@pytest.mark.parametrize(
    "entry",
    [
        CachedResponse(content="an answer of another door"),
        CachedResponse(content="x", metadata={"http": "x"}),
        _entry(v=2),
        _entry(status=500),
        _entry(status="200"),
        _entry(status=True),
        _entry(format="xml"),
        _entry(headers={"content-type": "x"}),
        _entry(headers=[["content-type"]]),
        _entry(headers=[["content-type", 1]]),
        CachedResponse(content="", chunks=[1, 2], metadata=_entry().metadata),
        CachedResponse(content="", chunks=None, metadata=_entry().metadata),
        CachedResponse(content=["x"], metadata=_entry(format="json").metadata),
        CachedResponse(content="{}", chunks=["x"], metadata=_entry(format="json").metadata),
    ],
)
def test_foreign_or_damaged_entries_are_refused(entry: CachedResponse) -> None:
    with pytest.raises(CodecError):
        replay_entry(entry)


# -- the official SDKs read the replay as they read the original ----------------------------


def serve(package: Any, headers: dict[str, str], pieces: list[bytes]) -> Any:
    def handler(request: Any) -> Any:
        return package.Response(200, headers=headers, content=iter(pieces))

    return package.Client(transport=package.MockTransport(handler))


def _read_openai(client: Any) -> Any:
    openai = pytest.importorskip("openai")
    sdk = openai.OpenAI(
        api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0, http_client=client
    )
    return [
        c.model_dump()
        for c in sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    ]


def _read_responses(client: Any) -> Any:
    openai = pytest.importorskip("openai")
    sdk = openai.OpenAI(
        api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0, http_client=client
    )
    return [
        e.model_dump() for e in sdk.responses.create(model="gpt-4o-mini", input="hi", stream=True)
    ]


def _read_anthropic(client: Any) -> Any:
    anthropic = pytest.importorskip("anthropic")
    sdk = anthropic.Anthropic(
        api_key="k", base_url="http://127.0.0.1:9", max_retries=0, http_client=client
    )
    with sdk.messages.stream(
        model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        events = [e.model_dump() for e in stream]
        final = stream.get_final_message().model_dump()
    return events, final


def _read_ollama(client: Any) -> Any:
    ollama = pytest.importorskip("ollama")
    sdk = ollama.Client(host="http://127.0.0.1:9", transport=client._transport)
    return [
        c.model_dump()
        for c in sdk.chat(model="llama3", stream=True, messages=[{"role": "user", "content": "hi"}])
    ]


SDK_READS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "openai": ("httpx", _read_openai),
    "openai-tools": ("httpx2", _read_openai),
    "openai-crlf": ("httpx", _read_openai),
    "responses": ("httpx2", _read_responses),
    "anthropic": ("httpx2", _read_anthropic),
    "anthropic-crlf": ("httpx2", _read_anthropic),
    "ollama-chat": ("httpx", _read_ollama),
}


@pytest.mark.parametrize("name", sorted(SDK_READS))
def test_the_sdk_reads_the_replay_as_it_read_the_original(name: str) -> None:
    package_name, read = SDK_READS[name]
    package = pytest.importorskip(package_name)
    route, headers, data = STREAMS[name]
    answer = record(route, headers, split(data, [7, 100, 101, 333]))
    replay = replay_entry(
        JSONCodec().decode(JSONCodec().encode(answer_entry(answer, fingerprint="f")))
    )
    original = read(serve(package, headers, [data]))
    again = read(serve(package, dict(replay.headers), list(replay.iter_bytes())))
    assert again == original and original


def test_the_sdks_see_the_text_and_usage() -> None:
    pytest.importorskip("httpx2")
    import httpx
    import httpx2

    chunks = _read_openai(serve(httpx, SSE, [OPENAI_STREAM]))
    text = "".join(c["choices"][0]["delta"]["content"] or "" for c in chunks if c["choices"])
    assert text == "Hello ✓" and chunks[-1]["usage"]["total_tokens"] == 12
    _, final = _read_anthropic(serve(httpx2, SSE, [ANTHROPIC_STREAM]))
    assert final["content"][0]["text"] == "Hello there ✓"
    assert final["stop_reason"] == "end_turn" and final["usage"]["output_tokens"] == 5


def iter_pieces(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("size", [1, 3, 64, 10_000])
def test_the_replay_does_not_depend_on_how_the_upstream_cut_it(size: int) -> None:
    route, headers, data = STREAMS["anthropic"]
    a = record(route, headers, list(iter_pieces(data, size)))
    assert replay_entry(answer_entry(a, fingerprint="f")).chunks == tuple(
        c.encode() for c in record(route, headers, [data]).chunks or ()
    )
