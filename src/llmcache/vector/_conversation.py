"""How a chat is matched: by the facts of its whole history, without the chatter.

A chat (system messages first, then user and assistant turns, the user's last) is scoped by
its system messages, with the rest of the request (model, options, tools, format,
namespace), and matched by a *transcript* of the turns that bear on its last question:

- chatter goes: a user turn made only of greetings, thanks and acknowledgements ("thanks!",
  "ok cool", "hi again"), unless it answers the assistant's question ("ok" after "Shall I
  delete them?"), together with the assistant's reply to it; an assistant turn of chatter
  alone ("Hello! How can I help?") goes too;
- a finished exchange on another subject goes: a user question that says nothing about the
  user (no I, my, we, our) and shares no word, name or number with the last question, with
  its answer, provided the last question stands on its own (no it, this, they, which,
  other ..., at least two content words, not ending on "the <word>?");
- what stays is written one turn a line, ``User: ...`` / ``Assistant: ...``, the last
  question last. With nothing left before the last question the transcript is that
  question alone, so "Hi! / Hello! How can I help? / How do I X?" matches "How do I X?".

The guards then compare two transcripts whole (numbers, names, negations, opposites
anywhere in the history) and the scope guard turn by turn (`parse`). A chat without this
plain shape (tool calls, names, images or non-text content, a system message after the
first turn, a last message that is not the user's, a transcript over `MAX_CHARS`) gets
``None`` from `chat_text`: it is scoped by its whole history, as before, and hits only a
chat whose earlier turns are the very same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from llmcache.vector import _lexicon as lex
from llmcache.vector._entities import entities
from llmcache.vector._numbers import extract_numbers
from llmcache.vector._text import CACHE_SIZE as _CACHE
from llmcache.vector._text import content_words, plain, words

__all__ = ["MAX_CHARS", "Turns", "chat_text", "last_question", "parse"]

#: Longer transcripts are matched as before (by their exact history): long chats rarely
#: repeat but exactly, and the guards' cost grows with the text.
MAX_CHARS = 4000

USER, ASSISTANT = "User: ", "Assistant: "
_SYSTEM_ROLES = frozenset({"system", "developer"})
_FIRST_PERSON = frozenset(
    "i i'm i've i'd i'll im ive my mine myself we we're we've we'd our ours ourselves".split()
)
_QUESTION_START = frozenset(
    "what who whom whose where when why how which is are was were "
    "can could do does did will would should shall may might has "
    "have had am translate tell give name list define spell explain "
    "recommend suggest calculate convert compute describe".split()
)
_CONTINUATION = re.compile(r"(?i)^\s*(?:and|but|so|or|also|then|what about|how about)\b")
_BARE_DEFINITE = re.compile(r"(?i)\bthe\s+[\w'-]+\s*[?.!]*\s*$")
_EXISTENTIAL_THERE = re.compile(r"(?i)\b(?:is|are|was|were)\s+there\b")


@dataclass(frozen=True, slots=True)
class Turns:
    """A transcript read back: the user's earlier turns, the assistant's, the last one."""

    user: tuple[str, ...]
    assistant: tuple[str, ...]
    last: str


def _plain_message(message: object) -> tuple[str, str] | None:
    """``(role, content)`` of a message that is only a role and a text, else ``None``."""
    if not isinstance(message, dict) or set(message) != {"role", "content"}:
        return None
    role, content = message["role"], message["content"]
    if not isinstance(role, str) or not isinstance(content, str):
        return None
    return role, content


def _chatter(text: str) -> bool:
    """Greetings, thanks and acknowledgements only (no number, no other word)."""
    found = words(text)
    if not found or any(c.isdigit() for c in text):
        return False
    return all(
        w in lex.CHATTER
        or w in lex.STOPWORDS
        or w.split("'")[0] in lex.CHATTER
        or w.split("'")[0] in lex.STOPWORDS
        for w in found
    )


def _asks(text: str) -> bool:
    """A question or a request to the assistant, not a statement about the world."""
    found = words(plain(text))
    return text.rstrip().endswith("?") or bool(found) and found[0] in _QUESTION_START


def _about_the_user(text: str) -> bool:
    return any(w in _FIRST_PERSON for w in words(text))


def _facts(text: str) -> set[str]:
    """Content stems, name words and numbers: what two texts can share."""
    out = set(content_words(text))
    out.update(word for entity in entities(text) for word in entity.split())
    out.update(extract_numbers(text))
    return out


def _points_back(found: tuple[str, ...]) -> bool:
    """Whether a word points into earlier turns. "that" and "which" right after a content
    word and before another word relate a clause ("an airplane that flies far"); anywhere
    else they point back ("Is that safe?", "How do I fix that?")."""
    for i, word in enumerate(found):
        if word not in lex.ANAPHORA:
            continue
        if (
            word in ("that", "which")
            and 0 < i < len(found) - 1
            and found[i - 1] not in lex.STOPWORDS
        ):
            continue
        return True
    return False


def _stands_alone(question: str) -> bool:
    """Whether a question needs no earlier turn to be understood (a cautious guess)."""
    text = plain(question)
    found = words(_EXISTENTIAL_THERE.sub(" is ", text))
    if _points_back(found) or _CONTINUATION.search(text) or _BARE_DEFINITE.search(text):
        return False
    return len(content_words(text)) >= 2


def _drop_chatter(turns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    kept: list[tuple[str, str]] = []
    dropped_user = False
    for role, content in turns:
        if role == "user":
            answers = (
                bool(kept) and kept[-1][0] == "assistant" and kept[-1][1].rstrip().endswith("?")
            )
            dropped_user = _chatter(content) and not answers
            if not dropped_user:
                kept.append((role, content))
        elif not dropped_user and not _chatter(content):
            kept.append((role, content))
    return kept


def _drop_finished(history: list[tuple[str, str]], last: str) -> list[tuple[str, str]]:
    """Without the exchanges on another subject, when ``last`` stands on its own."""
    if not _stands_alone(last):
        return history
    wanted = _facts(last)
    kept: list[tuple[str, str]] = []
    i = 0
    while i < len(history):
        role, content = history[i]
        answer = history[i + 1] if i + 1 < len(history) else None
        if (
            role == "user"
            and answer is not None
            and answer[0] == "assistant"
            and _asks(content)
            and not _about_the_user(content)
            and not (_facts(content) | _facts(answer[1])) & wanted
        ):
            i += 2
            continue
        kept.append((role, content))
        i += 1
    return kept


def _line(role: str, content: str) -> str:
    return (USER if role == "user" else ASSISTANT) + " ".join(content.split())


def chat_text(messages: Sequence[Any]) -> tuple[list[Any], str] | None:
    """``(system messages, transcript)`` of a plain chat, or ``None`` (see the module).

    >>> chat_text([{"role": "user", "content": "Hi!"},
    ...            {"role": "assistant", "content": "Hello! How can I help?"},
    ...            {"role": "user", "content": "How do I descale a kettle?"}])
    ([], 'How do I descale a kettle?')
    >>> print(chat_text([{"role": "system", "content": "Be brief"},
    ...                  {"role": "user", "content": "I'm vegan."},
    ...                  {"role": "assistant", "content": "Noted. Any allergies?"},
    ...                  {"role": "user", "content": "Nuts. What can I cook tonight?"}])[1])
    User: I'm vegan.
    Assistant: Noted. Any allergies?
    User: Nuts. What can I cook tonight?
    """
    system: list[Any] = []
    turns: list[tuple[str, str]] = []
    for message in messages:
        plain_message = _plain_message(message)
        if plain_message is None:
            return None
        role, content = plain_message
        if role in _SYSTEM_ROLES and not turns:
            system.append(message)
        elif role in ("user", "assistant"):
            turns.append((role, content))
        else:
            return None  # a tool's answer, a late system message: matched exactly
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        return None
    last = turns[-1][1]
    history = _drop_finished(_drop_chatter(turns[:-1]), last)
    if not history:
        return system, last
    text = "\n".join(_line(role, content) for role, content in [*history, ("user", last)])
    return (system, text) if len(text) <= MAX_CHARS else None


@lru_cache(maxsize=_CACHE)
def parse(text: str) -> Turns | None:
    """The turns of a transcript `chat_text` wrote, or ``None`` for any other text."""
    if "\n" not in text or not text.startswith((USER, ASSISTANT)):
        return None
    user: list[str] = []
    assistant: list[str] = []
    last = ""
    for line in text.split("\n"):
        if line.startswith(USER):
            last = line[len(USER) :]
            user.append(last)
        elif line.startswith(ASSISTANT):
            assistant.append(line[len(ASSISTANT) :])
            last = ""
        else:
            return None
    if not last:
        return None  # a transcript ends on the user's question
    return Turns(tuple(user[:-1]), tuple(assistant), last)


def last_question(text: str) -> str:
    """The last user message of a transcript (``text`` itself for any other text)."""
    turns = parse(text)
    return text if turns is None else turns.last
