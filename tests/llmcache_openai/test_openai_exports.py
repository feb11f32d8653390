"""The plugin's face: a sorted, complete ``__all__``; its place in the backend registry; and
llmcache imports without it."""

from __future__ import annotations

import asyncio
import doctest
import importlib
import subprocess
import sys
import types
from importlib.metadata import entry_points

import pytest
from llmcache_testserver import OllamaServer

import llmcache_openai
from llmcache.backends import get_backend
from llmcache.backends.registry import GROUP
from llmcache_openai import AsyncOpenAIClient, OpenAIClient


def test_all_is_sorted_and_complete() -> None:
    public = {
        name
        for name, value in vars(llmcache_openai).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert llmcache_openai.__all__ == sorted(llmcache_openai.__all__)
    assert set(llmcache_openai.__all__) == public


def test_llmcache_does_not_import_the_plugin() -> None:
    code = "import sys, llmcache; print('llmcache_openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registered_as_openai(server: OllamaServer) -> None:
    names = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    if "openai" not in names:
        pytest.skip(
            "the 'openai' entry point is not declared yet (pyproject.toml, then "
            'reinstall): openai = "llmcache_openai:OpenAIClient"'
        )
    assert names["openai"] == "llmcache_openai:OpenAIClient"
    assert names.get("openai-async") == "llmcache_openai:AsyncOpenAIClient"
    with get_backend("openai", base_url=server.openai_url, model="llama3.2") as backend:
        assert isinstance(backend, OpenAIClient)
        assert backend.generate("hi").content == "echo: hi"
    async_backend = get_backend("openai-async", base_url=server.openai_url)
    assert isinstance(async_backend, AsyncOpenAIClient)
    asyncio.run(async_backend.aclose())


@pytest.mark.parametrize(
    "module_name",
    [
        "llmcache_openai",
        "llmcache_openai._protocol",
        "llmcache_openai._boundary",
        "llmcache_testserver.openai_api",
    ],
)
def test_doctests_run(module_name: str) -> None:
    failures, tried = doctest.testmod(importlib.import_module(module_name))
    assert failures == 0 and tried > 0
