"""The backend half of `llmcache.testing`: `BackendConformance` and its asyncio twin.

Each test states one rule of `Backend` / `AsyncBackend`; the checks on what comes back are
written once (``_check_*``) and shared by both suites, which differ only in how they call.
"""

from __future__ import annotations

import asyncio
import json
import math
import unittest
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from llmcache.backends.base import AIResponse, AsyncBackend, Backend, EmbedResponse, StreamChunk
from llmcache.backends.errors import BackendError, ModelNotFound

__all__ = ["AsyncBackendConformance", "BackendConformance", "raises", "same_model", "skip"]

_T = TypeVar("_T")
_E = TypeVar("_E", bound=BaseException)


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


class _Settings:
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

_SAME = "the joined stream differs from the plain answer to the same request"
_LENGTH = "an answer cut by the token limit must say done_reason='length'"

def _check_response(response: AIResponse) -> None:
    assert isinstance(response, AIResponse), type(response)
    assert isinstance(response.content, str), f"content is {type(response.content).__name__}"
    assert isinstance(response.model, str) and response.model, "a response names its model"
    assert response.cached is False, "a backend's own answer is never cached=True"
    for count in (response.tokens_used, response.prompt_tokens, response.completion_tokens):
        assert isinstance(count, int) and count >= 0, f"token count {count!r}"


def _check_stream(chunks: list[StreamChunk]) -> str:
    """The joined text of a complete stream: one ``done`` chunk, and it comes last."""
    assert chunks, "a stream yields at least its final chunk"
    assert all(isinstance(c, StreamChunk) and isinstance(c.content, str) for c in chunks)
    assert chunks[-1].done is True, "the last chunk must have done=True"
    assert not any(c.done for c in chunks[:-1]), "only the last chunk may be done"
    return "".join(c.content for c in chunks)


def _check_embed(result: EmbedResponse, texts: Sequence[str]) -> None:
    assert isinstance(result, EmbedResponse)
    assert len(result.embeddings) == len(texts), (
        f"{len(result.embeddings)} vectors for {len(texts)} texts")
    dims = {len(v) for v in result.embeddings}
    assert len(dims) == 1 and dims.pop() > 0, "every vector has one, positive, length"
    assert all(isinstance(x, float) and math.isfinite(x) for v in result.embeddings for x in v)
    by_text: dict[str, list[float]] = {}
    for text, vector in zip(texts, result.embeddings, strict=True):
        assert by_text.setdefault(text, vector) == vector, "same text, same vector"


def _check_reordered(first: EmbedResponse, texts: Sequence[str],
                     second: EmbedResponse, reordered: Sequence[str]) -> None:
    vectors = dict(zip(texts, first.embeddings, strict=True))
    for text, vector in zip(reordered, second.embeddings, strict=True):
        assert vectors[text] == vector, f"vector of {text!r} depends on its batch position"


def _check_json(content: str) -> None:
    try:
        value = json.loads(content)
    except ValueError:
        raise AssertionError(f"format='json' answered non-JSON: {content[:80]!r}") from None
    assert isinstance(value, dict), f"format='json' answered {value!r}, not an object"


def _check_missing(caught: list[ModelNotFound], missing: str) -> None:
    assert same_model(caught[0].model, missing), caught[0].model


