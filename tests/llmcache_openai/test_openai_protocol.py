"""The OpenAI protocol without I/O: request bodies, reply parsing, the SSE decoder, and the
mapping of HTTP statuses into llmcache's error tree."""

from __future__ import annotations

import base64
import doctest
import inspect
import json
from array import array
from typing import Any

import pytest

from llmcache.backends import (
    AuthenticationError,
    Backend,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BadRequest,
    BadResponse,
    ModelNotFound,
    StreamChunk,
    StreamError,
)
from llmcache_openai import _protocol
from llmcache_openai._boundary import is_retryable, resolve_base_url, status_error
from llmcache_openai._protocol import (
    Call,
    StreamDecoder,
    chat_call,
    embed_call,
    generate_call,
    response_format,
    to_embed,
    to_response,
)

SCHEMA = {
    "type": "object",
    "title": "My answer!",
    "required": ["n"],
    "properties": {"n": {"type": "integer"}},
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 8


def _split(method: str, given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What `Backend`'s calls hand the builders: every argument `method` names (None when not
    given), and the other keywords apart."""
    params = inspect.signature(getattr(Backend, method)).parameters.values()
    named = [p.name for p in params if p.name != "self" and p.kind != p.VAR_KEYWORD]
    return {name: given.pop(name, None) for name in named}, given


def _generate(prompt: str, *, stream: bool, **kwargs: Any) -> Call:
    """`generate_call` as the client's ``generate`` calls it."""
    fields, extra = _split("generate", {"prompt": prompt, **kwargs})
    return generate_call(fields, stream=stream, extra=extra)


def _chat(messages: list[dict[str, Any]], *, stream: bool, **kwargs: Any) -> Call:
    """`chat_call` as the client's ``chat`` calls it."""
    fields, extra = _split("chat", {"messages": messages, **kwargs})
    return chat_call(fields, stream=stream, extra=extra)


def test_the_module_examples_run() -> None:
    failures, tried = doctest.testmod(_protocol)
    assert failures == 0 and tried >= 4


# -- requests -----------------------------------------------------------------------------------


def test_generate_is_a_chat_completion_with_system_and_user_messages() -> None:
    call = _generate("hi", model="m", stream=False, system="be brief")
    assert call.path == "/chat/completions"
    assert call.body == {
        "model": "m",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
    }


def test_options_use_openai_names() -> None:
    call = _generate(
        "hi",
        model="m",
        stream=False,
        options={
            "temperature": 0,
            "top_p": 0.5,
            "seed": 7,
            "stop": ["\n"],
            "num_predict": 9,
            "top_k": 3,
        },
    )
    body = call.body
    assert (body["temperature"], body["top_p"], body["seed"], body["stop"]) == (0, 0.5, 7, ["\n"])
    assert body["max_tokens"] == 9 and "num_predict" not in body
    assert body["top_k"] == 3  # unknown to OpenAI, known to vLLM: sent as it is
    short = _generate("hi", model="m", stream=False, temperature=0.2, max_tokens=4).body
    assert (short["temperature"], short["max_tokens"]) == (0.2, 4)


def test_disagreeing_token_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="disagree"):
        _generate("hi", model="m", stream=False, options={"num_predict": 1, "max_tokens": 2})


def test_response_formats() -> None:
    assert response_format(None) is None
    assert response_format("json") == {"type": "json_object"}
    as_schema = response_format(SCHEMA)
    assert as_schema == {
        "type": "json_schema",
        "json_schema": {"name": "My_answer_", "schema": SCHEMA},
    }
    ready = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}, "strict": True}}
    assert response_format(ready) == ready  # already OpenAI's shape: sent as it is
    with pytest.raises(ValueError, match="expected 'json'"):
        response_format("yaml")


def test_streams_ask_for_usage_and_reserved_keys_are_refused() -> None:
    body = _chat([{"role": "user", "content": "x"}], model="m", stream=True).body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "stream" not in _chat([], model="m", stream=False).body
    with pytest.raises(TypeError, match="messages"):
        _generate("x", model="m", stream=False, messages=[])


