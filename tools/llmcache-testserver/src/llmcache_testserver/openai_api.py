"""OpenAI's HTTP API (the subset OpenAI-compatible servers share) over the same engines as
the Ollama routes, so one `EchoEngine` answers both. The handler sends every path under
``/v1/`` here.

==========================  ===================================================================
``GET /v1/models``          the engine's models (``/v1/models/{id}`` for one)
``POST /v1/chat/completions``  one ``chat.completion``, or with ``"stream": true`` server-sent
                            events ``data: {chat.completion.chunk}`` ending ``data: [DONE]``
``POST /v1/embeddings``     ``input`` a string or a list of strings; float or base64 vectors
==========================  ===================================================================

Errors are ``{"error": {"message", "type", "param", "code"}}`` with OpenAI's statuses (404
``model_not_found``, 401 ``invalid_api_key`` when `api_key` is set, 429 while `rate_limited`
lasts). The server's `Faults` apply as on the Ollama routes; a stream fault sends an
``{"error": ...}`` event and ends without ``[DONE]``.

>>> from llmcache_testserver.engines import EchoEngine
>>> api = OpenAIAPI(EchoEngine())
>>> reply = api.handle("POST", "/v1/chat/completions",
...     b'{"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}')
>>> reply.status, reply.body["choices"][0]["message"]["content"]
(200, 'echo: hi')
"""

from __future__ import annotations

import array
import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from llmcache_testserver.api import Reply, Streamed, _normalised
from llmcache_testserver.engines import Completion, Engine, ModelSpec, Prompt, count_words
from llmcache_testserver.state import CallCounter, Faults, canonical_model

__all__ = ["EventStream", "OpenAIAPI", "OpenAIError"]

_CREATED = 1735689600  # 2025-01-01, for model listings
_FINGERPRINT = "fp_llmcache"
_FORMATS = {"text", "json_object", "json_schema"}
_ARGUMENT_PIECE = 8  # characters of a tool call's arguments per streamed fragment


class OpenAIError(Exception):
    """An answer ``{"error": {...}}`` with an HTTP status, in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}


@dataclass
class EventStream(Streamed):
    """Server-sent events: each item is one ``data: ...`` line (the handler adds the blank
    line that ends an event)."""

    content_type: str = "text/event-stream"


def _event(data: Any) -> bytes:
    # The handler ends every item with a newline; this one makes the blank line that closes
    # the event.
    return b"data: " + (data if isinstance(data, bytes) else json.dumps(data).encode()) + b"\n"


def _decode(body: bytes | None) -> dict[str, Any]:
    try:
        value = json.loads(body or b"")
    except ValueError as exc:
        raise OpenAIError(
            400, f"We could not parse the JSON body of your request. ({exc})"
        ) from None
    if not isinstance(value, dict):
        raise OpenAIError(400, "The request body must be a JSON object.")
    return value


def _field(req: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = req.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
        raise OpenAIError(400, f"Invalid type for '{key}'.", param=key, code="invalid_type")
    return value


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a content list."""
    if isinstance(content, list):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return "" if content is None else str(content)


