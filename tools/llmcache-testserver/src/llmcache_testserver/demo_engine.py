"""`DemoEngine`: a stand-in model that turns a note into a to-do task, for demos and tests.

``python -m llmcache_testserver --engine demo`` serves it. Every completion is a task as
JSON, derived from the note (the prompt, or the last user message of a chat) by a few fixed
rules, so the example app and the docs run end to end on any machine, in milliseconds,
without a model:

- ``title``: the note without its date and priority words, capitalised, at most 80
  characters;
- ``due_date``: the note's own date words (``"tomorrow"``, ``"friday"``, ``"december
  12"``, ``"2026-01-05"``), ``"today"`` for a time of day (tonight, this afternoon), or
  null when the note names no date;
- ``priority``: ``urgent`` only for urgent, urgently, asap, immediately, critical or
  emergency; ``high`` for important or high priority; ``low`` for low priority, not urgent,
  no rush, someday, eventually or whenever; ``medium`` otherwise;
- ``tags``: topic words found in the note (shopping, work, family, health, home, money),
  or ``["general"]``.

A JSON schema in ``format`` is honoured: the answer holds the schema's properties (the
required ones, and those the rules know), each value made valid for its sub-schema (type,
``enum``, ``const``, ``anyOf``, string and array lengths). A request with ``tools`` gets the
echo engine's tool call; embeddings are the echo engine's hashed vectors.

>>> engine = DemoEngine()
>>> print(engine.generate(Prompt(model="demo", prompt="buy groceries tomorrow")).text)
{"title": "Buy groceries", "due_date": "tomorrow", "priority": "medium", "tags": ["shopping"]}
>>> task_for("review pull request urgent")["priority"], task_for("water the plants")["due_date"]
('urgent', None)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from llmcache_testserver.engines import (
    Completion,
    EchoEngine,
    ModelSpec,
    Prompt,
    minimal_instance,
)

__all__ = ["DEMO_MODELS", "DemoEngine", "task_for"]

#: What the demo engine serves: ``smollm2`` (the example app's default model) and the
#: README's ``llama3.2`` answer with tasks; ``nomic-embed-text`` embeds.
DEMO_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("demo:latest", ("completion",), family="demo", parameter_size="rules"),
    ModelSpec("smollm2:latest", ("completion",), family="demo", parameter_size="rules"),
    ModelSpec("llama3.2:latest", ("completion", "tools"), family="demo", parameter_size="rules"),
    ModelSpec("nomic-embed-text:latest", ("embedding",), family="demo", parameter_size="hashed"),
)

_MAX_TITLE = 80
# Tokens keep their trailing whitespace, as the echo engine's do, so "".join() is exact.
_TOKENS = re.compile(r"\s*\S+\s*")

_WEEKDAY = r"(?:mon|tue|tues|wed|wednes|thu|thur|thurs|fri|sat|sun)(?:day)?"
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*"
# Most specific first: the first that matches is the note's due date (a fixed answer, or
# the words themselves).
_DUE_PATTERNS: tuple[tuple[re.Pattern[str], str | None], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), fixed)
    for pattern, fixed in (
        (r"\b\d{4}-\d{2}-\d{2}\b", None),
        (r"\bday after tomorrow\b", None),
        (r"\btomorrow\b", None),
        (
            r"\b(?:today|tonight|this (?:morning|afternoon|evening)|in the (?:morning|afternoon|"
            r"evening)|end of (?:the )?day|eod)\b",
            "today",
        ),
        (r"\bnext (?:week|month)\b", None),
        (r"\bin (?:\d{1,3}|a|an|one|two|three|four|five|six|seven) (?:days?|weeks?)\b", None),
        (r"\b(?:this |next )?weekend\b", None),
        (rf"\b{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?\b|\b\d{{1,2}}(?:st|nd|rd|th)? {_MONTH}\b", None),
        (rf"\b{_WEEKDAY}\b", None),
    )
)
# Words that lead into a date ("by Friday", "due on Monday"): dropped from the title with it.
_LEAD_IN = re.compile(
    r"(?:\b(?:by|on|due|before|until|till|for|at|this|next|coming)\s+)+$", re.IGNORECASE
)

_LOW = re.compile(
    r"\b(?:low[- ]priority|not urgent|non-urgent|no rush|someday|eventually|"
    r"whenever)\b",
    re.IGNORECASE,
)
_URGENT = re.compile(r"\b(?:urgent|urgently|asap|immediately|critical|emergency)\b", re.IGNORECASE)
_HIGH = re.compile(r"\b(?:important|high[- ]priority)\b", re.IGNORECASE)
_PRIORITY_WORDS = re.compile(
    r"[,;]?\s*\b(?:low[- ]priority|not urgent|non-urgent|no rush|"
    r"urgent|urgently|asap|immediately|critical|emergency|important|"
    r"high[- ]priority)\b[!.]*",
    re.IGNORECASE,
)

_TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("shopping", ("buy", "groceries", "grocery", "shop", "shopping", "milk", "store")),
    (
        "work",
        (
            "report",
            "meeting",
            "email",
            "client",
            "pull request",
            "review",
            "deploy",
            "presentation",
            "boss",
            "project",
        ),
    ),
    ("family", ("mom", "mum", "dad", "sister", "brother", "grandma", "kids", "family")),
    ("health", ("dentist", "doctor", "gym", "run", "medicine", "appointment")),
    ("home", ("clean", "laundry", "plants", "dishes", "garden", "fix", "plumber")),
    ("money", ("pay", "bill", "rent", "bank", "tax", "taxes", "invoice")),
)


def _due(note: str) -> str | None:
    for pattern, fixed in _DUE_PATTERNS:
        found = pattern.search(note)
        if found:
            return fixed or " ".join(found.group(0).lower().split())
    return None


def _priority(note: str) -> str:
    if _LOW.search(note):  # first: "not urgent" holds the word "urgent"
        return "low"
    if _URGENT.search(note):
        return "urgent"
    if _HIGH.search(note):
        return "high"
    return "medium"


def _title(note: str) -> str:
    text = " ".join(note.split())
    for pattern, _ in _DUE_PATTERNS:
        while (found := pattern.search(text)) is not None:
            head = _LEAD_IN.sub("", text[: found.start()].rstrip() + " ").rstrip()
            text = f"{head} {text[found.end() :].lstrip()}".strip()
    text = _PRIORITY_WORDS.sub("", text)
    text = " ".join(text.split()).strip(" ,;:-.!") or " ".join(note.split()) or "Task"
    if len(text) > _MAX_TITLE:
        text = text[:_MAX_TITLE].rsplit(" ", 1)[0] or text[:_MAX_TITLE]
    return text[:1].upper() + text[1:]


def _tags(note: str) -> list[str]:
    words = set(re.findall(r"[a-z]+", note.lower()))
    lowered = f" {' '.join(note.lower().split())} "
    found = [
        topic
        for topic, keys in _TOPICS
        if any(k in words or (" " in k and f" {k} " in lowered) for k in keys)
    ]
    return found[:3] or ["general"]


def task_for(note: str) -> dict[str, Any]:
    """The task the demo engine answers for `note` (see the module docstring)."""
    return {
        "title": _title(note),
        "due_date": _due(note),
        "priority": _priority(note),
        "tags": _tags(note),
    }


# -- fitting a value to a JSON schema --------------------------------------------------------

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _is(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES.get(kind, (object,)))


def _matches(value: Any, schema: Any) -> bool:
    """Whether `value` fits `schema` on type, enum and const (enough to pick a branch)."""
    if not isinstance(schema, Mapping):
        return True
    if "const" in schema:
        return bool(value == schema["const"])
    if "enum" in schema:
        return value in schema["enum"]
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        return any(_matches(value, b) for b in branches)
    kind = schema.get("type")
    if kind is None:
        return True
    kinds = kind if isinstance(kind, list) else [kind]
    return any(_is(value, k) for k in kinds)


def fit(value: Any, schema: Any, text: str) -> Any:
    """`value` made valid for `schema` (the subset of JSON Schema that format requests use);
    `text` fills a required string the rules have no value for."""
    if not isinstance(schema, Mapping):
        return value
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        options = list(schema["enum"])
        if value in options:
            return value
        wanted = str(value).lower() if value is not None else None
        return next(
            (o for o in options if isinstance(o, str) and o.lower() == wanted),
            options[0] if options else None,
        )
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        branch = next((b for b in branches if _matches(value, b)), None)
        if branch is None:  # "friday" where only ["tomorrow", null] is allowed: null if allowed
            branch = next((b for b in branches if _matches(None, b)), branches[0])
            value = None
        return fit(value, branch, text)
    kind = schema.get("type", "object" if "properties" in schema else None)
    if isinstance(kind, list):
        kind = next((k for k in kind if _is(value, k)), kind[0] if kind else None)
    if kind == "object":
        return _fit_object(value if isinstance(value, Mapping) else {}, schema, text)
    if kind == "array":
        items = (
            [fit(v, schema.get("items"), text) for v in value] if isinstance(value, list) else []
        )
        items = items[: int(schema.get("maxItems", len(items)))]
        while len(items) < int(schema.get("minItems", 0)):
            items.append(minimal_instance(schema.get("items", {}), text))
        return items
    if kind == "string":
        out = value if isinstance(value, str) else text
        if len(out) < int(schema.get("minLength", 0)):
            out = (out + " " + text).strip() or "x" * int(schema["minLength"])
        return out[: int(schema["maxLength"])] if "maxLength" in schema else out
    if kind is None or _is(value, kind):
        return value
    return minimal_instance(schema, text)


def _fit_object(value: Mapping[str, Any], schema: Mapping[str, Any], text: str) -> dict[str, Any]:
    props: Mapping[str, Any] = schema.get("properties") or {}
    required = list(schema.get("required", ()))
    names = [n for n in props if n in required or n in value]
    names += [n for n in required if n not in names]
    if schema.get("additionalProperties", True) is not False:
        names += [n for n in value if n not in names]
    return {
        name: fit(value[name], props.get(name), text)
        if name in value
        else minimal_instance(props.get(name, {}), text)
        for name in names
    }


class DemoEngine(EchoEngine):
    """Answers every completion with a task derived from the note (see the module doc).

    ``latency_ms`` and ``per_item_ms`` pace it like a model (once per request, per token);
    ``options.num_predict`` cuts the answer as a model would (``done_reason`` ``"length"``).
    """

    def __init__(
        self,
        *,
        latency_ms: float = 0,
        per_item_ms: float = 0,
        dim: int = 64,
        models: Sequence[ModelSpec] = DEMO_MODELS,
    ) -> None:
        super().__init__(latency_ms=latency_ms, per_item_ms=per_item_ms, dim=dim, models=models)

    def generate(self, prompt: Prompt) -> Completion:
        if prompt.messages is not None and prompt.tools:
            return super().generate(prompt)  # a tool call, as the echo engine makes it
        self._sleep(self.latency_ms)
        note = self._note(prompt)
        task = task_for(note)
        answer = fit(task, prompt.format, note) if isinstance(prompt.format, Mapping) else task
        tokens = _TOKENS.findall(json.dumps(answer))
        limit = prompt.options.get("num_predict")
        reason = "stop"
        if isinstance(limit, int) and not isinstance(limit, bool) and 0 <= limit < len(tokens):
            tokens, reason = tokens[:limit], "length"
        text: Any = self._paced(tokens) if self.per_item_ms else "".join(tokens)
        return Completion(text, self._prompt_tokens(prompt), reason)

    @staticmethod
    def _note(prompt: Prompt) -> str:
        if prompt.messages is None:
            return prompt.prompt
        users = [m for m in prompt.messages if m.get("role") == "user"]
        return (
            str((users[-1] if users else prompt.messages[-1]).get("content") or "")
            if prompt.messages
            else ""
        )
