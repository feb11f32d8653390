"""The positional canonical form (KEY_VERSION 2, kept since) and the fast path that builds it.

`make_key` / `canonical_bytes` skip copying values that are already canonical and leave
key types and int sizes to orjson; `Request.to_canonical` always normalises in full. These
tests hold the two together and pin the properties the key must keep.
"""

from __future__ import annotations

import enum
import math
import uuid
from collections import OrderedDict
from datetime import date
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmcache.keys import (
    FIELDS,
    KEY_VERSION,
    Request,
    canonical_bytes,
    fingerprint,
    hash_bytes,
    key_and_fingerprint,
    make_key,
)

names = st.text(min_size=1, max_size=6)
ints = st.one_of(
    st.integers(-5, 5),
    st.integers(-(2**70), 2**70),
    st.sampled_from([-(2**63) - 1, -(2**63), 2**63 - 1, 2**63, 2**64 - 1, 2**64]),
)
floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, -3.0, 0.5, 2.0**63, 2.0**64, 1e300]),
)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(names, children, max_size=3),
    ),
    max_leaves=8,
)
option_names = st.sampled_from(
    ["temperature", "seed", "top_p", "num_predict", "max_tokens", "stop", "num_ctx"]
)
messages = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "assistant"]), "content": st.text(max_size=10)}
        ),
        st.dictionaries(names, values, max_size=3),
    ),
    max_size=3,
)
requests = st.builds(
    Request,
    model=st.sampled_from(["m", "n"]),
    prompt=st.none() | st.text(max_size=8),
    messages=st.none() | messages | messages.map(tuple),
    system=st.none() | st.text(max_size=8),
    format=st.none() | st.just("json") | st.dictionaries(names, values, max_size=2),
    options=st.none() | st.dictionaries(option_names, values, max_size=4),
    tools=st.none() | st.lists(st.dictionaries(names, values, max_size=2), max_size=2),
    images=st.none() | st.lists(st.binary(max_size=4) | st.text(max_size=4), max_size=2),
    namespace=st.sampled_from(["", "a"]),
    extra=st.dictionaries(names, values, max_size=2),
)


def _valid(request: Request) -> bool:
    try:
        request.to_canonical()
    except ValueError:  # max_tokens and num_predict that disagree
        return False
    return True


