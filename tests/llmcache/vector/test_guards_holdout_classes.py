"""The two classes of trap the adversarial holdout got past the guards with: quoting and
shell sigils in code ("echo $PATH" / "echo '$PATH'"), and a lone single letter ("the y
key" / "the p key"). Every sentence here is written for this file (none is in the labeled
sets), each class with paraphrases of the same shape that must still pass."""

from __future__ import annotations

import pytest

from llmcache.vector import __all__ as vector_all
from llmcache.vector._scope import SOFT_GUARDS, judge
from llmcache.vector._symbols import letters
from llmcache.vector.guards import (
    HistoryGuard,
    OrderGuard,
    SymbolGuard,
    default_guards,
    first_veto,
)

# ------------------------------------------------------------------ quoting, sigils


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What does `echo $HOME` output?", "What does `echo '$HOME'` output?"),
        ('What does `echo "$USER"` show?', "What does `echo '$USER'` show?"),
        ("What does `ls *.txt` match?", "What does `ls '*.txt'` match?"),
        ("What does printf $SHELL print?", "What does printf '$SHELL' print?"),
        ("Is `${name}` expanded here?", "Is `'${name}'` expanded here?"),
    ],
)
def test_quoting_or_a_sigil_in_code_is_a_difference(a: str, b: str) -> None:
    assert SymbolGuard().veto(a, b) is not None
    assert SymbolGuard().veto(b, a) is not None
    assert first_veto(default_guards(), a, b) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What does `echo $HOME` output?", "what does `echo $HOME` print"),
        ("Why is `echo '$HOME'` literal?", "Why does `echo '$HOME'` print it literally?"),
        ("Is $5 a fair tip?", "Is 5 dollars a fair tip?"),
        ("What does `ls -lh` show?", "What does `ls -hl` show?"),
    ],
)
def test_the_same_quoting_passes(a: str, b: str) -> None:
    assert SymbolGuard().veto(a, b) is None
    assert SymbolGuard().veto(b, a) is None


# ------------------------------------------------------------------ single letters


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What does the w key do in vim?", "What does the b key do in vim?"),
        ("Is hepatitis e contagious?", "Is hepatitis b contagious?"),
        ("Solve for x in 3x + 2 = 11", "Solve for y in 3x + 2 = 11"),
        ("What is plan b?", "What is plan c?"),
        ("Press ctrl and z to undo?", "Press ctrl and y to undo?"),
        ("Is column k sorted?", "Is column j sorted?"),
    ],
)
def test_a_lone_letter_on_one_side_only_is_a_difference(a: str, b: str) -> None:
    assert SymbolGuard().veto(a, b) is not None
    assert SymbolGuard().veto(b, a) is not None
    assert first_veto(default_guards(), a, b) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What does the w key do in vim?", "In vim, what does pressing w do?"),
        ("I don't know what it's for", "I do not know what it is for"),  # n't, 's
        ("Is a t-test right here?", "Is the t-test right here?"),  # joined by a hyphen
        ("Is it 5 m or 5 km?", "Is it 5 m or 5 km"),
        ("What does e.g. mean?", "What does e.g. stand for?"),
        ("Can I ask a question?", "may i ask one question"),  # article, pronoun
        ("Meet at 9 a.m. in the U.S. office", "Meet at 9 a.m. in the U.S. office"),
        ("Run it at 5 o'clock", "Run it at five o'clock"),
    ],
)
def test_letters_in_words_articles_and_abbreviations_pass(a: str, b: str) -> None:
    assert SymbolGuard().veto(a, b) is None
    assert SymbolGuard().veto(b, a) is None


def test_letters_reads_lone_letters_only() -> None:
    assert letters("Does the Y key yank in vim, or p?") == frozenset({"y", "p"})
    assert letters("I can't see a t-shirt, e.g. in 5 m") == frozenset()


# ------------------------------------------------------------------ with a judge


