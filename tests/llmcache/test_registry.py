"""The backend registry: entry-point discovery, lazy loading, broken plugins, name clashes.

Most tests use the real `llmcache-test-plugins` distribution (tests/plugins/), installed
into the venv by the Makefile; name clashes use real ``*.dist-info`` directories written
to a temporary ``sys.path`` entry, so importlib.metadata itself does the discovery.
"""

from __future__ import annotations

import importlib.metadata
import logging
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest

from llmcache.backends import registry as reg
from llmcache.backends.base import AsyncBackend, Backend
from llmcache.backends.mock import AsyncMockBackend, MockBackend
from llmcache.backends.registry import (
    BackendConflict,
    BackendLoadError,
    BackendNotFound,
    get_backend,
    list_backends,
    load_backend,
    load_backends,
    refresh,
    register_backend,
    registry,
    unregister_backend,
)

PLUGIN_DIST = "llmcache-test-plugins"
PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / PLUGIN_DIST


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    saved = dict(reg._registered)
    refresh()
    yield
    reg._registered.clear()
    reg._registered.update(saved)
    refresh()


@pytest.fixture
def test_plugins() -> None:
    try:
        importlib.metadata.distribution(PLUGIN_DIST)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(
            f"the test plugin distribution is not installed; run: "
            f"{sys.executable} -m pip install {PLUGIN_DIR}"
        )


def _forget_modules(prefix: str) -> None:
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[name]


def make_dist(root: Path, name: str, entry_points: dict[str, str], *, version: str = "1.0") -> Path:
    """Write an installed-distribution record (``*.dist-info``) under `root`."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{ep} = {target}\n" for ep, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[llmcache.backends]\n{lines}")
    return info


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary sys.path entry holding fake distributions and their modules."""
    (tmp_path / "fake_backends.py").write_text(
        "from llmcache.backends.mock import MockBackend\n"
        "class A(MockBackend):\n    pass\n"
        "class B(MockBackend):\n    pass\n"
        "NOT_CALLABLE = 42\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    refresh()
    yield tmp_path
    _forget_modules("fake_backends")


# -- discovery -------------------------------------------------------------------------------


def test_list_finds_the_test_plugin_without_importing_it(test_plugins: None) -> None:
    _forget_modules("llmcache_test_plugins")
    infos = {i.name: i for i in list_backends()}
    echo = infos["echo-test"]
    assert echo.target == "llmcache_test_plugins.good:EchoBackend"
    assert echo.distribution == PLUGIN_DIST
    assert echo.version == importlib.metadata.version(PLUGIN_DIST)
    assert (echo.source, echo.status, echo.conflicts) == ("entry-point", "ok", ())
    assert infos["broken-test"].status == "ok"  # listing cannot know it is broken
    assert infos["mock"].distribution == "llmcache"
    assert not any(m.startswith("llmcache_test_plugins") for m in sys.modules)


def test_list_is_sorted_by_name(test_plugins: None) -> None:
    names = [i.name for i in list_backends()]
    assert names == sorted(names)


def test_get_backend_imports_and_configures_the_plugin(test_plugins: None) -> None:
    backend = get_backend("echo-test", model="m", prefix=">")
    assert isinstance(backend, Backend)
    assert type(backend).__module__ == "llmcache_test_plugins.good"
    answer = backend.generate("abc")
    assert (answer.content, answer.model) == (">cba", "m")


def test_get_backend_mock_is_the_public_mock() -> None:
    backend = get_backend("mock", model="tiny", handler=lambda call: "ok")
    assert isinstance(backend, MockBackend)
    assert backend.generate("q").content == "ok"
    assert load_backend("mock") is MockBackend


def test_unknown_name_lists_the_available_ones(test_plugins: None) -> None:
    with pytest.raises(BackendNotFound) as info:
        get_backend("nope")
    err = info.value
    assert isinstance(err, KeyError) and isinstance(err, LookupError)
    assert "'nope'" in str(err) and "echo-test" in str(err) and "mock" in str(err)
    assert "echo-test" in err.available and err.name == "nope"


# -- broken plugins --------------------------------------------------------------------------


def test_broken_plugin_is_logged_and_skipped(
    test_plugins: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="llmcache.backends"):
        loaded = load_backends()
    assert "broken-test" not in loaded
    assert loaded["mock"] is MockBackend and "echo-test" in loaded
    records = [r for r in caplog.records if "broken-test" in r.getMessage()]
    assert len(records) == 1
    assert records[0].name == "llmcache.backends"
    assert PLUGIN_DIST in records[0].getMessage()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="llmcache.backends"):
        load_backends()
    assert not caplog.records  # once per refresh, not on every call


def test_asking_for_a_broken_plugin_raises_a_chained_load_error(test_plugins: None) -> None:
    for _ in range(2):  # the remembered failure is reported the same way
        with pytest.raises(BackendLoadError) as info:
            get_backend("broken-test")
        err = info.value
        assert isinstance(err, ImportError)
        assert isinstance(err.__cause__, ImportError)
        assert "broken on purpose" in str(err.__cause__)
        assert err.backend == "broken-test" and err.distribution == PLUGIN_DIST
        assert "'broken-test'" in str(err) and PLUGIN_DIST in str(err)


def test_errors_survive_pickling() -> None:
    errors: list[Exception] = [
        BackendNotFound("x", ["a", "b"]),
        BackendLoadError("boom", backend="x", distribution="d"),
        BackendConflict("twice", backend="x", sources=("d1", "d2")),
    ]
    for err in errors:
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is type(err) and str(copy) == str(err)
        assert vars(copy) == vars(err)


