"""Turning a note into a task with a model: a JSON schema, validation, one corrective retry.

The model is asked for JSON matching `TASK_SCHEMA` (Ollama's ``format`` takes the schema, and
a server that supports it, such as llama.cpp's grammar, can only emit that shape). The answer
is then checked here anyway — servers differ, and a schema cannot say "the due date must be
the one the note names" — by `parse_proposal`. Malformed or invalid output gets ONE retry
whose prompt quotes the problem; a second failure raises `ExtractionError` (the service then
keeps the user's text as a task flagged for review).

Requests run at temperature 0 with a fixed seed: the same note on the same day is the same
request, so the cached client answers it from the cache — the retry included. An answer
that breaks the rules stays cached: a deterministic model would give it again, so asking
again would only cost model time (the retry, a different request, is what changes the
answer). An answer that is not JSON at all is dropped from the cache, though: with a schema
that is no model's considered answer but a glitch, and the next run should ask again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from ai_todo.dates import date_words, mentions_date, resolve_due
from ai_todo.models import PRIORITIES, TaskInput, TaskProposal, normalize_tags
from llmcache import AIResponse

__all__ = ["TASK_SCHEMA", "ChatClient", "Extraction", "ExtractionError", "TaskExtractor",
           "build_messages", "parse_proposal", "retry_schema"]

logger = logging.getLogger(__name__)

TASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "due_date": {"anyOf": [{"type": "null"}, {"type": "string"}]},
        "priority": {"enum": list(PRIORITIES)},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["title", "due_date", "priority", "tags"],
    "additionalProperties": False,
}

_INSTRUCTIONS = (
    "Today is {weekday} {today}. Turn the user's note into one to-do task as JSON with: "
    "title (a short phrase saying what to do, without the date words), due_date (the date "
    "words of the note such as \"tomorrow\" or \"Friday\", or YYYY-MM-DD, or null when the "
    "note names no date), priority (low, medium, high or urgent; medium unless the note "
    "says otherwise), tags (one to three lowercase topic words).")

# Worked examples as earlier turns of the chat: a 135M model follows examples far better
# than instructions (and copies them: the last ones name no date, so "no date" is what it
# copies by default, and the titles leave the date words out).
_EXAMPLES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("text Anna in the evening",
     {"title": "Text Anna", "due_date": "evening", "priority": "medium",
      "tags": ["friends"]}),
    ("pay rent on Monday, important",
     {"title": "Pay rent", "due_date": "Monday", "priority": "high", "tags": ["money"]}),
    ("pick up the parcel tomorrow",
     {"title": "Pick up the parcel", "due_date": "tomorrow", "priority": "medium",
      "tags": ["errand"]}),
    ("email the client asap",
     {"title": "Email the client", "due_date": "asap", "priority": "urgent",
      "tags": ["work"]}),
    ("water the plants",
     {"title": "Water the plants", "due_date": None, "priority": "medium",
      "tags": ["garden"]}),
)

_MAX_ECHOED = 400  # characters of a bad answer quoted back in the retry


class ChatClient(Protocol):
    """What extraction needs from a model client (an ``AsyncCachedOllamaClient`` fits)."""

    async def chat(self, messages: Sequence[Mapping[str, Any]], *,
                   temperature: float | None = ..., **kwargs: Any) -> AIResponse: ...


class ExtractionError(Exception):
    """The model gave no valid task in two attempts. ``raw_output`` is its last answer,
    ``problem`` what was wrong with it, ``cached`` whether it came from the cache."""

    def __init__(self, message: str, *, raw_output: str = "", attempts: int = 0,
                 problem: str = "", cached: bool = False) -> None:
        super().__init__(message)
        self.raw_output = raw_output
        self.attempts = attempts
        self.problem = problem or message
        self.cached = cached


@dataclass(frozen=True)
class Extraction:
    """A validated proposal and how it was obtained."""

    proposal: TaskProposal
    response: AIResponse
    attempts: int

    @property
    def cached(self) -> bool:
        """Whether the answer that was used came from the cache."""
        return self.response.cached


def build_messages(note: str, today: date) -> list[dict[str, str]]:
    """The chat sent for `note`: instructions with today's date, examples, the note."""
    system = _INSTRUCTIONS.format(weekday=today.strftime("%A"), today=today.isoformat())
    messages = [{"role": "system", "content": system}]
    for example, answer in _EXAMPLES:
        messages.append({"role": "user", "content": example})
        messages.append({"role": "assistant", "content": json.dumps(answer)})
    messages.append({"role": "user", "content": note})
    return messages


def retry_schema(note: str, today: date) -> dict[str, Any]:
    """`TASK_SCHEMA` narrowed to what this note allows, for the retry: a server that enforces
    schemas (llama.cpp's grammar, Ollama's) then cannot repeat the mistake. The due date may
    only be null when the note names no date, or null or the date the note means.

    >>> retry_schema("water the plants", date(2025, 11, 26))["properties"]["due_date"]
    {'type': 'null'}
    >>> retry_schema("call mom tomorrow", date(2025, 11, 26))["properties"]["due_date"]
    {'anyOf': [{'type': 'null'}, {'enum': ['tomorrow', '2025-11-27']}]}
    """
    schema: dict[str, Any] = json.loads(json.dumps(TASK_SCHEMA))
    props = schema["properties"]
    props["title"] = {"type": "string", "minLength": 1}
    if not mentions_date(note):
        props["due_date"] = {"type": "null"}
        return schema
    expected = resolve_due(note, today)
    if expected is not None:
        words = sorted(w for w in date_words(note)
                       if resolve_due(w, today) == expected and w != "iso-date")
        props["due_date"] = {"anyOf": [{"type": "null"},
                                       {"enum": [*words, expected.isoformat()]}]}
    return schema


