"""ApproximateIndex's search breadth (HNSW ef): follows the size by default, or pinned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

import llmcache.vector.ann as ann_module
from llmcache.vector import ApproximateIndex, ann_available
from llmcache.vector.ann import auto_expansion_search

pytestmark = pytest.mark.skipif(not ann_available(), reason="needs the ann extra (usearch)")
DIM = 8


def rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def test_auto_ef_is_flat_then_grows_with_the_rows_and_is_capped() -> None:
    values = [auto_expansion_search(n) for n in range(0, 3_000_001, 25_000)]
    assert values == sorted(values)
    assert auto_expansion_search(0) == auto_expansion_search(125_000) == 256
    assert auto_expansion_search(125_001) > 256
    assert auto_expansion_search(1_000_000) == 2048  # the calibrated point at 1M
    assert auto_expansion_search(10**9) == 4096


def test_ef_follows_adds_and_removes(monkeypatch: pytest.MonkeyPatch) -> None:
    # A flat part of 10 rows instead of 125,000, so the growth shows on a small index.
    monkeypatch.setattr(ann_module, "_EF_FLAT_ROWS", 10)
    index = ApproximateIndex(DIM)
    assert index.expansion_search == 256
    index.add([f"r{i}" for i in range(40)], rows(40))
    assert index.expansion_search == ann_module.auto_expansion_search(40) == 1024
    index.remove([f"r{i}" for i in range(20)])
    assert index.expansion_search == 512
    index.add_one("r0", rows(1, seed=1)[0])
    assert index.expansion_search == ann_module.auto_expansion_search(21)
    index.clear()
    assert index.expansion_search == 256


def test_a_pinned_ef_stays_until_unpinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ann_module, "_EF_FLAT_ROWS", 10)
    index = ApproximateIndex(DIM, expansion_search=100)
    index.add([f"r{i}" for i in range(40)], rows(40))
    assert index.expansion_search == 100
    index.expansion_search = None
    assert index.expansion_search == 1024
    index.expansion_search = 64
    index.remove("r1")
    assert index.expansion_search == 64


@pytest.mark.parametrize("bad", [0, -5])
def test_a_nonpositive_ef_is_refused_with_the_field_named(bad: int) -> None:
    with pytest.raises(ValueError, match="expansion_search"):
        ApproximateIndex(DIM, expansion_search=bad)
    index = ApproximateIndex(DIM)
    with pytest.raises(ValueError, match="expansion_search"):
        index.expansion_search = bad
    assert index.expansion_search == 256


def test_save_and_load_keep_auto_or_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ann_module, "_EF_FLAT_ROWS", 10)
    auto, pinned = ApproximateIndex(DIM), ApproximateIndex(DIM, expansion_search=300)
    for index, name in ((auto, "auto.json"), (pinned, "pinned.json")):
        index.add([f"r{i}" for i in range(30)], rows(30))
        index.save(tmp_path / name)
    loaded_auto = ApproximateIndex.load(tmp_path / "auto.json")
    assert loaded_auto.expansion_search == 768  # usearch's own load would reset it
    loaded_auto.add([f"s{i}" for i in range(10)], rows(10, seed=2))
    assert loaded_auto.expansion_search == 1024
    assert ApproximateIndex.load(tmp_path / "pinned.json").expansion_search == 300


def test_a_version_1_manifest_loads_with_ef_following_the_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Version 1 wrote the then-fixed default (256) into its options: not a user's choice.
    monkeypatch.setattr(ann_module, "_EF_FLAT_ROWS", 10)
    index = ApproximateIndex(DIM)
    index.add([f"r{i}" for i in range(30)], rows(30))
    path = tmp_path / "old.json"
    index.save(path)
    manifest = orjson.loads(path.read_bytes())
    manifest["version"] = 1
    manifest["options"]["expansion_search"] = 256
    path.write_bytes(orjson.dumps(manifest))
    assert ApproximateIndex.load(path).expansion_search == 768
