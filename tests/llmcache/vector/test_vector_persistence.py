"""VectorIndex.save/load: round trips, crashes mid-save, corrupt files, and never a pickle."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pytest

import llmcache.vector.index as index_module
from llmcache.vector import IndexFileError, VectorIndex

DIM = 6


def make(n: int, seed: int = 0, prefix: str = "id") -> VectorIndex:
    rng = np.random.default_rng(seed)
    index = VectorIndex(DIM, capacity=8)
    index.add([f"{prefix}{i}" for i in range(n)], rng.standard_normal((n, DIM)))
    return index


def assert_equal_indexes(a: VectorIndex, b: VectorIndex) -> None:
    assert a.ids() == b.ids() and a.dim == b.dim
    for id_ in a.ids():
        assert a.get_vector(id_).tolist() == b.get_vector(id_).tolist()


def test_round_trip(tmp_path: Path) -> None:
    index = make(40)
    index.remove(["id3", "id17"])
    index.add_one("é/ü 🙂 \ud800", np.ones(DIM))  # any str, even a lone surrogate
    path = tmp_path / "index.npz"
    index.save(path)
    loaded = VectorIndex.load(path)
    assert_equal_indexes(index, loaded)
    q = np.arange(DIM, dtype=np.float32) + 1
    assert loaded.search(q, 5) == index.search(q, 5)
    loaded.add_one("new", q)  # a loaded index is a normal index
    assert loaded.search(q)[0].id == "new"


def test_round_trip_of_empty_and_large_index(tmp_path: Path) -> None:
    VectorIndex(DIM).save(tmp_path / "empty")
    assert len(VectorIndex.load(tmp_path / "empty")) == 0
    big = make(3000)  # above the default capacity: the loaded matrix is adopted, not copied
    big.save(tmp_path / "big")
    loaded = VectorIndex.load(tmp_path / "big")
    assert_equal_indexes(big, loaded)
    loaded.add_one("more", np.ones(DIM))
    assert loaded.remove(["id0", "more"]) == 2 and len(loaded) == 2999


def test_save_overwrites_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "index.npz"
    make(5).save(path)
    make(7, seed=1).save(path)
    assert len(VectorIndex.load(path)) == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.npz"]


def _dies_half_way(f: BinaryIO, arrays: dict[str, Any]) -> None:
    f.write(b"PK\x03\x04" + b"\0" * 5000)  # the start of a zip, then the disk "fills up"
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("failure", ["writer", "fsync", "replace"])
def test_a_failed_save_leaves_the_old_file_intact(
    tmp_path: Path, failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "index.npz"
    old = make(10)
    old.save(path)
    before = path.read_bytes()
    if failure == "writer":
        monkeypatch.setattr(index_module, "write_archive", _dies_half_way)
    else:

        def boom(*args: object) -> None:
            raise OSError(5, f"{failure} failed")

        monkeypatch.setattr(index_module.os, failure, boom)
    with pytest.raises(OSError):
        make(20, seed=1).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert_equal_indexes(old, VectorIndex.load(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.npz"]  # temp file removed


def test_a_process_killed_mid_save_leaves_the_old_file_loadable(tmp_path: Path) -> None:
    path = tmp_path / "index.npz"
    old = make(10)
    old.save(path)
    script = textwrap.dedent(f"""
        import os, numpy as np
        import llmcache.vector.index as m
        def die(f, arrays):
            f.write(b"PK\\x03\\x04" + b"x" * 100_000)
            f.flush()
            os._exit(9)  # no cleanup, no finally: like a power cut or a SIGKILL
        m.write_archive = die
        index = m.VectorIndex({DIM})
        index.add(["a", "b"], np.ones((2, {DIM})))
        index.save({str(path)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    assert_equal_indexes(old, VectorIndex.load(path))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "index.npz"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".index.npz.")  # the dead temp


def test_truncated_or_garbled_files_raise_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "index.npz"
    make(50).save(path)
    data = path.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "garbage": os.urandom(4096),
        "json": b'{"format": "llmcache-ann-index"}',
    }
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # one flipped bit inside the matrix: the CRC catches it
    cases["flipped"] = bytes(flipped)
    for name, content in cases.items():
        bad = tmp_path / f"{name}.npz"
        bad.write_bytes(content)
        with pytest.raises(IndexFileError, match=str(bad.name)):
            VectorIndex.load(bad)
    with pytest.raises(FileNotFoundError):
        VectorIndex.load(tmp_path / "missing.npz")


