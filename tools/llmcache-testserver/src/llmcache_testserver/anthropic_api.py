"""Anthropic's Messages API (``POST /v1/messages``) over the same engines as the Ollama and
OpenAI routes, so one `EchoEngine` answers all three. The handler sends that path here.

- A plain answer is a ``message`` (text blocks, or a ``tool_use`` block when the engine
  calls a tool) with ``stop_reason`` (``end_turn``, ``max_tokens``, ``tool_use``) and
  ``usage``.
- With ``"stream": true``, server-sent events in the real sequence: ``message_start``,
  ``ping``, per block ``content_block_start`` / ``content_block_delta`` (``text_delta``,
  ``input_json_delta``) / ``content_block_stop``, then ``message_delta`` (stop reason and
  output usage) and ``message_stop``.
- Errors are ``{"type": "error", "error": {"type", "message"}}`` with Anthropic's statuses
  (400 ``invalid_request_error``, 401 ``authentication_error`` when `api_key` is set, 404
  ``not_found_error``, 429 ``rate_limit_error`` while `rate_limited` lasts, 500
  ``api_error``, 529 ``overloaded_error`` for the ``unavailable`` fault). The server's
  `Faults` apply as on the other routes: after the 200 a stream fault sends ``event:
  error`` (``fail_after``) or ends without ``message_stop`` (``truncate_after``).

>>> from llmcache_testserver.engines import EchoEngine
>>> api = AnthropicAPI(EchoEngine())
>>> reply = api.handle(b'{"model": "llama3.2", "max_tokens": 16, '
...                    b'"messages": [{"role": "user", "content": "hi"}]}')
>>> reply.status, reply.body["content"][0]["text"], reply.body["stop_reason"]
(200, 'echo: hi', 'end_turn')
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from llmcache_testserver.api import Reply, Streamed
from llmcache_testserver.engines import Completion, Engine, ModelSpec, Prompt
from llmcache_testserver.openai_api import EventStream
from llmcache_testserver.state import CallCounter, Faults, canonical_model

__all__ = ["AnthropicAPI", "AnthropicError"]

_ARGUMENT_PIECE = 8  # characters of a tool call's input JSON per streamed fragment
_STOP = {"stop": "end_turn", "length": "max_tokens"}


class AnthropicError(Exception):
    """An answer ``{"type": "error", "error": {...}}`` with an HTTP status."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"type": "error", "error": {"type": kind, "message": message}}


def _event(name: str, data: Mapping[str, Any]) -> bytes:
    # The handler ends every item with a newline: the blank line that closes the event.
    return f"event: {name}\ndata: {json.dumps(data)}\n".encode()


def _decode(body: bytes | None) -> dict[str, Any]:
    try:
        value = json.loads(body or b"")
    except ValueError as exc:
        raise AnthropicError(
            400, "invalid_request_error", f"There was an issue with your request body: {exc}"
        ) from None
    if not isinstance(value, dict):
        raise AnthropicError(400, "invalid_request_error", "The body must be a JSON object.")
    return value


