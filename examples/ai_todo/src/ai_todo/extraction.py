"""Turning a note into a task with a model: a JSON schema, validation, one corrective retry.

The model is asked for JSON matching `TASK_SCHEMA` (Ollama's ``format`` takes the schema, and
a server that supports it, such as llama.cpp's grammar, can only emit that shape). The answer
is then checked here anyway — servers differ, and some ignore the schema — by
`parse_proposal`. Malformed or invalid output gets ONE retry whose prompt quotes the problem;
a second failure raises `ExtractionError` (the service then keeps the user's text as a task
flagged for review, and the command exits non-zero).

The fields a small model cannot be trusted with are decided by rules on the note, not by the
model (`note_priority`, `ai_todo.dates`): a task is ``urgent`` only when the note says so
(urgent, asap, immediately, critical...), ``high`` only when it says important; its due date
is the date the note names, and none when it names none.

Requests run at temperature 0 with a fixed seed: the same note on the same day is the same
request, so the cached client answers it from the cache. Only answers that pass
`parse_proposal` are ever cached: `TaskExtractor` puts the check in force while it asks, and
`CheckedBackend` (between the cache and the model) raises `InvalidAnswer` for an answer that
fails it, so the cache, which never stores a call that raised, never sees it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from ai_todo.dates import date_words, mentions_date, resolve_due
from ai_todo.models import PRIORITIES, Priority, TaskInput, TaskProposal, normalize_tags
from llmcache import AIResponse, AsyncBackend, EmbedResponse, StreamChunk

__all__ = [
    "TASK_SCHEMA",
    "ChatClient",
    "CheckedBackend",
    "Extraction",
    "ExtractionError",
    "InvalidAnswer",
    "TaskExtractor",
    "answer_check",
    "build_messages",
    "note_priority",
    "parse_proposal",
    "retry_schema",
]

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
    'words of the note such as "tomorrow" or "Friday", or YYYY-MM-DD, or null when the '
    "note names no date), priority (low, medium, high or urgent; medium unless the note "
    "says otherwise), tags (one to three lowercase topic words)."
)

# Worked examples as earlier turns of the chat: a 135M model follows examples far better
# than instructions (and copies them: the last ones name no date, so "no date" is what it
# copies by default, and the titles leave the date words out).
_EXAMPLES: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "text Anna in the evening",
        {"title": "Text Anna", "due_date": "evening", "priority": "medium", "tags": ["friends"]},
    ),
    (
        "pay rent on Monday, important",
        {"title": "Pay rent", "due_date": "Monday", "priority": "high", "tags": ["money"]},
    ),
    (
        "pick up the parcel tomorrow",
        {
            "title": "Pick up the parcel",
            "due_date": "tomorrow",
            "priority": "medium",
            "tags": ["errand"],
        },
    ),
    (
        "email the client asap",
        {"title": "Email the client", "due_date": None, "priority": "urgent", "tags": ["work"]},
    ),
    (
        "water the plants",
        {"title": "Water the plants", "due_date": None, "priority": "medium", "tags": ["garden"]},
    ),
)

_MAX_ECHOED = 400  # characters of a bad answer quoted back in the retry

# What the note must say for a priority above medium (or for low). Checked in this order:
# "not urgent" holds the word "urgent".
_PRIORITY_RULES: tuple[tuple[Priority, re.Pattern[str]], ...] = (
    (
        "low",
        re.compile(
            r"\b(low[- ]priority|not urgent|non-urgent|no rush|not important|"
            r"someday|eventually|whenever)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "urgent",
        re.compile(r"\b(urgent|urgently|asap|immediately|critical|emergency)\b", re.IGNORECASE),
    ),
    ("high", re.compile(r"\b(important|high[- ]priority)\b", re.IGNORECASE)),
)


class ChatClient(Protocol):
    """What extraction needs from a model client (an ``AsyncCachedOllamaClient`` fits)."""

    async def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float | None = ...,
        **kwargs: Any,
    ) -> AIResponse: ...


class ExtractionError(Exception):
    """The model gave no valid task in two attempts. ``raw_output`` is its last answer,
    ``problem`` what was wrong with it, ``cached`` whether it came from the cache."""

    def __init__(
        self,
        message: str,
        *,
        raw_output: str = "",
        attempts: int = 0,
        problem: str = "",
        cached: bool = False,
    ) -> None:
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
        words = sorted(
            w for w in date_words(note) if resolve_due(w, today) == expected and w != "iso-date"
        )
        props["due_date"] = {"anyOf": [{"type": "null"}, {"enum": [*words, expected.isoformat()]}]}
    return schema


def note_priority(note: str) -> Priority | None:
    """The priority the note's own words set, or None when they set none.

    >>> [note_priority(n) for n in ("review pull request urgent", "not urgent: tidy up",
    ...                             "pay rent, important", "buy milk")]
    ['urgent', 'low', 'high', None]
    """
    for level, pattern in _PRIORITY_RULES:
        if pattern.search(note):
            return level
    return None


def _check_due(value: Any, note: str, today: date) -> date | None:
    """The model's due date for a note whose date words `resolve_due` cannot resolve alone
    ("on the 3rd"): it must be a date, use the note's words or an ISO date, and not be past."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")):
        return None
    if not isinstance(value, str):
        raise ValueError(f"due_date must be a string or null, got {type(value).__name__}")
    due = resolve_due(value, today)
    if due is None:
        raise ValueError(
            f"due_date {value!r} is not a date: give YYYY-MM-DD, the note's own "
            'date words (like "tomorrow" or "Friday"), or null'
        )
    own = ", ".join(sorted(date_words(note) - {"iso-date"}))
    if "iso-date" not in date_words(value) and not date_words(value) - {
        "day",
        "days",
    } <= date_words(note):
        raise ValueError(
            f"due_date {value!r} is not in the note, whose date words are: "
            f"{own}; use those, or null"
        )
    if due < today:
        raise ValueError(
            f"due_date {due.isoformat()} is in the past (today is {today.isoformat()})"
        )
    return due


