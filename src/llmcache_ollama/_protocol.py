"""The Ollama wire protocol, without I/O: request bodies in, llmcache types out.

Both clients build a `Call` with the functions here, send it with their own transport, and
hand the decoded JSON back to `to_response`, `StreamDecoder` or `to_embed`, so the parsing
exists once. Anything that breaks the protocol raises `BadResponse`; an ``{"error": ...}``
line inside a 200 stream, or a stream that ends before its ``done`` line, raises
`StreamError` with ``status_code == -1`` as the official client does.

>>> call = generate_call({"prompt": "2+2?", "model": "m", "temperature": 0}, stream=False)
>>> call.path, call.body["options"], call.body["stream"]
('/api/generate', {'temperature': 0}, False)
>>> reply = to_response(call, {"model": "m", "response": "4", "done": True, "eval_count": 1}, 2.0)
>>> reply.content, reply.tokens_used, reply.duration_ms
('4', 1, 2.0)
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmcache.backends.base import (
    AIResponse,
    EmbedResponse,
    Message,
    StreamChunk,
    sampling_options,
)
from llmcache.backends.errors import BadResponse, StreamError
from llmcache_http import decode_object, input_texts, int_field, refuse_reserved, str_field

__all__ = [
    "Call",
    "StreamDecoder",
    "chat_call",
    "embed_call",
    "generate_call",
    "models_of",
    "to_embed",
    "to_response",
    "version_of",
]

# Keys the client sets itself, refused in **extra (e.g. ``stream=True`` on a non-streaming
# call would send a request whose shape the parser does not expect).
_RESERVED = frozenset({"model", "prompt", "messages", "stream", "input"})


@dataclass(frozen=True, slots=True)
class Call:
    """One API call: where it goes, what it sends, and which model it names."""

    path: str
    body: dict[str, Any]
    model: str
    chat: bool = False


def _image(image: str | bytes) -> str:
    # Ollama takes base64 text; bytes are raw image data, str is taken as already encoded.
    return base64.b64encode(image).decode("ascii") if isinstance(image, bytes) else image


def _message(message: Message) -> dict[str, Any]:
    out = dict(message)
    if out.get("images"):
        out["images"] = [_image(i) for i in out["images"]]
    return out


def _finish(
    body: dict[str, Any], fields: Mapping[str, Any], extra: Mapping[str, Any]
) -> dict[str, Any]:
    refuse_reserved(_RESERVED, extra)
    format = fields.get("format")
    if format:
        body["format"] = dict(format) if isinstance(format, Mapping) else format
    options = sampling_options(
        fields.get("options"), fields.get("temperature"), fields.get("max_tokens")
    )
    if options:
        body["options"] = options
    body.update(extra)
    return body


def generate_call(
    fields: Mapping[str, Any], *, stream: bool, extra: Mapping[str, Any] | None = None
) -> Call:
    """A ``POST /api/generate`` for `fields`, the arguments of `Backend.generate` by name
    (``prompt`` and ``model`` are required); ``temperature`` and ``max_tokens`` go into
    ``options``, `extra` (the caller's other keywords) into the body as it is."""
    model = fields["model"]
    body: dict[str, Any] = {"model": model, "prompt": fields["prompt"], "stream": stream}
    if fields.get("system") is not None:
        body["system"] = fields["system"]
    if fields.get("images"):
        body["images"] = [_image(i) for i in fields["images"]]
    return Call("/api/generate", _finish(body, fields, extra or {}), model)


def chat_call(
    fields: Mapping[str, Any], *, stream: bool, extra: Mapping[str, Any] | None = None
) -> Call:
    """A ``POST /api/chat`` for `fields`, the arguments of `Backend.chat` by name
    (``messages`` and ``model`` are required), as `generate_call` does."""
    model = fields["model"]
    body: dict[str, Any] = {
        "model": model,
        "messages": [_message(m) for m in fields["messages"]],
        "stream": stream,
    }
    if fields.get("tools"):
        body["tools"] = [dict(t) for t in fields["tools"]]
    return Call("/api/chat", _finish(body, fields, extra or {}), model, chat=True)


def embed_call(texts: Sequence[str], *, model: str, **extra: Any) -> Call:
    """A ``POST /api/embed`` with list input (one request for the whole batch)."""
    body = _finish({"model": model, "input": input_texts(texts)}, {}, extra)
    return Call("/api/embed", body, model)


def _tool_calls(obj: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    calls = obj.get("tool_calls")
    if calls is None:
        return None
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        raise BadResponse("field 'tool_calls' should be a list of objects")
    return calls


def _payload(call: Call, obj: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """The text field of a reply line, and the object holding thinking/tool_calls."""
    if not call.chat:
        return str_field(obj, "response"), obj
    message = obj.get("message")
    if not isinstance(message, dict):
        raise BadResponse("chat reply has no 'message' object")
    return str_field(message, "content", ""), message


def to_response(call: Call, obj: dict[str, Any], wall_ms: float) -> AIResponse:
    """The `AIResponse` for a non-streamed reply; ``wall_ms`` is used when the server sent
    no ``total_duration``."""
    text, holder = _payload(call, obj)
    if text is None:
        raise BadResponse("generate reply has no 'response' text")
    if obj.get("done") is not True:
        raise BadResponse("non-streamed reply is not final ('done' is not true)")
    prompt, completion = int_field(obj, "prompt_eval_count"), int_field(obj, "eval_count")
    total = int_field(obj, "total_duration")
    return AIResponse(
        content=text,
        model=str_field(obj, "model") or call.model,
        tokens_used=prompt + completion,
        duration_ms=total / 1e6 if total else wall_ms,
        prompt_tokens=prompt,
        completion_tokens=completion,
        done_reason=str_field(obj, "done_reason"),
        tool_calls=_tool_calls(holder),
        thinking=str_field(holder, "thinking"),
        raw=obj,
    )


class StreamDecoder:
    """Turns NDJSON lines into `StreamChunk` objects and notices how the stream ends.

    >>> d = StreamDecoder(generate_call({"prompt": "x", "model": "m"}, stream=True))
    >>> d.feed('{"response": "hi", "done": false}').content
    'hi'
    >>> d.finish()
    Traceback (most recent call last):
    ...
    llmcache.backends.errors.StreamError: stream ended before its final ('done') line
    """

    __slots__ = ("call", "done")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.done = False

    def feed(self, line: str) -> StreamChunk | None:
        """The chunk for one line (None for a blank line)."""
        if not line.strip():
            return None
        obj = decode_object(line)
        error = obj.get("error")
        if error is not None:
            raise StreamError(str(error), status_code=-1)
        text, holder = _payload(self.call, obj)
        self.done = obj.get("done") is True
        return StreamChunk(
            content=text or "",
            model=str_field(obj, "model") or self.call.model,
            done=self.done,
            done_reason=str_field(obj, "done_reason"),
            prompt_tokens=int_field(obj, "prompt_eval_count"),
            completion_tokens=int_field(obj, "eval_count"),
            tool_calls=_tool_calls(holder),
            thinking=str_field(holder, "thinking"),
            raw=obj,
        )

    def finish(self) -> None:
        """Call when the body is exhausted: a stream without its final line is incomplete."""
        if not self.done:
            raise StreamError("stream ended before its final ('done') line", status_code=-1)


def to_embed(call: Call, obj: dict[str, Any], wall_ms: float) -> EmbedResponse:
    """The `EmbedResponse` for an ``/api/embed`` reply, checked against the input count."""
    vectors = obj.get("embeddings")
    expected = len(call.body["input"])
    if not isinstance(vectors, list) or len(vectors) != expected:
        raise BadResponse(
            f"expected {expected} embeddings, got "
            f"{len(vectors) if isinstance(vectors, list) else vectors!r}"
        )
    try:
        embeddings = [[float(x) for x in v] for v in vectors]
    except (TypeError, ValueError) as exc:
        raise BadResponse(f"embeddings are not lists of numbers: {exc}") from exc
    total = int_field(obj, "total_duration")
    return EmbedResponse(
        embeddings=embeddings,
        model=str_field(obj, "model") or call.model,
        prompt_tokens=int_field(obj, "prompt_eval_count"),
        duration_ms=total / 1e6 if total else wall_ms,
    )


def models_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The model entries of an ``/api/tags`` reply."""
    models = obj.get("models")
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise BadResponse("/api/tags reply has no 'models' list")
    return models


def version_of(obj: dict[str, Any]) -> str:
    """The server version of an ``/api/version`` reply."""
    version = obj.get("version")
    if not isinstance(version, str):
        raise BadResponse("/api/version reply has no 'version' string")
    return version
