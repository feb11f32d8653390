"""The Ollama protocol's request builders, fed as the clients feed them: the arguments a call
names in one mapping, the caller's other keywords apart."""

from __future__ import annotations

import doctest

import pytest

from llmcache_ollama import _protocol
from llmcache_ollama._protocol import chat_call, generate_call


def test_generate_call_reads_the_named_fields() -> None:
    fields = {
        "prompt": "hi",
        "model": "m",
        "system": "terse",
        "format": {"type": "object"},
        "options": {"seed": 1},
        "images": [b"\x89PNG"],
        "temperature": 0.0,
        "max_tokens": 5,
    }
    call = generate_call(fields, stream=True, extra={"keep_alive": "1m"})
    assert (call.path, call.model, call.chat) == ("/api/generate", "m", False)
    assert call.body == {
        "model": "m",
        "prompt": "hi",
        "stream": True,
        "system": "terse",
        "images": ["iVBORw=="],
        "format": {"type": "object"},
        "options": {"seed": 1, "temperature": 0.0, "num_predict": 5},
        "keep_alive": "1m",
    }


def test_chat_call_reads_the_named_fields() -> None:
    messages = [{"role": "user", "content": "x", "images": [b"\x89PNG"]}]
    tools = [{"type": "function", "function": {"name": "f"}}]
    call = chat_call({"messages": messages, "model": "m", "tools": tools}, stream=False)
    assert (call.path, call.chat) == ("/api/chat", True)
    assert call.body == {
        "model": "m",
        "messages": [{"role": "user", "content": "x", "images": ["iVBORw=="]}],
        "stream": False,
        "tools": tools,
    }


def test_reserved_keys_are_refused_in_extra() -> None:
    with pytest.raises(TypeError, match="stream"):
        generate_call({"prompt": "x", "model": "m"}, stream=False, extra={"stream": True})


def test_the_module_examples_run() -> None:
    failures, tried = doctest.testmod(_protocol)
    assert failures == 0 and tried >= 4
