"""A decorated function's identity in the key (issue 13, finding 1).

Two functions that can answer differently for the same arguments never share an entry:
closures with other captured values, lambdas, nested functions with one qualified name,
partials with other bound arguments. A module-level function keeps its identity across a
restart. Where the identity cannot be derived (a captured client object, a bound method),
decorating raises a TypeError naming the function and the fix, unless ``key=`` or
``namespace=`` was given or the store is the decorator's own.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from llmcache import MemoryStore, cached_generate


def _style(style: str, store: MemoryStore) -> Any:
    @cached_generate(cache=store)
    def say(prompt: str) -> str:
        return f"[{style}] {prompt}"

    return say


def test_closures_with_other_captured_values_never_share_an_entry() -> None:
    store = MemoryStore()
    assert _style("pirate", store)("hello") == "[pirate] hello"
    assert _style("formal", store)("hello") == "[formal] hello"
    again = _style("pirate", store)
    assert again("hello") == "[pirate] hello"
    assert again.cache_info().hits == 1  # the same captured value: the same function


def test_two_lambdas_never_share_an_entry() -> None:
    store = MemoryStore()
    first = cached_generate(cache=store)(lambda prompt: "first")
    second = cached_generate(cache=store)(lambda prompt: "second")
    assert (first("x"), second("x")) == ("first", "second")


def _nested(which: int, store: MemoryStore) -> Any:
    if which == 1:

        def answer(prompt: str) -> str:
            return "one"
    else:

        def answer(prompt: str) -> str:
            return "two"

    return cached_generate(cache=store)(answer)


def test_nested_functions_with_one_qualname_never_share_an_entry() -> None:
    store = MemoryStore()
    assert (_nested(1, store)("x"), _nested(2, store)("x")) == ("one", "two")


def _render(style: str, prompt: str, *, suffix: str = "") -> str:
    return f"[{style}] {prompt}{suffix}"


def test_partials_with_other_bound_arguments_never_share_an_entry() -> None:
    store = MemoryStore()
    pirate = cached_generate(cache=store)(functools.partial(_render, "pirate"))
    formal = cached_generate(cache=store)(functools.partial(_render, "formal"))
    assert (pirate("x"), formal("x")) == ("[pirate] x", "[formal] x")
    bang = cached_generate(cache=store)(functools.partial(_render, "pirate", suffix="!"))
    assert bang("x") == "[pirate] x!"


def test_a_captured_helper_is_identified_with_what_it_captured() -> None:
    store = MemoryStore()

    def make(style: str) -> Any:
        fmt = lambda prompt: f"[{style}] {prompt}"  # noqa: E731

        @cached_generate(cache=store)
        def say(prompt: str) -> str:
            return fmt(prompt)

        return say

    assert (make("pirate")("x"), make("formal")("x")) == ("[pirate] x", "[formal] x")


class _Client:
    def answer(self, prompt: str) -> str:
        return prompt


def _with_client(client: _Client, store: MemoryStore, **options: Any) -> Any:
    @cached_generate(cache=store, **options)
    def ask(prompt: str) -> str:
        return client.answer(prompt)

    return ask


def test_a_captured_object_is_refused_naming_the_function_and_the_fix() -> None:
    with pytest.raises(
        TypeError,
        match=r"_with_client\.<locals>\.ask.*'client'.*_Client"
        r".*key=.*namespace=",
    ):
        _with_client(_Client(), MemoryStore())


@pytest.mark.parametrize("options", [{"namespace": "mine"}, {"key": lambda prompt: prompt}])
def test_key_or_namespace_takes_responsibility(options: dict[str, Any]) -> None:
    ask = _with_client(_Client(), MemoryStore(), **options)
    assert ask("x") == ask("x") == "x"
    assert ask.cache_info().hits == 1


def test_the_decorators_own_store_cannot_be_shared_so_anything_may_be_captured() -> None:
    client = _Client()

    @cached_generate
    def ask(prompt: str) -> str:
        return client.answer(prompt)

    assert ask("x") == ask("x") == "x"


def test_captured_mutable_state_is_refused() -> None:
    seen: list[str] = []
    with pytest.raises(TypeError, match=r"'seen'.*list.*can change"):

        @cached_generate(cache=MemoryStore())
        def remember(prompt: str) -> str:
            seen.append(prompt)
            return prompt


def test_a_bound_method_is_refused_and_allowed_with_a_namespace() -> None:
    client = _Client()
    with pytest.raises(TypeError, match=r"_Client\.answer.*key=.*namespace="):
        cached_generate(cache=MemoryStore())(client.answer)
    ask = cached_generate(cache=MemoryStore(), namespace="client-1")(client.answer)
    assert ask("x") == "x"


class _Kind:
    @classmethod
    def describe(cls, prompt: str) -> str:
        return f"{cls.__name__}:{prompt}"


def test_functions_classes_modules_and_decorated_functions_may_be_captured() -> None:
    store = MemoryStore()
    inner = cached_generate(cache=store)(_render)

    @cached_generate(cache=store)
    def outer(prompt: str) -> str:
        return json.dumps([inner("s", prompt), _Kind.describe(prompt), _render("a", prompt)])

    def make() -> Any:
        kind, module, helper, cached = _Kind, json, _render, inner

        @cached_generate(cache=store)
        def uses(prompt: str) -> str:
            return module.dumps([cached("s", prompt), kind.describe(prompt), helper("b", "c")])

        return uses

    assert make()("x") == make()("x")
    assert outer("x")
    cls_method = cached_generate(cache=store)(_Kind.describe)
    assert cls_method("x") == "_Kind:x"


def test_the_identity_is_computed_once_and_ignores_the_interpreters_warm_up() -> None:
    from llmcache.keys import function_identity

    def body(prompt: str) -> str:
        return prompt.upper() + str(len(prompt) in {1, 2, 3})

    before = function_identity(body)
    for i in range(2000):  # let the specialising interpreter rewrite the bytecode
        body(str(i))
    assert function_identity(body) == before


_MODULE = """
import sys
from llmcache import DiskStore, cached_generate

store = DiskStore(sys.argv[1])

@cached_generate(cache=store)
def generate(prompt: str, model: str = "m") -> str:
    return RESULT + prompt + str(prompt in {"a", "b", "c"})

def make(style):
    @cached_generate(cache=store)
    def say(prompt: str) -> str:
        return f"[{style}] {prompt}"
    return say

say = make("pirate")
generate("x")
say("x")
print(generate.cache_info().hits, say.cache_info().hits)
"""


def _run(tmp_path: Path, result: str, seed: str) -> str:
    path = tmp_path / "restart_mod.py"
    path.write_text(textwrap.dedent(_MODULE).replace("RESULT", repr(result)))
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, str(path), str(tmp_path / "cache")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def test_a_module_level_function_keeps_hitting_after_a_restart(tmp_path: Path) -> None:
    assert _run(tmp_path, "answer:", "1") == "0 0"
    # A new process, another hash seed: the same identity, so both are hits.
    assert _run(tmp_path, "answer:", "2") == "1 1"
    # generate's code changed: a new identity, never the old code's answers; say is as it was.
    assert _run(tmp_path, "other:", "3") == "0 1"
