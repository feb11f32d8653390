"""The packages' faces: sorted, complete ``__all__``."""

from __future__ import annotations

import types

import pytest

import llmcache_ollama
import llmcache_ollama.server


@pytest.mark.parametrize("module", [llmcache_ollama, llmcache_ollama.server])
def test_all_is_sorted_and_complete(module: types.ModuleType) -> None:
    public = {name for name, value in vars(module).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)
              and name != "annotations"}
    assert module.__all__ == sorted(module.__all__)
    assert set(module.__all__) == public
