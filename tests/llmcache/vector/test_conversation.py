"""Chats are matched by the facts of their whole history: reworded turns, chatter and
finished exchanges on other subjects may hit; another subject, another detail anywhere in
the history, or an opposite intent never does. Every chat here is written for this file.

The cache below takes every candidate (threshold -1), so the guards alone decide."""

from __future__ import annotations

from typing import Any

import pytest

from llmcache.keys import Request
from llmcache.vector._conversation import MAX_CHARS, chat_text, parse
from llmcache.vector.embedders import HashingEmbedder
from llmcache.vector.semantic import SemanticCache, split_request


def u(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


def a(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


def ask(cache: SemanticCache, messages: list[dict[str, Any]], **fields: Any) -> Any:
    hit = cache.get(Request(model="m", messages=messages, **fields), threshold=-1.0)
    return None if hit is None else hit.content


@pytest.fixture
def cache() -> SemanticCache:
    return SemanticCache(HashingEmbedder(), threshold=-1.0)


BREAD = [
    u("I'm baking sourdough bread at home."),
    a("Great, it takes some patience."),
    u("How long should the dough proof?"),
]
SINK = "How do I unclog a bathroom sink?"


# ------------------------------------------------------------------------- may hit


def test_chatter_anywhere_changes_nothing(cache: SemanticCache) -> None:
    cache.set(Request(model="m", messages=BREAD), "4 to 12 hours")
    chatty = [
        u("hello!"),
        a("Hi! How can I help?"),
        BREAD[0],
        BREAD[1],
        u("awesome, thanks"),
        a("Happy to help!"),
        BREAD[2],
    ]
    assert ask(cache, chatty) == "4 to 12 hours"
    assert (
        ask(cache, [*BREAD[:2], u("Thanks! How long should the dough proof?")]) == "4 to 12 hours"
    )


def test_a_finished_exchange_on_another_subject_changes_nothing(cache: SemanticCache) -> None:
    cache.set(Request(model="m", messages=[u("hey there"), a("Hi!"), u(SINK)]), "a plunger")
    other = [u("What's the capital of Canada?"), a("Ottawa."), u(SINK)]
    assert ask(cache, other) == "a plunger"
    assert ask(cache, [u(SINK)]) == "a plunger"  # no earlier turn at all
    hit = cache.get(Request(model="m", messages=other), threshold=-1.0)
    assert hit is not None and hit.matched_prompt == SINK


def test_a_reworded_last_question_hits(cache: SemanticCache) -> None:
    cache.set(Request(model="m", messages=BREAD), "4 to 12 hours")
    assert ask(cache, [*BREAD[:2], u("how long should the dough proof")]) == "4 to 12 hours"


# ---------------------------------------------------------------------- never hits


@pytest.mark.parametrize(
    "other",
    [
        # another subject before the same last question
        [
            u("I'm planning to learn the guitar."),
            a("Great, it takes some patience."),
            u("How long should the dough proof?"),
        ],
        # another detail: a number, a name, a date, in the user's turns or the assistant's
        [u("I'm baking sourdough bread at home at 2000 m."), BREAD[1], BREAD[2]],
        [u("I'm baking sourdough bread in Denver."), BREAD[1], BREAD[2]],
        [u("I'm baking sourdough bread on March 3."), BREAD[1], BREAD[2]],
        [BREAD[0], a("Great, keep it at 30 °C."), BREAD[2]],
        # the opposite intent
        [u("I'm baking sourdough bread at home, and I want it less sour."), BREAD[1], BREAD[2]],
        # history on one side only
        [BREAD[2]],
    ],
)
def test_another_history_never_hits(cache: SemanticCache, other: list[dict[str, str]]) -> None:
    cache.set(Request(model="m", messages=BREAD), "4 to 12 hours")
    assert ask(cache, other) is None


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        (
            [
                u("I'm painting my kitchen cabinets."),
                a("Fun project!"),
                u("How long will it take?"),
            ],
            [u("I'm learning the guitar."), a("Fun project!"), u("How long will it take?")],
        ),
        (
            [u("I want my coffee to taste stronger."), a("Okay."), u("What should I change?")],
            [u("I want my coffee to taste weaker."), a("Okay."), u("What should I change?")],
        ),
        (
            [u("I want to sell my bike."), a("Sure."), u("Where should I list it?")],
            [u("I want to buy a bike."), a("Sure."), u("Where should I list it?")],
        ),
        (
            [u("Who wrote Dune?"), a("Frank Herbert."), u("What else did he write?")],
            [u("Who wrote Emma?"), a("Jane Austen."), u("What else did he write?")],
        ),
        (
            [u("hi"), a("Hello!"), u("How much does it cost?")],
            [u("What's a good first car?"), a("A Honda Civic."), u("How much does it cost?")],
        ),
        (
            [u("Alice owes Bob $50."), a("Okay."), u("How can the money be paid back?")],
            [u("Bob owes Alice $50."), a("Okay."), u("How can the money be paid back?")],
        ),
    ],
)
def test_context_the_last_question_relies_on_is_compared(
    cache: SemanticCache, cached: list[dict[str, str]], query: list[dict[str, str]]
) -> None:
    cache.set(Request(model="m", messages=cached), "answer")
    assert ask(cache, query) is None
    assert ask(cache, cached) == "answer"


