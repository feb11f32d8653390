"""`AsyncBackendConformance`: the `AsyncBackend` contract as a suite a plugin subclasses.

Both suites come from one source: the asyncio suite is written by hand and the blocking one
generated from it by ``scripts/unasync.py``; their checks and settings live in
`llmcache._conformance_backends`, and `llmcache.testing` is their public face.
"""

from __future__ import annotations

import asyncio  # unasync: async-only
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from llmcache._conformance_backends import (
    LENGTH_REASON,
    SAME_ANSWER,
    BackendSettings,
    check_embed,
    check_json,
    check_missing,
    check_reordered,
    check_response,
    check_stream,
    raises,
    run_tests_in_event_loops,
    same_model,
    skip,
)
from llmcache.backends.base import AIResponse, AsyncBackend, StreamChunk
from llmcache.backends.errors import BackendError, ModelNotFound

__all__ = ["AsyncBackendConformance"]

_T = TypeVar("_T")  # unasync: async-only


@run_tests_in_event_loops  # unasync: async-only
class AsyncBackendConformance(BackendSettings):
    """The `AsyncBackend` contract, run against ``make_backend()`` (see `llmcache.testing`)."""

    def make_backend(self) -> AsyncBackend:
        """A new backend on the server under test; each test closes the one it made (the
        asyncio suite calls this inside the test's event loop)."""
        raise NotImplementedError("override make_backend() to return the backend under test")

    @asynccontextmanager
    async def backend(self) -> AsyncIterator[AsyncBackend]:
        async with self.make_backend() as backend:
            yield backend

    @staticmethod
    async def collect(chunks: AsyncIterable[StreamChunk]) -> list[StreamChunk]:
        return [chunk async for chunk in chunks]

    async def _check_stream_joins(
        self,
        stream: Callable[[AsyncBackend], AsyncIterable[StreamChunk]],
        # unasync: sync answer: Callable[[Backend], AIResponse],
        answer: Callable[[AsyncBackend], Awaitable[AIResponse]],  # unasync: async-only
    ) -> None:
        """``stream(backend)`` ends with a done chunk and, on a deterministic backend, joins
        to the text of ``answer(backend)``, the same request not streamed."""
        async with self.backend() as backend:
            text = check_stream(await self.collect(stream(backend)))
            if self.deterministic:
                reply = await answer(backend)
                assert text == reply.content, SAME_ANSWER

    # unasync: begin async-only
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        run_tests_in_event_loops(cls)  # a subclass's own async tests, too

    def run(self, scenario: Callable[[AsyncBackend], Awaitable[_T]]) -> _T:
        """Run ``scenario(backend)`` in a new event loop (for a subclass's own tests)."""

        async def main() -> _T:
            async with self.backend() as backend:
                return await scenario(backend)

        return asyncio.run(main())

    # unasync: end

    async def test_is_a_backend_with_a_default_model(self) -> None:
        async with self.backend() as backend:
            assert isinstance(backend, AsyncBackend)
            assert isinstance(backend.model, str) and backend.model

    async def test_generate(self) -> None:
        async with self.backend() as backend:
            check_response(await backend.generate(self.prompt, options=self.options))
            check_response(await backend.generate(self.prompt, system=self.system))

    async def test_generate_stream_ends_with_done_and_joins_to_generate(self) -> None:
        await self._check_stream_joins(
            lambda b: b.generate_stream(self.prompt, options=self.options),
            lambda b: b.generate(self.prompt, options=self.options),
        )

    async def test_chat(self) -> None:
        async with self.backend() as backend:
            check_response(await backend.chat(self.messages, options=self.options))

    async def test_chat_stream_ends_with_done_and_joins_to_chat(self) -> None:
        await self._check_stream_joins(
            lambda b: b.chat_stream(self.messages, options=self.options),
            lambda b: b.chat(self.messages, options=self.options),
        )

    async def test_embed_shape_and_order(self) -> None:
        if not self.supports_embed:
            raise skip("supports_embed is False")
        texts, reordered = list(self.texts), list(reversed(self.texts))
        async with self.backend() as backend:
            first = await backend.embed(texts, model=self.embed_model)
            check_embed(first, texts)
            second = await backend.embed(reordered, model=self.embed_model)
            check_reordered(first, texts, second, reordered)

    async def test_model_override(self) -> None:
        other = self.other_model
        if other is None:
            raise skip("no other_model to switch to")
        async with self.backend() as backend:
            default = backend.model
            reply = await backend.generate(self.prompt, model=other)
            chunks = await self.collect(backend.chat_stream(self.messages, model=other))
            assert same_model(reply.model, other), reply.model
            assert same_model(chunks[-1].model, other), chunks[-1].model
            assert backend.model == default, "a per-call model= must not change the default"

    async def test_unknown_model_is_model_not_found(self) -> None:
        missing = self.missing_model
        calls: list[Callable[[AsyncBackend], Any]] = [
            lambda b: b.generate(self.prompt, model=missing),
            lambda b: b.chat(self.messages, model=missing),
            lambda b: self.collect(b.generate_stream(self.prompt, model=missing)),
            lambda b: self.collect(b.chat_stream(self.messages, model=missing)),
        ]
        if self.supports_embed:
            calls.append(lambda b: b.embed(["x"], model=missing))
        async with self.backend() as backend:
            for call in calls:
                with raises(ModelNotFound) as caught:
                    await call(backend)
                check_missing(caught, missing)

    async def test_token_limit_reports_length(self) -> None:
        if not self.supports_token_limit:
            raise skip("supports_token_limit is False")
        options = {**self.options, "num_predict": 2}
        async with self.backend() as backend:
            reply = await backend.generate(self.prompt, options=options)
            assert reply.done_reason == "length", LENGTH_REASON
            chunks = await self.collect(backend.generate_stream(self.prompt, options=options))
            assert chunks[-1].done_reason == "length", LENGTH_REASON

    async def test_json_format(self) -> None:
        if not self.supports_json_format:
            raise skip("supports_json_format is False")
        async with self.backend() as backend:
            check_json((await backend.generate(self.prompt, format="json")).content)
            check_json((await backend.chat(self.messages, format="json")).content)

    async def test_context_manager_and_idempotent_close(self) -> None:
        backend = self.make_backend()
        async with backend as entered:
            assert entered is backend
        await backend.aclose()
        with raises(BackendError):
            await backend.generate(self.prompt)

    async def test_abandoned_streams_release_their_connections(self) -> None:
        async with self.backend() as backend:
            for _ in range(20):
                stream = backend.generate_stream(self.prompt)
                await anext(stream)
                aclose = getattr(stream, "aclose", None)  # a generator: release it now
                if aclose is not None:
                    await aclose()
            check_response(await backend.generate(self.prompt))
