"""Engines: what answers behind the Ollama-compatible server.

An `Engine` lists its models (`ModelSpec`, with Ollama's capability names), completes a
`Prompt` into a `Completion` (the whole text, or an iterator of tokens), and embeds texts
into raw vectors (the server normalises them). `EchoEngine` is the deterministic one that
tests and benchmarks use.

>>> engine = EchoEngine()
>>> "".join(engine.generate(Prompt(model="llama3.2", prompt="hi there")).pieces())
'echo: hi there'
>>> engine.generate(Prompt(model="m", prompt="a b c", options={"num_predict": 2})).text
['echo: ', 'a ']
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmcache.backends.mock import hashed_embedding

__all__ = ["Completion", "DEFAULT_MODELS", "EchoEngine", "Engine", "ModelSpec", "Prompt"]

# Tokens keep their trailing whitespace, as MockBackend splits them, so "".join() is exact.
_TOKENS = re.compile(r"\s*\S+\s*")


@dataclass(frozen=True)
class ModelSpec:
    """A model the engine serves. ``capabilities`` use Ollama's names: ``completion``,
    ``embedding``, ``tools``, ``thinking``, ``vision``."""

    name: str
    capabilities: tuple[str, ...] = ("completion",)
    family: str = "echo"
    parameter_size: str = "1B"
    quantization_level: str = "Q4_K_M"
    size: int = 1_000_000_000
    context_length: int = 4096
    embedding_length: int = 64


DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "llama3.2:latest",
        ("completion", "tools"),
        family="llama",
        parameter_size="3.2B",
        size=2_019_393_189,
    ),
    ModelSpec(
        "qwen3:latest",
        ("completion", "tools", "thinking"),
        family="qwen3",
        parameter_size="8.2B",
        size=5_225_387_923,
    ),
    ModelSpec(
        "nomic-embed-text:latest",
        ("embedding",),
        family="nomic-bert",
        parameter_size="137M",
        quantization_level="F16",
        size=274_302_450,
    ),
)


@dataclass(frozen=True)
class Prompt:
    """A generate or chat request, as the engine sees it (``messages`` is None for generate)."""

    model: str
    prompt: str = ""
    system: str | None = None
    messages: Sequence[Mapping[str, Any]] | None = None
    format: str | Mapping[str, Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    tools: Sequence[Mapping[str, Any]] = ()
    think: bool = False


@dataclass
class Completion:
    """An engine's answer. ``text`` is the whole answer or an iterable of tokens;
    ``done_reason`` is read after the tokens are exhausted, so a lazy engine may set it late."""

    text: str | Iterable[str]
    prompt_tokens: int = 0
    done_reason: str = "stop"
    thinking: str | None = None
    tool_calls: list[dict[str, Any]] | None = None

    def pieces(self) -> Iterable[str]:
        return [self.text] if isinstance(self.text, str) else self.text


class Engine(Protocol):
    """What the server needs from a model runtime. Methods run on the request's thread."""

    def models(self) -> Sequence[ModelSpec]:
        """The models served (names with their tag, e.g. ``llama3.2:latest``)."""
        ...

    def generate(self, prompt: Prompt) -> Completion:
        """Complete a prompt or a conversation."""
        ...

    def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        """One raw (not normalised) vector per text, in order."""
        ...


def count_words(text: str) -> int:
    return len(text.split())


def minimal_instance(schema: Any, text: str) -> Any:
    """The smallest value valid for a (simple) JSON schema; strings are `text`.

    >>> minimal_instance({"type": "object", "required": ["n", "ok"],
    ...                   "properties": {"n": {"type": "integer"}, "ok": {"type": "boolean"}}}, "x")
    {'n': 0, 'ok': False}
    """
    if not isinstance(schema, Mapping):
        return None
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return minimal_instance(schema[key][0], text)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        return {
            name: minimal_instance(props.get(name, {}), text) for name in schema.get("required", ())
        }
    if kind == "array":
        item = minimal_instance(schema.get("items", {}), text)
        return [item] * int(schema.get("minItems", 0))
    return {"string": text, "integer": 0, "number": 0.0, "boolean": False}.get(kind)