def _text(content: Any) -> str:
    """A message's or a system prompt's text: a string, or the text of its blocks."""
    if isinstance(content, list):
        return "".join(
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
    return "" if content is None else str(content)


def _message(message: Mapping[str, Any]) -> dict[str, Any]:
    """An Anthropic message as the engine reads one (a tool result is a ``tool`` turn)."""
    content = message.get("content")
    if isinstance(content, list):
        results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:
            return {"role": "tool", "content": "".join(_text(r.get("content")) for r in results)}
    return {"role": message.get("role"), "content": _text(content)}


class AnthropicAPI:
    """``POST /v1/messages`` over `engine`. Set `api_key` to require ``x-api-key``; set
    `rate_limited` to answer that many requests with 429."""

    def __init__(
        self, engine: Engine, *, faults: Faults | None = None, calls: CallCounter | None = None
    ) -> None:
        self.engine = engine
        self.faults = faults if faults is not None else Faults()
        self.calls = calls if calls is not None else CallCounter()
        self.api_key: str | None = None
        self.rate_limited = 0
        self._lock = threading.Lock()

    def handle(self, body: bytes | None, api_key: str | None = None) -> Reply | Streamed:
        """Answer one request; errors become Anthropic error replies."""
        self.calls.add("anthropic.messages")
        try:
            self._authorize(api_key)
            return self._messages(body)
        except AnthropicError as exc:
            return Reply(exc.status, exc.body)

    def _authorize(self, given: str | None) -> None:
        if self.api_key is not None and given != self.api_key:
            raise AnthropicError(401, "authentication_error", "invalid x-api-key")

    def _spec(self, name: Any) -> ModelSpec:
        if not isinstance(name, str) or not name:
            raise AnthropicError(400, "invalid_request_error", "model: Field required")
        for spec in self.engine.models():
            if canonical_model(spec.name) == canonical_model(name):
                return spec
        raise AnthropicError(404, "not_found_error", f"model: {name}")

    def _fault(self, name: str, stream: bool) -> Reply | None:
        with self._lock:
            limited = self.rate_limited > 0
            if limited:
                self.rate_limited -= 1
        if limited:
            return Reply(
                429,
                AnthropicError(
                    429, "rate_limit_error", "Number of requests has exceeded your rate limit"
                ).body,
            )
        faults = self.faults
        if not faults.applies(name):
            return None
        if faults.take_unavailable():
            return Reply(529, AnthropicError(529, "overloaded_error", "Overloaded").body)
        if faults.server_error or (faults.fail_after is not None and not stream):
            return Reply(
                500, AnthropicError(500, "api_error", "Internal server error: injected fault").body
            )
        if faults.bad_json:
            return Reply(200, b'{"id": "msg_x", "type": "mess')
        return None

    def _messages(self, body: bytes | None) -> Reply | Streamed:
        req = _decode(body)
        spec = self._spec(req.get("model"))
        name = req["model"]
        messages, max_tokens = req.get("messages"), req.get("max_tokens")
        if (
            not isinstance(messages, list)
            or not messages
            or not all(
                isinstance(m, dict) and m.get("role") in ("user", "assistant") for m in messages
            )
        ):
            raise AnthropicError(
                400,
                "invalid_request_error",
                "messages: a non-empty list of user and assistant turns",
            )
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise AnthropicError(400, "invalid_request_error", "max_tokens: Field required")
        tools = req.get("tools") or []
        if tools and "tools" not in spec.capabilities:
            raise AnthropicError(400, "invalid_request_error", f"{name} does not support tools")
        turns = [_message(m) for m in messages]
        system = _text(req.get("system")) or None
        if system:
            turns.insert(0, {"role": "system", "content": system})
        options: dict[str, Any] = {"num_predict": max_tokens}
        for key in ("temperature", "top_p", "top_k"):
            if isinstance(req.get(key), (int, float)):
                options[key] = req[key]
        if req.get("stop_sequences"):
            options["stop"] = req["stop_sequences"]
        prompt = Prompt(
            model=spec.name,
            messages=turns,
            options=options,
            tools=[
                {
                    "type": "function",
                    "function": {
                        "name": t.get("name", ""),
                        "parameters": t.get("input_schema") or {},
                    },
                }
                for t in tools
                if isinstance(t, dict)
            ],
        )
        stream = req.get("stream") is True
        fault = self._fault(name, stream)
        if fault is not None:
            return fault
        reply = _Message(name, self.engine.generate(prompt))
        if stream:
            return EventStream(self._events(reply))
        return Reply(200, reply.whole())

    def _events(self, reply: _Message) -> Iterator[bytes]:
        faults = self.faults
        applies = faults.applies(reply.name)
        cut = (faults.fail_after, faults.truncate_after) if applies else (None, None)
        try:
            yield from reply.events(*cut)
        except _Failed:
            yield _event(
                "error",
                AnthropicError(500, "api_error", "Internal server error: injected fault").body,
            )
        except _Truncated:
            return


class _Failed(Exception):
    """The ``fail_after`` fault: an error event ends the stream."""


class _Truncated(Exception):
    """The ``truncate_after`` fault: the stream ends without its last events."""


class _Message:
    """One engine answer, rendered as a ``message`` or as its events."""

    def __init__(self, name: str, completion: Completion) -> None:
        self.name = name
        self.completion = completion
        self.id = f"msg_{uuid.uuid4().hex[:24]}"
        self.count = 0

    def _tool_uses(self) -> list[dict[str, Any]]:
        return [
            {
                "type": "tool_use",
                "id": f"toolu_{i:02d}",
                "name": c["function"]["name"],
                "input": c["function"]["arguments"],
            }
            for i, c in enumerate(self.completion.tool_calls or [])
        ]

    def _stop_reason(self) -> str:
        if self.completion.tool_calls:
            return "tool_use"
        return _STOP.get(self.completion.done_reason, self.completion.done_reason)

    def _envelope(
        self, content: list[dict[str, Any]], stop: str | None, output: int
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.name,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": self.completion.prompt_tokens, "output_tokens": output},
        }

    def whole(self) -> dict[str, Any]:
        pieces = list(self.completion.pieces())
        content = [{"type": "text", "text": "".join(pieces)}] if pieces else []
        return self._envelope(content + self._tool_uses(), self._stop_reason(), len(pieces))

    def events(self, fail_after: int | None, truncate_after: int | None) -> Iterator[bytes]:
        yield _event(
            "message_start", {"type": "message_start", "message": self._envelope([], None, 1)}
        )
        yield _event("ping", {"type": "ping"})
        index = 0
        pieces = iter(self.completion.pieces())
        first = next(pieces, None)
        if first is not None:
            yield _event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            for piece in (first, *pieces):
                if self.count == fail_after:
                    raise _Failed
                if self.count == truncate_after:
                    raise _Truncated
                yield _event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
                self.count += 1
            yield _event("content_block_stop", {"type": "content_block_stop", "index": 0})
            index = 1
        if fail_after is not None:
            raise _Failed
        if truncate_after is not None:
            raise _Truncated
        for offset, use in enumerate(self._tool_uses()):
            yield from self._tool_events(index + offset, use)
        yield _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": self._stop_reason(), "stop_sequence": None},
                "usage": {"output_tokens": self.count},
            },
        )
        yield _event("message_stop", {"type": "message_stop"})

    @staticmethod
    def _tool_events(index: int, use: dict[str, Any]) -> Iterator[bytes]:
        # As Anthropic streams a tool call: the block with empty input, then its JSON text
        # in pieces (input_json_delta), then the block's stop.
        yield _event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": dict(use, input={})},
        )
        text = json.dumps(use["input"])
        for start in range(0, len(text), _ARGUMENT_PIECE):
            yield _event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {
                        "type": "input_json_delta",
                        "partial_json": text[start : start + _ARGUMENT_PIECE],
                    },
                },
            )
        yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
