"""The OpenAI chat-completions protocol, without I/O: request bodies in, llmcache types out.

Both clients build a `Call` here, send it with their own transport, and hand the reply back
to `to_response`, `StreamDecoder` or `to_embed`. `generate` is a chat completion with one
user message (after the system message, if any). llmcache's option names are translated:
``num_predict`` (what ``max_tokens=`` becomes in a cache key) is sent as ``max_tokens``;
every other option (``temperature``, ``top_p``, ``seed``, ``stop``, ``top_k`` for vLLM ...)
is sent as a top-level field of the same name. ``format="json"`` asks for
``{"type": "json_object"}``, a JSON schema for ``{"type": "json_schema", ...}``.

>>> call = generate_call({"prompt": "2+2?", "model": "m", "system": "terse", "format": "json",
...                       "options": {"temperature": 0, "num_predict": 5}}, stream=False)
>>> call.body["messages"][0], call.body["max_tokens"], call.body["response_format"]
({'role': 'system', 'content': 'terse'}, 5, {'type': 'json_object'})
>>> reply = {"model": "m", "choices": [{"message": {"content": "4"}, "finish_reason": "stop"}],
...          "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
>>> to_response(call, reply, 2.0).content, to_response(call, reply, 2.0).tokens_used
('4', 4)
"""

from __future__ import annotations

import array
import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from llmcache.backends.base import AIResponse, EmbedResponse, Format, Message, StreamChunk
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
]

# Keys the client sets itself, refused in **extra and in options.
_RESERVED = frozenset({"model", "messages", "stream", "input"})
_RENAMED = {"num_predict": "max_tokens"}
_RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
_NAME = re.compile(r"[^a-zA-Z0-9_-]")
_MAGIC = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))


@dataclass(frozen=True, slots=True)
class Call:
    """One API call: where it goes, what it sends, and which model it names."""

    path: str
    body: dict[str, Any]
    model: str


def _mime(head: bytes) -> str:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _MAGIC if head.startswith(magic)), "image/png")


def _image_url(image: str | bytes) -> str:
    """An ``image_url`` for raw bytes, base64 text, or a URL (kept as it is)."""
    if isinstance(image, bytes):
        return f"data:{_mime(image[:12])};base64,{base64.b64encode(image).decode('ascii')}"
    if image.startswith(("http://", "https://", "data:")):
        return image
    try:
        head = base64.b64decode(image[:16] + "=" * (-len(image[:16]) % 4))
    except ValueError:
        head = b""
    return f"data:{_mime(head)};base64,{image}"


