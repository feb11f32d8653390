"""A door's codec: what turns the door's values into entries and back.

The runner never knows which door it serves: the decorator's codec holds str, JSON-like
data and model answers (`llmcache._pipeline.function_values`); the clients' holds model
answers and their stream chunks (`llmcache._pipeline.model_answers`); the LangChain
adapter's holds LangChain generations; the HTTP transport's holds recorded HTTP answers
(`llmcache.integrations._http_codec`).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from llmcache.entry import CachedResponse, JSONValue

__all__ = ["StreamCodec", "ValueCodec"]

V = TypeVar("V")


class ValueCodec(Protocol[V]):
    """Values of one door, to entries and back.

    ``strict``: whether a value `encode` refuses fails the call (a decorated function that
    returns what no tier can hold: the caller must hear of it) or is a counted error (a
    model answer the tier cannot hold: the caller still gets it).
    """

    strict: bool

    def encode(self, value: V, fingerprint: str, ttl: float | None) -> CachedResponse | None:
        """A fresh entry holding `value` (its own copy), stamped with the request's
        fingerprint and expiry; None for a value that is not an answer to keep (the HTTP
        transport's error answers: nothing is stored, nothing is counted); TypeError or
        ValueError for a value no tier can hold."""
        ...

    def decode(self, entry: CachedResponse) -> V:
        """The value a hit gives back (a fresh object for mutable kinds, marked as cached
        where the value can say so); ValueError, TypeError or KeyError for a malformed
        entry."""
        ...

    def share(self, value: V) -> V:
        """What a caller that waited for another caller's call gets: its own copy of
        anything it could mutate."""
        ...

    def semantic(self, entry: CachedResponse) -> V:
        """The value a semantic hit gives back (`decode`, plus what the door tells its
        caller about the match)."""
        ...


class StreamCodec(ValueCodec[V], Protocol):
    """A codec for a door that streams: chunks replayed from an entry, and the entry a
    complete stream becomes."""

    def replay(self, entry: CachedResponse) -> list[Any]:
        """The chunks a streamed hit gives back, each marked as cached (fresh objects);
        ValueError or TypeError for a malformed entry."""
        ...

    def record(self, chunks: list[Any]) -> tuple[V, list[JSONValue]] | None:
        """What a stream that ran to its end stores: the answer a plain call would have
        given and the chunks to replay, or None for a stream that did not complete (no
        final chunk) or whose chunks cannot be stored."""
        ...