def test_images_become_image_url_parts() -> None:
    b64 = base64.b64encode(PNG).decode()
    call = _generate(
        "what is this?", model="m", stream=False, images=[PNG, b64, "https://example.com/cat.jpg"]
    )
    parts = call.body["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "what is this?"}
    urls = [p["image_url"]["url"] for p in parts[1:]]
    assert urls == [f"data:image/png;base64,{b64}"] * 2 + ["https://example.com/cat.jpg"]
    chat = _chat(
        [{"role": "user", "content": "and this?", "images": [PNG]}], model="m", stream=False
    )
    assert chat.body["messages"][0]["content"][1]["type"] == "image_url"


def test_tool_call_histories_get_json_text_arguments() -> None:
    history = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "f", "arguments": {"q": 1}}}],
        },
        {"role": "tool", "content": "42", "tool_call_id": "call_0"},
    ]
    sent = _chat(history, model="m", stream=False).body["messages"][0]["tool_calls"][0]
    assert sent == {
        "id": "call_0",
        "type": "function",
        "function": {"name": "f", "arguments": '{"q":1}'},
    }


def test_embed_call() -> None:
    call = embed_call(["a", "b"], model="e", dimensions=8)
    assert call.body == {
        "model": "e",
        "input": ["a", "b"],
        "encoding_format": "float",
        "dimensions": 8,
    }
    with pytest.raises(TypeError, match="wrap a single string"):
        embed_call("a", model="e")


# -- replies ------------------------------------------------------------------------------------


def _completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "model": "m-2024",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def test_to_response() -> None:
    call = _generate("x", model="m", stream=False)
    reply = to_response(
        call, _completion({"role": "assistant", "content": "hi", "reasoning_content": "hmm"}), 3.0
    )
    assert (reply.content, reply.model, reply.tokens_used, reply.done_reason) == (
        "hi",
        "m-2024",
        7,
        "stop",
    )
    assert (reply.thinking, reply.duration_ms, reply.raw["usage"]["total_tokens"]) == (
        "hmm",
        3.0,
        7,
    )
    tools = to_response(
        call,
        _completion(
            {
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a": 1}'},
                    },
                    {
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "g", "arguments": "{oops"},
                    },
                ],
            },
            "tool_calls",
        ),
        1.0,
    )
    assert tools.content == "" and tools.done_reason == "tool_calls"
    assert tools.tool_calls == [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}},
        {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{oops"}},
    ]


@pytest.mark.parametrize(
    "reply",
    [
        {},
        {"choices": []},
        {"choices": [{"message": "x"}]},
        {"error": {"message": "boom"}},
        _completion({"content": 5}),
        {**_completion({"content": "x"}), "usage": {"prompt_tokens": "many"}},
    ],
)
def test_malformed_replies_are_bad_responses(reply: dict[str, Any]) -> None:
    with pytest.raises(BadResponse):
        to_response(_generate("x", model="m", stream=False), reply, 1.0)


def test_to_embed_orders_by_index_and_reads_base64() -> None:
    call = embed_call(["a", "b"], model="e")
    packed = base64.b64encode(array("f", [0.5, -1.0]).tobytes()).decode()
    reply = {
        "model": "e",
        "usage": {"prompt_tokens": 2},
        "data": [{"index": 1, "embedding": packed}, {"index": 0, "embedding": [1, 0]}],
    }
    result = to_embed(call, reply, 1.0)
    assert result.embeddings == [[1.0, 0.0], [0.5, -1.0]] and result.prompt_tokens == 2
    with pytest.raises(BadResponse, match="expected 2 embeddings"):
        to_embed(call, {"data": [{"index": 0, "embedding": [1.0]}]}, 1.0)
    with pytest.raises(BadResponse, match="lists of numbers"):
        to_embed(call, {"data": [{"embedding": ["x"]}, {"embedding": None}]}, 1.0)


# -- server-sent events -------------------------------------------------------------------------


def _event(delta: dict[str, Any] | None = None, finish: str | None = None, **top: Any) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return "data: " + json.dumps({"model": "m-2024", "choices": choices, **top}) + "\n\n"


STREAM = (
    ": keep-alive comment\n\n"
    + _event({"role": "assistant", "content": ""})
    + _event({"content": "Hel"})
    + _event({"content": "lo"})
    + _event({}, "stop")
    + _event(None, usage={"prompt_tokens": 4, "completion_tokens": 2})
    + "data: [DONE]\n\n"
)


def _decode(pieces: list[str]) -> list[StreamChunk]:
    decoder = StreamDecoder(_generate("x", model="m", stream=True))
    chunks = [c for piece in pieces for c in decoder.feed(piece)]
    return chunks + decoder.finish()


def test_a_stream_decodes_to_text_chunks_and_a_final_chunk() -> None:
    chunks = _decode([STREAM])
    assert [c.content for c in chunks] == ["Hel", "lo", ""]
    final = chunks[-1]
    assert (
        final.done,
        final.done_reason,
        final.prompt_tokens,
        final.completion_tokens,
        final.model,
    ) == (True, "stop", 4, 2, "m-2024")


@pytest.mark.parametrize("size", [1, 2, 7, 64])
def test_events_split_anywhere_decode_the_same(size: int) -> None:
    crlf = STREAM.replace("\n", "\r\n")
    for text in (STREAM, crlf):
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        assert [c.to_dict() for c in _decode(pieces)] == [c.to_dict() for c in _decode([STREAM])]


def test_multi_line_data_and_done_without_a_final_blank_line() -> None:
    event = 'data: {"choices": [{"delta":\ndata: {"content": "x"}}]}\n\n'
    chunks = _decode([event + "data: [DONE]"])
    assert [c.content for c in chunks] == ["x", ""] and chunks[-1].done


def test_tool_call_fragments_are_assembled() -> None:
    stream = (
        _event(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            }
        )
        + _event({"tool_calls": [{"index": 0, "function": {"arguments": '{"q": '}}]})
        + _event({"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]})
        + _event({}, "tool_calls")
        + "data: [DONE]\n\n"
    )
    chunks = _decode([stream])
    assert len(chunks) == 1 and chunks[0].done_reason == "tool_calls"
    assert chunks[0].tool_calls == [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"q": "x"}}}
    ]