def _check_due(value: Any, note: str, today: date) -> date | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null",
                                                                             "none")):
        return None
    if not isinstance(value, str):
        raise ValueError(f"due_date must be a string or null, got {type(value).__name__}")
    due = resolve_due(value, today)
    if due is None:
        raise ValueError(f"due_date {value!r} is not a date: give YYYY-MM-DD, the note's own "
                         "date words (like \"tomorrow\" or \"Friday\"), or null")
    if not mentions_date(note):
        raise ValueError(f"due_date {value!r} is made up: the note names no date, so "
                         "due_date must be null")
    own = ", ".join(sorted(date_words(note) - {"iso-date"}))
    expected = resolve_due(note, today)
    if expected is not None:
        # Judged by the date meant, not the words: "today" for a note saying "asap" is fine.
        if due != expected:
            raise ValueError(f"due_date {value!r} is {due.isoformat()}, but the note says "
                             f"{own}, which is {expected.isoformat()}")
    elif "iso-date" not in date_words(value) and not date_words(value) - {"day", "days"} \
            <= date_words(note):
        raise ValueError(f"due_date {value!r} is not in the note, whose date words are: "
                         f"{own}; use those, or null")
    if due < today:
        raise ValueError(f"due_date {due.isoformat()} is in the past (today is "
                         f"{today.isoformat()})")
    return due


def parse_proposal(text: str, note: str, today: date) -> TaskProposal:
    """Validate a model answer against the schema and the note; ``ValueError`` says what is
    wrong, in words the retry prompt can quote.

    >>> today = date(2025, 11, 26)
    >>> parse_proposal('{"title": "Buy milk", "due_date": "tomorrow", "priority": "low",'
    ...                ' "tags": ["Shopping"]}', "buy milk tomorrow", today)
    TaskProposal(title='Buy milk', description=None, due_date=datetime.date(2025, 11, 27), \
priority='low', tags=('shopping',))
    >>> parse_proposal('{"title": ""}', "x", today)
    Traceback (most recent call last):
    ...
    ValueError: title must be a non-empty string
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the answer is not valid JSON ({exc.args[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"the answer must be a JSON object, not {type(data).__name__}")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("title must be a non-empty string")
    priority = data.get("priority", "medium")
    if isinstance(priority, str):
        priority = priority.strip().lower()
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
    tags = normalize_tags(data.get("tags") or [])
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise ValueError("description must be a string or null")
    due = _check_due(data.get("due_date"), note, today)
    return TaskProposal(title=title, description=description, due_date=due,
                        priority=priority, tags=tags)


class TaskExtractor:
    """Extracts a `TaskProposal` from a note through ``client.chat`` (see the module doc)."""

    def __init__(self, client: ChatClient, *, model: str | None = None,
                 temperature: float = 0.0, max_tokens: int = 160, seed: int = 0,
                 today: Callable[[], date] = date.today) -> None:
        if not 0.0 <= temperature <= 0.3:
            # Above 0.3 the cached client would not cache extractions at all.
            raise ValueError(f"temperature must be within [0, 0.3], got {temperature}")
        self.client = client
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.today = today

    def _options(self) -> dict[str, Any]:
        return {"num_predict": self.max_tokens, "seed": self.seed}

    async def _ask(self, messages: list[dict[str, str]],
                   schema: Mapping[str, Any] = TASK_SCHEMA) -> AIResponse:
        kwargs: dict[str, Any] = {"format": schema, "options": self._options()}
        if self.model:
            kwargs["model"] = self.model
        return await self.client.chat(messages, temperature=self.temperature, **kwargs)

    def _forget(self, messages: list[dict[str, str]], answer: str,
                schema: Mapping[str, Any] = TASK_SCHEMA) -> None:
        """Drop a cached answer that is not JSON (best effort: any `CachedClient`)."""
        try:
            json.loads(answer)
            return
        except ValueError:
            pass
        prepare = getattr(self.client, "prepare_chat", None)
        store = getattr(self.client, "store", None)
        if prepare is None or store is None:
            return
        try:
            prep = prepare(messages, self.model, None, schema, self._options(),
                           self.temperature, None, {}, False)
            store.delete(prep.key)
        except Exception:  # the cache is an optimisation; never fail extraction over it
            logger.debug("could not drop an invalid cached answer", exc_info=True)

    async def extract(self, task_input: TaskInput) -> Extraction:
        """A validated proposal for the note; `ExtractionError` after two invalid answers.
        Backend errors (server down, timeouts) propagate unchanged."""
        note = task_input.text
        today = self.today()
        messages = build_messages(note, today)
        response = await self._ask(messages)
        try:
            return Extraction(parse_proposal(response.content, note, today), response, 1)
        except ValueError as exc:
            problem = str(exc)
        logger.info("invalid extraction for %r (%s); retrying once", note, problem)
        self._forget(messages, response.content)
        retry = messages + [
            {"role": "assistant", "content": response.content[:_MAX_ECHOED]},
            {"role": "user", "content": f"That answer is invalid: {problem}. Answer again "
                                        f"with only the corrected JSON for the note: {note}"}]
        schema = retry_schema(note, today)
        second = await self._ask(retry, schema)
        try:
            return Extraction(parse_proposal(second.content, note, today), second, 2)
        except ValueError as exc:
            self._forget(retry, second.content, schema)
            raise ExtractionError(
                f"the model gave no valid task for {note!r} in 2 attempts: {exc}",
                raw_output=second.content, attempts=2, problem=str(exc),
                cached=second.cached) from None
