"""A minimal working backend plugin: answers by echoing, reversed so tests can tell it from
llmcache's own mock."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from llmcache.backends.base import AIResponse, Backend, EmbedResponse, StreamChunk


class EchoBackend(Backend):
    def __init__(self, *, model: str = "echo", prefix: str = "") -> None:
        self.model = model
        self.prefix = prefix

    def _answer(self, text: str, model: str | None) -> AIResponse:
        return AIResponse(content=self.prefix + text[::-1], model=model or self.model)

    def generate(self, prompt: str, *, model: str | None = None, **kw: Any) -> AIResponse:
        return self._answer(prompt, model)

    def generate_stream(
        self, prompt: str, *, model: str | None = None, **kw: Any
    ) -> Iterator[StreamChunk]:
        answer = self._answer(prompt, model)
        yield StreamChunk(content=answer.content, model=answer.model)
        yield StreamChunk(content="", model=answer.model, done=True, done_reason="stop")

    def chat(
        self, messages: Sequence[Mapping[str, Any]], *, model: str | None = None, **kw: Any
    ) -> AIResponse:
        return self._answer(str(messages[-1]["content"]), model)

    def chat_stream(
        self, messages: Sequence[Mapping[str, Any]], *, model: str | None = None, **kw: Any
    ) -> Iterator[StreamChunk]:
        return self.generate_stream(str(messages[-1]["content"]), model=model)

    def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResponse:
        return EmbedResponse([[float(len(t))] for t in texts], model=model or self.model)