class _Named(SymbolGuard):
    """A guard that always vetoes, under a name chosen per test."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]

    def veto(self, cached: str, query: str) -> str | None:
        return "always"


def test_a_soft_veto_goes_to_the_judge_only_when_no_hard_guard_vetoes() -> None:
    soft = sorted(SOFT_GUARDS)[0]
    hard = "numbers"
    assert hard not in SOFT_GUARDS
    # The soft guard runs first: a hard guard after it still has the last word.
    both = judge([_Named(soft), _Named(hard)], "k", "a", "b", 0.9, 0.7, True, None)
    assert both.veto is not None and both.veto[0] == hard and not both.verify
    alone = judge([_Named(soft)], "k", "a", "b", 0.9, 0.7, True, None)
    assert alone.verify


def test_the_new_guards_are_exported() -> None:
    for name in ("HistoryGuard", "OrderGuard", "QuantifierGuard", "SymbolGuard"):
        assert name in vector_all
    assert list(vector_all) == sorted(vector_all)


def _transcript(*turns: str) -> str:
    return "\n".join(turns)


def test_a_chat_about_another_subject_is_not_judged() -> None:
    # Another history and a reworded last question: only the scope guard vetoes (softly),
    # and the similarity is low, as it is when a history is about something else.
    a = _transcript("User: I want to repaint my fence.", "User: What should I buy first?")
    b = _transcript("User: I am adopting a parrot.", "User: What do I need to get first?")
    guards = default_guards()
    vetoes = {g.name for g in guards if g.veto(a, b) is not None}
    assert vetoes and vetoes <= SOFT_GUARDS
    low = judge(guards, "k", a, b, 0.6, 0.7, True, None)
    assert low.veto is not None and not low.verify
    # A reworded history scores high: the judge is asked, as before.
    high = judge(guards, "k", a, b, 0.9, 0.7, True, None)
    assert high.verify
    # A question (no earlier turns) is judged at any similarity in the grey zone.
    q = judge(
        guards,
        "k",
        "How do I cook rice?",
        "How do I cook rice in a microwave?",
        0.6,
        0.7,
        True,
        None,
    )
    assert q.verify


# ------------------------------------------------------------------ chats: history


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (  # the goal turned around
            _transcript("User: I want my tea to taste sweeter.", "User: How long should it steep?"),
            _transcript("User: I want my tea to taste milder.", "User: How long should it steep?"),
        ),
        (  # another subject, the same follow-up
            _transcript(
                "User: I'm thinking of adopting a greyhound.",
                "Assistant: They are gentle dogs.",
                "User: Is it a good idea?",
            ),
            _transcript(
                "User: I'm thinking of refinancing my mortgage.",
                "Assistant: Rates have moved a lot.",
                "User: Is it a good idea?",
            ),
        ),
    ],
)
def test_the_same_follow_up_after_a_changed_history_is_a_hard_veto(a: str, b: str) -> None:
    assert HistoryGuard().veto(a, b) is not None
    assert HistoryGuard().veto(b, a) is not None
    assert "history" not in SOFT_GUARDS
    assert not judge(default_guards(), "k", a, b, 0.95, 0.7, True, None).verify


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (  # chatter added: the history grew, nothing in it changed
            _transcript(
                "User: How do I descale a kettle?", "Assistant: Use vinegar.", "User: How often?"
            ),
            _transcript(
                "User: How do I descale a kettle?",
                "Assistant: Use vinegar.",
                "User: great, thanks",
                "Assistant: Welcome!",
                "User: How often?",
            ),
        ),
        (  # a fact added, nothing replaced
            _transcript("User: My bike chain squeaks.", "User: What should I use on it?"),
            _transcript("User: My road bike chain squeaks.", "User: What should I use on it?"),
        ),
        (  # another last question: the scope guard's (soft) call
            _transcript("User: I bake sourdough.", "User: How warm should the dough be?"),
            _transcript("User: I make sourdough bread.", "User: What temperature for the dough?"),
        ),
        ("How do I descale a kettle?", "How do I descale a kettle?"),  # not chats
    ],
)
def test_a_grown_history_or_another_question_is_not_a_history_veto(a: str, b: str) -> None:
    assert HistoryGuard().veto(a, b) is None
    assert HistoryGuard().veto(b, a) is None


# ------------------------------------------------------------------ chats: order


def test_facts_moved_within_a_reworded_earlier_turn_go_to_the_judge() -> None:
    # From conversation_pairs.jsonl (reworded): "Rome ... April" / "April ... Rome" in the
    # first user turn reads as a role swap, though the turn was only reworded.
    a = _transcript(
        "User: I'm visiting Rome for three days in April.",
        "Assistant: Lovely time to go. What are you interested in?",
        "User: Mostly ancient history. What should I see?",
    )
    b = _transcript(
        "User: In April I'll spend 3 days in Rome.",
        "Assistant: Great season for it. What do you like?",
        "User: Ancient history, mainly. What are the must-sees?",
    )
    assert OrderGuard().veto(a, b) is not None
    for x, y in ((a, b), (b, a)):
        judged = judge(default_guards(), "k", x, y, 0.9, 0.7, True, None)
        assert judged.veto is not None and judged.veto[0] == "order" and judged.verify
        # Without a judge nothing changes: the veto stands.
        alone = judge(default_guards(), "k", x, y, 0.9, 0.7, False, None)
        assert alone.veto is not None and alone.veto[0] == "order" and not alone.verify
    # Below the floor of chats the histories are about other things: not judged.
    assert not judge(default_guards(), "k", a, b, 0.6, 0.7, True, None).verify


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (  # the last question swapped
            _transcript("User: I'm reading about the Punic wars.", "User: Did Rome beat Carthage?"),
            _transcript("User: I'm reading about the Punic wars.", "User: Did Carthage beat Rome?"),
        ),
        (  # the same words of an earlier turn in other places: a swap, not a rewording
            _transcript(
                "User: My son is taller than my daughter.", "User: Who needs the bigger bike?"
            ),
            _transcript(
                "User: My daughter is taller than my son.", "User: Who needs the bigger bike?"
            ),
        ),
        (  # ... with a word contracted
            _transcript(
                "User: My son is taller than my daughter.", "User: Who needs the bigger bike?"
            ),
            _transcript(
                "User: My daughter's taller than my son.", "User: Who needs the bigger bike?"
            ),
        ),
    ],
)
def test_a_swap_in_the_last_question_or_in_unchanged_words_stays_a_hard_veto(
    a: str, b: str
) -> None:
    assert OrderGuard().veto(a, b) is not None
    for x, y in ((a, b), (b, a)):
        assert not OrderGuard().judgeable(x, y)
        assert not judge(default_guards(), "k", x, y, 0.95, 0.7, True, None).verify


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        ("What does `user ?? name` give in C#?", "What does `user?.name` give in C#?"),
        ("Is `1..10` inclusive in Ruby?", "Is `1...10` inclusive in Ruby?"),
        ("What does `@cache` do above a function?", "What does `cache` do above a function?"),
        ("What is `x: int` in Python?", "What is `x, int` in Python?"),
    ],
)
def test_punctuation_in_code_is_syntax(cached: str, query: str) -> None:
    assert SymbolGuard().veto(cached, query) is not None


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        ("What does `cd ..` do?", "What does `cd ../` do?"),
        ("What is `f(1, 2)` here?", "What is `f(1,2)` here?"),
        ("Done. What does `ls -la` show?", "Done! What does `ls -la` show?"),
    ],
)
def test_the_same_code_with_other_spacing_passes(cached: str, query: str) -> None:
    assert SymbolGuard().veto(cached, query) is None