def _with_images(text: Any, images: Sequence[str | bytes]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    return parts + [{"type": "image_url", "image_url": {"url": _image_url(i)}} for i in images]


def _tool_call_out(call: Mapping[str, Any], index: int) -> dict[str, Any]:
    # Histories from Ollama carry arguments as objects; OpenAI wants them as JSON text.
    function = dict(call.get("function") or {})
    if not isinstance(function.get("arguments", ""), str):
        function["arguments"] = orjson.dumps(function["arguments"]).decode()
    return {
        "id": call.get("id") or f"call_{index}",
        "type": call.get("type", "function"),
        "function": function,
    }


def _message(message: Message) -> dict[str, Any]:
    out = dict(message)
    images = out.pop("images", None)
    if images:
        out["content"] = _with_images(out.get("content"), images)
    if out.get("tool_calls"):
        out["tool_calls"] = [_tool_call_out(c, i) for i, c in enumerate(out["tool_calls"])]
    return out


def response_format(format: Format) -> dict[str, Any] | None:
    """OpenAI's ``response_format`` for llmcache's ``format``; a mapping that already is a
    ``response_format`` (its ``type`` is ``json_schema``, ``json_object`` or ``text``) is
    sent as it is.

    >>> response_format({"type": "object", "title": "Answer 1"})["json_schema"]["name"]
    'Answer_1'
    """
    if not format:
        return None
    if isinstance(format, str):
        if format != "json":
            raise ValueError(f"format: expected 'json' or a JSON schema, got {format!r}")
        return {"type": "json_object"}
    schema = dict(format)
    if schema.get("type") in _RESPONSE_FORMATS:
        return schema
    name = _NAME.sub("_", str(schema.get("title") or "response"))[:64]
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


def _options(fields: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key, value in (fields.get("options") or {}).items():
        name = _RENAMED.get(key, key)
        if name in merged and merged[name] != value:
            raise ValueError(
                f"options: {key}={value!r} and {name}={merged[name]!r} disagree; "
                "pass only one of them"
            )
        merged[name] = value
    if fields.get("temperature") is not None:
        merged["temperature"] = fields["temperature"]
    if fields.get("max_tokens") is not None:
        merged["max_tokens"] = fields["max_tokens"]
    return merged


def _finish(
    body: dict[str, Any], stream: bool, fields: Mapping[str, Any], extra: Mapping[str, Any]
) -> dict[str, Any]:
    options = _options(fields)
    refuse_reserved(_RESERVED, extra, options)
    body.update(options)
    fmt = response_format(fields.get("format"))
    if fmt is not None:
        body["response_format"] = fmt
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # token counts in the last event
    body.update(extra)
    return body


def generate_call(
    fields: Mapping[str, Any], *, stream: bool, extra: Mapping[str, Any] | None = None
) -> Call:
    """A ``POST /chat/completions`` asking to complete ``fields["prompt"]`` (one user
    message); `fields` are the arguments of `Backend.generate` by name (``prompt`` and
    ``model`` are required), `extra` the caller's other keywords, sent as they are."""
    system, prompt, images = fields.get("system"), fields["prompt"], fields.get("images")
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": _with_images(prompt, images) if images else prompt})
    model = fields["model"]
    body = {"model": model, "messages": messages}
    return Call("/chat/completions", _finish(body, stream, fields, extra or {}), model)


def chat_call(
    fields: Mapping[str, Any], *, stream: bool, extra: Mapping[str, Any] | None = None
) -> Call:
    """A ``POST /chat/completions`` for the next turn of ``fields["messages"]``, as
    `generate_call` does for `Backend.chat`'s arguments."""
    model = fields["model"]
    body: dict[str, Any] = {"model": model, "messages": [_message(m) for m in fields["messages"]]}
    if fields.get("tools"):
        body["tools"] = [dict(t) for t in fields["tools"]]
    return Call("/chat/completions", _finish(body, stream, fields, extra or {}), model)


def embed_call(texts: Sequence[str], *, model: str, **extra: Any) -> Call:
    """A ``POST /embeddings`` for the whole batch, asking for float vectors."""
    body = {"model": model, "input": input_texts(texts), "encoding_format": "float"}
    body = _finish(body, False, {}, extra)
    return Call("/embeddings", body, model)


# -- replies ----------------------------------------------------------------------------------


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadResponse(f"{what} should be an object, got {type(value).__name__}")
    return value


def _arguments(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return text  # a model's malformed arguments: hand them over as they came


def _tool_calls(calls: Any) -> list[dict[str, Any]] | None:
    """Tool calls with their arguments parsed, in the shape the Ollama plugin gives too."""
    if calls is None:
        return None
    if not isinstance(calls, list):
        raise BadResponse("field 'tool_calls' should be a list")
    out = []
    for call in calls:
        function = _dict(_dict(call, "a tool call").get("function"), "a tool call's function")
        out.append(
            {
                "id": call.get("id"),
                "type": call.get("type", "function"),
                "function": {
                    "name": function.get("name"),
                    "arguments": _arguments(function.get("arguments")),
                },
            }
        )
    return out or None


def _choice(obj: Mapping[str, Any]) -> dict[str, Any]:
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices:
        error = obj.get("error")
        raise BadResponse(f"reply has no choices{f' (error: {error})' if error else ''}")
    return _dict(choices[0], "choices[0]")


def _thinking(holder: Mapping[str, Any]) -> str | None:
    return str_field(holder, "reasoning_content") or str_field(holder, "reasoning")


def to_response(call: Call, obj: dict[str, Any], wall_ms: float) -> AIResponse:
    """The `AIResponse` for a ``chat.completion``."""
    choice = _choice(obj)
    message = _dict(choice.get("message"), "choices[0].message")
    usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else None
    prompt, completion = int_field(usage, "prompt_tokens"), int_field(usage, "completion_tokens")
    return AIResponse(
        content=str_field(message, "content") or "",
        model=str_field(obj, "model") or call.model,
        tokens_used=prompt + completion,
        duration_ms=wall_ms,
        prompt_tokens=prompt,
        completion_tokens=completion,
        done_reason=str_field(choice, "finish_reason"),
        tool_calls=_tool_calls(message.get("tool_calls")),
        thinking=_thinking(message),
        raw=obj,
    )


class StreamDecoder:
    """Server-sent events in, `StreamChunk` objects out.

    Text arrives through `feed` in pieces of any size; each ``data:`` event becomes at most
    one chunk (role-only and empty deltas yield nothing), and ``data: [DONE]`` the final
    chunk with the finish reason, the token counts (from ``stream_options.include_usage``)
    and the tool calls assembled from their fragments. An ``{"error": ...}`` event raises
    `StreamError`, and so does `finish` when the body ended before ``[DONE]``.

    >>> d = StreamDecoder(generate_call({"prompt": "x", "model": "m"}, stream=True))
    >>> [c.content for c in d.feed('data: {"choices": [{"delta": {"content": "hi"}}]}\\n\\n')]
    ['hi']
    >>> d.feed("data: [DONE]\\n\\n")[0].done
    True
    """

    def __init__(self, call: Call) -> None:
        self.call = call
        self.done = False
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._model = call.model
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._tools: dict[int, dict[str, Any]] = {}

    def feed(self, text: str) -> list[StreamChunk]:
        """The chunks completed by `text` (the next piece of the body)."""
        *lines, self._buffer = (self._buffer + text).split("\n")
        chunks: list[StreamChunk] = []
        for line in lines:
            chunk = self._line(line.removesuffix("\r"))
            if chunk is not None:
                chunks.append(chunk)
                if chunk.done:
                    break
        return chunks

    def finish(self) -> list[StreamChunk]:
        """Call when the body is exhausted: the last chunks, or `StreamError` if the stream
        ended before ``[DONE]``."""
        chunks = [] if self.done else self.feed("\n\n")
        if not self.done:
            raise StreamError("stream ended before its final 'data: [DONE]' event", status_code=-1)
        return chunks

    def _line(self, line: str) -> StreamChunk | None:
        if not line:  # a blank line ends an event
            data, event = "\n".join(self._data), self._event
            self._data, self._event = [], ""
            return self._dispatch(event, data) if data else None
        if line.startswith(":"):
            return None  # a comment: servers send these to keep the connection alive
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value.removeprefix(" "))
        elif name == "event":
            self._event = value.strip()
        return None

    def _dispatch(self, event: str, data: str) -> StreamChunk | None:
        if data.strip() == "[DONE]":
            self.done = True
            return self._final()
        obj = decode_object(data)
        error = obj.get("error")
        if error is not None or event == "error":
            message = error.get("message") if isinstance(error, dict) else error
            raise StreamError(str(message or data), status_code=-1)
        self._model = str_field(obj, "model") or self._model
        if isinstance(obj.get("usage"), dict):
            self._usage = obj["usage"]
        choices = obj.get("choices") or []
        if not isinstance(choices, list) or not choices:
            return None  # the usage event
        choice = _dict(choices[0], "choices[0]")
        self._finish = str_field(choice, "finish_reason") or self._finish
        delta = _dict(choice.get("delta") or {}, "choices[0].delta")
        self._add_tools(delta.get("tool_calls"))
        text, thinking = str_field(delta, "content") or "", _thinking(delta)
        if not text and not thinking:
            return None
        return StreamChunk(content=text, model=self._model, thinking=thinking, raw=obj)

    def _add_tools(self, fragments: Any) -> None:
        # Tool calls stream as fragments keyed by index: the id and name come first, the
        # arguments' JSON text in pieces after.
        for fragment in fragments or []:
            fragment = _dict(fragment, "a tool call fragment")
            slot = self._tools.setdefault(
                int(fragment.get("index", len(self._tools))),
                {"id": None, "type": "function", "function": {"name": None, "arguments": ""}},
            )
            slot["id"] = fragment.get("id") or slot["id"]
            function = _dict(fragment.get("function") or {}, "a tool call's function")
            slot["function"]["name"] = function.get("name") or slot["function"]["name"]
            slot["function"]["arguments"] += function.get("arguments") or ""

    def _final(self) -> StreamChunk:
        calls = [self._tools[i] for i in sorted(self._tools)]
        return StreamChunk(
            content="",
            model=self._model,
            done=True,
            done_reason=self._finish,
            prompt_tokens=int_field(self._usage, "prompt_tokens"),
            completion_tokens=int_field(self._usage, "completion_tokens"),
            tool_calls=_tool_calls(calls) if calls else None,
            raw={"finish_reason": self._finish, "usage": self._usage},
        )


def _vector(value: Any) -> list[float]:
    if isinstance(value, str):  # encoding_format="base64": little-endian float32
        return array.array("f", base64.b64decode(value)).tolist()
    return [float(x) for x in value]


def to_embed(call: Call, obj: dict[str, Any], wall_ms: float) -> EmbedResponse:
    """The `EmbedResponse` for an ``/embeddings`` reply, in input order."""
    data = obj.get("data")
    expected = len(call.body["input"])
    if not isinstance(data, list) or len(data) != expected:
        raise BadResponse(
            f"expected {expected} embeddings, got {len(data) if isinstance(data, list) else data!r}"
        )
    try:
        items = sorted(data, key=lambda item: int(item.get("index", 0)))
        embeddings = [_vector(item["embedding"]) for item in items]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise BadResponse(f"embeddings are not lists of numbers: {exc!r}") from exc
    usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else None
    return EmbedResponse(
        embeddings=embeddings,
        model=str_field(obj, "model") or call.model,
        prompt_tokens=int_field(usage, "prompt_tokens"),
        duration_ms=wall_ms,
    )


def models_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The model entries of a ``/models`` reply (each has an ``id``)."""
    models = obj.get("data")
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise BadResponse("/models reply has no 'data' list")
    return models
