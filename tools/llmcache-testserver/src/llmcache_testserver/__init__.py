"""An Ollama-, OpenAI- and Anthropic-compatible HTTP server on the standard library, for
llmcache's tests, benchmarks and demo.

It is tooling, not part of llmcache's runtime: its own distribution (``tools/llmcache-testserver``
in the repository, installed by the Makefile's test, bench and demo setups). `OllamaServer`
runs it in a background thread, serving Ollama's API at ``url``, the OpenAI API at
``openai_url`` and Anthropic's Messages API at ``url`` (``POST /v1/messages``);
`EchoEngine` answers deterministically; `Faults` injects failures; ``python -m
llmcache_testserver --port 0`` runs it as a process (``--engine demo`` answers to-do prompts
by rules, ``--engine llama`` runs a real local model with llama-cpp-python).

>>> from llmcache_ollama import OllamaClient
>>> with OllamaServer(EchoEngine()) as server, OllamaClient(server.url) as client:
...     client.embed(["hi"], model="nomic-embed-text").model, server.calls["embed"]
('nomic-embed-text', 1)
"""

from __future__ import annotations

from llmcache_testserver.api import VERSION
from llmcache_testserver.app import OllamaServer
from llmcache_testserver.engines import (
    DEFAULT_MODELS,
    Completion,
    EchoEngine,
    Engine,
    ModelSpec,
    Prompt,
)
from llmcache_testserver.state import CallCounter, Faults

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