class OpenAIAPI:
    """The ``/v1`` routes over `engine`. Set `api_key` to require ``Authorization: Bearer``;
    set `rate_limited` to answer that many model requests with 429."""

    def __init__(
        self, engine: Engine, *, faults: Faults | None = None, calls: CallCounter | None = None
    ) -> None:
        self.engine = engine
        self.faults = faults if faults is not None else Faults()
        self.calls = calls if calls is not None else CallCounter()
        self.api_key: str | None = None
        self.rate_limited = 0
        self._lock = threading.Lock()

    def handle(
        self, method: str, path: str, body: bytes | None, authorization: str | None = None
    ) -> Reply | Streamed:
        """Answer one request under ``/v1``; errors become OpenAI error replies."""
        try:
            return self._route(method, path.rstrip("/"), body, authorization)
        except OpenAIError as exc:
            return Reply(exc.status, exc.body)

    def _route(
        self, method: str, path: str, body: bytes | None, authorization: str | None
    ) -> Reply | Streamed:
        routes = {
            "/v1/chat/completions": ("POST", "chat", self._chat),
            "/v1/embeddings": ("POST", "embeddings", self._embeddings),
            "/v1/models": ("GET", "models", self._models),
        }
        if path.startswith("/v1/models/"):
            routes[path] = ("GET", "models", self._model_info)
        if path not in routes:
            raise OpenAIError(404, f"Invalid URL ({method} {path})")
        verb, name, answer = routes[path]
        if method != verb:
            raise OpenAIError(405, f"Method {method} not allowed for {path}")
        self.calls.add(f"openai.{name}")
        self._authorize(authorization)
        return answer(path, body)

    def _authorize(self, authorization: str | None) -> None:
        if self.api_key is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise OpenAIError(401, "You didn't provide an API key.")
        if given != self.api_key:
            masked = f"{given[:3]}{'*' * 8}{given[-4:]}" if len(given) > 8 else "****"
            raise OpenAIError(401, f"Incorrect API key provided: {masked}.", code="invalid_api_key")

    # -- models ---------------------------------------------------------------------------

    def _spec(self, req: Mapping[str, Any]) -> tuple[str, ModelSpec]:
        name = _field(req, "model", str, "")
        if not name:
            raise OpenAIError(400, "you must provide a model parameter", param="model")
        wanted = canonical_model(name)
        for spec in self.engine.models():
            if canonical_model(spec.name) == wanted:
                return name, spec
        raise OpenAIError(
            404,
            f"The model `{name}` does not exist or you do not have access to it.",
            code="model_not_found",
            param="model",
        )

    @staticmethod
    def _require(spec: ModelSpec, name: str, capability: str, what: str) -> None:
        if capability not in spec.capabilities:
            raise OpenAIError(400, f"model `{name}` does not support {what}", param="model")

    @staticmethod
    def _listing(spec: ModelSpec) -> dict[str, Any]:
        return {"id": spec.name, "object": "model", "created": _CREATED, "owned_by": "library"}

    def _models(self, path: str, body: bytes | None) -> Reply:
        return Reply(
            200, {"object": "list", "data": [self._listing(s) for s in self.engine.models()]}
        )

    def _model_info(self, path: str, body: bytes | None) -> Reply:
        _, spec = self._spec({"model": path.removeprefix("/v1/models/")})
        return Reply(200, self._listing(spec))

    # -- faults -----------------------------------------------------------------------------

    def _take_rate_limit(self) -> bool:
        with self._lock:
            if self.rate_limited <= 0:
                return False
            self.rate_limited -= 1
            return True

    def _fault(self, name: str, stream: bool) -> Reply | Streamed | None:
        if self._take_rate_limit():
            return Reply(
                429,
                OpenAIError(
                    429,
                    "Rate limit reached for requests",
                    type="requests",
                    code="rate_limit_exceeded",
                ).body,
            )
        faults = self.faults
        if not faults.applies(name):
            return None
        if faults.take_unavailable():
            return Reply(
                503,
                OpenAIError(
                    503, "The server is overloaded or not ready yet.", type="server_error"
                ).body,
            )
        if faults.server_error or (faults.fail_after is not None and not stream):
            return Reply(
                500,
                OpenAIError(
                    500,
                    "The server had an error while processing your request: injected fault",
                    type="server_error",
                ).body,
            )
        if faults.bad_json:
            garbage = b'{"id": "chatcmpl-x", "cho'
            return EventStream(iter([_event(garbage)])) if stream else Reply(200, garbage)
        return None

    # -- chat completions --------------------------------------------------------------------

    def _chat(self, path: str, body: bytes | None) -> Reply | Streamed:
        req = _decode(body)
        name, spec = self._spec(req)
        self._require(spec, name, "completion", "chat completions")
        messages = _field(req, "messages", list, None)
        if not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages
        ):
            raise OpenAIError(
                400,
                "'messages' must be a non-empty list of messages with a 'role'",
                param="messages",
            )
        if _field(req, "n", int, 1) != 1:
            raise OpenAIError(400, "only n=1 is supported", param="n")
        tools = _field(req, "tools", list, [])
        if tools:
            self._require(spec, name, "tools", "tools")
        think = req.get("reasoning_effort") is not None
        if think:
            self._require(spec, name, "thinking", "reasoning")
        prompt = Prompt(
            model=spec.name,
            messages=[self._message(m) for m in messages],
            format=self._format(req),
            options=self._options(req),
            tools=tools,
            think=think,
        )
        stream = _field(req, "stream", bool, False)
        fault = self._fault(name, stream)
        if fault is not None:
            return fault
        completion = self.engine.generate(prompt)
        reply = _Completion(name, completion)
        if stream:
            usage = bool(_field(req, "stream_options", dict, {}).get("include_usage"))
            return EventStream(self._events(reply, usage))
        return Reply(200, reply.whole())

    @staticmethod
    def _message(message: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(message, content=_text(message.get("content")))
        if out["role"] == "developer":  # OpenAI's newer name for the system role
            out["role"] = "system"
        return out

    @staticmethod
    def _format(req: Mapping[str, Any]) -> str | Mapping[str, Any] | None:
        fmt = _field(req, "response_format", dict, None)
        if fmt is None or fmt.get("type") == "text":
            return None
        if fmt.get("type") == "json_object":
            return "json"
        schema = (
            (fmt.get("json_schema") or {}).get("schema")
            if fmt.get("type") == "json_schema"
            else None
        )
        if not isinstance(schema, dict):
            raise OpenAIError(
                400,
                f"Invalid 'response_format': expected a type in "
                f"{sorted(_FORMATS)} (json_schema with a 'schema' object)",
                param="response_format",
            )
        return schema

    @staticmethod
    def _options(req: Mapping[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for key in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"):
            value = _field(req, key, (int, float), None)
            if value is not None:
                options[key] = value
        limit = _field(req, "max_completion_tokens", int, None)
        limit = _field(req, "max_tokens", int, None) if limit is None else limit
        if limit is not None:
            options["num_predict"] = limit
        stop = _field(req, "stop", (str, list), None)
        if stop is not None:
            options["stop"] = [stop] if isinstance(stop, str) else stop
        return options

    def _events(self, reply: _Completion, usage: bool) -> Iterator[bytes]:
        try:
            yield from (_event(chunk) for chunk in reply.chunks(self._cut(reply.name), usage))
        except _Stop:
            return  # truncated on purpose: no [DONE]
        except Exception as exc:  # after the 200, an error event is all a server can send
            yield _event(OpenAIError(500, str(exc) or type(exc).__name__, type="server_error").body)
            return
        yield _event(b"[DONE]")

    def _cut(self, name: str) -> tuple[int | None, int | None]:
        if not self.faults.applies(name):
            return None, None
        return self.faults.fail_after, self.faults.truncate_after

    # -- embeddings ---------------------------------------------------------------------------

    def _embeddings(self, path: str, body: bytes | None) -> Reply | Streamed:
        req = _decode(body)
        name, spec = self._spec(req)
        self._require(spec, name, "embedding", "embeddings")
        raw = req.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise OpenAIError(
                400, "'input' must be a string or a non-empty list of strings", param="input"
            )
        dims = _field(req, "dimensions", int, 0)
        encoding = _field(req, "encoding_format", str, "float")
        if dims < 0 or encoding not in ("float", "base64"):
            raise OpenAIError(400, "invalid 'dimensions' or 'encoding_format'")
        fault = self._fault(name, False)
        if fault is not None:
            return fault
        vectors = self.engine.embed(spec.name, texts)
        if len(vectors) != len(texts):
            raise RuntimeError(f"engine returned {len(vectors)} vectors for {len(texts)} texts")
        tokens = sum(count_words(t) for t in texts)
        return Reply(
            200,
            {
                "object": "list",
                "model": name,
                "data": [
                    {
                        "object": "embedding",
                        "index": i,
                        "embedding": self._encode(_normalised(v[:dims] if dims else v), encoding),
                    }
                    for i, v in enumerate(vectors)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    @staticmethod
    def _encode(vector: list[float], encoding: str) -> list[float] | str:
        if encoding == "float":
            return vector
        return base64.b64encode(array.array("f", vector).tobytes()).decode("ascii")


class _Stop(Exception):
    """Ends a stream early without an error event (the ``truncate_after`` fault)."""


class _Completion:
    """One engine answer, rendered as a ``chat.completion`` or as its chunks."""

    def __init__(self, name: str, completion: Completion) -> None:
        self.name = name
        self.completion = completion
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.count = 0

    def _envelope(self, kind: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.name,
            "system_fingerprint": _FINGERPRINT,
        }

    def _tool_calls(self) -> list[dict[str, Any]]:
        return [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {
                    "name": call["function"]["name"],
                    "arguments": json.dumps(call["function"]["arguments"]),
                },
            }
            for i, call in enumerate(self.completion.tool_calls or [])
        ]

    def _tool_call_fragments(
        self, index: int, call: dict[str, Any], usage: bool
    ) -> Iterator[dict[str, Any]]:
        # As OpenAI streams a tool call: its id and name first with empty arguments, then
        # the arguments' JSON text in pieces, each fragment keyed by the call's index.
        function = call["function"]
        head = dict(call, index=index, function={"name": function["name"], "arguments": ""})
        yield self._chunk({"tool_calls": [head]}, usage=usage)
        text = function["arguments"]
        for start in range(0, len(text), _ARGUMENT_PIECE):
            piece = {
                "index": index,
                "function": {"arguments": text[start : start + _ARGUMENT_PIECE]},
            }
            yield self._chunk({"tool_calls": [piece]}, usage=usage)

    def _finish_reason(self) -> str:
        return "tool_calls" if self.completion.tool_calls else self.completion.done_reason

    def _usage(self) -> dict[str, int]:
        prompt = self.completion.prompt_tokens
        return {
            "prompt_tokens": prompt,
            "completion_tokens": self.count,
            "total_tokens": prompt + self.count,
        }

    def whole(self) -> dict[str, Any]:
        pieces = list(self.completion.pieces())
        self.count = len(pieces)
        message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces)}
        if self.completion.tool_calls:
            message.update(content=None, tool_calls=self._tool_calls())
        if self.completion.thinking:
            message["reasoning_content"] = self.completion.thinking
        return self._envelope("chat.completion") | {
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self._finish_reason(),
                }
            ],
            "usage": self._usage(),
        }

    def _chunk(
        self, delta: dict[str, Any], finish: str | None = None, usage: bool = False
    ) -> dict[str, Any]:
        chunk = self._envelope("chat.completion.chunk") | {
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        }
        return chunk | {"usage": None} if usage else chunk

    def chunks(self, cut: tuple[int | None, int | None], usage: bool) -> Iterator[Any]:
        fail_after, truncate_after = cut
        yield self._chunk({"role": "assistant", "content": ""}, usage=usage)
        if self.completion.thinking:
            yield self._chunk({"reasoning_content": self.completion.thinking}, usage=usage)
        for piece in self.completion.pieces():
            if self.count == fail_after:
                raise RuntimeError("an error occurred while generating: injected fault")
            if self.count == truncate_after:
                raise _Stop
            yield self._chunk({"content": piece}, usage=usage)
            self.count += 1
        if fail_after is not None:
            raise RuntimeError("an error occurred while generating: injected fault")
        if truncate_after is not None:
            raise _Stop
        for index, call in enumerate(self._tool_calls()):
            yield from self._tool_call_fragments(index, call, usage)
        yield self._chunk({}, self._finish_reason(), usage=usage)
        if usage:
            yield self._envelope("chat.completion.chunk") | {"choices": [], "usage": self._usage()}
