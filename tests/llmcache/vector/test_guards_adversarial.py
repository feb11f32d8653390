"""The guards against traps written to get past word-and-number checks: swapped roles,
operators and code tokens, quantifiers, scaled numbers, single letters. Every pair here is
written for this file (none comes from the labeled sets), with a paraphrase of the same
shape that must still pass, so a guard that refuses everything fails too."""

from __future__ import annotations

import pytest

from llmcache.vector._numbers import extract_numbers
from llmcache.vector.guards import (
    AntonymGuard,
    EntityGuard,
    NumberGuard,
    OrderGuard,
    QuantifierGuard,
    ScopeGuard,
    SymbolGuard,
    default_guards,
    first_veto,
)

# --------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Did France invade Spain?", "Did Spain invade France?"),
        ("Can a landlord evict a tenant for noise?", "Can a tenant evict a landlord for noise?"),
        ("Does the cat fear the mouse?", "Does the mouse fear the cat?"),
        ("Is every doctor a scientist?", "Is every scientist a doctor?"),
        ("Does the invoice belong to the customer?", "Does the customer belong to the invoice?"),
        ("Why does my puppy bite my kitten?", "Why does my kitten bite my puppy?"),
        ("How do I rebase main onto develop?", "How do I rebase develop onto main?"),
        ("Is Oslo north of Stockholm?", "Is Stockholm north of Oslo?"),
        ("How do I merge develop into main?", "How do I merge main into develop?"),
        ("Is Java slower than Go?", "Is Go slower than Java?"),  # no converse without opposites
    ],
)
def test_order_vetoes_swapped_roles(a: str, b: str) -> None:
    assert OrderGuard().veto(a, b) is not None
    assert OrderGuard().veto(b, a) is not None
    assert first_veto(default_guards(), a, b) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("In Rust, how do I parse JSON?", "How do I parse JSON in Rust?"),
        (
            "What's the difference between Vue and React?",
            "What's the difference between React and Vue?",
        ),
        ("Can I mix vinegar and baking soda?", "Can I mix baking soda and vinegar?"),
        (
            "If it rains tomorrow, should I cancel the picnic?",
            "Should I cancel the picnic if it rains tomorrow?",
        ),
        ("How many wheels does a tricycle have?", "A tricycle has how many wheels?"),
    ],
)
def test_order_passes_moved_clauses_and_symmetric_words(a: str, b: str) -> None:
    assert OrderGuard().veto(a, b) is None
    assert OrderGuard().veto(b, a) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Is Java slower than Go?", "Is Go faster than Java?"),
        (
            "Did the Bronze Age come before the Iron Age?",
            "Did the Iron Age come after the Bronze Age?",
        ),
        ("Is a horse bigger than a pony?", "Is a pony smaller than a horse?"),
    ],
)
def test_a_converse_comparison_asks_the_same(a: str, b: str) -> None:
    # The roles swap and the comparison turns over: the same question, for both guards.
    assert OrderGuard().veto(a, b) is None
    assert AntonymGuard().veto(a, b) is None
    assert AntonymGuard().veto(b, a) is None
    # ... but only both together: one change alone is a trap.
    assert (
        AntonymGuard().veto(
            a, a.replace("slower", "faster").replace("before", "after").replace("bigger", "smaller")
        )
        is not None
    )


# ------------------------------------------------------------------ operators, code


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is 7 * 6?", "What is 7 + 6?"),
        ("What is 20 / 5 * 2?", "What is 20 / (5 * 2)?"),
        ("Solve 2y - 3 = 9", "Solve 2y + 3 = 9"),
        ("Solve 8 - y = 2", "Solve y - 8 = 2"),
        ("What does y-- return in Java?", "What does --y return in Java?"),
        ("Is null == undefined in JavaScript?", "Is null === undefined in JavaScript?"),
        ("What does chmod +w do?", "What does chmod -w do?"),
        ("What does `|` do in bash?", "What does `||` do in bash?"),
        ("Is a 7 % 2 check odd?", "Is a 7 // 2 check odd?"),
        ("Is C# garbage collected?", "Is C garbage collected?"),
        ("Is a C+ a passing grade?", "Is a C- a passing grade?"),
        ("What is 4!?", "What is 4!!?"),
    ],
)
def test_symbols_veto_other_operators_and_code_tokens(a: str, b: str) -> None:
    assert SymbolGuard().veto(a, b) is not None
    assert SymbolGuard().veto(b, a) is not None
    assert first_veto(default_guards(), a, b) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What's 12 + 30?", "What's 30 + 12?"),  # commutative
        ("What is 6 * 7?", "What's 7 × 6?"),
        ("What is 21 divided by 7?", "What's 21 / 7?"),
        ("What's 50 minus 8?", "What's 50 - 8?"),
        ("What is two to the power of ten?", "What's 2^10?"),
        ("What does `ls -lh` show?", "What does `ls -hl` show?"),  # bundled short flags
        ("How do I use `tar -x -z`?", "How do I use `tar -xz`?"),
        ("Quick question - how do I boil an egg?", "How do I boil an egg?"),  # a dash, in prose
        ("Can I use C++ for games?", "Is C++ good for making games?"),
    ],
)
def test_symbols_pass_the_same_formula(a: str, b: str) -> None:
    assert SymbolGuard().veto(a, b) is None
    assert SymbolGuard().veto(b, a) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What's 12 + 30?", "What's 30 + 12?"),
        ("What is 6 * 7?", "What's 7 × 6?"),
        ("What is 21 divided by 7?", "What's 21 / 7?"),
        ("What is two to the power of ten?", "What's 2^10?"),
        ("What does `ls -lh` show?", "What does `ls -hl` show?"),
    ],
)
def test_the_same_formula_passes_every_default_guard(a: str, b: str) -> None:
    assert first_veto(default_guards(), a, b) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Should my site use http?", "Should my site use https?"),
        ("Which port does ftp use?", "Which port does ftps use?"),
    ],
)
def test_secure_protocol_names_are_not_plurals(a: str, b: str) -> None:
    assert ScopeGuard().veto(a, b) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("When do I use an F-test?", "When do I use a t-test?"),
        ("What's an x-axis?", "What's a y-axis?"),
    ],
)
def test_single_letters_joined_to_a_word_are_names(a: str, b: str) -> None:
    assert EntityGuard().veto(a, b) is not None


