"""Properties of canonical keys: equal requests give one key, any change gives another."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from llmcache.keys import (
    KEY_VERSION,
    Request,
    canonical_bytes,
    fingerprint,
    hash_bytes,
    key_and_fingerprint,
    make_key,
    normalize,
)

names = st.text(min_size=1, max_size=8)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(names, children, max_size=4)
    ),
    max_leaves=12,
)
options = st.dictionaries(
    st.sampled_from(["temperature", "seed", "top_p", "num_predict", "stop", "top_k", "num_ctx"]),
    scalars,
    max_size=5,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system"]), "content": st.text(max_size=30)}
    ),
    max_size=4,
)
requests = st.builds(
    Request,
    model=names,
    prompt=st.none() | st.text(max_size=50),
    messages=st.none() | messages,
    system=st.none() | st.text(max_size=20),
    format=st.none() | st.just("json") | st.dictionaries(names, json_values, max_size=3),
    options=st.none() | options,
    tools=st.none() | st.lists(st.dictionaries(names, json_values, max_size=3), max_size=2),
    namespace=st.text(max_size=8),
)


def _shuffled(d: dict[str, Any]) -> dict[str, Any]:
    return dict(reversed(list(d.items())))


@given(requests)
def test_key_ignores_dict_order(req: Request) -> None:
    same = Request(
        model=req.model,
        prompt=req.prompt,
        messages=req.messages,
        system=req.system,
        format=_shuffled(dict(req.format)) if isinstance(req.format, dict) else req.format,
        options=_shuffled(dict(req.options)) if req.options else req.options,
        tools=req.tools,
        namespace=req.namespace,
    )
    assert make_key(same) == make_key(req)


@given(
    requests,
    st.sampled_from(["model", "prompt", "system", "namespace", "format"]),
    st.text(min_size=1, max_size=10),
)
def test_any_change_of_a_field_changes_the_key(req: Request, field: str, new: str) -> None:
    assume(getattr(req, field) != new)
    changed = Request(**{**{f: getattr(req, f) for f in Request.__dataclass_fields__}, field: new})
    assert make_key(changed) != make_key(req)


@given(requests, st.sampled_from(["temperature", "seed", "top_p", "stop"]), scalars)
def test_any_change_of_an_option_changes_the_key(req: Request, name: str, value: Any) -> None:
    opts = dict(req.options or {})
    before = normalize(opts.get(name, "<absent>"))
    assume(normalize(value) != before or (name not in opts))
    if name in opts:
        assume(normalize(value) != before)
    opts[name] = value
    changed = Request(
        req.model,
        req.prompt,
        req.messages,
        req.system,
        req.format,
        opts,
        req.tools,
        namespace=req.namespace,
    )
    assert make_key(changed) != make_key(req)


@given(requests, messages.filter(bool))
def test_messages_are_part_of_the_key(req: Request, msgs: list[dict[str, str]]) -> None:
    assume(list(req.messages or []) != msgs)
    changed = Request(
        req.model,
        req.prompt,
        msgs,
        req.system,
        req.format,
        req.options,
        req.tools,
        namespace=req.namespace,
    )
    assert make_key(changed) != make_key(req)


def test_numbers_normalise() -> None:
    a = Request(model="m", prompt="p", options={"temperature": 0.0, "seed": 1.0})
    b = Request(model="m", prompt="p", options={"temperature": -0.0, "seed": 1})
    c = Request(model="m", prompt="p", options={"temperature": 0, "seed": 1})
    assert make_key(a) == make_key(b) == make_key(c)
    assert make_key(a) != make_key(
        Request(model="m", prompt="p", options={"temperature": 0.1, "seed": 1})
    )


def test_bool_is_not_an_int() -> None:
    assert make_key({"x": True}) != make_key({"x": 1})


def test_max_tokens_is_num_predict() -> None:
    a = Request(model="m", prompt="p", options={"max_tokens": 10})
    b = Request(model="m", prompt="p", options={"num_predict": 10})
    assert make_key(a) == make_key(b)
    with pytest.raises(ValueError, match="max_tokens.*num_predict"):
        make_key(Request(model="m", prompt="p", options={"max_tokens": 10, "num_predict": 5}))


def test_prompt_and_system_cannot_be_confused() -> None:
    # The chapter's "model|temperature|format|prompt" string made these collide.
    a = Request(model="m|x", prompt="p")
    b = Request(model="m", prompt="x|p")
    assert make_key(a) != make_key(b)
    assert make_key(Request(model="m", prompt="a", system="b")) != make_key(
        Request(model="m", prompt="b", system="a")
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match=r"request\.options\.temperature"):
        make_key(Request(model="m", prompt="p", options={"temperature": bad}))


def test_unknown_types_name_the_field_path() -> None:
    with pytest.raises(TypeError, match=r"request\.tools\[0\]\.fn: values of type object"):
        make_key(Request(model="m", prompt="p", tools=[{"fn": object()}]))
    with pytest.raises(TypeError, match=r"request\.options: mapping keys must be str"):
        make_key(Request(model="m", prompt="p", options={1: 2}))  # type: ignore[dict-item]


def test_model_is_required() -> None:
    with pytest.raises(ValueError, match="request.model"):
        make_key(Request(model="", prompt="p"))


def test_images_are_keyed_by_content_hash() -> None:
    a = Request(model="m", prompt="p", images=[b"\x89PNG..."])
    b = Request(model="m", prompt="p", images=[b"\x89PNG!.."])
    assert make_key(a) != make_key(b)
    assert b"PNG" not in canonical_bytes(a)


def test_key_carries_the_format_version() -> None:
    key = make_key(Request(model="m", prompt="p"))
    assert key.startswith(f"v{KEY_VERSION}:")
    assert len(key.split(":", 1)[1]) == 32  # 128 bits in hex


def test_key_and_fingerprint_come_from_one_digest() -> None:
    data = canonical_bytes(Request(model="m", prompt="p"))
    key, fp = key_and_fingerprint(data)
    assert key == make_key(Request(model="m", prompt="p")) == hash_bytes(data)
    assert fp == fingerprint(data) and len(fp) == 16 and key.endswith(fp)
    other = canonical_bytes(Request(model="m", prompt="q"))
    assert fingerprint(other) != fp  # an entry moved under another key fails its check
