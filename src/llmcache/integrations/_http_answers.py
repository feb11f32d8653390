"""Answers of the model APIs: what may be stored, recording a stream, the entry codec.

A `ResponseRecorder` is fed the answer's body bytes as they pass through the door (chunks
may split lines and events anywhere) and, once the body ended cleanly, says in an `Answer`
whether the answer is complete and storable. Only complete ``2xx`` answers are:

- a JSON body that parses, with the route's own end marker: OpenAI chat and completions
  ``choices[*].finish_reason``; Responses ``status`` ``completed`` (or ``incomplete``, then
  ``done_reason`` says why); embeddings ``data``; Anthropic ``stop_reason``; Ollama
  ``done: true``, or ``embeddings``. A body with an ``error`` is never storable.
- an SSE stream (OpenAI, Anthropic): OpenAI chat and completions end with ``data: [DONE]``
  after every choice got a ``finish_reason``; Responses end with ``response.completed`` or
  ``response.incomplete``; Anthropic with ``event: message_stop``. An ``error`` event (or an
  ``error`` object in the data, ``response.failed``) makes it unstorable.
- an NDJSON stream (Ollama): complete when the last line has ``done: true``; a line with
  ``"error"`` makes it unstorable.

A body that did not end cleanly (a cut connection, a client that stopped reading) never
reaches `ResponseRecorder.finish`: the door drops the recorder and nothing is stored.
``done_reason`` is normalised (``"length"`` for every API's token-limit reason) so the door
can ask `llmcache.policy.CachePolicy.storable_reason`.

The recorder keeps the answer as UTF-8 text (every format here is UTF-8 JSON): the body, or
the stream cut into its events (SSE: up to and including the blank line that ends each
event; NDJSON: each line with its line end). `answer_entry` stores it in a
`llmcache.entry.CachedResponse` (JSON, never pickled) with the status and the replayed
headers; `replay_entry` gives back a `Replay` whose chunks are the same bytes, in the same
order, with the same event boundaries.

Replayed headers: only ``content-type``. ``content-length`` and ``transfer-encoding`` are
the door's to set; ``content-encoding`` must not be replayed since the recorder is fed
decoded bytes (a recorder told of an encoded body records nothing); ``date``, request ids
(``x-request-id``, ``request-id``, ``cf-ray``), ``openai-processing-ms``, rate-limit counts
and ``set-cookie`` describe the first call, not this one, and organisation or project
headers would tell a caller of another scope whose answer it got.

>>> from llmcache.integrations._http_routes import ROUTES
>>> chat = ROUTES[0]
>>> rec = ResponseRecorder(chat, 200, {"content-type": "text/event-stream"})
>>> for piece in (b'data: {"choices": [{"index": 0, "delta": {"content": "4"}}]}\\n',
...               b'\\ndata: {"choices": [{"index": 0, "finish_reason": "stop"}]}\\n\\nda',
...               b'ta: [DONE]\\n\\n'):
...     rec.feed(piece)
>>> answer = rec.finish()
>>> answer.storable, answer.done_reason, len(answer.chunks)
(True, 'stop', 3)
>>> replay = replay_entry(answer_entry(answer, fingerprint="f"))
>>> b"".join(replay.iter_bytes()) == b"".join(c.encode() for c in answer.chunks)
True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import orjson

from llmcache.entry import CachedResponse, CodecError
from llmcache.integrations._http_routes import HeaderInput, Route, header_items

__all__ = [
    "ENTRY_VERSION",
    "REPLAYED_HEADERS",
    "Answer",
    "Replay",
    "ResponseRecorder",
    "Usage",
    "answer_entry",
    "replay_entry",
    "replay_parts",
]

#: Version of the ``metadata["http"]`` layout of an entry; other versions are refused.
ENTRY_VERSION = 1

#: Response headers stored with an answer and replayed on a hit (see the module docs).
REPLAYED_HEADERS = ("content-type",)

Format = Literal["json", "sse", "ndjson"]
_MEDIA: dict[str, Format] = {
    "application/json": "json",
    "text/event-stream": "sse",
    "application/x-ndjson": "ndjson",
}
_LENGTH_REASONS = frozenset(
    {"length", "max_tokens", "max_output_tokens", "model_context_window_exceeded"}
)
_EOL = re.compile(rb"\r\n|\r|\n")
_EOL_TEXT = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens an answer cost upstream (what a hit saves). Zero where the API gave none."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Answer:
    """A recorded answer and whether it may be stored.

    ``storable`` is true only for a complete ``2xx`` answer; ``reason`` says why not
    otherwise. ``body`` holds a JSON answer's text, ``chunks`` a stream's events.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    format: Format | None
    storable: bool
    reason: str
    done_reason: str | None
    usage: Usage
    model: str
    body: str | None
    chunks: tuple[str, ...] | None


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def _usage(prompt: Any, completion: Any, total: Any = None) -> Usage:
    p, c = _int(prompt), _int(completion)
    return Usage(p, c, _int(total) or p + c)


