"""Embedders: the hashing fallback, a backend through EmbeddingCache, the bundled WordLlama."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

from llmcache.backends.mock import AsyncMockBackend, MockBackend, MockCall
from llmcache.embeddings import EmbeddingCache
from llmcache.vector import embedders
from llmcache.vector.embedders import (
    BackendEmbedder,
    Embedder,
    HashingEmbedder,
    WordLlamaEmbedder,
    normalize_rows,
)


def _unit_rows(rows: np.ndarray) -> bool:
    norms = np.linalg.norm(rows, axis=1)
    return bool(np.all((np.abs(norms - 1) < 1e-5) | (norms == 0)))


def test_hashing_is_deterministic_normalised_and_word_sensitive() -> None:
    emb = HashingEmbedder(dim=128)
    assert isinstance(emb, Embedder)
    a = emb.embed(["How do I reset my password?", "how do i reset my password", "", "cats"])
    assert a.shape == (4, 128) and a.dtype == np.float32 and _unit_rows(a)
    assert not a[2].any()
    assert np.array_equal(
        a,
        HashingEmbedder(dim=128).embed(
            ["How do I reset my password?", "how do i reset my password", "", "cats"]
        ),
    )
    assert float(a[0] @ a[1]) > 0.99 > float(a[0] @ a[3])
    assert HashingEmbedder(dim=128, seed=1).name != emb.name
    with pytest.raises(ValueError):
        HashingEmbedder(dim=4)


def test_normalize_rows_handles_zero_and_non_finite_rows() -> None:
    rows = normalize_rows([[3.0, 4.0], [0.0, 0.0], [np.nan, 1.0]])
    assert rows[0].tolist() == pytest.approx([0.6, 0.8])
    assert not rows[1].any() and not rows[2].any()
    with pytest.raises(ValueError):
        normalize_rows([[1.0, 2.0]], dim=3)


def test_backend_embedder_sends_only_missing_texts_once_each() -> None:
    backend = MockBackend(embed_dim=16)
    cache = EmbeddingCache(max_entries=100)
    emb = BackendEmbedder(backend, model="nomic", cache=cache)
    first = emb.embed(["a b", "c", "a b"])
    assert backend.calls[0].texts == ["a b", "c"]
    assert first.shape == (3, 16) and _unit_rows(first)
    assert np.array_equal(first[0], first[2])
    second = emb.embed(["c", "d"])
    assert [call.texts for call in backend.calls] == [["a b", "c"], ["d"]]
    assert np.allclose(second[0], first[1])
    assert cache.get("d", "nomic") is not None  # the vectors went into the cache
    emb.embed(["a b", "c", "d"])
    assert backend.call_count == 2
    assert emb.dim == 16 and emb.name == "backend:nomic"


def test_backend_embedder_shares_a_persistent_cache(tmp_path: Any) -> None:
    path = tmp_path / "emb.db"
    backend = MockBackend(embed_dim=8)
    with EmbeddingCache(path) as cache:
        BackendEmbedder(backend, model="m", cache=cache).embed(["x", "y"])
    with EmbeddingCache(path) as cache:
        BackendEmbedder(backend, model="m", cache=cache).embed(["x", "y"])
    assert backend.call_count == 1


def test_backend_embedder_checks_answers() -> None:
    def wrong_count(call: MockCall) -> list[list[float]]:
        return [[1.0, 0.0]]

    emb = BackendEmbedder(MockBackend(wrong_count), model="m")
    with pytest.raises(ValueError, match="asked for 2"):
        emb.embed(["a", "b"])
    with pytest.raises(ValueError, match="model"):
        BackendEmbedder(MockBackend(model=""))
    probe = MockBackend(embed_dim=12)
    assert BackendEmbedder(probe, model="m").dim == 12  # learnt from one probe call
    assert probe.call_count == 1


async def test_backend_embedder_async() -> None:
    backend = AsyncMockBackend(embed_dim=8)
    emb = BackendEmbedder(backend, model="m")
    rows = await emb.aembed(["a", "b", "a"])
    assert rows.shape == (3, 8) and backend.call_count == 1
    await emb.aembed(["b"])
    assert backend.call_count == 1
    with pytest.raises(TypeError, match="aembed"):
        emb.embed(["a"])
    sync_backend = MockBackend(embed_dim=8)
    assert (await BackendEmbedder(sync_backend, model="m").aembed(["z"])).shape == (1, 8)


def test_wordllama_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedders, "_models", {})
    monkeypatch.setitem(sys.modules, "wordllama", None)  # makes `import wordllama` fail
    with pytest.raises(ImportError, match=r"llmcache\[semantic\]"):
        WordLlamaEmbedder()
    with pytest.raises(ValueError, match="ships sizes"):
        WordLlamaEmbedder(dim=512)


def test_wordllama_loads_offline_and_leaves_logging_and_env_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("wordllama")
    import socket

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("network access during the WordLlama load")

    monkeypatch.setattr(embedders, "_models", {})
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    emb = WordLlamaEmbedder(dim=128)
    rows = emb.embed(["How do I reset my password?", "I forgot my password", ""])
    assert rows.shape == (3, 128) and _unit_rows(rows) and not rows[2].any()
    assert float(rows[0] @ rows[1]) > 0.5
    assert emb.name == "wordllama-l2_supercat-128"
    assert "HF_HUB_OFFLINE" not in os.environ
    assert root.handlers == handlers and root.level == level


def test_wordllama_fresh_process_never_touches_the_network() -> None:
    pytest.importorskip("wordllama")
    code = textwrap.dedent("""
        import socket, sys
        def no_network(*a, **k):
            raise SystemExit("network access: %r" % (a,))
        socket.socket.connect = no_network
        socket.create_connection = no_network
        socket.getaddrinfo = no_network
        from llmcache.vector.embedders import WordLlamaEmbedder
        rows = WordLlamaEmbedder().embed(["hello world"])
        assert rows.shape == (1, 256), rows.shape
        assert "wordllama" in sys.modules
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS"))}
    env["HOME"] = "/nonexistent-home"  # no ~/.cache/wordllama to fall back on
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
