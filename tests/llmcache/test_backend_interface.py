"""The backend interface (`Backend`, `AsyncBackend`): a backend either overrides the four
calls or implements the three hooks they go through, and one that does neither for some call
cannot be instantiated, with an error naming the call."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import pytest

from llmcache.backends import AIResponse, AsyncBackend, Backend, EmbedResponse, StreamChunk

Recorded = tuple[str, dict[str, Any], dict[str, Any]]


def _words(error: pytest.ExceptionInfo[TypeError]) -> set[str]:
    """The names in an error message (Python 3.12 quotes them, 3.11 does not)."""
    return set(re.findall(r"\w+", str(error.value)))


def _text(fields: Mapping[str, Any]) -> str:
    return str(fields["prompt"] if "prompt" in fields else fields["messages"][-1]["content"])


class HookedBackend(Backend):
    """Implements the hooks only: ``_call`` records what the calls hand it."""

    def __init__(self) -> None:
        self.model = "hooked"

    def _call(self, method: str, fields: dict[str, Any], extra: dict[str, Any]) -> Recorded:
        return method, fields, extra

    def _answer(self, call: Recorded) -> AIResponse:
        method, fields, _ = call
        return AIResponse(content=f"{method}: {_text(fields)}", model=fields["model"])

    def _stream(self, call: Recorded) -> Iterator[StreamChunk]:
        method, fields, _ = call
        yield StreamChunk(content=f"{method}: {_text(fields)}", model=fields["model"])
        yield StreamChunk(content="", model=fields["model"], done=True)

    def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        return EmbedResponse([[1.0] for _ in texts], model=model or self.model)


class AsyncHookedBackend(AsyncBackend):
    """The asyncio `HookedBackend`."""

    def __init__(self) -> None:
        self.model = "hooked"

    def _call(self, method: str, fields: dict[str, Any], extra: dict[str, Any]) -> Recorded:
        return method, fields, extra

    async def _answer(self, call: Recorded) -> AIResponse:
        method, fields, _ = call
        return AIResponse(content=f"{method}: {_text(fields)}", model=fields["model"])

    async def _stream(self, call: Recorded) -> AsyncIterator[StreamChunk]:
        method, fields, _ = call
        yield StreamChunk(content=f"{method}: {_text(fields)}", model=fields["model"])
        yield StreamChunk(content="", model=fields["model"], done=True)

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        return EmbedResponse([[1.0] for _ in texts], model=model or self.model)


def test_a_backend_may_implement_the_hooks_instead_of_the_calls() -> None:
    backend = HookedBackend()
    assert isinstance(backend, Backend) and not inspect.isabstract(HookedBackend)
    assert backend.generate("hi").content == "generate: hi"
    assert backend.chat([{"role": "user", "content": "yo"}], model="m").model == "m"
    chunks = list(backend.generate_stream("hi"))
    assert [c.content for c in chunks] == ["generate_stream: hi", ""] and chunks[-1].done
    assert [c.content for c in backend.chat_stream([{"role": "user", "content": "x"}])][0] == (
        "chat_stream: x"
    )


def test_the_hooks_get_the_named_arguments_and_the_others_apart() -> None:
    recorded: list[Recorded] = []

    class Recording(HookedBackend):
        def _call(self, method: str, fields: dict[str, Any], extra: dict[str, Any]) -> Recorded:
            recorded.append((method, fields, extra))
            return super()._call(method, fields, extra)

    Recording().generate("p", temperature=0.5, seed=1)
    Recording().chat([{"role": "user", "content": "c"}], tools=[{"type": "function"}], max_tokens=3)
    (_, gen_fields, gen_extra), (_, chat_fields, chat_extra) = recorded
    assert gen_fields == {
        "prompt": "p",
        "model": "hooked",  # the default model filled in
        "system": None,
        "format": None,
        "options": None,
        "images": None,
        "temperature": 0.5,
        "max_tokens": None,
    }
    assert gen_extra == {"seed": 1}
    assert set(chat_fields) == {"messages", "model", "tools", "format", "options"} | {
        "temperature",
        "max_tokens",
    }
    assert (chat_fields["max_tokens"], chat_extra) == (3, {})


async def test_an_async_backend_may_implement_the_hooks_instead_of_the_calls() -> None:
    backend = AsyncHookedBackend()
    assert isinstance(backend, AsyncBackend) and not isinstance(backend, Backend)
    assert (await backend.generate("hi")).content == "generate: hi"
    assert (await backend.chat([{"role": "user", "content": "yo"}])).content == "chat: yo"
    chunks = [c async for c in backend.generate_stream("hi", model="m")]
    assert [(c.content, c.model) for c in chunks] == [("generate_stream: hi", "m"), ("", "m")]
    messages = [{"role": "user", "content": "x"}]
    assert [c.content async for c in backend.chat_stream(messages)][0] == "chat_stream: x"


class Overriding(Backend):
    """A plugin written against the interface: overrides the calls, knows no hooks."""

    def __init__(self) -> None:
        self.model = "plugin"

    def generate(self, prompt: str, *, model: str | None = None, **kw: Any) -> AIResponse:
        return AIResponse(content=prompt[::-1], model=model or self.model)

    def generate_stream(
        self, prompt: str, *, model: str | None = None, **kw: Any
    ) -> Iterator[StreamChunk]:
        yield StreamChunk(content=prompt[::-1], model=model or self.model, done=True)

    def chat(
        self, messages: Sequence[Mapping[str, Any]], *, model: str | None = None, **kw: Any
    ) -> AIResponse:
        return self.generate(str(messages[-1]["content"]), model=model)

    def chat_stream(
        self, messages: Sequence[Mapping[str, Any]], *, model: str | None = None, **kw: Any
    ) -> Iterator[StreamChunk]:
        return self.generate_stream(str(messages[-1]["content"]), model=model)

    def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        return EmbedResponse([[0.0] for _ in texts], model=model or self.model)


def test_a_plugin_overriding_the_calls_needs_no_hooks() -> None:
    backend = Overriding()
    assert backend.generate("abc").content == "cba"
    assert [c.content for c in backend.chat_stream([{"role": "user", "content": "ab"}])] == ["ba"]
    assert backend.generate("abc", temperature=0.1, seed=2).content == "cba"


def test_the_interfaces_themselves_are_abstract() -> None:
    for interface in (Backend, AsyncBackend):
        with pytest.raises(TypeError, match="abstract"):
            interface()  # type: ignore[abstract]


def test_a_call_with_neither_an_override_nor_its_hooks_is_abstract() -> None:
    class NoStreams(Backend):
        """Answers, but cannot stream: no stream methods, no ``_stream`` hook."""

        def __init__(self) -> None:
            self.model = "m"

        def _call(self, method: str, fields: dict[str, Any], extra: dict[str, Any]) -> str:
            return method

        def _answer(self, call: str) -> AIResponse:
            return AIResponse(content=call, model=self.model)

        def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
            return EmbedResponse([], model=self.model)

    assert inspect.isabstract(NoStreams)
    with pytest.raises(TypeError, match="abstract") as caught:
        NoStreams()  # type: ignore[abstract]
    named = _words(caught)
    assert {"generate_stream", "chat_stream"} <= named
    assert not {"generate", "chat"} & named  # answered through the hooks

    class Streams(NoStreams):
        def _stream(self, call: str) -> Iterator[StreamChunk]:
            yield StreamChunk(content=call, done=True)

    assert [c.content for c in Streams().chat_stream([])] == ["chat_stream"]


def test_a_subclass_missing_a_call_gets_the_abstract_error_naming_it() -> None:
    class OnlyGenerate(AsyncBackend):
        def __init__(self) -> None:
            self.model = "m"

        async def generate(self, prompt: str, **kw: Any) -> AIResponse:
            return AIResponse(content=prompt, model=self.model)

        async def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
            return EmbedResponse([], model=self.model)

    with pytest.raises(TypeError, match="abstract") as caught:
        OnlyGenerate()  # type: ignore[abstract]
    assert {"generate_stream", "chat", "chat_stream"} <= _words(caught)
    assert "generate" not in _words(caught)

    class NoEmbed(Backend):
        """The four calls through the hooks, but no ``embed``."""

        _call, _answer, _stream = HookedBackend._call, HookedBackend._answer, HookedBackend._stream

    with pytest.raises(TypeError, match="abstract") as caught:
        NoEmbed()  # type: ignore[abstract]
    assert "embed" in _words(caught) and "generate" not in _words(caught)


def test_a_backend_may_mix_in_a_class_with_another_abc_metaclass() -> None:
    # pydantic models (LangChain's LLM classes among them) have a metaclass of their own
    # built on ABCMeta: the interface must not bring a metaclass that conflicts with it.
    from abc import ABCMeta

    class OtherMeta(ABCMeta):
        pass

    class Settings(metaclass=OtherMeta):
        pass

    class Mixed(HookedBackend, Settings):
        pass

    class AsyncMixed(AsyncHookedBackend, Settings):
        pass

    assert Mixed().generate("hi").content == "generate: hi"
    assert not inspect.isabstract(AsyncMixed)

    class Unserved(Backend, Settings):
        def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
            return EmbedResponse([], model="m")

    with pytest.raises(TypeError) as error:
        Unserved()  # type: ignore[abstract]
    assert {"generate", "chat_stream"} <= _words(error)