# ---------------------------------------------------------------------- quantifiers


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Are all snakes venomous?", "Are any snakes venomous?"),
        ("Does every country have a flag?", "Does any country have a flag?"),
        ("Do all students need a laptop?", "Do most students need a laptop?"),
        ("Must both partners sign the lease?", "Must either partner sign the lease?"),
        ("Is every integer positive?", "Is at least one integer positive?"),
    ],
)
def test_quantifiers_veto(a: str, b: str) -> None:
    assert QuantifierGuard().veto(a, b) is not None
    assert QuantifierGuard().veto(b, a) is not None
    assert first_veto(default_guards(), a, b) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Are all dogs mammals?", "Is every dog a mammal?"),
        ("Is there any gluten-free option?", "Is there at least one gluten-free option?"),
        ("Any tips for growing basil?", "How do I grow basil?"),  # "any" on one side only
        ("Do any of my tasks have a due date?", "Do some of my tasks have a due date?"),
        ("Is it safe at all?", "Is it safe?"),
    ],
)
def test_quantifiers_pass(a: str, b: str) -> None:
    assert QuantifierGuard().veto(a, b) is None
    assert QuantifierGuard().veto(b, a) is None


def test_at_least_one_is_a_quantifier_not_a_number() -> None:
    assert (
        NumberGuard().veto(
            "Is there any gluten-free option?", "Is there at least one gluten-free option?"
        )
        is None
    )
    assert NumberGuard().veto("at least one", "at least two") is not None


# ------------------------------------------------------------------ scaled numbers


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How many zeros does a trillion have?", "How many zeros does a billion have?"),
        ("Is 3 million a lot of followers?", "Is 3 thousand a lot of followers?"),
        ("What's 2 percent of a million?", "What's 2 percent of a billion?"),
        (
            "Can I buy a car for a few thousand dollars?",
            "Can I buy a car for a few hundred dollars?",
        ),
        ("Is 20 lakh a good salary?", "Is 20 crore a good salary?"),
    ],
)
def test_scale_words_scale_the_number(a: str, b: str) -> None:
    assert NumberGuard().veto(a, b) is not None
    assert NumberGuard().veto(b, a) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What's 4 million divided by 2?", "What's 4,000,000 / 2?"),
        ("Is 2.5 billion a lot?", "Is 2,500,000,000 a lot?"),
        ("a hundred", "100"),
        ("one thousand", "1000"),
        ("two hundred thousand", "200,000"),
    ],
)
def test_scale_words_equal_their_value(a: str, b: str) -> None:
    assert extract_numbers(a) == extract_numbers(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("my 4-year-old son", "my son is four"),
        ("a seven-year-old laptop", "a laptop that is 7 years old"),
        ("a 20-million-row table", "a table with 20 million rows"),
        ("I swim 2 km a week", "I swim 2 km per week"),
        ("I save $300 a month", "I save $300 every month"),
        ("twenty-five", "25"),
    ],
)
def test_numbers_written_another_way_are_equal(a: str, b: str) -> None:
    assert extract_numbers(a) == extract_numbers(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("I swim 2 km a week", "I swim 2 km a day"),
        ("my 4-year-old son", "my 5-year-old son"),
    ],
)
def test_numbers_written_another_way_still_differ(a: str, b: str) -> None:
    assert NumberGuard().veto(a, b) is not None
