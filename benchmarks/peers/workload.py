"""The requests every contender is given: distinct prompts with ~1 KB answers.

A request is the key material a careful user of any cache would key on: the model, the
prompt and the options that change the answer. Each contender turns it into a key its own
way (that cost is part of what is measured), but all of them see the same fields.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["ANSWER_BYTES", "MODEL", "Request", "answer_for", "make_requests"]

MODEL = "llama3.2:1b"
ANSWER_BYTES = 1024

# Words for prompts and answers: plain ASCII, so 1 character is 1 byte and "1 KB" is exact.
_WORDS = (
    "the task is due on friday and its priority is high because the client asked "
    "for a summary of the open tickets with their owners dates and next steps before "
    "the review meeting so please list each item with a short note"
).split()


@dataclass(frozen=True, slots=True)
class Request:
    """One model call: what changes its answer."""

    index: int
    model: str
    prompt: str
    temperature: float
    num_predict: int

    def key_fields(self) -> dict[str, object]:
        """The request as one flat dict: what the raw floors and the peers key on."""
        return {
            "model": self.model,
            "prompt": self.prompt,
            "temperature": self.temperature,
            "num_predict": self.num_predict,
        }


def _text(rng: random.Random, size: int, head: str) -> str:
    words = [head]
    length = len(head)
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def make_requests(count: int, *, start: int = 0, seed: int = 8) -> list[Request]:
    """``count`` distinct requests (indices ``start`` ..), deterministic for a seed.

    Prompts are about 200 bytes, unique by their leading number, so no two requests share
    a key in any contender.
    """
    rng = random.Random(seed * 1_000_003 + start)
    return [
        Request(
            index=i,
            model=MODEL,
            prompt=_text(rng, 200, f"Question {i}:"),
            temperature=0.0,
            num_predict=256,
        )
        for i in range(start, start + count)
    ]


def answer_for(request: Request) -> str:
    """The model's answer to ``request``: exactly `ANSWER_BYTES` characters, built anew on
    every call so a cache that keeps it pays for its own copy (the memory probe relies on
    this)."""
    rng = random.Random(request.index)
    return _text(rng, ANSWER_BYTES, f"Answer {request.index}:")