def _archive(path: Path, **overrides: Any) -> None:
    """A well-formed archive of 3 ids, with some members replaced."""
    arrays = make(3).archive()
    arrays.update(overrides)
    with path.open("wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"matrix": np.zeros((3, DIM + 1), np.float32)}, r"matrix is float32\(3, 7\)"),
        ({"matrix": np.zeros((2, DIM), np.float32)}, r"matrix is float32\(2, 6\)"),
        ({"matrix": np.zeros((3, DIM), np.float64)}, "matrix is float64"),
        ({"matrix": np.full((3, DIM), np.nan, np.float32)}, "NaN or inf"),
        ({"offsets": np.array([0, 3, 6], np.int64)}, "does not hold 3 ids"),
        ({"offsets": np.array([0, 3, 1, 9], np.int64)}, "offsets out of order"),
        ({"ids": np.frombuffer(b"id0id0id0", np.uint8)}, "duplicate ids"),
        ({"ids": np.frombuffer(b"id0id1i\xff\xfe", np.uint8)}, "not UTF-8"),
        ({"meta": np.frombuffer(b"{]", np.uint8)}, "unreadable header"),
        (
            {
                "meta": np.frombuffer(
                    b'{"format": "llmcache-vector-index", "version": 1, "dim": 6, '
                    b'"count": 3, "metric": "l2"}',
                    np.uint8,
                )
            },
            "metric 'l2'",
        ),
        ({"meta": np.frombuffer(b'{"format": "other"}', np.uint8)}, "not an llmcache"),
        (
            {
                "meta": np.frombuffer(
                    b'{"format": "llmcache-vector-index", "version": 99}', np.uint8
                )
            },
            "format version 99",
        ),
    ],
)
def test_inconsistent_archives_are_refused(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    path = tmp_path / "index.npz"
    _archive(path, **overrides)
    with pytest.raises(IndexFileError, match=message):
        VectorIndex.load(path)


def test_missing_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "index.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.npy", b"")
    with pytest.raises(IndexFileError):
        VectorIndex.load(path)


class _Trap:
    """Unpickling this runs code: it creates the file named in `flag`."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.flag),))


def test_planted_object_arrays_are_never_unpickled(tmp_path: Path) -> None:
    flag = tmp_path / "code-ran"
    trap = np.array([_Trap(str(flag)), None], dtype=object)
    npy = tmp_path / "planted.npy"
    np.save(npy, trap, allow_pickle=True)
    with pytest.raises(IndexFileError, match="pickle|not a vector index"):
        VectorIndex.load(npy)
    npz = tmp_path / "planted.npz"
    _archive(npz, matrix=trap)
    with pytest.raises(IndexFileError, match="allow_pickle"):
        VectorIndex.load(npz)
    raw = tmp_path / "raw.pickle"
    raw.write_bytes(pickle.dumps(_Trap(str(flag))))
    with pytest.raises(IndexFileError, match="pickle"):
        VectorIndex.load(raw)
    assert not flag.exists()


def test_save_and_load_never_call_pickle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle used")

    for name in ("dump", "dumps", "load", "loads"):
        monkeypatch.setattr(pickle, name, forbidden)
    index = make(5)
    index.save(tmp_path / "i")
    assert_equal_indexes(index, VectorIndex.load(tmp_path / "i"))
