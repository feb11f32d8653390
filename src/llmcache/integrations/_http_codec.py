"""The caching transport's values as the pipeline carries them, and its codec.

An understood call's answer crosses the pipeline's runner (`llmcache._pipeline`) in one of
two shapes, both decoded (no ``content-encoding`` left) and without the headers that
describe the body's framing (``content-length``, ``transfer-encoding``, ``content-encoding``:
the door's HTTP package sets them for the bytes it hands on):

- a plain call's answer is an `HttpAnswer`: status, headers, the whole body, and the
  `llmcache.integrations._http_answers.ResponseRecorder`'s judgement of it (storable only
  when complete and ``2xx``);
- a streamed call's answer is a `Head` (status and headers) followed by the body's bytes as
  they arrived; `HttpAnswers.record` judges the whole once the stream ended cleanly.

`HttpAnswers` is the codec (`llmcache._pipeline.codec.StreamCodec`): an answer that may not
be stored encodes to None (nothing stored, nothing counted); a hit gives back the recorded
status, ``content-type`` and bytes, the same events in the same order, marked ``cached``.
An entry written for a stream and read by a plain call (or the other way round) cannot
happen (``stream`` is in the key); should a stream's request have been answered with one
JSON body, the replay is that body, as the upstream sent it.

`semantic_request` is the `llmcache.keys.Request` a plain call stands for in a semantic
tier: its text (messages or prompt) to match, everything else that is in the exact key
(route, origin, path, credential scope, namespace, key headers, every other body field) as
the partition, so a semantic hit never crosses models, options, tools, system prompts or
tenants.

>>> from llmcache.integrations._http_routes import ROUTES
>>> answer = answer_of(ROUTES[2], 200, [("content-type", "application/json"),
...                                     ("content-length", "24")], b'{"data": [], "model": "e"}')
>>> answer.headers, answer.answer.storable
((('content-type', 'application/json'),), True)
>>> entry = HTTP_ANSWERS.encode(answer, "fp", None)
>>> HTTP_ANSWERS.decode(entry).body, HTTP_ANSWERS.decode(entry).cached
(b'{"data": [], "model": "e"}', True)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from llmcache.entry import CachedResponse, CodecError, JSONValue
from llmcache.integrations._http_answers import (
    Answer,
    ResponseRecorder,
    answer_entry,
    replay_entry,
    replay_parts,
)
from llmcache.integrations._http_control import STATUS_HEADER
from llmcache.integrations._http_routes import HttpCall, Route
from llmcache.keys import Request

__all__ = [
    "HTTP_ANSWERS",
    "Head",
    "HttpAnswer",
    "HttpAnswers",
    "answer_of",
    "passed_headers",
    "semantic_request",
]

# Headers of the upstream's answer that describe its framing or encoding (the door's
# package sets its own for the decoded bytes it hands on), or an llmcache in front of the
# upstream (this door says what it did itself).
_DROPPED = frozenset({"content-length", "transfer-encoding", "content-encoding"})


def passed_headers(items: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The upstream answer's headers that go on with its decoded body (names lowercase)."""
    return tuple(
        (n, v)
        for n, v in ((n.lower(), v) for n, v in items)
        if n not in _DROPPED and not n.startswith(STATUS_HEADER)
    )


@dataclass(frozen=True, slots=True)
class Head:
    """The start of a streamed answer: status and headers (``route``: the upstream's
    answer to record; None for a replay, which is ``cached``)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    route: Route | None = None
    cached: bool = False


class HttpAnswer(NamedTuple):
    """A plain call's whole answer. ``answer``: the recorder's judgement (None for a hit);
    ``cached``: read from a tier; ``shared``: another caller's answer, waited for;
    ``similarity``: a semantic hit's. A named tuple: a hit builds one, and a tuple is built
    several times faster than a frozen dataclass."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    answer: Answer | None = None
    cached: bool = False
    shared: bool = False
    similarity: float | None = None


