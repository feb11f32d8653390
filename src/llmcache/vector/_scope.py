"""How a request is scoped and how one candidate is judged (used by `SemanticCache`)."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import orjson

from llmcache.entry import CachedResponse, JSONValue
from llmcache.keys import Request, canonical_bytes, fingerprint, hash_bytes
from llmcache.stores.base import ErrorLog
from llmcache.vector._conversation import chat_text, last_question, parse
from llmcache.vector._persist import META_KEY, Record
from llmcache.vector.embedders import (
    Embedder,
    EmbeddingError,
    Matrix,
    declared_dim,
    unit_embeddings,
)
from llmcache.vector.guards import Guard, OrderGuard

__all__ = [
    "CHAT_JUDGE_FLOOR",
    "SOFT_GUARDS",
    "Candidate",
    "QueryVectors",
    "SemanticHit",
    "SemanticQuery",
    "judge",
    "make_record",
    "public_entry",
    "split_request",
]

logger = logging.getLogger("llmcache.vector.semantic")

SOFT_GUARDS = frozenset({"scope"})  # a verifier may overrule these; never the others
#: A chat with earlier turns that only soft guards veto goes to the verifier at this
#: similarity or above (`judge`). Below it the histories are about different things
#: (the same "How much will it cost?" after brake pads and after teeth whitening): a
#: judge right 95% of the time would still serve one in twenty of them, and on our
#: conversation set no rewording of a history scored under 0.78.
CHAT_JUDGE_FLOOR = 0.7


def split_request(canonical: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """``(scope, text)`` of a request's canonical form, or ``None`` if it has no text to
    match (no prompt and no user message with string content, or an empty one).

    A prompt is its own text. A plain chat (see `llmcache.vector._conversation`) keeps its
    system messages in the scope and is matched by the transcript of the turns that bear
    on its last question, so a reworded or chattier history can hit; any other chat keeps
    every turn but its last user message in the scope, and hits only the same history.

    >>> req = Request(model="m", messages=[{"role": "system", "content": "Be brief"},
    ...                                    {"role": "user", "content": "Hi there"}])
    >>> scope, text = split_request(req.to_canonical())
    >>> text, scope["messages"]
    ('Hi there', [{'role': 'system', 'content': 'Be brief'}])
    """
    prompt = canonical.get("prompt")
    if isinstance(prompt, str):
        return (
            ({**canonical, "prompt": None, "\0kind": "prompt"}, prompt) if prompt.strip() else None
        )
    messages = canonical.get("messages")
    if not isinstance(messages, list):
        return None
    chat = chat_text(messages)
    if chat is not None:
        return {**canonical, "messages": chat[0], "\0kind": "transcript"}, chat[1]
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if not isinstance(content, str) or not content.strip():
                return None
            slot = {k: v for k, v in message.items() if k != "content"}
            slot["\0query"] = True  # the matched message's place, and its other fields
            scope = [*messages[:i], slot, *messages[i + 1 :]]
            return {**canonical, "messages": scope, "\0kind": "chat"}, content
    return None


@dataclass(frozen=True, slots=True)
class SemanticHit:
    """A cached answer found for a request.

    ``entry.metadata["semantic"]`` repeats ``similarity``, ``matched_prompt`` (the cached
    request's text; for a chat, its last user message, though the whole history was
    compared) and ``exact``; ``key`` is the cached request's key.
    """

    entry: CachedResponse
    similarity: float
    exact: bool
    matched_prompt: str | None
    key: str

    def __post_init__(self) -> None:
        # A chat is matched by its transcript; what matched is its last user message.
        if self.matched_prompt is not None:
            object.__setattr__(self, "matched_prompt", last_question(self.matched_prompt))

    @property
    def content(self) -> JSONValue:
        return self.entry.content


@dataclass(frozen=True, slots=True)
class Candidate:
    """A cached request scored against a query (see `SemanticCache.explain`)."""

    key: str
    text: str
    similarity: float
    veto: tuple[str, str] | None  # (guard, reason) of the first guard that vetoed
    verify: bool = False  # would go to the verifier before being served


@dataclass(slots=True)
class SemanticQuery:
    """What a semantic lookup needs once the exact lookup missed."""

    key: str
    partition: str
    text: str
    threshold: float


def _has_history(cached: str, text: str) -> bool:
    """Whether either side is a chat transcript with earlier turns."""
    return parse(cached) is not None or parse(text) is not None


def _soft(guard: Guard, cached: str, text: str) -> bool:
    """Whether a verifier may overrule this guard's veto: a soft guard's, or the order
    guard's when only reworded earlier turns of a chat moved facts (`OrderGuard.judgeable`)."""
    if guard.name in SOFT_GUARDS:
        return True
    return isinstance(guard, OrderGuard) and guard.judgeable(cached, text)