def _openai_usage(u: dict[str, Any]) -> Usage:
    return _usage(u.get("prompt_tokens"), u.get("completion_tokens"), u.get("total_tokens"))


def _responses_usage(u: dict[str, Any]) -> Usage:
    return _usage(u.get("input_tokens"), u.get("output_tokens"), u.get("total_tokens"))


def _anthropic_usage(u: dict[str, Any]) -> Usage:
    # Prompt-cache reads and writes are input the model processed: a hit saves them too.
    prompt = sum(
        _int(u.get(k))
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return _usage(prompt, u.get("output_tokens"))


def _ollama_usage(u: dict[str, Any]) -> Usage:
    return _usage(u.get("prompt_eval_count"), u.get("eval_count"))


def _done_reason(reason: Any) -> str | None:
    if not isinstance(reason, str):
        return None
    return "length" if reason in _LENGTH_REASONS else reason


class _Reader:
    """What one route's answer says: complete or not, why it ended, usage, model.

    A route's reader says in its class attributes how its API counts tokens (``counts``:
    the usage fields gathered by `note` to a `Usage`) and why a stream that ended cleanly
    is still not complete (``incomplete``: its API's last event never came).
    """

    counts = staticmethod(_openai_usage)
    incomplete: ClassVar[str] = "the stream ended before its last event"

    def __init__(self) -> None:
        self.failure = ""
        self.complete = False
        self.done_reason: str | None = None
        self.model = ""
        self.usage_raw: dict[str, Any] = {}

    def usage(self) -> Usage:
        """Tokens the answer cost, from the usage fields gathered by `note`."""
        return self.counts(self.usage_raw)

    def fail(self, why: str) -> None:
        if not self.failure:
            self.failure = why

    def note(self, obj: dict[str, Any]) -> None:
        """Model and usage, wherever an API puts them in `obj`."""
        if isinstance(obj.get("model"), str):
            self.model = obj["model"]
        if isinstance(obj.get("usage"), dict):
            self.usage_raw.update(obj["usage"])

    def body(self, obj: dict[str, Any]) -> None:  # a whole JSON answer
        raise NotImplementedError

    def event(self, name: str | None, data: str) -> None:  # one SSE event
        self.fail("this route does not stream")

    def line(self, obj: dict[str, Any]) -> None:  # one NDJSON line
        self.fail("this route does not stream NDJSON")


class _OpenAIChoices(_Reader):
    """Chat completions and legacy completions: choices, finish reasons, ``[DONE]``."""

    incomplete = "the stream ended before data: [DONE]"

    def __init__(self) -> None:
        super().__init__()
        self.done = False
        self.finished: dict[Any, str] = {}
        self.seen: set[Any] = set()

    def choices(self, obj: dict[str, Any]) -> None:
        choices = obj.get("choices")
        if not isinstance(choices, list):
            return
        for choice in choices:
            if isinstance(choice, dict):
                index = choice.get("index", 0)
                index = index if isinstance(index, int) else repr(index)
                self.seen.add(index)
                if isinstance(choice.get("finish_reason"), str):
                    self.finished[index] = choice["finish_reason"]

    def outcome(self) -> None:
        if not self.seen:
            self.fail("the answer has no choices")
        elif self.seen - self.finished.keys():
            self.fail("a choice has no finish_reason")
        else:
            reasons = [self.finished[i] for i in sorted(self.finished, key=str)]
            self.done_reason = "length" if "length" in reasons else _done_reason(reasons[0])
            self.complete = True

    def body(self, obj: dict[str, Any]) -> None:
        self.note(obj)
        self.choices(obj)
        self.outcome()

    def event(self, name: str | None, data: str) -> None:
        if data.startswith("[DONE]"):  # as the openai SDK reads it
            self.done = True
            self.outcome()
            return
        obj = _event_json(self, name, data)
        if obj is None:
            return
        if self.done:
            self.fail("data after [DONE]")
        self.note(obj)
        self.choices(obj)


class _OpenAIResponses(_Reader):
    counts = staticmethod(_responses_usage)
    incomplete = "the stream ended before response.completed"

    def body(self, obj: dict[str, Any]) -> None:
        self.final(obj, obj.get("status"))

    def final(self, response: Any, status: Any) -> None:
        if not isinstance(response, dict):
            self.fail("the final event has no response")
            return
        self.note(response)
        if status == "completed":
            self.complete = True
        elif status == "incomplete":
            details = response.get("incomplete_details")
            why = details.get("reason") if isinstance(details, dict) else None
            self.done_reason = _done_reason(why) or "incomplete"
            self.complete = True
        else:
            self.fail(f"the response's status is {status!r}")

    def event(self, name: str | None, data: str) -> None:
        obj = _event_json(self, name, data)
        if obj is None:
            return
        kind = obj.get("type", name)
        if self.complete:
            self.fail("events after the response ended")
        elif kind in ("response.completed", "response.incomplete"):
            response = obj.get("response")
            status = response.get("status") if isinstance(response, dict) else None
            self.final(response, status or kind.split(".")[1])
        elif kind in ("response.failed", "response.cancelled"):
            self.fail(f"the stream ended with {kind}")


class _OpenAIEmbeddings(_Reader):
    def body(self, obj: dict[str, Any]) -> None:
        self.note(obj)
        if isinstance(obj.get("data"), list):
            self.complete = True
        else:
            self.fail("the answer has no data")


class _AnthropicMessages(_Reader):
    counts = staticmethod(_anthropic_usage)
    incomplete = "the stream ended before event: message_stop"

    def body(self, obj: dict[str, Any]) -> None:
        self.note(obj)
        if isinstance(obj.get("stop_reason"), str):
            self.done_reason = _done_reason(obj["stop_reason"])
            self.complete = True
        else:
            self.fail("the message has no stop_reason")

    def event(self, name: str | None, data: str) -> None:
        obj = _event_json(self, name, data)
        if obj is None:
            return
        kind = name or obj.get("type")
        if kind == "ping":
            return
        if self.complete:
            self.fail("events after message_stop")
        elif kind == "message_start" and isinstance(obj.get("message"), dict):
            self.note(obj["message"])
        elif kind == "message_delta":
            self.note(obj)  # usage: cumulative output tokens
            delta = obj.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason") is not None:
                self.done_reason = _done_reason(delta["stop_reason"])
        elif kind == "message_stop":
            self.complete = True


class _Ollama(_Reader):
    counts = staticmethod(_ollama_usage)
    incomplete = "the stream ended before a line with done: true"

    def note(self, obj: dict[str, Any]) -> None:
        if isinstance(obj.get("model"), str):
            self.model = obj["model"]
        self.usage_raw.update(obj)  # the counts sit at the top level

    def body(self, obj: dict[str, Any]) -> None:
        self.note(obj)
        if obj.get("done") is True or isinstance(obj.get("embeddings"), list):
            self.done_reason = _done_reason(obj.get("done_reason"))
            self.complete = True
        else:
            self.fail("the answer is not done")

    def line(self, obj: dict[str, Any]) -> None:
        if "error" in obj:
            self.fail("the stream carries an error")
        elif self.complete:
            self.fail("lines after the done line")
        elif obj.get("done") is True:
            self.body(obj)


def _event_json(reader: _Reader, name: str | None, data: str) -> dict[str, Any] | None:
    """An SSE event's data as an object, or None after recording why it cannot be stored."""
    if name == "error":
        reader.fail("the stream carries an error event")
        return None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        reader.fail("an event's data is not JSON")
        return None
    if not isinstance(obj, dict):
        reader.fail("an event's data is not a JSON object")
        return None
    if obj.get("error") or obj.get("type") == "error":
        reader.fail("the stream carries an error")
        return None
    return obj


_READERS: dict[str, Callable[[], _Reader]] = {
    "openai.chat": _OpenAIChoices,
    "openai.completions": _OpenAIChoices,
    "openai.responses": _OpenAIResponses,
    "openai.embeddings": _OpenAIEmbeddings,
    "anthropic.messages": _AnthropicMessages,
    "ollama.generate": _Ollama,
    "ollama.chat": _Ollama,
    "ollama.embed": _Ollama,
}


class _Lines:
    """Cuts bytes into lines with their line ends (CRLF, CR or LF, as SSE allows)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scan = 0

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        lines, start, pos = [], 0, self._scan
        while (m := _EOL.search(buf, pos)) is not None:
            end = m.end()
            if end == len(buf) and buf[-1] == 13:  # a CR last: the LF of a CRLF may follow
                pos = m.start()
                break
            lines.append(bytes(buf[start:end]))
            start = pos = end
        else:
            pos = len(buf)
        del buf[:start]
        self._scan = pos - start
        return lines

    def finish(self) -> tuple[list[bytes], bytes]:
        """The lines still held (a final CR ends one) and what follows the last line end."""
        lines = self.feed(b"\n") if self._buf.endswith(b"\r") else []
        if lines:  # the LF fed above is not part of the body
            lines[-1] = lines[-1][:-1]
        rest = bytes(self._buf)
        self._buf.clear()
        return lines, rest


class ResponseRecorder:
    """Records an answer as it passes through and judges it when its body has ended.

    `status` and `headers` are the upstream response's; the body format follows its
    content type (JSON, SSE, NDJSON). Feed the body's decoded bytes with `feed`, in any
    pieces; call `finish` only when the body ended cleanly. An answer that cannot be
    stored (not ``2xx``, an error event, larger than `max_bytes`) is no longer held in
    memory from the moment that is known; the door keeps forwarding it.
    """

    def __init__(
        self, route: Route, status: int, headers: HeaderInput, *, max_bytes: int | None = 64 * 2**20
    ) -> None:
        self._route = route
        self._status = status
        items = header_items(headers)
        kept = {n: v for n, v in reversed(items) if n in REPLAYED_HEADERS}
        self._headers = tuple((n, kept[n]) for n in REPLAYED_HEADERS if n in kept)
        self._reader = _READERS[route.name]()
        self._max = max_bytes
        self._size = 0
        self._lines = _Lines()
        self._chunks: list[str] = []
        self._body: list[bytes] = []
        self._event: list[bytes] = []
        self._body_text = ""
        self._finished = False
        self.format: Format | None = None
        media = kept.get("content-type", "").split(";")[0].strip().lower()
        encoding = dict(items).get("content-encoding", "identity").strip().lower()
        if not 200 <= status < 300:
            self._reader.fail(f"status {status}")
        elif encoding not in ("", "identity"):
            self._reader.fail(f"content-encoding {encoding}: the recorder needs decoded bytes")
        elif (fmt := _MEDIA.get(media)) is None or fmt not in ("json", route.stream_format):
            self._reader.fail(f"content-type {media or '(none)'} is not an answer of {route.name}")
        else:
            self.format = fmt

    @property
    def recording(self) -> bool:
        """Whether the answer may still be storable (so its bytes are still kept)."""
        return not self._reader.failure

    def feed(self, data: bytes) -> None:
        """Record the next piece of the body (it may cut a line or event anywhere)."""
        if self._finished:
            raise RuntimeError("ResponseRecorder.feed after finish")
        if self._reader.failure:
            return
        self._size += len(data)
        if self._max is not None and self._size > self._max:
            self._reader.fail(f"the answer is larger than max_bytes={self._max}")
            self._drop()
        elif self.format == "json":
            self._body.append(bytes(data))
        else:
            for line in self._lines.feed(data):
                self._line(line)

    def finish(self) -> Answer:
        """Judge the answer; call this only when the body ended cleanly."""
        self._finished = True
        reader = self._reader
        if not reader.failure:
            if self.format == "json":
                self._judge_body(b"".join(self._body))
            else:
                self._end_stream()
        if reader.failure:
            self._drop()
        storable = not reader.failure and reader.complete
        return Answer(
            status=self._status,
            headers=self._headers,
            format=self.format,
            storable=storable,
            reason=reader.failure,
            done_reason=reader.done_reason,
            usage=reader.usage(),
            model=reader.model,
            body=self._body_text if storable and self.format == "json" else None,
            chunks=tuple(self._chunks) if storable and self.format != "json" else None,
        )

    def _drop(self) -> None:
        self._chunks.clear()
        self._body.clear()
        self._event.clear()

    def _text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self._reader.fail("the answer is not UTF-8")
            return ""

    def _judge_body(self, raw: bytes) -> None:
        self._body_text = self._text(raw)
        if self._reader.failure:
            return
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._reader.fail("the body is not JSON")
            return
        if not isinstance(obj, dict):
            self._reader.fail("the body is not a JSON object")
        elif obj.get("error") or obj.get("type") == "error":
            self._reader.fail("the body is an error")
        else:
            self._reader.body(obj)

    def _line(self, line: bytes) -> None:
        if self.format == "ndjson":
            self._emit(line)
            stripped = line.strip()
            if stripped and not self._reader.failure:
                self._ndjson(stripped)
            return
        self._event.append(line)
        if line in (b"\n", b"\r\n", b"\r"):  # a blank line ends an SSE event
            raw = b"".join(self._event)
            self._event.clear()
            text = self._emit(raw)
            if text is not None:
                self._sse(text)

    def _emit(self, raw: bytes) -> str | None:
        text = self._text(raw)
        if self._reader.failure:
            return None
        self._chunks.append(text)
        return text

    def _ndjson(self, raw: bytes) -> None:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._reader.fail("a line is not JSON")
            return
        if isinstance(obj, dict):
            self._reader.line(obj)
        else:
            self._reader.fail("a line is not a JSON object")

    def _sse(self, text: str) -> None:
        # As the SSE spec (and the openai SDK's decoder) reads an event.
        name: str | None = None
        data: list[str] = []
        for line in _EOL_TEXT.split(text):
            if not line or line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
        if data or name:
            self._reader.event(name, "\n".join(data))

    def _end_stream(self) -> None:
        lines, rest = self._lines.finish()
        for line in lines:
            self._line(line)
        if rest and self.format == "ndjson":  # a last line without its line end still counts
            self._line(rest)
            rest = b""
        tail = b"".join(self._event) + rest
        if tail and self._emit(tail) is not None and tail.strip():
            # An SSE event the body ended inside is never dispatched (the SSE spec).
            self._reader.fail("the stream ended inside an event")
        if not self._reader.complete:
            self._reader.fail(self._reader.incomplete)


@dataclass(frozen=True, slots=True)
class Replay:
    """A stored answer, ready to send: status, headers, and the body or the stream chunks."""

    status: int
    headers: tuple[tuple[str, str], ...]
    format: Format
    body: bytes | None
    chunks: tuple[bytes, ...] | None

    def iter_bytes(self) -> Iterator[bytes]:
        """The answer's bytes, one event (or line) at a time for a stream."""
        if self.body is not None:
            yield self.body
        else:
            yield from self.chunks or ()


def answer_entry(answer: Answer, *, fingerprint: str) -> CachedResponse:
    """The entry that stores `answer` (which must be storable) for the request whose
    fingerprint is given (`llmcache.integrations._http_routes.HttpCall.fingerprint`)."""
    if not answer.storable or answer.format is None:
        raise ValueError(f"this answer cannot be stored: {answer.reason or 'incomplete'}")
    meta = {
        "v": ENTRY_VERSION,
        "status": answer.status,
        "format": answer.format,
        "headers": [list(pair) for pair in answer.headers],
        "done_reason": answer.done_reason,
    }
    usage = answer.usage
    return CachedResponse(
        content=answer.body if answer.format == "json" else "",
        chunks=list(answer.chunks) if answer.chunks is not None else None,
        model=answer.model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        tokens_used=usage.total_tokens,
        # done_reason at the top level too: where the pipeline's policy check reads it.
        fingerprint=fingerprint,
        metadata={"http": meta, "done_reason": answer.done_reason},
    )


def replay_entry(entry: CachedResponse) -> Replay:
    """The `Replay` of an entry `answer_entry` made; `CodecError` for anything else (an
    entry of another door, a newer layout, a planted or damaged one)."""
    return Replay(*replay_parts(entry))


def replay_parts(
    entry: CachedResponse,
) -> tuple[int, tuple[tuple[str, str], ...], Format, bytes | None, tuple[bytes, ...] | None]:
    """`replay_entry`'s fields as a plain tuple (status, headers, format, body, chunks):
    what a door's hit reads, without building the `Replay` it does not keep."""
    meta = entry.metadata.get("http") if isinstance(entry.metadata, dict) else None
    if not isinstance(meta, dict) or meta.get("v") != ENTRY_VERSION:
        raise CodecError("not an HTTP answer of this version")
    status, fmt, headers = meta.get("status"), meta.get("format"), meta.get("headers")
    if not (type(status) is int and 200 <= status < 300) or fmt not in _FORMATS:
        raise CodecError("an HTTP answer needs a 2xx status and a known format")
    pairs = _pairs(headers)
    if pairs is None:
        raise CodecError("an HTTP answer's headers must be [name, value] pairs")
    if fmt == "json":
        if not isinstance(entry.content, str) or entry.chunks is not None:
            raise CodecError("a JSON answer's body must be text")
        return status, pairs, fmt, entry.content.encode("utf-8"), None
    chunks = entry.chunks
    if not isinstance(chunks, list) or not all(isinstance(c, str) for c in chunks):
        raise CodecError("a stream's chunks must be a list of text")
    return status, pairs, fmt, None, tuple(c.encode("utf-8") for c in chunks)


def _pairs(headers: Any) -> tuple[tuple[str, str], ...] | None:
    """Stored headers (``[[name, value], ...]``) as pairs, or None when they are not."""
    if not isinstance(headers, list):
        return None
    pairs = []
    for pair in headers:  # a loop: one header (content-type) is the rule, on every hit
        if not (isinstance(pair, list) and len(pair) == 2):
            return None
        name, value = pair
        if not (isinstance(name, str) and isinstance(value, str)):
            return None
        pairs.append((name, value))
    return tuple(pairs)


_FORMATS = frozenset(_MEDIA.values())