def answer_of(
    route: Route, status: int, headers: Iterable[tuple[str, str]], body: bytes
) -> HttpAnswer:
    """The `HttpAnswer` of an upstream's whole, decoded answer to a call of `route`."""
    passed = passed_headers(headers)
    recorder = ResponseRecorder(route, status, passed)
    recorder.feed(body)
    return HttpAnswer(status, passed, body, recorder.finish())


class HttpAnswers:
    """The transport's codec (see the module docstring). Lenient: an answer no tier can
    hold is the caller's all the same."""

    strict = False

    def encode(
        self, value: HttpAnswer, fingerprint: str, ttl: float | None
    ) -> CachedResponse | None:
        answer = value.answer
        if answer is None or not answer.storable:
            return None  # an error, an incomplete answer: passed on, never stored
        entry = answer_entry(answer, fingerprint=fingerprint)
        return entry if ttl is None else entry.with_ttl(ttl, entry.created_at)

    def decode(self, entry: CachedResponse) -> HttpAnswer:
        status, headers, _, body, chunks = replay_parts(entry)
        if body is None:
            body = b"".join(chunks or ())
        return _new_answer(HttpAnswer, (status, headers, body, None, True, False, None))

    def share(self, value: HttpAnswer) -> HttpAnswer:
        # Immutable (bytes, tuples): only marked, so the follower's door says "hit".
        return value if value.shared else value._replace(shared=True)

    def semantic(self, entry: CachedResponse) -> HttpAnswer:
        found = entry.metadata.get("semantic")
        similarity = found.get("similarity") if isinstance(found, dict) else None
        value = self.decode(entry)
        if isinstance(similarity, (int, float)) and not isinstance(similarity, bool):
            return value._replace(similarity=float(similarity))
        return value

    def replay(self, entry: CachedResponse) -> list[Any]:
        replay = replay_entry(entry)
        chunks = replay.chunks if replay.chunks is not None else (replay.body or b"",)
        return [Head(replay.status, replay.headers, cached=True), *chunks]

    def record(self, chunks: list[Any]) -> tuple[HttpAnswer, list[JSONValue]] | None:
        head = chunks[0] if chunks else None
        if not isinstance(head, Head) or head.route is None:
            raise CodecError("a stream starts with the upstream's head")
        recorder = ResponseRecorder(head.route, head.status, head.headers)
        for chunk in chunks[1:]:
            recorder.feed(chunk)
        answer = recorder.finish()
        if not answer.storable:
            return None
        value = HttpAnswer(head.status, head.headers, b"", answer)
        return value, list(answer.chunks or ())


HTTP_ANSWERS = HttpAnswers()
_new_answer = tuple.__new__  # builds an HttpAnswer without the Python-level __new__ (a hit)

# The field each route's text is in: what a semantic tier embeds.
_TEXT = {
    "openai.chat": "messages",
    "anthropic.messages": "messages",
    "ollama.chat": "messages",
    "openai.completions": "prompt",
    "ollama.generate": "prompt",
    "openai.responses": "input",
}


def semantic_request(call: HttpCall) -> Request | None:
    """The `Request` a plain call stands for in a semantic tier, or None (no text to
    match: embeddings, a prompt that is not one string, messages with parts that are not
    text)."""
    field = _TEXT.get(call.route.name)
    text = call.body.get(field) if field else None
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    if isinstance(text, str) and text:
        prompt = text
    elif (
        isinstance(text, list)
        and text
        and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in text
        )
    ):
        messages = text
    else:
        return None
    rest = {
        k: v
        for k, v in call.body.items()
        if k != field and k != "stream" and k not in call.route.excluded
    }
    partition = {
        "route": call.route.name,
        "origin": call.origin,
        "path": call.path,
        "scope": call.scope,
        "headers": dict(call.key_headers),
        "body": rest,
    }
    return Request(
        model=call.model,
        prompt=prompt,
        messages=messages,
        namespace=call.namespace,
        extra={"http": partition},
    )
