"""An optional last check before a semantic hit is served: ask a model.

For candidates in a grey zone of similarity, `Verifier` asks a model through any `Backend`
(or `AsyncBackend`) one short question, at temperature 0: do these two requests have the
same answer? The verdict is cached per unordered pair and model, so each pair costs one
call at most. Anything but a clear "yes" (a "no", an unreadable reply, a failing backend)
means "do not serve": a miss costs a model call, a wrong answer costs far more.

Measure a judge before trusting it (``benchmarks/verifier_eval.py --judge-all``): on the
bundled pairs a judge that is always right, asked with ``grey_zone=(0.5, threshold)`` (only
candidates the cache would otherwise refuse), lifts the served share from 49% to 90% with no
more wrong answers; SmolLM2-135M agrees with the labels half the time on question pairs
(yes to 51% of should-hit pairs and to 51% of traps) and turns 0.5% wrong answers into 13%;
on conversation pairs it agrees 76% of the time (yes to 55% and to 3%). It is no judge.
That zone also means a poor judge can never take away a hit the cache
already serves.

>>> from llmcache.backends.mock import MockBackend
>>> backend = MockBackend(lambda call: "Yes.")
>>> verifier = Verifier(backend)
>>> verifier.verify("how do I exit vim", "How can I quit vim?")
True
>>> verifier.verify("How can I quit vim?", "how do I exit vim")   # cached, either order
True
>>> backend.call_count, verifier.stats()["cached"]
(1, 1)
>>> parse_verdict("No, they differ."), parse_verdict("**YES**"), parse_verdict("maybe")
(False, True, None)
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any

from llmcache.backends.base import AsyncBackend, Backend
from llmcache.entry import CachedResponse
from llmcache.keys import canonical_bytes, hash_bytes
from llmcache.stores.base import Store
from llmcache.stores.memory import MemoryStore
from llmcache.vector._arguments import check_int, check_real

__all__ = ["DEFAULT_PROMPT", "Verifier", "parse_verdict"]

logger = logging.getLogger(__name__)

#: The question. ``{a}`` and ``{b}`` are the two requests; bump ``prompt_version`` in
#: `Verifier` when changing it, so verdicts cached for the old wording are not reused.
DEFAULT_PROMPT = """\
Two users sent these requests to an assistant.

Request A:
<<<
{a}
>>>

Request B:
<<<
{b}
>>>

