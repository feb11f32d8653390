"""Ollama's API semantics without HTTP: a route name and a request body in; a `Reply` (one
JSON document) or a `Streamed` (NDJSON lines) out. Statuses and messages follow Ollama's
server (see ``OLLAMA_API.md``); the HTTP side lives in `handler`.

>>> from llmcache_testserver.engines import EchoEngine
>>> api = OllamaAPI(EchoEngine())
>>> reply = api.handle("generate", b'{"model": "llama3.2", "prompt": "hi", "stream": false}')
>>> reply.status, reply.body["response"]
(200, 'echo: hi')
>>> api.handle("chat", b'{"model": "nope", "messages": []}').body
{'error': "model 'nope' not found"}
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from llmcache_testserver.engines import Completion, Engine, ModelSpec, Prompt, count_words
from llmcache_testserver.state import CallCounter, Faults, canonical_model

__all__ = ["ApiError", "OllamaAPI", "Reply", "Streamed", "VERSION"]

VERSION = "0.12.6"
_MODIFIED = "2025-01-01T00:00:00Z"
_JSON = "application/json; charset=utf-8"


class ApiError(Exception):
    """An answer ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Reply:
    """One document; ``body`` bytes are sent as they are (that is how bad JSON is made)."""

    status: int
    body: Any
    content_type: str = _JSON


@dataclass
class Streamed:
    """An NDJSON stream (status 200); bytes items are sent as raw lines."""

    lines: Iterator[Any]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _decode(body: bytes | None) -> dict[str, Any]:
    if not body or not body.strip():
        raise ApiError(400, "missing request body")
    try:
        value = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ApiError(400, str(exc)) from None
    if not isinstance(value, dict):
        raise ApiError(400, f"json: cannot unmarshal {type(value).__name__} into a request object")
    return value


_TYPE_NAMES = {str: "string", dict: "object", list: "array", bool: "boolean", int: "integer"}


