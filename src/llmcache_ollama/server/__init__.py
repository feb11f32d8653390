"""An Ollama-compatible HTTP server on the standard library, for tests and benchmarks.

`OllamaServer` runs it in a background thread; `EchoEngine` answers deterministically;
`Faults` injects failures; ``python -m llmcache_ollama.server --port 0`` runs it as a process.

>>> from llmcache_ollama import OllamaClient
>>> with OllamaServer(EchoEngine()) as server, OllamaClient(server.url) as client:
...     client.embed(["hi"], model="nomic-embed-text").model, server.calls["embed"]
('nomic-embed-text', 1)
"""

from __future__ import annotations

from llmcache_ollama.server.api import VERSION
from llmcache_ollama.server.app import OllamaServer
from llmcache_ollama.server.engines import (
    DEFAULT_MODELS,
    Completion,
    EchoEngine,
    Engine,
    ModelSpec,
    Prompt,
)
from llmcache_ollama.server.state import CallCounter, Faults

__all__ = [
    "CallCounter",
    "Completion",
    "DEFAULT_MODELS",
    "EchoEngine",
    "Engine",
    "Faults",
    "ModelSpec",
    "OllamaServer",
    "Prompt",
    "VERSION",
]
