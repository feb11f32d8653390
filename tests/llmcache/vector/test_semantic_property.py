"""Property: a semantic hit never crosses a partition, whatever the threshold and guards."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from llmcache.keys import Request, hash_bytes
from llmcache.vector.embedders import HashingEmbedder
from llmcache.vector.semantic import SemanticCache, split_request

PROMPTS = ["How do I reverse a list?", "how do i reverse a list", "Reverse a list"]

scope_fields = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["llama3", "qwen"]),
        "options": st.sampled_from(
            [
                None,
                {"temperature": 0},
                {"temperature": 0.0, "seed": 1},
                {"temperature": 0.7},
                {"max_tokens": 5},
            ]
        ),
        "system": st.sampled_from([None, "", "Be brief", "Answer in French"]),
        "format": st.sampled_from([None, "json", {"type": "object"}]),
        "namespace": st.sampled_from(["", "tenant-a", "tenant-b"]),
        "tools": st.sampled_from([None, [{"type": "function", "function": {"name": "f"}}]]),
        "history": st.sampled_from([None, [], ["I use Python."], ["I use Ruby."]]),
    }
)


def build(fields: dict[str, Any], prompt: str) -> Request:
    history = fields["history"]
    common = {k: fields[k] for k in ("model", "options", "system", "format", "namespace", "tools")}
    if history is None:
        return Request(prompt=prompt, **common)
    messages: list[dict[str, str]] = []
    for turn in history:
        messages += [{"role": "user", "content": turn}, {"role": "assistant", "content": "ok"}]
    messages.append({"role": "user", "content": prompt})
    return Request(messages=messages, **common)


def scope_of(request: Request) -> str:
    split = split_request(request.to_canonical())
    assert split is not None
    return hash_bytes(orjson.dumps(split[0], option=orjson.OPT_SORT_KEYS))


@given(
    stored=st.lists(st.tuples(scope_fields, st.sampled_from(PROMPTS)), min_size=1, max_size=6),
    queries=st.lists(st.tuples(scope_fields, st.sampled_from(PROMPTS)), min_size=1, max_size=6),
)
def test_no_hit_crosses_a_partition(
    stored: list[tuple[dict[str, Any], str]], queries: list[tuple[dict[str, Any], str]]
) -> None:
    cache = SemanticCache(HashingEmbedder(dim=32), threshold=-1.0, guards=())
    for fields, prompt in stored:
        request = build(fields, prompt)
        cache.set(request, scope_of(request))  # the answer names its partition
    stored_scopes = {scope_of(build(f, p)) for f, p in stored}
    for fields, prompt in queries:
        request = build(fields, prompt)
        hit = cache.get(request, threshold=-1.0)
        if hit is not None:
            assert hit.content == scope_of(request)
        else:  # threshold -1 and no guards: a partition holding entries always answers
            assert scope_of(request) not in stored_scopes
