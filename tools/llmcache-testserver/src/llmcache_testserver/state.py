"""Per-server state that tests and benchmarks read and change while the server runs:
`CallCounter` (requests per endpoint) and `Faults` (failures to inject)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

__all__ = ["CallCounter", "Faults", "canonical_model"]


def canonical_model(name: str) -> str:
    """``name`` with its tag: Ollama reads a missing tag as ``:latest``.

    >>> canonical_model("llama3.2"), canonical_model("registry:5000/me/m:q4")
    ('llama3.2:latest', 'registry:5000/me/m:q4')
    """
    return name if ":" in name.rpartition("/")[2] else f"{name}:latest"


class CallCounter:
    """Thread-safe request counts per endpoint: ``root``, ``version``, ``tags``, ``show``,
    ``generate``, ``chat``, ``embed``, ``embeddings``. Unknown names read as 0.

    >>> calls = CallCounter()
    >>> calls.add("generate"); calls["generate"], calls["chat"], calls.total
    (1, 0, 1)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, endpoint: str) -> None:
        with self._lock:
            self._counts[endpoint] += 1

    def __getitem__(self, endpoint: str) -> int:
        with self._lock:
            return self._counts[endpoint]

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def __repr__(self) -> str:
        return f"CallCounter({self.snapshot()!r})"


@dataclass
class Faults:
    """Failures the server injects into model requests (generate, chat, embed, embeddings).

    Fields may be changed while the server runs; all default to "no fault".

    - ``unavailable``: answer the next N model requests with 503, then serve normally;
    - ``server_error``: answer with 500 (a runner failure);
    - ``bad_json``: answer 200 with a body (or a stream line) that is not JSON;
    - ``fail_after``: a stream sends this many text chunks, then an ``{"error": ...}`` line
      (status stays 200); a non-streamed request gets a 500;
    - ``truncate_after``: a stream sends this many text chunks, then ends without its
      ``done`` line;
    - ``disconnect_after``: a stream (any route, any model) sends this many chunks (lines
      or events), then the server drops the connection without ending the body, as a
      server killed mid-stream would;
    - ``models``: limit the faults to these model names (None: every model).

    >>> faults = Faults(unavailable=1)
    >>> faults.take_unavailable(), faults.take_unavailable()
    (True, False)
    """

    unavailable: int = 0
    server_error: bool = False
    bad_json: bool = False
    fail_after: int | None = None
    truncate_after: int | None = None
    disconnect_after: int | None = None
    models: Collection[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def applies(self, model: str) -> bool:
        return self.models is None or canonical_model(model) in {
            canonical_model(m) for m in self.models
        }

    def take_unavailable(self) -> bool:
        """True (and one fewer left) while 503 answers remain to be given."""
        with self._lock:
            if self.unavailable <= 0:
                return False
            self.unavailable -= 1
            return True
