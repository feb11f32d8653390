"""One root: every error llmcache raises on purpose is an `llmcache.errors.LLMCacheError`.

The walk imports every module of every package in ``src/`` and looks at each exception
class defined there with a public name (a leading underscore marks a signal caught where
it is raised). Each must derive from `LLMCacheError`, keep the builtin base users already
catch, and appear in the tree drawn in ``llmcache/errors.py``'s docstring.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import llmcache.errors
from llmcache.errors import LLMCacheError, StoreError

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGES = sorted(init.parent.name for init in SRC.glob("*/__init__.py"))


def module_names() -> list[str]:
    names: list[str] = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        names.extend(info.name for info in pkgutil.walk_packages(root.__path__, f"{package}."))
    return names


def error_classes() -> dict[str, type[BaseException]]:
    """``module.Name`` -> class, for each public exception class defined under ``src/``."""
    found: dict[str, type[BaseException]] = {}
    for name in module_names():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # An optional extra that is not installed (the dev extra installs them all);
            # a module of our own that is missing is a failure.
            if (exc.name or "").split(".")[0] in PACKAGES:
                raise
            continue
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and not attr.startswith("_")
            ):
                found[f"{name}.{attr}"] = value
    return found


ERRORS = error_classes()


def test_the_walk_finds_the_known_families() -> None:
    names = {cls.__name__ for cls in ERRORS.values()}
    assert {
        "LLMCacheError",
        "StoreError",
        "BackendError",
        "CodecError",
        "NotKeyable",
        "ControlHeaderError",
    } <= names


@pytest.mark.parametrize("where", sorted(ERRORS))
def test_every_error_is_an_llmcache_error(where: str) -> None:
    assert issubclass(ERRORS[where], LLMCacheError), where


@pytest.mark.parametrize("where", sorted(ERRORS))
def test_every_error_is_drawn_in_the_tree(where: str) -> None:
    doc = llmcache.errors.__doc__ or ""
    assert f" {ERRORS[where].__name__} " in doc.replace("\n", " \n"), where


@pytest.mark.parametrize(
    ("module", "name", "builtin"),
    [
        ("llmcache.backends.errors", "BackendError", Exception),
        ("llmcache.backends.registry", "BackendNotFound", KeyError),
        ("llmcache.backends.registry", "BackendLoadError", ImportError),
        ("llmcache.backends.registry", "BackendConflict", ValueError),
        ("llmcache.entry", "CodecError", ValueError),
        ("llmcache.keys", "NotKeyable", ValueError),
        ("llmcache.vector.index", "IndexFileError", ValueError),
        ("llmcache.vector.embedders", "EmbeddingError", ValueError),
        ("llmcache.stores.postgres", "SchemaError", RuntimeError),
        ("llmcache.integrations._http_control", "ControlHeaderError", ValueError),
        ("llmcache._postgres", "Unavailable", ConnectionError),
    ],
)
def test_each_error_keeps_its_builtin_base(
    module: str, name: str, builtin: type[BaseException]
) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, (LLMCacheError,)) and issubclass(cls, builtin)


def test_builtin_behaviour_is_kept() -> None:
    # The classes' own messages and fields are kept, and `except KeyError` /
    # `except ImportError` still catch them; they still pickle (they cross processes).
    import pickle

    from llmcache.backends.registry import BackendLoadError, BackendNotFound

    with pytest.raises(KeyError, match="no llmcache backend named 'x'; available: mock"):
        raise BackendNotFound("x", ["mock"])
    with pytest.raises(ImportError) as caught:
        raise BackendLoadError("broken", backend="b", distribution="d")
    assert (caught.value.backend, caught.value.distribution) == ("b", "d")
    copy = pickle.loads(pickle.dumps(BackendNotFound("x", ["mock"])))
    assert (type(copy), copy.available) == (BackendNotFound, ["mock"])
    with pytest.raises(LLMCacheError):
        raise StoreError("clear did not happen", store="disk", operation="clear")


def test_one_except_catches_what_the_face_raises() -> None:
    import llmcache

    with pytest.raises(LLMCacheError):
        llmcache.get_backend("no-such-backend-anywhere")
    with pytest.raises(LLMCacheError):
        llmcache.JSONCodec().decode(b"\x80\x04pickle")
