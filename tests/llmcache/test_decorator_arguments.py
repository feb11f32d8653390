"""Arguments are checked where the user passes them (issue 13, findings 8 and 9).

Errors name the argument, the function and the fix; what cannot be cached (a lone
surrogate) is a counted bypass; a semantic request keeps every argument that can change
the answer, and an argument that disagrees with ``options`` is an error.
"""

from __future__ import annotations

import enum
from typing import Any

import pytest

from llmcache import CachePolicy, MemoryStore, cached_generate
from llmcache.vector import SemanticCache
from llmcache.vector.embedders import HashingEmbedder


def _generate(store: MemoryStore | None = None, **options: Any) -> tuple[Any, list[str]]:
    calls: list[str] = []

    @cached_generate(cache=store, namespace="arguments", **options)  # it captures `calls`
    def generate(
        prompt: str,
        model: str = "m",
        temperature: float = 0.0,
        options: dict[str, Any] | None = None,
    ) -> str:
        calls.append(prompt)
        return f"{model}:{prompt}"

    return generate, calls


@pytest.mark.parametrize("bad", ["0.0", [0.0], True])
def test_a_temperature_that_is_not_a_number_is_named(bad: Any) -> None:
    generate, _ = _generate()
    with pytest.raises(TypeError, match=r"generate.*temperature.*a number.*0\.0"):
        generate("x", temperature=bad)
    with pytest.raises(TypeError, match=r"generate.*temperature.*a number"):
        generate("x", options={"temperature": bad})


def test_the_policy_itself_names_a_bad_temperature() -> None:
    with pytest.raises(TypeError, match=r"temperature.*a number.*str"):
        CachePolicy().cacheable(temperature="0.0")  # type: ignore[arg-type]


def test_an_unknown_keyword_names_the_function() -> None:
    generate, _ = _generate()
    with pytest.raises(TypeError, match=r"_generate\.<locals>\.generate.*'seed'"):
        generate("x", seed=1)
    with pytest.raises(TypeError, match=r"generate.*missing.*'prompt'"):
        generate()


def test_an_unkeyable_argument_names_the_function_and_key() -> None:
    @cached_generate
    def f(prompt: str, client: Any = None) -> str:
        return "x"

    with pytest.raises(TypeError, match=r"\bf\b.*args\.client.*object.*key="):
        f("x", client=object())


def test_a_lone_surrogate_is_a_counted_bypass() -> None:
    store = MemoryStore()
    generate, calls = _generate(store)
    assert generate("bad \ud800 text") == "m:bad \ud800 text"
    assert generate("bad \ud800 text") == "m:bad \ud800 text"
    assert len(calls) == 2 and len(store) == 0
    assert generate.cache_counters()["bypasses"] == 2
    assert generate.cache_info().misses == 0


def test_a_temperature_argument_that_disagrees_with_options_is_an_error() -> None:
    generate, calls = _generate()
    with pytest.raises(ValueError, match=r"temperature=0\.25.*options\['temperature'\]=0"):
        generate("x", temperature=0.25, options={"temperature": 0})
    assert calls == []
    assert generate("x", temperature=0.0, options={"temperature": 0}) == "m:x"
    # A default is not something the caller said: options win over it, as before.
    assert generate("x", options={"temperature": 0.9}) == "m:x"
    assert generate("x", options={"temperature": 0.9}) == "m:x"
    assert len(calls) == 3  # 0.9 is above the threshold: not cached


# -- the semantic request (finding 9) ----------------------------------------------------


def _semantic(**options: Any) -> tuple[Any, list[tuple[str, Any]]]:
    calls: list[tuple[str, Any]] = []

    @cached_generate(
        semantic=SemanticCache(HashingEmbedder(), threshold=0.6), namespace="semantic", **options
    )  # it captures `calls`
    def answer(
        prompt: str,
        model: Any = "m",
        temperature: float | None = None,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> str:
        calls.append((prompt, model))
        return f"{model!r}:{prompt}"

    return answer, calls


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"name": "a"}, {"name": "b"}),
        (["a"], ["b"]),
        (1, 2),
        ("a", {"name": "a"}),
    ],
)
def test_a_model_that_is_not_a_string_keeps_its_value(one: Any, other: Any) -> None:
    answer, calls = _semantic()
    answer("How do I reverse a list in Python?", model=one)
    assert (
        answer("how do i reverse a list in python", model=other)
        == f"{other!r}:how do i reverse a list in python"
    )
    assert len(calls) == 2
    assert (
        answer("how do i reverse a list in python?", model=one)
        == f"{one!r}:How do I reverse a list in Python?"
    )  # and a paraphrase still hits


class _Model(str, enum.Enum):
    SMALL = "small"
    LARGE = "large"


class _Plain(enum.Enum):
    SMALL = 1
    LARGE = 2


@pytest.mark.parametrize("kind", [_Model, _Plain])
def test_an_enum_model_works_and_keeps_models_apart(kind: Any) -> None:
    answer, calls = _semantic()
    answer("How do I reverse a list in Python?", model=kind.SMALL)
    answer("how do i reverse a list in python", model=kind.LARGE)
    assert len(calls) == 2
    answer("how do i reverse a list in python?", model=kind.SMALL)
    assert len(calls) == 2


@pytest.mark.parametrize("name", ["temperature", "seed"])
@pytest.mark.parametrize("policy", [None, CachePolicy(temperature_threshold=None)])
def test_a_sampling_argument_that_disagrees_with_options_is_an_error(
    name: str, policy: CachePolicy | None
) -> None:
    answer, calls = _semantic(policy=policy)
    answer("How do I reverse a list in Python?", options={name: 0})
    with pytest.raises(ValueError, match=rf"{name}=0\.25.*options\['{name}'\]=0"):
        answer("how do i reverse a list in python", **{name: 0.25}, options={name: 0})
    assert len(calls) == 1


def test_a_sampling_argument_changes_the_semantic_scope() -> None:
    answer, calls = _semantic(policy=CachePolicy(temperature_threshold=None))
    answer("How do I reverse a list in Python?", temperature=0)
    answer("how do i reverse a list in python", temperature=0.25)
    assert len(calls) == 2