class BackendConformance(_Settings):
    """The `Backend` contract, run against ``make_backend()`` (see `llmcache.testing`)."""

    def make_backend(self) -> Backend:
        """A new backend on the server under test; each test closes the one it made."""
        raise NotImplementedError("override make_backend() to return the backend under test")

    @contextmanager
    def backend(self) -> Iterator[Backend]:
        with self.make_backend() as backend:
            yield backend

    def test_is_a_backend_with_a_default_model(self) -> None:
        with self.backend() as backend:
            assert isinstance(backend, Backend)
            assert isinstance(backend.model, str) and backend.model

    def test_generate(self) -> None:
        with self.backend() as backend:
            _check_response(backend.generate(self.prompt, options=self.options))
            _check_response(backend.generate(self.prompt, system=self.system))

    def test_generate_stream_ends_with_done_and_joins_to_generate(self) -> None:
        with self.backend() as backend:
            text = _check_stream(list(backend.generate_stream(self.prompt,
                                                              options=self.options)))
            if self.deterministic:
                reply = backend.generate(self.prompt, options=self.options)
                assert text == reply.content, _SAME

    def test_chat(self) -> None:
        with self.backend() as backend:
            _check_response(backend.chat(self.messages, options=self.options))

    def test_chat_stream_ends_with_done_and_joins_to_chat(self) -> None:
        with self.backend() as backend:
            text = _check_stream(list(backend.chat_stream(self.messages, options=self.options)))
            if self.deterministic:
                assert text == backend.chat(self.messages, options=self.options).content, _SAME

    def test_embed_shape_and_order(self) -> None:
        if not self.supports_embed:
            raise skip("supports_embed is False")
        texts, reordered = list(self.texts), list(reversed(self.texts))
        with self.backend() as backend:
            first = backend.embed(texts, model=self.embed_model)
            _check_embed(first, texts)
            second = backend.embed(reordered, model=self.embed_model)
            _check_reordered(first, texts, second, reordered)

    def test_model_override(self) -> None:
        if self.other_model is None:
            raise skip("no other_model to switch to")
        with self.backend() as backend:
            default = backend.model
            reply = backend.generate(self.prompt, model=self.other_model)
            chunks = list(backend.chat_stream(self.messages, model=self.other_model))
            assert same_model(reply.model, self.other_model), reply.model
            assert same_model(chunks[-1].model, self.other_model), chunks[-1].model
            assert backend.model == default, "a per-call model= must not change the default"

    def test_unknown_model_is_model_not_found(self) -> None:
        missing = self.missing_model
        calls: list[Callable[[Backend], object]] = [
            lambda b: b.generate(self.prompt, model=missing),
            lambda b: b.chat(self.messages, model=missing),
            lambda b: list(b.generate_stream(self.prompt, model=missing)),
            lambda b: list(b.chat_stream(self.messages, model=missing)),
        ]
        if self.supports_embed:
            calls.append(lambda b: b.embed(["x"], model=missing))
        with self.backend() as backend:
            for call in calls:
                with raises(ModelNotFound) as caught:
                    call(backend)
                _check_missing(caught, missing)

    def test_token_limit_reports_length(self) -> None:
        if not self.supports_token_limit:
            raise skip("supports_token_limit is False")
        options = {**self.options, "num_predict": 2}
        with self.backend() as backend:
            reply = backend.generate(self.prompt, options=options)
            assert reply.done_reason == "length", _LENGTH
            chunks = list(backend.generate_stream(self.prompt, options=options))
            assert chunks[-1].done_reason == "length", _LENGTH

    def test_json_format(self) -> None:
        if not self.supports_json_format:
            raise skip("supports_json_format is False")
        with self.backend() as backend:
            _check_json(backend.generate(self.prompt, format="json").content)
            _check_json(backend.chat(self.messages, format="json").content)

    def test_context_manager_and_idempotent_close(self) -> None:
        backend = self.make_backend()
        with backend as entered:
            assert entered is backend
        backend.close()
        with raises(BackendError):
            backend.generate(self.prompt)

    def test_abandoned_streams_release_their_connections(self) -> None:
        with self.backend() as backend:
            for _ in range(20):
                stream = backend.generate_stream(self.prompt)
                next(stream)
                getattr(stream, "close", lambda: None)()  # a generator: release it now
            _check_response(backend.generate(self.prompt))


