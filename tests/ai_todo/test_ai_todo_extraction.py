"""Extraction rules, date resolution and the models' validation, without a server."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pytest
from ai_todo.dates import resolve_due
from ai_todo.extraction import ExtractionError, TaskExtractor, note_priority, parse_proposal
from ai_todo.models import Task, TaskInput, TaskProposal

from llmcache import AIResponse

WEDNESDAY = date(2025, 11, 26)


class Scripted:
    """A chat client that returns queued answers and records the messages it was sent."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.sent: list[list[Mapping[str, Any]]] = []

    async def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float | None = None,
        **kwargs: Any,
    ) -> AIResponse:
        assert temperature == 0.0 and kwargs["format"]["type"] == "object"
        self.sent.append(list(messages))
        return AIResponse(content=self.answers.pop(0), model="m")


def _answer(**fields: Any) -> str:
    base: dict[str, Any] = {"title": "Do it", "due_date": None, "priority": "medium", "tags": []}
    return json.dumps({**base, **fields})


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("today", "2025-11-26"),
        ("tomorrow", "2025-11-27"),
        ("by Friday", "2025-11-28"),
        ("Wednesday", "2025-12-03"),
        ("next week", "2025-12-03"),
        ("in 3 days", "2025-11-29"),
        ("Dec 24th", "2025-12-24"),
        ("March 1", "2026-03-01"),
        ("2026-01-05", "2026-01-05"),
        ("this weekend", "2025-11-29"),
        ("in the afternoon", "2025-11-26"),
    ],
)
def test_due_words_resolve(words: str, expected: str) -> None:
    assert resolve_due(words, WEDNESDAY) == date.fromisoformat(expected)


@pytest.mark.parametrize(
    ("note", "answer", "problem"),
    [
        ("buy milk", "{not json", "not valid JSON"),
        ("buy milk", "[1, 2]", "JSON object"),
        ("buy milk", _answer(title="  "), "title"),
        ("buy milk", _answer(priority="whenever"), "priority must be one of"),
        ("buy milk", _answer(tags="food"), "tags must be a list"),
        ("buy milk", _answer(title="x" * 201), "title is 201 characters"),
        ("buy milk on the 3rd", _answer(due_date="someday"), "is not a date"),
        ("buy milk on the 3rd", _answer(due_date="Friday"), "date words are: 3rd; use those"),
        ("pay on 2025-01-02", _answer(due_date="2025-01-02"), "in the past"),
    ],
)
def test_invalid_answers_are_refused_with_a_reason(note: str, answer: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_proposal(answer, note, WEDNESDAY)


@pytest.mark.parametrize(
    ("note", "due"),
    [
        ("call mom in the afternoon", "today"),
        ("finish report by Friday", "friday"),
        ("pay on the 3rd", "2025-12-03"),
    ],
)
def test_a_due_date_meaning_what_the_note_means_is_accepted(note: str, due: str) -> None:
    assert parse_proposal(_answer(due_date=due), note, WEDNESDAY).due_date is not None


@pytest.mark.parametrize(
    ("note", "answered", "expected"),
    [
        # The note names no date: none, whatever the model made up.
        ("buy milk", "2025-12-01", None),
        ("buy milk", "someday", None),
        ("review pull request urgent", "today", None),
        ("email them asap", "2025-11-26", None),
        # The note names one: that one, whatever the model said.
        ("buy milk tomorrow", "Friday", "2025-11-27"),
        ("buy milk tomorrow", None, "2025-11-27"),
        ("finish report by Friday", "2025-12-01", "2025-11-28"),
    ],
)
def test_the_due_date_is_the_one_the_note_names(
    note: str, answered: str | None, expected: str | None
) -> None:
    due = parse_proposal(_answer(due_date=answered), note, WEDNESDAY).due_date
    assert due == (date.fromisoformat(expected) if expected else None)


@pytest.mark.parametrize(
    ("note", "answered", "expected"),
    [
        ("water the plants", "urgent", "medium"),
        ("water the plants", "high", "medium"),
        ("water the plants", "low", "low"),
        ("review pull request urgent", "medium", "urgent"),
        ("email the client ASAP", "low", "urgent"),
        ("fix the server immediately", "medium", "urgent"),
        ("critical bug in billing", "high", "urgent"),
        ("pay rent, important", "urgent", "high"),
        ("not urgent: tidy the shed", "urgent", "low"),
        ("clean the garage someday", "high", "low"),
    ],
)
def test_priority_follows_the_note_not_the_model(note: str, answered: str, expected: str) -> None:
    assert parse_proposal(_answer(priority=answered), note, WEDNESDAY).priority == expected


def test_urgency_words_are_a_priority_not_a_date() -> None:
    assert note_priority("deploy the fix asap") == "urgent"
    assert resolve_due("asap", WEDNESDAY) is None and resolve_due("urgent", WEDNESDAY) is None


def test_valid_answer_is_normalised() -> None:
    proposal = parse_proposal(
        _answer(
            title=" Buy  milk ", due_date="2025-11-27", priority="LOW", tags=["#Food", "food", ""]
        ),
        "buy milk tomorrow",
        WEDNESDAY,
    )
    assert proposal == TaskProposal("Buy milk", None, date(2025, 11, 27), "low", ("food",))


async def test_one_retry_quotes_the_problem_then_succeeds() -> None:
    client = Scripted(_answer(title=""), _answer(title="Call mom"))
    extractor = TaskExtractor(client, today=lambda: WEDNESDAY)
    extraction = await extractor.extract(TaskInput("call mom"))
    assert extraction.attempts == 2 and extraction.proposal.title == "Call mom"
    first, retry = client.sent
    assert "Wednesday 2025-11-26" in first[0]["content"]  # "today" for relative dates
    assert retry[:-2] == first and "title must be a non-empty string" in retry[-1]["content"]
    assert retry[-1]["content"].endswith("for the note: call mom")


async def test_two_invalid_answers_raise_a_clear_error() -> None:
    client = Scripted("garbage", _answer(priority="meh"))
    with pytest.raises(ExtractionError, match="no valid task .* in 2 attempts") as info:
        await TaskExtractor(client).extract(TaskInput("call mom"))
    assert info.value.raw_output == _answer(priority="meh") and len(client.sent) == 2


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_input_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="the task text is empty"):
        TaskInput(text)


def test_raw_task_keeps_the_text_and_is_flagged() -> None:
    task = Task.from_raw(TaskInput("  a very long note " + "x" * 300), "model down")
    assert task.needs_review and task.review_note == "model down"
    assert task.raw_input.startswith("  a very long note") and len(task.title) == 200
    with pytest.raises(ValueError):
        Task(id="x", title="t", priority="critical")  # type: ignore[arg-type]