def judge(
    guards: Sequence[Guard],
    key: str,
    cached: str,
    text: str,
    score: float,
    threshold: float,
    has_verifier: bool,
    grey_zone: tuple[float, float] | None,
) -> Candidate:
    """Decide about one candidate: vetoed (by a guard, or below the threshold), served
    as is, or served only if the verifier agrees.

    Without a verifier, a candidate is served when no guard vetoes (the index search
    already dropped those below the threshold). With one, a hard veto stands, and so does
    a soft one (``scope``; ``order`` when only reworded earlier turns of a chat moved
    facts) when any other guard vetoes too, whichever runs first; a candidate only soft
    vetoes stop goes to the verifier, and so does a similarity in
    ``grey_zone`` (every candidate when ``grey_zone`` is ``None``). A chat with earlier
    turns that a soft guard vetoes is judged only from `CHAT_JUDGE_FLOOR` up.
    """
    veto = None
    soft_veto = False
    for guard in guards:
        reason = guard.veto(cached, text)
        if reason is None:
            continue
        soft = has_verifier and _soft(guard, cached, text)
        if veto is None or not soft:
            veto, soft_veto = (guard.name, reason), soft
        if not soft:
            break
    if not has_verifier:
        if veto is None and score < threshold:
            veto = ("threshold", "below")
        return Candidate(key, cached, score, veto)
    if veto is not None:
        soft = soft_veto
        if soft and score < CHAT_JUDGE_FLOOR and _has_history(cached, text):
            soft = False  # another conversation, not a reworded one
        return Candidate(key, cached, score, veto, verify=soft)
    if grey_zone is None or grey_zone[0] <= score < grey_zone[1]:
        return Candidate(key, cached, score, None, verify=True)
    return Candidate(key, cached, score, None if score >= threshold else ("threshold", "below"))


class QueryVectors:
    """The embedder behind a small memory of recent texts, degrading to "no vector".

    The memory makes ``set`` after a missed ``get`` of the same text embed nothing. A
    failing embedder (a model server down), or one answering something that is not one
    finite row of the size it declares (another size, NaN, the wrong shape), is logged
    once and counted, and the text is then looked up and stored for exact matching only:
    the caller still gets its answer.
    """

    def __init__(self, embedder: Embedder, size: int = 256) -> None:
        self.embedder = embedder
        self.size = size
        self.errors = 0
        self._recent: OrderedDict[str, Matrix | None] = OrderedDict()
        self._lock = threading.Lock()
        self._log = ErrorLog(logger, f"SemanticCache({embedder.name})")

    def _recall(self, text: str) -> tuple[bool, Matrix | None]:
        with self._lock:
            if text not in self._recent:
                return False, None
            self._recent.move_to_end(text)
            vec = self._recent[text]
        # A vector remembered before the embedder changed size is embedded again.
        dim = declared_dim(self.embedder)
        return vec is None or dim is None or vec.shape[0] == dim, vec

    def _remember(self, text: str, raw: Any) -> Matrix | None:
        rows, bad = unit_embeddings(raw, 1, declared_dim(self.embedder), self.embedder.name)
        if bad[0]:
            raise EmbeddingError(f"{self.embedder.name}: embed returned NaN or inf")
        vec = rows[0] if np.any(rows[0]) else None  # zero: no meaning
        with self._lock:
            self._recent[text] = vec
            while len(self._recent) > self.size:
                self._recent.popitem(last=False)
        return vec

    def failed(self, exc: Exception) -> None:
        """Count (and log, once per kind) an embedding that could not be used."""
        with self._lock:
            self.errors += 1
        self._log.report("embed", exc)

    def get(self, text: str) -> Matrix | None:
        found, vec = self._recall(text)
        if found:
            return vec
        try:
            return self._remember(text, self.embedder.embed([text]))
        except Exception as exc:  # any embedder failure: exact matching only
            self.failed(exc)
            return None

    async def aget(self, text: str) -> Matrix | None:
        found, vec = self._recall(text)
        if found:
            return vec
        aembed = getattr(self.embedder, "aembed", None)
        try:
            raw = await aembed([text]) if aembed is not None else self.embedder.embed([text])
            return self._remember(text, raw)
        except Exception as exc:
            self.failed(exc)
            return None


def make_record(
    request: Request,
    value: CachedResponse | JSONValue,
    partition_of: Callable[[str], str],
    expires_at: float | None,
) -> tuple[Record, CachedResponse]:
    """The record of ``request`` and the entry to store for it (fingerprinted, carrying
    its record in ``metadata["_semantic"]`` for rebuilds)."""
    canonical = request.to_canonical()
    data = canonical_bytes(request)  # so the exact key is `make_key`'s
    key, fp = hash_bytes(data), fingerprint(data)
    split = split_request(canonical)
    scope = hash_bytes(orjson.dumps(split[0], option=orjson.OPT_SORT_KEYS)) if split else None
    record = Record(
        key,
        scope,
        partition_of(scope) if scope else None,
        split[1] if split else None,
        fp,
        expires_at,
    )
    entry = (
        value
        if isinstance(value, CachedResponse)
        else CachedResponse(content=value, model=request.model)
    )
    metadata = {k: v for k, v in entry.metadata.items() if k != "semantic"}
    metadata[META_KEY] = record.metadata()
    return record, replace(entry, fingerprint=fp, metadata=metadata)


def public_entry(
    entry: CachedResponse, similarity: float, text: str | None, exact: bool
) -> CachedResponse:
    """A copy of a stored entry as callers see it: our record out, the match's facts in."""
    metadata = {k: v for k, v in entry.metadata.items() if k != META_KEY}
    shown = None if text is None else last_question(text)
    metadata["semantic"] = {"similarity": similarity, "matched_prompt": shown, "exact": exact}
    return replace(entry, metadata=metadata)