def test_import_llmcache_ignores_plugins(test_plugins: None) -> None:
    code = (
        "import sys, llmcache, llmcache.backends, llmcache.backends.registry as r\n"
        "infos = r.list_backends()\n"
        "assert not [m for m in sys.modules if m.startswith('llmcache_test_plugins')]\n"
        "assert 'broken-test' in [i.name for i in infos]\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_non_callable_target_is_a_load_error(site: Path) -> None:
    make_dist(site, "fake-x", {"nc": "fake_backends:NOT_CALLABLE"})
    refresh()
    with pytest.raises(BackendLoadError, match="not a class or factory"):
        get_backend("nc")


def test_factory_returning_a_non_backend_is_a_type_error() -> None:
    register_backend("weird", lambda **kw: object())
    with pytest.raises(TypeError, match="'weird' returned a object"):
        get_backend("weird")


# -- name clashes ----------------------------------------------------------------------------


def test_two_distributions_one_name_is_a_conflict(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_dist(site, "fake-a", {"dup": "fake_backends:A"}, version="1.0")
    make_dist(site, "fake-b", {"dup": "fake_backends:B"}, version="2.0")
    refresh()

    rows = [i for i in list_backends() if i.name == "dup"]
    assert [(r.distribution, r.target, r.status) for r in rows] == [
        ("fake-a", "fake_backends:A", "conflict"),
        ("fake-b", "fake_backends:B", "conflict"),
    ]
    assert rows[0].conflicts == ("fake-b",) and rows[1].conflicts == ("fake-a",)

    with pytest.raises(BackendConflict) as info:
        get_backend("dup")
    message = str(info.value)
    assert "fake-a 1.0" in message and "fake-b 2.0" in message
    assert info.value.sources == ("fake-a", "fake-b")
    assert "fake_backends" not in sys.modules  # a conflict imports neither

    with caplog.at_level(logging.WARNING, logger="llmcache.backends"):
        assert "dup" not in load_backends()
    assert any("dup" in r.getMessage() for r in caplog.records)


def test_conflict_can_be_resolved_in_process(site: Path) -> None:
    make_dist(site, "fake-a", {"dup": "fake_backends:A"})
    make_dist(site, "fake-b", {"dup": "fake_backends:B"})
    refresh()
    register_backend("dup", MockBackend, replace=True)
    assert type(get_backend("dup")) is MockBackend
    assert [i.status for i in list_backends() if i.name == "dup"] == ["ok"]


def test_one_distribution_seen_twice_is_not_a_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An editable install can leave two metadata directories for one distribution; the
    # spelling of the name may differ between them (PEP 503 normalisation).
    target = {"twice": "llmcache.backends.mock:MockBackend"}
    first = make_dist(tmp_path / "one", "Fake_Plugin", target)
    second = make_dist(tmp_path / "two", "fake-plugin", target)
    eps = [
        ep
        for path in (first, second)
        for ep in importlib.metadata.PathDistribution(path).entry_points
    ]
    assert len(eps) == 2 and eps[0].dist is not None and eps[1].dist is not None
    monkeypatch.setattr(reg, "_discover", lambda: eps)
    refresh()

    rows = [i for i in list_backends() if i.name == "twice"]
    assert [(r.distribution, r.status) for r in rows] == [("Fake_Plugin", "ok")]
    assert isinstance(get_backend("twice"), MockBackend)


def test_discovery_is_cached_until_refresh(site: Path) -> None:
    assert "late" not in [i.name for i in list_backends()]
    make_dist(site, "fake-late", {"late": "fake_backends:A"})
    assert "late" not in [i.name for i in list_backends()]
    refresh()
    assert "late" in [i.name for i in list_backends()]


# -- in-process registration -----------------------------------------------------------------


def test_register_and_unregister() -> None:
    register_backend("async-mock", AsyncMockBackend)
    backend = get_backend("async-mock", model="a")
    assert isinstance(backend, AsyncBackend) and backend.model == "a"
    info = next(i for i in list_backends() if i.name == "async-mock")
    assert (info.source, info.distribution, info.target) == (
        "in-process",
        None,
        "llmcache.backends.mock:AsyncMockBackend",
    )
    assert registry["async-mock"] is AsyncMockBackend

    unregister_backend("async-mock")
    with pytest.raises(BackendNotFound):
        get_backend("async-mock")
    with pytest.raises(BackendNotFound):
        unregister_backend("async-mock")


def test_register_refuses_a_taken_name_unless_replace() -> None:
    register_backend("mine", MockBackend)
    with pytest.raises(BackendConflict, match="already registered"):
        register_backend("mine", AsyncMockBackend)
    with pytest.raises(BackendConflict, match="already installed by llmcache"):
        register_backend("mock", AsyncMockBackend)

    register_backend("mock", AsyncMockBackend, replace=True)
    assert isinstance(get_backend("mock"), AsyncMockBackend)
    unregister_backend("mock")  # the installed entry point shows again
    assert isinstance(get_backend("mock"), MockBackend)


@pytest.mark.parametrize("name", ["", "  ", None])
def test_register_rejects_bad_names(name: object) -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        register_backend(name, MockBackend)  # type: ignore[arg-type]


def test_register_rejects_non_callables() -> None:
    with pytest.raises(TypeError, match="must be callable"):
        register_backend("x", 42)  # type: ignore[arg-type]


def test_public_registry_view_is_read_only() -> None:
    assert isinstance(registry, MappingProxyType)
    with pytest.raises(TypeError):
        registry["x"] = MockBackend  # type: ignore[index]


def test_concurrent_lookups_load_one_factory(test_plugins: None) -> None:
    results: list[object] = []
    barrier = threading.Barrier(8)

    def look() -> None:
        barrier.wait()
        results.append(load_backend("echo-test"))

    threads = [threading.Thread(target=look) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len({id(r) for r in results}) == 1
