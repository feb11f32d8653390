"""Settings: where the data lives and which model answers, from options and the environment.

| setting | option | environment | default |
|---|---|---|---|
| data folder | ``--home`` | ``AI_TODO_HOME`` | ``~/.ai_todo`` |
| backend (an ``llmcache.backends`` name) | ``--backend`` | ``AI_TODO_BACKEND`` | ``ollama`` |
| server address (Ollama backends) | ``--host`` | ``OLLAMA_HOST`` | ``127.0.0.1:11434`` |
| model | ``--model`` | ``AI_TODO_MODEL`` | ``smollm2`` |
| embedder: auto, backend, wordllama, hashing | | ``AI_TODO_EMBEDDER`` | ``auto`` |
| embedding model (backend embedder) | | ``AI_TODO_EMBED_MODEL`` | the model |
| seconds a write waits for a locked database | | ``AI_TODO_DB_TIMEOUT`` | 5 |
| seconds a model request may take | | ``AI_TODO_TIMEOUT`` | 300 |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ai_todo.search import EMBEDDERS

__all__ = ["Settings"]


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be >= 0, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the app needs to know before it opens anything."""

    home: Path
    backend: str = "ollama"
    host: str | None = None
    model: str = "smollm2"
    embedder: str = "auto"
    embed_model: str | None = None
    db_timeout: float = 5.0
    request_timeout: float = 300.0

    @classmethod
    def load(
        cls,
        *,
        home: str | os.PathLike[str] | None = None,
        backend: str | None = None,
        host: str | None = None,
        model: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        """Options win over the environment, which wins over the defaults."""
        env = os.environ if env is None else env
        folder = home or env.get("AI_TODO_HOME") or Path.home() / ".ai_todo"
        embedder = env.get("AI_TODO_EMBEDDER", "auto").strip().lower() or "auto"
        if embedder not in EMBEDDERS:
            raise ValueError(
                f"AI_TODO_EMBEDDER must be one of {', '.join(EMBEDDERS)}, got {embedder!r}"
            )
        return cls(
            home=Path(folder).expanduser(),
            backend=backend or env.get("AI_TODO_BACKEND") or "ollama",
            host=host or env.get("OLLAMA_HOST") or None,
            model=model or env.get("AI_TODO_MODEL") or "smollm2",
            embedder=embedder,
            embed_model=env.get("AI_TODO_EMBED_MODEL") or None,
            db_timeout=_float(env, "AI_TODO_DB_TIMEOUT", 5.0),
            request_timeout=_float(env, "AI_TODO_TIMEOUT", 300.0),
        )

    @property
    def db_path(self) -> Path:
        return self.home / "tasks.db"

    @property
    def cache_dir(self) -> Path:
        """The response cache (a diskcache folder): warm across processes."""
        return self.home / "cache"

    @property
    def embeddings_path(self) -> Path:
        return self.home / "embeddings.sqlite"

    @property
    def index_path(self) -> Path:
        return self.home / "tasks.index"

    @property
    def metrics_path(self) -> Path:
        return self.home / "metrics.json"

    @property
    def pending_path(self) -> Path:
        return self.home / "pending.jsonl"