class AsyncBackendConformance(_Settings):
    """The `AsyncBackend` contract; each test runs in its own `asyncio.run` loop, and
    ``make_backend()`` is called inside it."""

    def make_backend(self) -> AsyncBackend:
        """A new async backend on the server under test (called inside the test's loop)."""
        raise NotImplementedError("override make_backend() to return the backend under test")

    def run(self, scenario: Callable[[AsyncBackend], Awaitable[_T]]) -> _T:
        async def main() -> _T:
            async with self.make_backend() as backend:
                return await scenario(backend)

        return asyncio.run(main())

    @staticmethod
    async def collect(chunks: Any) -> list[StreamChunk]:
        return [chunk async for chunk in chunks]

    def test_is_a_backend_with_a_default_model(self) -> None:
        async def scenario(backend: AsyncBackend) -> None:
            assert isinstance(backend, AsyncBackend)
            assert isinstance(backend.model, str) and backend.model

        self.run(scenario)

    def test_generate(self) -> None:
        async def scenario(backend: AsyncBackend) -> None:
            _check_response(await backend.generate(self.prompt, options=self.options))
            _check_response(await backend.generate(self.prompt, system=self.system))

        self.run(scenario)

    def test_generate_stream_ends_with_done_and_joins_to_generate(self) -> None:
        async def scenario(backend: AsyncBackend) -> None:
            text = _check_stream(await self.collect(
                backend.generate_stream(self.prompt, options=self.options)))
            if self.deterministic:
                reply = await backend.generate(self.prompt, options=self.options)
                assert text == reply.content, _SAME

        self.run(scenario)

    def test_chat(self) -> None:
        async def scenario(backend: AsyncBackend) -> None:
            _check_response(await backend.chat(self.messages, options=self.options))

        self.run(scenario)

    def test_chat_stream_ends_with_done_and_joins_to_chat(self) -> None:
        async def scenario(backend: AsyncBackend) -> None:
            text = _check_stream(await self.collect(
                backend.chat_stream(self.messages, options=self.options)))
            if self.deterministic:
                reply = await backend.chat(self.messages, options=self.options)
                assert text == reply.content, _SAME

        self.run(scenario)

    def test_embed_shape_and_order(self) -> None:
        if not self.supports_embed:
            raise skip("supports_embed is False")
        texts, reordered = list(self.texts), list(reversed(self.texts))

        async def scenario(backend: AsyncBackend) -> None:
            first = await backend.embed(texts, model=self.embed_model)
            _check_embed(first, texts)
            second = await backend.embed(reordered, model=self.embed_model)
            _check_reordered(first, texts, second, reordered)

        self.run(scenario)

    def test_model_override(self) -> None:
        other = self.other_model
        if other is None:
            raise skip("no other_model to switch to")

        async def scenario(backend: AsyncBackend) -> None:
            default = backend.model
            reply = await backend.generate(self.prompt, model=other)
            chunks = await self.collect(backend.chat_stream(self.messages, model=other))
            assert same_model(reply.model, other), reply.model
            assert same_model(chunks[-1].model, other), chunks[-1].model
            assert backend.model == default, "a per-call model= must not change the default"

        self.run(scenario)

    def test_unknown_model_is_model_not_found(self) -> None:
        missing = self.missing_model
        calls: list[Callable[[AsyncBackend], Awaitable[object]]] = [
            lambda b: b.generate(self.prompt, model=missing),
            lambda b: b.chat(self.messages, model=missing),
            lambda b: self.collect(b.generate_stream(self.prompt, model=missing)),
            lambda b: self.collect(b.chat_stream(self.messages, model=missing)),
        ]
        if self.supports_embed:
            calls.append(lambda b: b.embed(["x"], model=missing))

        async def scenario(backend: AsyncBackend) -> None:
            for call in calls:
                with raises(ModelNotFound) as caught:
                    await call(backend)
                _check_missing(caught, missing)

        self.run(scenario)

    def test_token_limit_reports_length(self) -> None:
        if not self.supports_token_limit:
            raise skip("supports_token_limit is False")
        options = {**self.options, "num_predict": 2}

        async def scenario(backend: AsyncBackend) -> None:
            reply = await backend.generate(self.prompt, options=options)
            assert reply.done_reason == "length", _LENGTH
            chunks = await self.collect(backend.generate_stream(self.prompt, options=options))
            assert chunks[-1].done_reason == "length", _LENGTH

        self.run(scenario)

    def test_json_format(self) -> None:
        if not self.supports_json_format:
            raise skip("supports_json_format is False")

        async def scenario(backend: AsyncBackend) -> None:
            _check_json((await backend.generate(self.prompt, format="json")).content)
            _check_json((await backend.chat(self.messages, format="json")).content)

        self.run(scenario)

    def test_context_manager_and_idempotent_close(self) -> None:
        async def main() -> None:
            backend = self.make_backend()
            async with backend as entered:
                assert entered is backend
            await backend.aclose()
            with raises(BackendError):
                await backend.generate(self.prompt)

        asyncio.run(main())

    def test_abandoned_streams_release_their_connections(self) -> None:
        async def scenario(backend: AsyncBackend) -> None:
            for _ in range(20):
                stream = backend.generate_stream(self.prompt)
                await anext(stream)
                aclose = getattr(stream, "aclose", None)  # an async generator: release it now
                if aclose is not None:
                    await aclose()
            _check_response(await backend.generate(self.prompt))

        self.run(scenario)
