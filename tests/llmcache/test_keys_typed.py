"""The typed canonical form of a decorated call's arguments (issue 13, finding 2).

Any two argument values that differ in type or value give different keys; equal values
(dicts in any key order) give one.
"""

from __future__ import annotations

import doctest
import enum
import hashlib
import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmcache import MemoryStore, cached_generate, decorators, keys, policy
from llmcache.keys import KEY_VERSION, Request, canonical_call, make_key

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-3, 3)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0.0, -0.0, 1.0])
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.sampled_from(["", "\x00int", "\x00bytes", "1", "true", "null"])
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.text(max_size=4) | st.sampled_from(["\x00int", "\x00tuple", "\x00dict"])
    return (
        st.lists(children, max_size=3)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(keys, children, max_size=3)
        | st.dictionaries(st.integers(-2, 2), children, max_size=2)
    )


values = st.recursive(_scalars, _containers, max_leaves=8)


def _same(a: Any, b: Any) -> bool:
    """Equal in type and value, recursively (floats by their bits, all NaNs alike)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return (math.isnan(a) and math.isnan(b)) or struct.pack("d", a) == struct.pack("d", b)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return a.keys() == b.keys() and all(
            _same(a[k], b[k]) and type(k) is type(next(j for j in b if j == k)) for k in a
        )
    return bool(a == b)


def _bytes(value: Any) -> bytes:
    return canonical_call("mod.f", "", {"x": value})


@given(values, values)
def test_distinct_values_give_distinct_bytes(a: Any, b: Any) -> None:
    assert (_bytes(a) == _bytes(b)) == _same(a, b)


@given(values)
def test_equal_values_in_any_dict_order_give_one_key(value: Any) -> None:
    def reorder(v: Any) -> Any:
        if type(v) is dict:
            return {k: reorder(v[k]) for k in reversed(list(v))}
        if type(v) in (list, tuple):
            return type(v)(reorder(x) for x in v)
        return v

    assert _bytes(value) == _bytes(reorder(value))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (b"abc", "sha256:" + hashlib.sha256(b"abc").hexdigest()),
        (b"abc", {"\x00bytes": hashlib.sha256(b"abc").hexdigest()}),
        (2**64, {"\x00int": str(2**64)}),
        ((1, 2), [1, 2]),
        ({"a": 1}, [["a", 1]]),
        ({1: "a"}, {"1": "a"}),
        (1, 1.0),
        (1, True),
        (0.0, -0.0),
        (None, "null"),
        (bytearray(b"x"), b"x"),
        ({"x"}, ["x"]),
    ],
)
def test_known_near_misses_are_apart(a: Any, b: Any) -> None:
    assert _bytes(a) != _bytes(b)


def test_the_version_is_in_the_bytes() -> None:
    assert KEY_VERSION == 4
    assert canonical_call("mod.f", "", {}).startswith(b"[4,")


class _Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class _Model(str, enum.Enum):
    SMALL = "small"


def test_enums_sets_and_int_keys_are_keyable() -> None:
    assert _bytes(_Colour.RED) != _bytes(_Colour.BLUE) != _bytes("red")
    assert _bytes(_Model.SMALL) != _bytes("small")
    assert _bytes({3, 1, 2}) == _bytes({1, 2, 3}) != _bytes(frozenset({1, 2, 3}))
    assert _bytes({50256: -100}) == _bytes({50256: -100})


def test_a_bytes_argument_never_gets_a_strings_answer() -> None:
    @cached_generate(cache=MemoryStore())
    def describe(data: Any) -> str:
        return type(data).__name__

    assert describe(b"abc") == "bytes"
    assert describe("sha256:" + hashlib.sha256(b"abc").hexdigest()) == "str"
    assert describe((1, 2)) == "tuple"
    assert describe([1, 2]) == "list"
    assert describe(1) == "int"
    assert describe(1.0) == "float"
    assert describe(True) == "bool"


# -- a Request keeps JSON's numbers, but bytes and tags stay apart from str and dicts -------


def test_a_requests_bytes_are_never_read_as_a_string() -> None:
    digest = hashlib.sha256(b"abc").hexdigest()
    assert make_key(Request(model="m", prompt="p", extra={"x": b"abc"})) != make_key(
        Request(model="m", prompt="p", extra={"x": "sha256:" + digest})
    )
    assert make_key(Request(model="m", prompt="p", images=[b"aGk="])) != make_key(
        Request(model="m", prompt="p", images=["aGk="])
    )


@pytest.mark.parametrize("field", ["options", "extra", "format"])
def test_a_dict_cannot_forge_a_tag_in_a_request(field: str) -> None:
    def key(value: Any) -> str:
        return make_key(Request(model="m", prompt="p", **{field: {"x": value}}))

    assert key(2**64) != key({"\x00int": str(2**64)})
    assert key(b"abc") != key({"\x00bytes": hashlib.sha256(b"abc").hexdigest()})
    forged = {"\x00int": str(2**64)}
    assert make_key(Request(model="m", prompt="p", options=forged)) != make_key(
        Request(model="m", prompt="p", options={"\x00int": 2**64})
    )
    assert make_key(Request(model="m", messages=[forged])) != make_key(
        Request(model="m", messages=[{"\x00int": 2**64}])
    )


def test_the_docstring_examples_run() -> None:
    for module in (keys, decorators, policy):
        failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert failures == 0 and tried > 0, module.__name__
