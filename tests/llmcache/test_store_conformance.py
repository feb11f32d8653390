"""The bundled stores pass `llmcache.testing.StoreConformance`, on a fake clock."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import llmcache._conformance_backends
import llmcache.testing
from llmcache.stores import DiskStore, MemoryStore, Store, TieredStore
from llmcache.testing import StoreConformance


class TestMemoryStoreConformance(StoreConformance):
    uses_clock = True

    def make_store(self) -> Store:
        return MemoryStore(max_entries=1000, clock=self.clock)


class TestDiskStoreConformance(StoreConformance):
    uses_clock = True

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.directory = tmp_path
        self.made = 0

    def make_store(self) -> Store:
        self.made += 1  # a test that makes two stores gets two directories
        return DiskStore(self.directory / f"disk{self.made}", clock=self.clock)


class TestTieredStoreConformance(StoreConformance):
    uses_clock = True

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.directory = tmp_path
        self.made = 0

    def make_store(self) -> Store:
        self.made += 1
        return TieredStore(
            MemoryStore(max_entries=1000, clock=self.clock),
            DiskStore(self.directory / f"disk{self.made}", clock=self.clock),
            clock=self.clock,
        )


class TestRealClockConformance(StoreConformance):
    """The suite's own real-time path (for stores that cannot take a clock)."""

    uses_clock = False
    ttl = 0.2

    def make_store(self) -> Store:
        return MemoryStore(max_entries=1000)


def test_doctests_run() -> None:
    for module in (llmcache.testing, llmcache._conformance_backends):
        failures, _ = doctest.testmod(module)
        assert failures == 0