def _typed(value: Any) -> Any:
    """Structural form in which True, 1 and 1.0 all differ (== alone conflates them)."""
    if isinstance(value, dict):
        return ("d", sorted((k, _typed(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("l", [_typed(v) for v in value])
    return (type(value).__name__, value)


@given(requests.filter(_valid))
def test_hashed_bytes_are_the_canonical_dict_in_field_order(request: Request) -> None:
    # The fast path (no copies, orjson as the final type check) and the full normaliser
    # behind to_canonical must produce the same bytes for every request.
    canonical = request.to_canonical()
    assert tuple(canonical) == FIELDS
    data = canonical_bytes(request)
    assert data == orjson.dumps(tuple(canonical.values()), option=orjson.OPT_SORT_KEYS)
    assert make_key(request) == hash_bytes(data)


def _variant(request: Request, data: st.DataObject) -> Request:
    """Either an equivalent spelling of `request` or one with a field drawn afresh."""

    def respell(value: Any) -> Any:  # same canonical form, different Python values
        if isinstance(value, dict):
            return {k: respell(value[k]) for k in reversed(list(value))}
        if isinstance(value, (list, tuple)):
            items = [respell(v) for v in value]
            return tuple(items) if isinstance(value, list) else items
        if type(value) is int and -(2**53) < value < 2**53:
            return float(value)
        return value

    fields = {f: getattr(request, f) for f in Request.__dataclass_fields__}
    if data.draw(st.booleans()):
        for name in ("messages", "format", "options", "tools", "extra"):
            if fields[name] is not None and not isinstance(fields[name], str):
                fields[name] = respell(fields[name])
    else:
        other = data.draw(requests)
        name = data.draw(st.sampled_from(sorted(fields)))
        fields[name] = getattr(other, name)
    return Request(**fields)


@given(requests.filter(_valid), st.data())
def test_keys_are_equal_exactly_when_canonical_forms_are(
    request: Request, data: st.DataObject
) -> None:
    other = _variant(request, data)
    if not _valid(other):
        return
    same = _typed(request.to_canonical()) == _typed(other.to_canonical())
    assert (make_key(request) == make_key(other)) == same
    assert (fingerprint(canonical_bytes(request)) == fingerprint(canonical_bytes(other))) == same


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"prompt": "x"}, {"system": "x"}),
        ({"prompt": "x"}, {"namespace": "x"}),
        ({"model": "m", "namespace": "x"}, {"model": "x", "namespace": "m"}),
        (
            {"messages": [{"role": "user", "content": "x"}]},
            {"tools": [{"role": "user", "content": "x"}]},
        ),
        ({"format": {"k": 1}}, {"extra": {"k": 1}}),
        ({"format": {"k": 1}}, {"options": {"k": 1}}),
        ({"options": {"k": 1}}, {"extra": {"k": 1}}),
        ({"prompt": '", "x'}, {"prompt": '"', "system": "x"}),
        ({"prompt": "a|b"}, {"prompt": "a", "system": "b"}),
        ({"messages": []}, {}),
    ],
)
def test_a_value_in_one_field_is_never_read_as_another(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    ra = Request(**{"model": "m", **a})
    rb = Request(**{"model": "m", **b})
    assert make_key(ra) != make_key(rb)


def test_the_format_is_pinned() -> None:
    # If this fails, the hashed bytes changed: bump KEY_VERSION and re-pin.
    request = Request(
        model="llama3",
        prompt="hi",
        system="s",
        namespace="ns",
        options={"temperature": 0.2, "seed": 1.0},
    )
    assert KEY_VERSION == 4
    assert canonical_bytes(request) == (
        b'[4,"llama3","ns","hi","s",null,null,{"seed":1,"temperature":0.2},null,null,null]'
    )
    assert make_key(request) == "v4:5a69d03e5eeb176c8ebddd8b126df162"
    assert key_and_fingerprint(canonical_bytes(request)) == (
        "v4:5a69d03e5eeb176c8ebddd8b126df162",
        "8ebddd8b126df162",
    )


def _key(**options: Any) -> str:
    return make_key(Request(model="m", prompt="p", options=options))


def test_option_numbers_on_the_fast_path() -> None:
    assert _key(t=0.0) == _key(t=-0.0) == _key(t=0)
    assert _key(t=1.0, s=0.5) == _key(t=1, s=0.5)
    assert _key(t=True) != _key(t=1) != _key(t="1")
    assert _key(t=2.0**63) == _key(t=2**63)  # whole floats become ints up to 2**64
    assert _key(t=2**64 - 1) != _key(t=2**64) != _key(t=str(2**64))  # beyond: tagged
    assert _key(t=2**64) != _key(t={"\x00int": str(2**64 + 1)})
    assert _key(t=-(2**63)) != _key(t=-(2**63) - 1)
    assert _key(t=1e-300) != _key(t=0)
    assert _key(t=0.1) != _key(t=0.1000000000000001)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_rejected_everywhere(bad: float) -> None:
    with pytest.raises(ValueError, match=r"request\.options\.t:"):
        _key(t=bad, s=1.0)  # next to a whole float, which takes the mending copy
    with pytest.raises(ValueError, match=r"request\.messages\[1\]\.score:"):
        make_key(Request(model="m", messages=[{"content": "a"}, {"score": bad}]))
    with pytest.raises(ValueError, match=r"request\.extra\.x\[0\]:"):
        make_key(Request(model="m", prompt="p", extra={"x": (bad,)}))


def test_errors_left_to_orjson_come_back_with_the_field_path() -> None:
    with pytest.raises(TypeError, match=r"request\.options: mapping keys must be str"):
        make_key(Request(model="m", options={"t": 1.0, 1: 2}))  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"request\.tools\[0\]\.f: mapping keys must be str"):
        make_key(Request(model="m", prompt="p", tools=[{"f": {1: 2}}]))

    class Key(str):
        pass

    with pytest.raises(TypeError, match=r"request\.extra: mapping keys must be str"):
        make_key(Request(model="m", prompt="p", extra={Key("k"): 1}))


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize(
    "value",
    [Colour.RED, uuid.UUID(int=1), date(2020, 1, 1), orjson.Fragment(b"1"), {1, 2}, object()],
)
def test_types_orjson_would_accept_are_still_refused(value: Any) -> None:
    for request in (
        Request(model="m", prompt="p", options={"x": value}),
        Request(model="m", messages=[{"x": value}]),
        Request(model="m", prompt="p", extra={"x": [value]}),
    ):
        with pytest.raises(TypeError, match="cannot be part of a cache key"):
            make_key(request)


