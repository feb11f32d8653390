"""LangChain's own standard cache suites (``langchain-tests``), sync and async, on every
bundled store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

suites = pytest.importorskip(
    "langchain_tests.integration_tests", reason="needs the test dependency langchain-tests"
)

from llmcache.integrations.langchain import LLMCache  # noqa: E402
from llmcache.stores import DiskStore, MemoryStore, Store, TieredStore  # noqa: E402


class _OnStore:
    """Hands the suite an empty `LLMCache` over ``make_store``, closed after the test."""

    def make_store(self, directory: Path) -> Store:
        raise NotImplementedError

    @pytest.fixture
    def cache(self, tmp_path: Path) -> Iterator[LLMCache]:
        with LLMCache(self.make_store(tmp_path)) as cache:
            yield cache


class _Memory(_OnStore):
    def make_store(self, directory: Path) -> Store:
        return MemoryStore(max_entries=100)


class _Disk(_OnStore):
    def make_store(self, directory: Path) -> Store:
        return DiskStore(directory / "disk")


class _Tiered(_OnStore):
    def make_store(self, directory: Path) -> Store:
        return TieredStore(MemoryStore(max_entries=100), DiskStore(directory / "disk"))


class TestMemorySync(_Memory, suites.SyncCacheTestSuite):
    pass


class TestMemoryAsync(_Memory, suites.AsyncCacheTestSuite):
    pass


class TestDiskSync(_Disk, suites.SyncCacheTestSuite):
    pass


class TestDiskAsync(_Disk, suites.AsyncCacheTestSuite):
    pass


class TestTieredSync(_Tiered, suites.SyncCacheTestSuite):
    pass


class TestTieredAsync(_Tiered, suites.AsyncCacheTestSuite):
    pass