def _due(value: Any, note: str, today: date) -> date | None:
    """The date the note names, whatever the model answered; none when it names none."""
    if not mentions_date(note):
        return None
    named = resolve_due(note, today)
    if named is None:
        return _check_due(value, note, today)
    if named < today:
        raise ValueError(
            f"the note's date {named.isoformat()} is in the past (today is {today.isoformat()})"
        )
    return named


def parse_proposal(text: str, note: str, today: date) -> TaskProposal:
    """Validate a model answer against the schema and the note; ``ValueError`` says what is
    wrong, in words the retry prompt can quote. Priority and due date follow the note's
    words (`note_priority`, `ai_todo.dates`): the model's answer counts only where the note
    says nothing (a priority of low or medium) or more than the rules can read.

    >>> today = date(2025, 11, 26)
    >>> parse_proposal('{"title": "Buy milk", "due_date": "Friday", "priority": "urgent",'
    ...                ' "tags": ["Shopping"]}', "buy milk tomorrow", today)
    TaskProposal(title='Buy milk', description=None, due_date=datetime.date(2025, 11, 27), \
priority='medium', tags=('shopping',))
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
    stated = note_priority(note)
    if stated is not None:
        priority = stated
    elif priority in ("high", "urgent"):
        priority = "medium"  # nothing in the note ranks it above the default
    tags = normalize_tags(data.get("tags") or [])
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise ValueError("description must be a string or null")
    due = _due(data.get("due_date"), note, today)
    return TaskProposal(
        title=title, description=description, due_date=due, priority=priority, tags=tags
    )


# -- refusing invalid answers before the cache stores them ----------------------------------

_check: ContextVar[Callable[[str], object] | None] = ContextVar(
    "ai_todo_answer_check", default=None
)


@contextlib.contextmanager
def answer_check(check: Callable[[str], object]) -> Iterator[None]:
    """Put `check` in force for the model calls made inside the block: a `CheckedBackend`
    runs it on each answer's text and turns its ``ValueError`` into `InvalidAnswer`. Tasks
    started inside the block inherit it (it is a context variable)."""
    token = _check.set(check)
    try:
        yield
    finally:
        _check.reset(token)


class InvalidAnswer(Exception):
    """A model answer refused by the `answer_check` in force. Raised between the model and
    the cache, so the cache never stores it. ``response`` is the answer, ``problem`` what is
    wrong with it."""

    def __init__(self, problem: str, response: AIResponse) -> None:
        super().__init__(problem)
        self.problem = problem
        self.response = response


class CheckedBackend(AsyncBackend):
    """`backend` whose ``chat`` and ``generate`` answers must pass the `answer_check` in force
    (none: every answer passes). Wrapped by a caching client, it is the check's place: after
    the model, before the store. Streams and embeddings pass through unchecked."""

    def __init__(self, backend: AsyncBackend) -> None:
        self.backend = backend
        self.model = backend.model

    @staticmethod
    def _checked(response: AIResponse) -> AIResponse:
        check = _check.get()
        if check is not None:
            try:
                check(response.content)
            except ValueError as exc:
                raise InvalidAnswer(str(exc), response) from None
        return response

    async def generate(self, prompt: str, **kwargs: Any) -> AIResponse:
        return self._checked(await self.backend.generate(prompt, **kwargs))

    async def chat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> AIResponse:
        return self._checked(await self.backend.chat(messages, **kwargs))

    async def generate_stream(self, prompt: str, **kwargs: Any) -> AsyncIterator[StreamChunk]:
        async for chunk in self.backend.generate_stream(prompt, **kwargs):
            yield chunk

    async def chat_stream(
        self, messages: Sequence[Mapping[str, Any]], **kwargs: Any
    ) -> AsyncIterator[StreamChunk]:
        async for chunk in self.backend.chat_stream(messages, **kwargs):
            yield chunk

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        return await self.backend.embed(texts, model=model)

    async def aclose(self) -> None:
        await self.backend.aclose()


@dataclass(frozen=True)
class _Refused:
    answer: str
    problem: str
    cached: bool


class TaskExtractor:
    """Extracts a `TaskProposal` from a note through ``client.chat`` (see the module doc).
    With a client over a `CheckedBackend`, invalid answers never reach its cache."""

    def __init__(
        self,
        client: ChatClient,
        *,
        model: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 160,
        seed: int = 0,
        today: Callable[[], date] = date.today,
    ) -> None:
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

    async def _ask(
        self, messages: list[dict[str, str]], schema: Mapping[str, Any] = TASK_SCHEMA
    ) -> AIResponse:
        kwargs: dict[str, Any] = {"format": schema, "options": self._options()}
        if self.model:
            kwargs["model"] = self.model
        return await self.client.chat(messages, temperature=self.temperature, **kwargs)

    async def _attempt(
        self,
        messages: list[dict[str, str]],
        schema: Mapping[str, Any],
        note: str,
        today: date,
        attempt: int,
    ) -> Extraction | _Refused:
        with answer_check(lambda text: parse_proposal(text, note, today)):
            try:
                response = await self._ask(messages, schema)
            except InvalidAnswer as exc:
                return _Refused(exc.response.content, exc.problem, cached=False)
        try:
            return Extraction(parse_proposal(response.content, note, today), response, attempt)
        except ValueError as exc:
            # A client without the check, or an entry cached before it: refused all the same.
            return _Refused(response.content, str(exc), cached=response.cached)

    async def extract(self, task_input: TaskInput) -> Extraction:
        """A validated proposal for the note; `ExtractionError` after two invalid answers.
        Backend errors (server down, timeouts) propagate unchanged."""
        note = task_input.text
        today = self.today()
        messages = build_messages(note, today)
        first = await self._attempt(messages, TASK_SCHEMA, note, today, 1)
        if isinstance(first, Extraction):
            return first
        logger.info("invalid extraction for %r (%s); retrying once", note, first.problem)
        retry = messages + [
            {"role": "assistant", "content": first.answer[:_MAX_ECHOED]},
            {
                "role": "user",
                "content": f"That answer is invalid: {first.problem}. Answer "
                f"again with only the corrected JSON for the note: "
                f"{note}",
            },
        ]
        second = await self._attempt(retry, retry_schema(note, today), note, today, 2)
        if isinstance(second, Extraction):
            return second
        raise ExtractionError(
            f"the model gave no valid task for {note!r} in 2 attempts: {second.problem}",
            raw_output=second.answer,
            attempts=2,
            problem=second.problem,
            cached=second.cached,
        )