def _get(req: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = req.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(400, f"invalid value for field {key!r}: expected {_TYPE_NAMES[kind]}")
    return value


def _normalised(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def _details(spec: ModelSpec) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": spec.family,
        "families": [spec.family],
        "parameter_size": spec.parameter_size,
        "quantization_level": spec.quantization_level,
    }


class OllamaAPI:
    """The routes of an Ollama server over an `Engine`, counting calls and injecting faults."""

    def __init__(
        self,
        engine: Engine,
        *,
        faults: Faults | None = None,
        calls: CallCounter | None = None,
        version: str = VERSION,
    ) -> None:
        self.engine = engine
        self.faults = faults if faults is not None else Faults()
        self.calls = calls if calls is not None else CallCounter()
        self.version = version
        self._routes: dict[str, Callable[[bytes | None], Reply | Streamed]] = {
            "root": self._root,
            "version": self._version,
            "tags": self._tags,
            "show": self._show,
            "generate": self._generate,
            "chat": self._chat,
            "embed": self._embed,
            "embeddings": self._embeddings,
        }

    def handle(self, route: str, body: bytes | None) -> Reply | Streamed:
        """Answer one request; errors become ``{"error": ...}`` replies."""
        self.calls.add(route)
        try:
            return self._routes[route](body)
        except ApiError as exc:
            return Reply(exc.status, {"error": exc.message})

    # -- lookups ------------------------------------------------------------------------------

    def _model(self, req: Mapping[str, Any]) -> tuple[str, ModelSpec]:
        name = _get(req, "model", str, "") or _get(req, "name", str, "")
        if not name:
            raise ApiError(400, "model is required")
        wanted = canonical_model(name)
        for spec in self.engine.models():
            if canonical_model(spec.name) == wanted:
                return name, spec
        raise ApiError(404, f"model '{name}' not found")

    @staticmethod
    def _require(spec: ModelSpec, name: str, capability: str, verb: str) -> None:
        if capability not in spec.capabilities:
            raise ApiError(400, f"{json.dumps(name)} does not support {verb}")

    def _fault(self, name: str, stream: bool) -> Reply | Streamed | None:
        faults = self.faults
        if not faults.applies(name):
            return None
        if faults.take_unavailable():
            return Reply(
                503, {"error": "server busy, please try again.  maximum pending requests exceeded"}
            )
        if faults.server_error or (faults.fail_after is not None and not stream):
            return Reply(500, {"error": "llama runner process has terminated: injected fault"})
        if faults.bad_json:
            garbage = b'{"model": "' + name.encode() + b'", "respo'
            return Streamed(iter([garbage])) if stream else Reply(200, garbage)
        return None

    # -- informational routes -------------------------------------------------------------------

    def _root(self, body: bytes | None) -> Reply:
        return Reply(200, b"Ollama is running", "text/plain; charset=utf-8")

    def _version(self, body: bytes | None) -> Reply:
        return Reply(200, {"version": self.version})

    def _tags(self, body: bytes | None) -> Reply:
        return Reply(
            200,
            {
                "models": [
                    {
                        "name": s.name,
                        "model": s.name,
                        "modified_at": _MODIFIED,
                        "size": s.size,
                        "digest": hashlib.sha256(s.name.encode()).hexdigest(),
                        "details": _details(s),
                    }
                    for s in self.engine.models()
                ]
            },
        )

    def _show(self, body: bytes | None) -> Reply:
        name, spec = self._model(_decode(body))
        arch = spec.family
        return Reply(
            200,
            {
                "modelfile": f"# Modelfile generated by llmcache-ollama\nFROM {spec.name}\n",
                "parameters": 'stop "<|eot_id|>"',
                "template": "{{ .Prompt }}",
                "details": _details(spec),
                "capabilities": list(spec.capabilities),
                "model_info": {
                    "general.architecture": arch,
                    "general.basename": name,
                    f"{arch}.context_length": spec.context_length,
                    f"{arch}.embedding_length": spec.embedding_length,
                },
                "modified_at": _MODIFIED,
                "license": "MIT",
            },
        )

    # -- completions --------------------------------------------------------------------------

    def _generate(self, body: bytes | None) -> Reply | Streamed:
        req = _decode(body)
        name, spec = self._model(req)
        self._require(spec, name, "completion", "generate")
        prompt = Prompt(
            model=spec.name,
            prompt=_get(req, "prompt", str, ""),
            system=_get(req, "system", str, None),
            format=self._format(req),
            options=_get(req, "options", dict, {}),
            think=self._think(req, spec, name),
        )
        empty = not prompt.prompt and not _get(req, "images", list, [])
        return self._complete(name, prompt, _get(req, "stream", bool, True), empty)

    def _chat(self, body: bytes | None) -> Reply | Streamed:
        req = _decode(body)
        name, spec = self._model(req)
        self._require(spec, name, "completion", "chat")
        messages = _get(req, "messages", list, [])
        if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
            raise ApiError(400, "invalid message: each needs a string 'role'")
        tools = _get(req, "tools", list, [])
        if tools:
            self._require(spec, name, "tools", "tools")
        prompt = Prompt(
            model=spec.name,
            messages=messages,
            format=self._format(req),
            options=_get(req, "options", dict, {}),
            tools=tools,
            think=self._think(req, spec, name),
        )
        return self._complete(name, prompt, _get(req, "stream", bool, True), not messages)

    @staticmethod
    def _format(req: Mapping[str, Any]) -> str | Mapping[str, Any] | None:
        fmt = req.get("format")
        if fmt in (None, "") or isinstance(fmt, dict):
            return fmt or None
        if fmt != "json":
            raise ApiError(
                400, f'invalid format: {json.dumps(fmt)}; expected "json" or a JSON schema'
            )
        return "json"

    def _think(self, req: Mapping[str, Any], spec: ModelSpec, name: str) -> bool:
        think = bool(req.get("think"))
        if think:
            self._require(spec, name, "thinking", "thinking")
        return think

    def _complete(self, name: str, prompt: Prompt, stream: bool, empty: bool) -> Reply | Streamed:
        fault = self._fault(name, stream)
        if fault is not None:
            return fault
        chat = prompt.messages is not None
        if empty:  # Ollama's answer to an empty prompt: load the model, generate nothing
            loaded = self._head(name, chat, "") | {"done": True, "done_reason": "load"}
            return Streamed(iter([loaded])) if stream else Reply(200, loaded)
        started = time.perf_counter_ns()
        completion = self.engine.generate(prompt)
        if stream:
            return Streamed(self._lines(name, chat, completion, started))
        pieces = list(completion.pieces())
        return Reply(
            200,
            self._final(
                name, chat, "".join(pieces), completion, started, len(pieces), with_extras=True
            ),
        )

    @staticmethod
    def _head(
        name: str,
        chat: bool,
        text: str,
        thinking: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        line: dict[str, Any] = {"model": name, "created_at": _now()}
        holder = line
        if chat:
            holder = line["message"] = {"role": "assistant", "content": text}
        else:
            line["response"] = text
        if thinking:
            holder["thinking"] = thinking
        if tool_calls:
            holder["tool_calls"] = tool_calls
        return line

    def _lines(
        self, name: str, chat: bool, completion: Completion, started: int
    ) -> Iterator[dict[str, Any]]:
        fail_after = self.faults.fail_after if self.faults.applies(name) else None
        cut_after = self.faults.truncate_after if self.faults.applies(name) else None
        if completion.thinking:
            yield self._head(name, chat, "", completion.thinking) | {"done": False}
        count = 0
        for piece in completion.pieces():
            if count == fail_after or count == cut_after:
                break
            yield self._head(name, chat, piece) | {"done": False}
            count += 1
        if fail_after is not None:
            yield {"error": "an error was encountered while running the model: injected fault"}
            return
        if cut_after is not None:
            return
        if completion.tool_calls:
            yield self._head(name, chat, "", None, completion.tool_calls) | {"done": False}
        yield self._final(name, chat, "", completion, started, count, with_extras=False)

    def _final(
        self,
        name: str,
        chat: bool,
        text: str,
        completion: Completion,
        started: int,
        count: int,
        *,
        with_extras: bool,
    ) -> dict[str, Any]:
        total = max(time.perf_counter_ns() - started, 1)
        line = (
            self._head(name, chat, text, completion.thinking, completion.tool_calls)
            if with_extras
            else self._head(name, chat, text)
        )
        line.update(done=True, done_reason=completion.done_reason)
        if not chat:
            line["context"] = list(range(1, min(completion.prompt_tokens + count, 256) + 1))
        line.update(
            total_duration=total,
            load_duration=total // 10,
            prompt_eval_count=completion.prompt_tokens,
            prompt_eval_duration=total // 5,
            eval_count=count,
            eval_duration=total - total // 10 - total // 5,
        )
        return line

    # -- embeddings ---------------------------------------------------------------------------

    def _embed(self, body: bytes | None) -> Reply | Streamed:
        req = _decode(body)
        name, spec = self._model(req)
        self._require(spec, name, "embedding", "embeddings")
        raw = req.get("input")
        texts = [raw] if isinstance(raw, str) else raw if raw is not None else []
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ApiError(400, "invalid input type")
        dims = _get(req, "dimensions", int, 0)
        if dims < 0:
            raise ApiError(400, "dimensions must be a positive integer")
        fault = self._fault(name, False)
        if fault is not None:
            return fault
        started = time.perf_counter_ns()
        vectors = self._vectors(spec, texts)
        return Reply(
            200,
            {
                "model": name,
                "embeddings": [_normalised(v[:dims] if dims else v) for v in vectors],
                "total_duration": max(time.perf_counter_ns() - started, 1),
                "load_duration": 0,
                "prompt_eval_count": sum(count_words(t) for t in texts),
            },
        )

    def _embeddings(self, body: bytes | None) -> Reply | Streamed:
        req = _decode(body)
        name, spec = self._model(req)
        self._require(spec, name, "embedding", "embeddings")
        prompt = _get(req, "prompt", str, "")
        fault = self._fault(name, False)
        if fault is not None:
            return fault
        return Reply(200, {"embedding": self._vectors(spec, [prompt])[0] if prompt else []})

    def _vectors(self, spec: ModelSpec, texts: list[str]) -> list[list[float]]:
        vectors = self.engine.embed(spec.name, texts) if texts else []
        if len(vectors) != len(texts):
            raise RuntimeError(f"engine returned {len(vectors)} vectors for {len(texts)} texts")
        return vectors