class EchoEngine:
    """Deterministic answers derived from the request; no model needed.

    - text: ``"echo: <prompt or last message>"`` (``"echo [<system>]: ..."`` with a system
      prompt), split into word tokens; ``options.num_predict`` truncates (``done_reason``
      ``"length"``); ``format="json"`` gives ``{"response": <that text>}``, a schema the
      minimal instance of its ``required`` properties;
    - chat with ``tools``: a call of the first tool (unless the last message is a tool
      result, which is echoed); ``think=True``: a ``thinking`` text;
    - embeddings: ``llmcache.backends.mock.hashed_embedding`` of each text (the same
      vectors as `MockBackend`), ``dim`` floats; texts sharing words get close vectors;
    - ``latency_ms`` is slept once per request, ``per_item_ms`` per token or text.
    """

    def __init__(
        self,
        *,
        latency_ms: float = 0,
        per_item_ms: float = 0,
        dim: int = 64,
        models: Sequence[ModelSpec] = DEFAULT_MODELS,
    ) -> None:
        if latency_ms < 0 or per_item_ms < 0 or dim < 1:
            raise ValueError("latency_ms and per_item_ms must be >= 0, dim >= 1")
        self.latency_ms = latency_ms
        self.per_item_ms = per_item_ms
        self.dim = dim
        self._models = tuple(models)

    def models(self) -> Sequence[ModelSpec]:
        return self._models

    def generate(self, prompt: Prompt) -> Completion:
        self._sleep(self.latency_ms)
        system, source = self._inputs(prompt)
        thinking = f"thinking about: {source}" if prompt.think else None
        last_role = prompt.messages[-1].get("role") if prompt.messages else None
        if prompt.messages is not None and prompt.tools and last_role != "tool":
            return Completion(
                [],
                self._prompt_tokens(prompt),
                thinking=thinking,
                tool_calls=[self._tool_call(prompt.tools[0], source)],
            )
        text = f"echo [{system}]: {source}" if system else f"echo: {source}"
        if prompt.format == "json":
            text = json.dumps({"response": text})
        elif isinstance(prompt.format, Mapping):
            text = json.dumps(minimal_instance(prompt.format, text))
        tokens = _TOKENS.findall(text)
        limit = prompt.options.get("num_predict")
        reason = "stop"
        if isinstance(limit, int) and 0 <= limit < len(tokens):
            tokens, reason = tokens[:limit], "length"
        return Completion(
            self._paced(tokens) if self.per_item_ms else tokens,
            self._prompt_tokens(prompt),
            reason,
            thinking,
        )

    def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        self._sleep(self.latency_ms + self.per_item_ms * len(texts))
        return [hashed_embedding(text, model=model, dim=self.dim) for text in texts]

    @staticmethod
    def _inputs(prompt: Prompt) -> tuple[str | None, str]:
        if prompt.messages is None:
            return prompt.system, prompt.prompt
        system = next(
            (str(m.get("content", "")) for m in prompt.messages if m.get("role") == "system"), None
        )
        last = prompt.messages[-1] if prompt.messages else {}
        return system, str(last.get("content") or "")

    @staticmethod
    def _prompt_tokens(prompt: Prompt) -> int:
        parts = [prompt.prompt, prompt.system or ""]
        parts += [str(m.get("content") or "") for m in prompt.messages or ()]
        return sum(count_words(p) for p in parts)

    @staticmethod
    def _tool_call(tool: Mapping[str, Any], text: str) -> dict[str, Any]:
        function = tool.get("function") or {}
        arguments = minimal_instance(function.get("parameters") or {}, text)
        return {
            "function": {
                "name": function.get("name", ""),
                "arguments": arguments if isinstance(arguments, dict) else {},
            }
        }

    def _paced(self, tokens: list[str]) -> Iterator[str]:
        for token in tokens:
            self._sleep(self.per_item_ms)
            yield token

    @staticmethod
    def _sleep(ms: float) -> None:
        if ms > 0:
            time.sleep(ms / 1000)