Do these two requests have the same answer? Say yes only if one correct answer fully \
answers both; any difference in numbers, dates, names, negation, direction or scope means \
no. Answer yes or no."""

_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)
_FIRST_WORD = re.compile(r"[a-z]+")
_YES = frozenset({"yes", "y", "yeah", "yep", "true", "same", "correct", "affirmative"})
_NO = frozenset({"no", "n", "nope", "false", "different", "not", "negative"})


def parse_verdict(reply: str) -> bool | None:
    """``True`` for yes, ``False`` for no, ``None`` when the reply says neither clearly.

    Reasoning in ``<think>`` tags, markdown and a leading "Answer:" are ignored. The first
    word decides when it is yes/no (or true/false, same/different); otherwise exactly one
    of the words yes and no must appear. A reply holding both is no verdict.

    >>> parse_verdict("<think>A asks X, B asks Y</think>\\nNo"), parse_verdict("Answer: yes")
    (False, True)
    >>> parse_verdict("yes and no") is None
    True
    """
    text = _THINK.sub(" ", reply).lower()
    words = _FIRST_WORD.findall(text)
    if not words or ("yes" in words and "no" in words):
        return None  # a hedge is not a yes
    if words[0] in _YES:
        return True
    if words[0] in _NO:
        return False
    has_yes, has_no = "yes" in words, "no" in words
    if has_yes != has_no:
        return has_yes
    return None


class Verifier:
    """Asks ``backend`` whether two requests have the same answer; caches the verdicts.

    ``model`` defaults to the backend's. ``store`` keeps verdicts (a `MemoryStore` of
    10,000 by default; pass a `DiskStore` to keep them across runs), for ``ttl`` seconds.
    ``max_tokens`` bounds the reply (``None``: no bound; raise it for models that think
    aloud first). ``timeout`` (seconds) bounds a call: a judge that has not answered by
    then counts as "no" (an error, not cached; a sync backend's call is left to finish in
    a daemon thread). Use `verify` with a `Backend`, `averify` with either kind.
    """

    prompt_version = 1

    def __init__(
        self,
        backend: Backend | AsyncBackend,
        *,
        model: str | None = None,
        store: Store | None = None,
        prompt: str = DEFAULT_PROMPT,
        max_tokens: int | None = 16,
        ttl: float | None = None,
        timeout: float | None = None,
    ) -> None:
        if "{a}" not in prompt or "{b}" not in prompt:
            raise ValueError("prompt must contain the placeholders {a} and {b}")
        try:  # a prompt that cannot be filled would fail every call alike
            prompt.format(a="", b="")
        except (IndexError, KeyError, ValueError) as exc:
            raise ValueError(
                f"prompt: only the placeholders {{a}} and {{b}} may be in braces "
                f"(double a literal brace), got {type(exc).__name__}: {exc}"
            ) from None
        if max_tokens is not None:
            max_tokens = check_int("max_tokens", max_tokens, minimum=1, none=True)
        if ttl is not None:
            ttl = check_real("ttl", ttl, "finite seconds > 0 or None", lambda x: x > 0)
        if timeout is not None:
            timeout = check_real("timeout", timeout, "finite seconds > 0 or None", lambda x: x > 0)
        self.timeout = timeout
        self.backend = backend
        self.model = model or getattr(backend, "model", "") or ""
        self.store: Store = store if store is not None else MemoryStore(max_entries=10_000)
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.ttl = ttl
        self._lock = threading.Lock()
        self._counts = {"calls": 0, "yes": 0, "no": 0, "unparsed": 0, "errors": 0, "cached": 0}

    def _key(self, a: str, b: str) -> str:
        first, second = sorted((a, b))
        return hash_bytes(
            canonical_bytes(
                {
                    "kind": "verdict",
                    "v": self.prompt_version,
                    "model": self.model,
                    "pair": [first, second],
                    "prompt": self.prompt,
                }
            )
        )

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _cached(self, key: str) -> bool | None:
        entry = self.store.get(key)
        if entry is None or not isinstance(entry.content, bool):
            return None
        self._count("cached")
        return entry.content

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"temperature": 0}
        if self.max_tokens is not None:
            options["num_predict"] = self.max_tokens
        return options

    def _record(self, key: str, reply: str) -> bool:
        verdict = parse_verdict(reply)
        if verdict is None:
            self._count("unparsed")
            logger.debug("verifier reply not understood, treated as no: %r", reply[:200])
            return False  # not cached: a later call may get a clear answer
        self._count("yes" if verdict else "no")
        self.store.set(key, CachedResponse(content=verdict, model=self.model), ttl=self.ttl)
        return verdict

    def _failed(self, exc: Exception) -> bool:
        self._count("errors")
        logger.warning(
            "verifier call failed (%s: %s); not serving the candidate", type(exc).__name__, exc
        )
        return False

    def _plan(self, a: str, b: str) -> bool | tuple[str, str]:
        """The verdict when no call is needed (the same text, a cached verdict), else the
        verdict's key and the question to send (counted as a call)."""
        if a == b:
            return True
        key = self._key(a, b)
        cached = self._cached(key)
        if cached is not None:
            return cached
        self._count("calls")
        return key, self.prompt.format(a=a, b=b)

    def verify(self, a: str, b: str) -> bool:
        """``True`` only if the model says the two requests have the same answer."""
        if isinstance(self.backend, AsyncBackend):
            raise TypeError(
                "Verifier over an AsyncBackend: use `await averify(...)` (or SemanticCache.aget)"
            )
        plan = self._plan(a, b)
        if isinstance(plan, bool):
            return plan
        key, prompt = plan
        try:
            reply = self._generate(prompt)
        except Exception as exc:  # any backend failure: a miss, never an exception
            return self._failed(exc)
        return self._record(key, reply)

    def _generate(self, prompt: str) -> str:
        """The sync backend's reply, within ``timeout`` when one is set."""
        backend = self.backend
        assert isinstance(backend, Backend)
        if self.timeout is None:
            return backend.generate(prompt, model=self.model, options=self._options()).content
        outcome: list[tuple[bool, Any]] = []
        done = threading.Event()

        def call() -> None:
            try:
                outcome.append(
                    (
                        True,
                        backend.generate(prompt, model=self.model, options=self._options()).content,
                    )
                )
            except BaseException as exc:  # handed to the waiting caller
                outcome.append((False, exc))
            finally:
                done.set()

        # A daemon thread, not a pool: a judge that never answers must not hold up exit.
        threading.Thread(target=call, name="llmcache-verifier", daemon=True).start()
        if not done.wait(self.timeout):
            raise TimeoutError(f"no answer within {self.timeout:g}s")
        ok, value = outcome[0]
        if not ok:
            raise value
        return str(value)

    async def averify(self, a: str, b: str) -> bool:
        """`verify` for async code (a sync backend runs in a worker thread)."""
        plan = self._plan(a, b)
        if isinstance(plan, bool):
            return plan
        key, prompt = plan
        try:
            if isinstance(self.backend, AsyncBackend):
                reply = (
                    await asyncio.wait_for(
                        self.backend.generate(prompt, model=self.model, options=self._options()),
                        self.timeout,
                    )
                ).content
            else:
                # `_generate` bounds the wait itself; the thread is then left to finish
                reply = await asyncio.to_thread(self._generate, prompt)
        except Exception as exc:
            return self._failed(exc)
        return self._record(key, reply)

    def stats(self) -> dict[str, int]:
        """Calls made, verdicts (yes/no/unparsed), backend errors and cached answers."""
        with self._lock:
            return dict(self._counts)