@pytest.mark.parametrize(
    "other",
    [
        {"system": "Answer in French"},
        {"model": "other"},
        {"namespace": "tenant-b"},
        {"options": {"temperature": 0.9}},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
    ],
)
def test_a_chat_never_crosses_its_scope(cache: SemanticCache, other: dict[str, Any]) -> None:
    cache.set(Request(model="m", messages=BREAD), "4 to 12 hours")
    fields = {"model": "m", **other}
    hit = cache.get(Request(messages=BREAD, **fields), threshold=-1.0)
    assert hit is None
    system = [{"role": "system", "content": "Be brief"}, *BREAD]
    assert ask(cache, system) is None  # a system message is part of the scope


# ----------------------------------------------------------------- the split itself


def test_chatter_that_answers_a_question_is_kept() -> None:
    chat = [
        u("Clean up my downloads folder."),
        a("Should I also empty the trash?"),
        u("ok"),
        a("Done."),
        u("How much space is free now?"),
    ]
    text = chat_text(chat)
    assert text is not None and "User: ok" in text[1]
    assert "Done." not in text[1]  # an assistant turn of chatter alone goes


def test_a_question_that_points_back_keeps_the_exchange() -> None:
    for last in (
        "Is it safe?",
        "Which one is cheaper?",
        "How tall is the tower?",
        "And in winter?",
        "How do I fix that?",
    ):
        found = chat_text(
            [u("What's the tallest building in Paris?"), a("Tour Montparnasse."), u(last)]
        )
        assert found is not None and found[1].startswith("User: What's the tallest"), last
    alone = chat_text(
        [
            u("What's the tallest building in Paris?"),
            a("Tour Montparnasse."),
            u("How do I make a paper plane that flies far?"),
        ]
    )
    assert alone == ([], "How do I make a paper plane that flies far?")


def test_statements_about_the_user_always_stay() -> None:
    found = chat_text(
        [
            u("I'm allergic to peanuts."),
            a("Noted, thanks for telling me."),
            u("What snacks can I pack for a long hike?"),
        ]
    )
    assert found is not None and found[1].startswith("User: I'm allergic to peanuts.")


@pytest.mark.parametrize(
    "messages",
    [
        [
            u("Weather?"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "1", "function": {"name": "w"}}],
            },
            {"role": "tool", "content": "sunny", "tool_call_id": "1"},
            u("Should I bring a coat?"),
        ],
        [{"role": "user", "content": "Hi", "name": "bob"}, u("How do I unclog a sink?")],
        [u("Hi"), {"role": "system", "content": "Be brief"}, u("How do I unclog a sink?")],
        [u("Hi"), a("Hello")],
        [u("x" * MAX_CHARS), a("ok"), u("And now?")],
    ],
)
def test_other_chats_keep_their_whole_history_in_the_scope(messages: list[dict[str, Any]]) -> None:
    assert chat_text(messages) is None
    split = split_request(Request(model="m", messages=messages).to_canonical())
    if split is not None:  # the old way: the earlier turns are the scope
        assert split[0]["\0kind"] == "chat" and len(split[0]["messages"]) == len(messages)


def test_transcripts_read_back() -> None:
    scope, text = chat_text(
        [
            {"role": "system", "content": "Be brief"},
            u("I'm vegan."),
            a("Noted. Any allergies?"),
            u("Nuts.\nWhat can I cook tonight?"),
        ]
    )  # type: ignore[misc]
    assert scope == [{"role": "system", "content": "Be brief"}]
    turns = parse(text)
    assert turns is not None and turns.user == ("I'm vegan.",)
    assert turns.assistant == ("Noted. Any allergies?",)
    assert turns.last == "Nuts. What can I cook tonight?"
    assert parse("How do I cook rice?") is None
    assert parse("User: a\nsomething else") is None
