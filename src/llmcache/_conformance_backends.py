"""What the backend suites of `llmcache.testing` share: their settings and their checks.

Each test of `AsyncBackendConformance` (written by hand) and of `BackendConformance`
(generated from it by ``scripts/unasync.py``) states one rule of `AsyncBackend` / `Backend`;
the checks on what comes back are written once, here (``check_*``), as are the helpers
(`raises`, `skip`, `same_model`) and the settings a subclass overrides (`BackendSettings`).
The asyncio suite's tests are coroutines that `run_tests_in_event_loops` runs, each in its own
`asyncio.run` loop, so that neither pytest nor an asyncio plugin is needed to run them.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import unittest
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from llmcache.backends.base import AIResponse, EmbedResponse, StreamChunk
from llmcache.backends.errors import ModelNotFound

__all__ = [
    "BackendSettings",
    "LENGTH_REASON",
    "SAME_ANSWER",
    "check_embed",
    "check_json",
    "check_missing",
    "check_reordered",
    "check_response",
    "check_stream",
    "raises",
    "run_tests_in_event_loops",
    "same_model",
    "skip",
]

_E = TypeVar("_E", bound=BaseException)
_C = TypeVar("_C", bound=type)


@contextmanager
def raises(kind: type[_E]) -> Iterator[list[_E]]:
    """``pytest.raises`` without pytest: the caught exception lands in the yielded list."""
    caught: list[_E] = []
    try:
        yield caught
    except kind as exc:
        caught.append(exc)
    else:
        raise AssertionError(f"expected {kind.__name__} to be raised")


def skip(reason: str) -> unittest.SkipTest:
    """A skip that pytest and unittest both report as one (no pytest import needed)."""
    return unittest.SkipTest(reason)


def same_model(a: str, b: str) -> bool:
    """Model names equal up to Ollama's implicit ``:latest`` tag."""
    return a.removesuffix(":latest") == b.removesuffix(":latest")


class BackendSettings:
    """What both backend suites read; override the attributes to fit the server."""

    #: A second model the server has, for the ``model=`` override (None: test skipped).
    other_model: str | None = None
    #: The model for `embed` (None: the backend's default model; skip with supports_embed).
    embed_model: str | None = None
    missing_model: str = "llmcache-conformance-no-such-model"
    #: The same request gives the same answer (a test server, or a model at temperature 0):
    #: needed to compare a stream with the plain answer.
    deterministic: bool = True
    supports_embed: bool = True
    supports_json_format: bool = True
    #: ``options={"num_predict": n}`` (llmcache's name for a token limit) cuts the answer
    #: short with ``done_reason == "length"``.
    supports_token_limit: bool = True
    prompt: str = "Why is the sky blue? Answer in one long sentence."
    system: str = "Be brief."
    messages: Sequence[Mapping[str, Any]] = ({"role": "user", "content": "What is 2 + 2?"},)
    options: Mapping[str, Any] = {"temperature": 0}
    texts: Sequence[str] = ("the cat sat on the mat", "a dog ran", "the cat sat on the mat")


# -- checks shared by both suites --------------------------------------------------------------

SAME_ANSWER = "the joined stream differs from the plain answer to the same request"
LENGTH_REASON = "an answer cut by the token limit must say done_reason='length'"


def check_response(response: AIResponse) -> None:
    assert isinstance(response, AIResponse), type(response)
    assert isinstance(response.content, str), f"content is {type(response.content).__name__}"
    assert isinstance(response.model, str) and response.model, "a response names its model"
    assert response.cached is False, "a backend's own answer is never cached=True"
    for count in (response.tokens_used, response.prompt_tokens, response.completion_tokens):
        assert isinstance(count, int) and count >= 0, f"token count {count!r}"


def check_stream(chunks: list[StreamChunk]) -> str:
    """The joined text of a complete stream: one ``done`` chunk, and it comes last."""
    assert chunks, "a stream yields at least its final chunk"
    assert all(isinstance(c, StreamChunk) and isinstance(c.content, str) for c in chunks)
    assert chunks[-1].done is True, "the last chunk must have done=True"
    assert not any(c.done for c in chunks[:-1]), "only the last chunk may be done"
    return "".join(c.content for c in chunks)


def check_embed(result: EmbedResponse, texts: Sequence[str]) -> None:
    assert isinstance(result, EmbedResponse)
    assert len(result.embeddings) == len(texts), (
        f"{len(result.embeddings)} vectors for {len(texts)} texts"
    )
    dims = {len(v) for v in result.embeddings}
    assert len(dims) == 1 and dims.pop() > 0, "every vector has one, positive, length"
    assert all(isinstance(x, float) and math.isfinite(x) for v in result.embeddings for x in v)
    by_text: dict[str, list[float]] = {}
    for text, vector in zip(texts, result.embeddings, strict=True):
        assert by_text.setdefault(text, vector) == vector, "same text, same vector"


def check_reordered(
    first: EmbedResponse, texts: Sequence[str], second: EmbedResponse, reordered: Sequence[str]
) -> None:
    vectors = dict(zip(texts, first.embeddings, strict=True))
    for text, vector in zip(reordered, second.embeddings, strict=True):
        assert vectors[text] == vector, f"vector of {text!r} depends on its batch position"


def check_json(content: str) -> None:
    try:
        value = json.loads(content)
    except ValueError:
        raise AssertionError(f"format='json' answered non-JSON: {content[:80]!r}") from None
    assert isinstance(value, dict), f"format='json' answered {value!r}, not an object"


def check_missing(caught: list[ModelNotFound], missing: str) -> None:
    assert same_model(caught[0].model, missing), caught[0].model


# -- the asyncio suite's tests, run without an asyncio plugin ---------------------------------


def _in_a_loop(test: Callable[[Any], Coroutine[Any, Any, None]]) -> Callable[[Any], None]:
    def run(self: Any) -> None:
        asyncio.run(test(self))

    # Not functools.wraps: a __wrapped__ coroutine function would make pytest's asyncio
    # plugins take the test for theirs.
    run.__name__, run.__qualname__, run.__doc__ = test.__name__, test.__qualname__, test.__doc__
    return run


def run_tests_in_event_loops(cls: _C) -> _C:
    """Make each ``async def test_*`` that `cls` defines a plain method running it in a
    fresh `asyncio.run` loop (the class keeps its other coroutines as they are)."""
    for name, value in list(vars(cls).items()):
        if name.startswith("test_") and inspect.iscoroutinefunction(value):
            setattr(cls, name, _in_a_loop(value))
    return cls
