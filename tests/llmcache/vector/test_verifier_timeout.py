"""A judge that does not answer in time counts as "no", and is asked again later."""

from __future__ import annotations

import asyncio
import threading

import pytest

from llmcache.backends.mock import AsyncMockBackend, MockBackend, MockCall
from llmcache.vector.verifier import Verifier


def test_a_sync_judge_past_its_timeout_is_a_no_and_not_cached() -> None:
    release = threading.Event()
    slow = [True]

    def judge(call: MockCall) -> str:
        if slow[0]:
            release.wait(10)
        return "yes"

    verifier = Verifier(MockBackend(judge), timeout=0.05)
    try:
        assert not verifier.verify("a b", "a c")
        assert verifier.stats()["errors"] == 1
        slow[0] = False
        assert verifier.verify("a b", "a c")  # asked again: the timeout was not kept
    finally:
        release.set()


def test_backend_errors_still_reach_the_caller_as_a_no_with_a_timeout() -> None:
    def broken(call: MockCall) -> str:
        raise ConnectionError("refused")

    verifier = Verifier(MockBackend(broken), timeout=5)
    assert not verifier.verify("a b", "a c") and verifier.stats()["errors"] == 1


async def test_an_async_judge_past_its_timeout_is_a_no() -> None:
    async def never(call: MockCall) -> str:
        await asyncio.Event().wait()
        return "yes"

    verifier = Verifier(AsyncMockBackend(never), timeout=0.05)
    assert not await verifier.averify("a b", "a c")
    assert verifier.stats()["errors"] == 1


async def test_a_sync_judge_in_async_code_is_bounded_too() -> None:
    release = threading.Event()
    verifier = Verifier(MockBackend(lambda call: "yes" if release.wait(10) else "no"), timeout=0.05)
    try:
        assert not await verifier.averify("a b", "a c")
    finally:
        release.set()


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_bad_timeouts(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        Verifier(MockBackend(), timeout=timeout)