@pytest.mark.parametrize(
    "stream",
    [
        _event({"content": "a"}) + 'data: {"error": {"message": "overloaded"}}\n\n',
        _event({"content": "a"}) + 'event: error\ndata: {"detail": "boom"}\n\n',
    ],
)
def test_error_events_are_stream_errors(stream: str) -> None:
    with pytest.raises(StreamError) as caught:
        _decode([stream])
    assert caught.value.status_code == -1


def test_a_stream_without_done_is_incomplete() -> None:
    with pytest.raises(StreamError, match=r"\[DONE\]"):
        _decode([_event({"content": "a"}) + _event({}, "stop")])


def test_garbage_events_are_bad_responses() -> None:
    with pytest.raises(BadResponse):
        _decode(['data: {"choices": [\n\n'])


# -- statuses -----------------------------------------------------------------------------------


def _error(message: str, code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": "x", "code": code}}).encode()


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, _error("Incorrect API key provided"), AuthenticationError),
        (403, b"forbidden", AuthenticationError),
        (404, _error("The model `gpt-9` does not exist", "model_not_found"), ModelNotFound),
        (
            404,
            b'{"object": "error", "message": "The model `gpt-9` does not exist.", "code": 404}',
            ModelNotFound,
        ),  # vLLM's flat shape
        (400, _error("model 'gpt-9' is not here", "model_not_found"), ModelNotFound),
        (404, b"404 page not found", BackendError),
        (408, b"", BackendTimeout),
        (429, _error("Rate limit reached", "rate_limit_exceeded"), BackendUnavailable),
        (429, _error("You exceeded your current quota", "insufficient_quota"), BadRequest),
        (400, _error("Invalid 'messages'"), BadRequest),
        (422, b'{"detail": "bad field"}', BadRequest),
        (500, _error("oops"), BackendUnavailable),
        (502, b"<html>bad gateway</html>", BackendUnavailable),
        (302, b"", BadResponse),
    ],
)
def test_status_errors(status: int, body: bytes, kind: type[BackendError]) -> None:
    error = status_error(status, body, "gpt-9", secret=None)
    assert type(error) is kind and error.status_code == status
    if kind is ModelNotFound:
        assert isinstance(error, ModelNotFound) and error.model == "gpt-9"
    assert is_retryable(error) == (status in (429, 500, 502) and kind is BackendUnavailable)


def test_auth_errors_are_bad_requests_and_echoed_keys_are_scrubbed() -> None:
    error = status_error(401, _error("key sk-live-123456 is revoked"), "m", secret="sk-live-123456")
    assert isinstance(error, BadRequest) and "sk-live-123456" not in str(error)
    assert "[redacted]" in str(error)


def test_base_urls() -> None:
    assert resolve_base_url(" http://127.0.0.1:8000/v1/ ") == "http://127.0.0.1:8000/v1"
    assert resolve_base_url("") == "https://api.openai.com/v1"
    with pytest.raises(ValueError, match="http"):
        resolve_base_url("localhost:8000")
    with pytest.raises(ValueError) as caught:
        resolve_base_url("ftp://user:pw@host/v1")
    assert "pw" not in str(caught.value)