def test_subclasses_and_other_mappings_key_as_their_plain_values() -> None:
    assert _key(level=Level.HIGH) == _key(level=3)
    plain = Request(
        model="m", prompt="p", options={"a": 0.5}, messages=[{"role": "user", "content": "x"}]
    )
    assert make_key(plain) == make_key(
        Request(
            model="m",
            prompt="p",
            options=MappingProxyType({"a": 0.5}),
            messages=(OrderedDict(role="user", content="x"),),
        )
    )


def test_max_tokens_on_the_fast_path() -> None:
    assert _key(max_tokens=10, temperature=0.5) == _key(num_predict=10, temperature=0.5)
    assert _key(max_tokens=10, num_predict=10.0) == _key(num_predict=10)
    with pytest.raises(ValueError, match="max_tokens.*num_predict"):
        _key(max_tokens=10, num_predict=5)


def test_to_canonical_never_shares_the_callers_containers() -> None:
    options = {"temperature": 0.5}
    messages = [{"role": "user", "content": "x"}]
    request = Request(model="m", messages=messages, options=options, extra={"k": [1]})
    key = make_key(request)
    canonical = request.to_canonical()
    assert canonical["options"] is not options
    assert canonical["messages"] is not messages
    assert canonical["messages"][0] is not messages[0]
    canonical["options"]["temperature"] = 0.9
    canonical["messages"][0]["content"] = "y"
    canonical["extra"]["k"].append(2)
    assert make_key(request) == key and options == {"temperature": 0.5}


def test_make_key_does_not_change_the_request() -> None:
    options = {"temperature": 1.0, "seed": 2**70}
    request = Request(model="m", prompt="p", options=options)
    make_key(request)
    assert type(options["temperature"]) is float and options["seed"] == 2**70


def test_a_request_subclass_keys_like_a_request() -> None:
    class Mine(Request):
        __slots__ = ()

    assert make_key(Mine(model="m", prompt="p")) == make_key(Request(model="m", prompt="p"))


def test_a_request_is_not_confused_with_a_decorated_call_or_plain_data() -> None:
    request = Request(model="m", prompt="p")
    canonical = request.to_canonical()
    assert make_key(request) != make_key(canonical)
    assert canonical_bytes(request).startswith(b"[%d," % KEY_VERSION)
    assert canonical_bytes(request).count(b",") == len(FIELDS) - 1


def test_the_key_holds_only_a_hash() -> None:
    request = Request(
        model="m", prompt="p", extra={"api_key": "sk-secret"}, images=[b"secret-image-bytes"]
    )
    key = make_key(request)
    assert key.startswith(f"v{KEY_VERSION}:") and len(key) == 3 + 32
    assert int(key[3:], 16) >= 0
    assert b"secret-image-bytes" not in canonical_bytes(request)


def test_an_overridden_to_canonical_decides_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tagged(Request):
        __slots__ = ()

        def to_canonical(self) -> dict[str, Any]:
            return {**super().to_canonical(), "tag": "x"}

    tagged, plain = Tagged(model="m", prompt="p"), Request(model="m", prompt="p")
    assert make_key(tagged) != make_key(plain)
    assert make_key(tagged) == hash_bytes(
        orjson.dumps(tagged.to_canonical(), option=orjson.OPT_SORT_KEYS)
    )

    seen: list[Request] = []
    original = Request.to_canonical

    def spy(self: Request) -> dict[str, Any]:
        seen.append(self)
        return original(self)

    monkeypatch.setattr(Request, "to_canonical", spy)
    assert make_key(plain) == hash_bytes(canonical_bytes(plain)) and seen == [plain, plain]
